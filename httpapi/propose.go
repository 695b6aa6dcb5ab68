package httpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// propose commits cmd, bounded by ProposeTimeout but not by the client: a
// client that goes away must not turn a committed write into an unknown
// one. It returns the command's business error (res.Err) as err. The bound
// comes from a context shared by the requests of a short time slot (see
// deadlineSlots), not from a context and timer per request.
//
// A batched request (on a follower, see batch.go) proposes through the
// leader in a batch, and the same rules follow from the leader's answer.
func (q *queueAPI) propose(r *request, cmd fsm.Command) (fsm.Result, error) {
	var res fsm.Result
	var err error
	if r.batched {
		res, err = q.proposeBatched(r, cmd)
	}
	if !r.batched { // never batched, or this node leads now
		res, err = q.o.Queue.Propose(q.deadlines.context(q.o.ProposeTimeout), cmd)
	}
	switch {
	case err == nil:
		r.committed = true
		return res, res.Err
	case errors.Is(err, api.ErrOutcomeUnknown):
		r.committed = true
		return res, err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r.committed = true
		return res, fmt.Errorf("%w: %s ran past %s: %w", api.ErrOutcomeUnknown, cmd.Op, q.o.ProposeTimeout, err)
	case r.committed && (errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrShuttingDown)):
		// Those say "nothing applied, retry anywhere", which is no longer
		// true of the request: an earlier command of it (a large /mput)
		// was committed.
		return res, fmt.Errorf("%w: %s after an earlier part of the request was committed: %w", api.ErrOutcomeUnknown, cmd.Op, err)
	case r.committed && errors.Is(err, errUnbatched):
		// Not sent, but the request can no longer be relayed whole.
		return res, fmt.Errorf("%w: %s after an earlier part of the request was committed: %w", api.ErrOutcomeUnknown, cmd.Op, err)
	}
	return res, err
}

// proposeBatched proposes cmd through the batcher, within the request's
// forwarding deadline; a later command of a request part of which was
// committed (a large /mput) gets a deadline of its own and is never
// refused for a full queue. The answer then names the leader that served
// it in X-Served-By, as a relayed one does. When this node has come to
// lead, r is no longer batched and nothing was sent.
func (q *queueAPI) proposeBatched(r *request, cmd fsm.Command) (fsm.Result, error) {
	deadline := r.fwdDeadline
	if r.committed {
		deadline = time.Now().Add(q.o.ForwardTimeout)
	}
	o := q.batch.propose(cmd, deadline, r.committed)
	switch {
	case errors.Is(o.err, errSelfLeads):
		r.batched = false
	case o.servedBy != "":
		r.w.Header()[api.HeaderServedBy] = []string{o.servedBy}
	}
	return o.res, o.err
}

// consistentRead makes the local state reflect every acknowledged write,
// unless the request says stale=1.
func (q *queueAPI) consistentRead(r *request) error {
	stale, err := r.p.stale()
	if err != nil || stale {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), q.o.ProposeTimeout)
	defer cancel()
	err = q.o.Queue.ConsistentRead(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return api.ErrUnavailable.Errorf("timed out waiting for a consistent read; retry, or read this node's state with stale=1")
	}
	return err
}

// deadlineSlots hands out the contexts that bound proposals. Requests that
// start within the same slot of real time (1/100 of the timeout, at most
// 10 ms) share one context whose deadline is the end of the slot plus the
// timeout, so a proposal is bounded by the timeout plus at most one slot,
// and a busy node creates one context and timer per slot instead of one
// per request.
type deadlineSlots struct {
	mu  sync.Mutex
	cur atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	slot    int64
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc // runs by itself at the deadline
}

const maxDeadlineSlot = 10 * time.Millisecond

func (d *deadlineSlots) context(timeout time.Duration) context.Context {
	width := min(max(timeout/100, time.Microsecond), maxDeadlineSlot)
	now := time.Now()
	slot := now.UnixNano() / int64(width)
	if c := d.cur.Load(); c != nil && c.slot == slot && c.timeout == timeout {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && c.slot == slot && c.timeout == timeout {
		return c.ctx
	}
	// The slot's end, on the monotonic clock: now plus what is left of it.
	end := now.Add(time.Duration((slot+1)*int64(width) - now.UnixNano()))
	ctx, cancel := context.WithDeadline(context.Background(), end.Add(timeout))
	d.cur.Store(&deadlineSlot{slot: slot, timeout: timeout, ctx: ctx, cancel: cancel})
	return ctx
}
