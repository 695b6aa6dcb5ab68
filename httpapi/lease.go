package httpapi

import (
	"errors"
	"unicode/utf8"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// ack is /ack?id=ID[,ID...]: finish leased messages. All ids must be in
// flight, otherwise nothing changes and the answer is 409 naming the first
// id that is not. queue= is optional: when given, the ids must belong to it.
func (q *queueAPI) ack(r *request) (reply, error) {
	cmd, err := settleCommand(r.p, fsm.OpAck)
	if err != nil {
		return reply{}, err
	}
	return q.settle(r, cmd)
}

// nack is /nack?id=ID[,ID...]&delay=DUR&reason=TEXT: give leased messages
// back, ready again after delay (default at once) unless they used up their
// queue's max_attempts. A non-empty POST body replaces the message's data,
// atomically with the nack; it takes exactly one id. reason= is recorded as
// the message's last error (cut to 1 KiB).
func (q *queueAPI) nack(r *request) (reply, error) {
	cmd, err := settleCommand(r.p, fsm.OpNack)
	if err != nil {
		return reply{}, err
	}
	if cmd.Delay, _, err = r.p.duration("delay", MaxDelay); err != nil {
		return reply{}, err
	}
	reason, _ := r.p.get("reason")
	cmd.Reason = truncateUTF8(reason, maxReasonLen)
	body, err := r.body()
	if err != nil {
		return reply{}, err
	}
	if len(body) > 0 {
		if len(cmd.IDs) != 1 {
			return reply{}, api.ErrBadRequest.Errorf("a nack with a body replaces one message: give exactly one id")
		}
		if int64(len(body)) > q.o.MaxMsgSize {
			return reply{}, api.ErrTooLarge.Errorf("message is %d bytes, more than the limit of %d bytes", len(body), q.o.MaxMsgSize)
		}
		cmd.HasData, cmd.Data = true, body
	}
	return q.settle(r, cmd)
}

// touch is /touch?id=ID[,ID...]&lease=DUR: extend leases to now+lease
// (default: the queue's default lease).
func (q *queueAPI) touch(r *request) (reply, error) {
	cmd, err := settleCommand(r.p, fsm.OpTouch)
	if err != nil {
		return reply{}, err
	}
	lease, ok, err := r.p.duration("lease", MaxLease)
	if err != nil {
		return reply{}, err
	}
	if ok && lease == 0 {
		return reply{}, api.ErrBadRequest.Errorf("invalid lease=\"0s\": a touch needs a lease > 0")
	}
	cmd.Lease = lease
	rep, err := q.settle(r, cmd)
	if !ok && errors.Is(err, api.ErrInvalidCommand) {
		return rep, api.ErrBadRequest.Errorf("missing lease: give lease=DUR (the message's queue has no default lease)")
	}
	return rep, err
}

func settleCommand(p params, op fsm.Op) (fsm.Command, error) {
	queue, err := p.anyQueue()
	if err != nil {
		return fsm.Command{}, err
	}
	ids, err := p.ids()
	if err != nil {
		return fsm.Command{}, err
	}
	return fsm.Command{Op: op, Queue: queue, IDs: ids}, nil
}

func (q *queueAPI) settle(r *request, cmd fsm.Command) (reply, error) {
	res, err := q.propose(r, cmd)
	if errors.Is(err, api.ErrNotInFlight) && len(res.IDs) > 0 {
		return reply{}, api.ErrNotInFlight.Errorf("message %d is not in flight (unknown, already acked, or its lease expired)", res.IDs[0])
	}
	return reply{}, err
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}
