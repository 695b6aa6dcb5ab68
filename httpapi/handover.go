package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/wait"
)

// Handovers: a /get or /mget that pops takes its messages under a short
// handover lease (fsm.Command.Handover) instead of removing them. Once the
// answer is written and flushed to the client's connection, the node that
// wrote it confirms them (fsm.OpHandoverAck, batched in the background);
// when it cannot be written (the client went away, the write failed or ran
// past its deadline) they are given back at once (fsm.OpHandoverNack); and
// when neither reaches the log (the node died, a forward timed out) the
// lease ends and they come back by themselves. See DESIGN.md, "Handovers".

const (
	// headerHandover is internal to the cluster. On a request a follower
	// relays to the leader, "1" says that the follower confirms the
	// handover itself once it has written the answer to its client; on
	// the leader's answer it then lists the ids taken (formatRanges). The
	// follower removes it before its client sees the answer.
	headerHandover = "X-Quorumq-Handover"
	handoverWill   = "1"
	// pathHandover is the node-to-node route through which a follower
	// confirms or gives back handovers: POST ?op=ack|back, the ids in
	// the body (formatRanges).
	pathHandover = api.PathInternal + "handover"
	// maxIDsHeader bounds X-Message-Ids on a text /mget: common servers,
	// proxies and clients accept header lines of 8 KiB.
	maxIDsHeader = 8 << 10
	// handoverBatch is the most ids one confirmation carries.
	handoverBatch = 10000
	// maxHandoverPending bounds the confirmations waiting for the
	// background batcher; past it a request confirms its own.
	maxHandoverPending = 1 << 16
	// maxHandoverBody bounds the body of pathHandover.
	maxHandoverBody = 1 << 20
)

// takenMessages are the messages of one reply taken under a handover.
type takenMessages struct {
	h   *handovers
	ids []uint64
	// relayed: the follower that relayed the request confirms them; this
	// node only gives them back if its own write fails.
	relayed bool
}

// handovers confirms and gives back the handovers of this node's answers:
// locally when it leads, else through the leader's pathHandover.
type handovers struct {
	q      Queue
	nodes  leaders
	client *http.Client
	scheme string
	lease  time.Duration
	m      *metrics
	log    *slog.Logger

	mu      sync.Mutex
	pending []uint64
	// idle is closed when the batcher has nothing left to do; nil while
	// no batcher runs.
	idle chan struct{}
	// lastServer is the leader that last took messages for a request this
	// node relayed: where their confirmation goes when this node no
	// longer knows a leader (it has just left the cluster, or an election
	// is under way), rather than leaving them to their lease.
	lastServer atomic.Pointer[api.Leader]
}

// servedBy records that leader took messages for a relayed request.
func (h *handovers) servedBy(leader api.Leader) {
	if cur := h.lastServer.Load(); cur == nil || *cur != leader {
		h.lastServer.Store(&leader)
	}
}

func newHandovers(o *Options, f *forwarder, m *metrics, log *slog.Logger) *handovers {
	return &handovers{q: o.Queue, nodes: f.nodes, client: f.client, scheme: f.scheme, lease: o.HandoverLease, m: m, log: log}
}

// writeTimeout bounds writing an answer that carries handovers: half the
// lease, so that a give-back after a stuck write comes before the lease
// would have given them back anyway.
func (h *handovers) writeTimeout() time.Duration { return h.lease / 2 }

// confirm queues ids for confirmation and returns at once. The batcher
// goroutine runs while there is something to confirm and stops when the
// queue is empty; confirmations that arrive while it proposes go together
// in its next command. A full queue makes the caller confirm its own.
func (h *handovers) confirm(ids []uint64) {
	h.mu.Lock()
	if len(h.pending)+len(ids) > maxHandoverPending {
		h.mu.Unlock()
		h.settle(ids, true)
		return
	}
	h.pending = append(h.pending, ids...)
	start := h.idle == nil
	if start {
		h.idle = make(chan struct{})
	}
	h.mu.Unlock()
	if start {
		go h.batch()
	}
}

func (h *handovers) batch() {
	for {
		h.mu.Lock()
		n := min(len(h.pending), handoverBatch)
		if n == 0 {
			close(h.idle)
			h.idle, h.pending = nil, nil
			h.mu.Unlock()
			return
		}
		ids := slices.Clone(h.pending[:n])
		h.pending = h.pending[n:]
		h.mu.Unlock()
		h.settle(ids, true)
	}
}

// drain waits until every queued confirmation was tried, or ctx ends.
func (h *handovers) drain(ctx context.Context) error {
	h.mu.Lock()
	idle := h.idle
	h.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DrainHandovers waits until the confirmations queued by a queue port's
// handler (NewQueueHandler) were all tried, or ctx ends. A node calls it
// after its HTTP servers have drained and before raft stops, so that the
// answers written last are confirmed rather than delivered again when
// their handover lease ends. Any other handler: nil at once.
func DrainHandovers(ctx context.Context, h http.Handler) error {
	e, ok := h.(*engine)
	if !ok || e.fwd == nil || e.fwd.handovers == nil {
		return nil
	}
	return e.fwd.handovers.drain(ctx)
}

// giveBack returns ids to the head of their queues now, in the caller's
// goroutine (its client is gone: no one waits for it).
func (h *handovers) giveBack(ids []uint64) { h.settle(ids, false) }

// settle confirms (done) or gives back ids, retrying through leader changes
// until half the lease has passed; after that the lease gives them back
// anyway. Both operations skip ids that are no longer handed over, so a
// retry of one that did reach the log changes nothing.
func (h *handovers) settle(ids []uint64, done bool) {
	cmd := fsm.Command{Op: fsm.OpHandoverNack, IDs: ids}
	result := "given_back"
	if done {
		cmd.Op, result = fsm.OpHandoverAck, "confirmed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.lease/2)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		if err = h.settleOnce(ctx, cmd); err == nil {
			h.m.handedOver(result, len(ids))
			return
		}
		pause := min(leaderPoll<<min(attempt, 4), maxRetryPause)
		if wait.Sleep(ctx, pause) != nil {
			break
		}
	}
	h.m.handedOver("unsettled", len(ids))
	h.log.Warn("handover not settled: the messages come back when their handover lease ends",
		"op", cmd.Op.String(), "messages", len(ids), "lease", h.lease, "err", err)
}

func (h *handovers) settleOnce(ctx context.Context, cmd fsm.Command) error {
	if h.nodes.IsLeader() {
		_, err := h.q.Propose(ctx, cmd)
		return err
	}
	leader, ok := h.nodes.Leader()
	if !ok || leader.QueueAddr == "" || leader.ID == h.nodes.ID() {
		// The node that took them: if it still leads it settles them, if
		// not it answers NOT_LEADER and this is tried again.
		last := h.lastServer.Load()
		if last == nil || last.ID == h.nodes.ID() {
			return api.ErrNoLeader.Errorf("no leader known to settle handovers with")
		}
		leader = *last
	}
	op := "back"
	if cmd.Op == fsm.OpHandoverAck {
		op = "ack"
	}
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, h.scheme+leader.QueueAddr+pathHandover+"?op="+op,
		bytes.NewReader(formatRanges(nil, cmd.IDs)))
	if err != nil {
		return err
	}
	out.Header.Set(api.HeaderForwardedBy, h.nodes.ID())
	res, err := h.client.Do(out)
	if err != nil {
		return fmt.Errorf("leader %s: %w", leader.ID, err)
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // keep the connection
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("leader %s answered %d %s", leader.ID, res.StatusCode, res.Header.Get(api.HeaderErrorCode))
	}
	return nil
}

// sendHandover writes a reply that carries handovers under a write
// deadline and flushes it; then it confirms them, or gives them back when
// the request's context ended before the write or the write or the flush
// failed.
//
// The context ends when the client goes away, but also when this node
// drains (it cancels the requests still running): then a client may still
// be waiting, and it is answered OUTCOME_UNKNOWN. Left unwritten, the
// answer would reach it as an empty 200, "the queue is empty", while the
// messages it took are on their way back.
//
// The client going away after the flush is not looked at: a client that
// read the whole answer and closed at once (curl does) is
// indistinguishable from one that closed unread, and giving those back
// would deliver the messages of every such answer twice.
func (e *engine) sendHandover(w http.ResponseWriter, req *request, rep reply) int {
	t := rep.handover
	rep.handover = nil
	if req.Context().Err() != nil {
		t.h.giveBack(t.ids)
		return e.fail(w, req.rt, errTakenThenCanceled(len(t.ids)))
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(t.h.writeTimeout())) // unsupported: unbounded, as before
	code, err := e.write(w, req, rep)
	err = cmpErr(err, flush(rc))
	rc.SetWriteDeadline(time.Time{})
	switch {
	case err != nil:
		e.log.Debug("answer not delivered: handover given back", "route", req.rt.name, "messages", len(t.ids), "err", err)
		t.h.giveBack(t.ids)
	case !t.relayed:
		t.h.confirm(t.ids)
	}
	return code
}

// errTakenThenCanceled answers a get whose request context ended after
// it took n messages, which are given back.
func errTakenThenCanceled(n int) error {
	return api.ErrOutcomeUnknown.Errorf("outcome unknown: the request was canceled after it took %d messages, which are given back and come out again", n)
}

// flush flushes rc; a writer that cannot flush has nothing buffered to lose.
func flush(rc *http.ResponseController) error {
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// relaysConfirmation reports whether the follower that relayed r confirms
// the handovers of its answer itself: it says so (headerHandover), the
// request is forwarded, and, when the node can tell, it comes from a node.
func (q *queueAPI) relaysConfirmation(r *request) bool {
	if r.Header.Get(headerHandover) != handoverWill || r.Header.Get(api.HeaderForwardedBy) == "" {
		return false
	}
	if q.o.NodeID != nil {
		_, ok := q.o.NodeID(r.Request)
		return ok
	}
	return true
}

// taken makes the handover part of a get's reply: the ids to settle and,
// for a follower that confirms itself, the header that tells it which.
func (q *queueAPI) taken(r *request, rep *reply, msgs []fsm.Message) {
	ids := make([]uint64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	rep.handover = &takenMessages{h: q.handovers, ids: ids, relayed: q.relaysConfirmation(r)}
	if rep.handover.relayed {
		if rep.header == nil {
			rep.header = http.Header{}
		}
		rep.header[headerHandover] = []string{string(formatRanges(nil, ids))}
	}
}

// handoverRoute is POST pathHandover?op=ack|back: a follower confirms, or
// gives back, handovers of answers it relayed. The answer is the number
// of ids settled; ids no longer handed over are skipped.
func (q *queueAPI) handoverRoute(r *request) (reply, error) {
	var op fsm.Op
	switch v, _ := r.p.get("op"); v {
	case "ack":
		op = fsm.OpHandoverAck
	case "back":
		op = fsm.OpHandoverNack
	default:
		return reply{}, api.ErrBadRequest.Errorf("op must be ack or back")
	}
	body, err := r.body()
	if err != nil {
		return reply{}, err
	}
	ids, err := parseRanges(string(body), handoverBatch)
	if err != nil {
		return reply{}, err
	}
	res, err := q.propose(r, fsm.Command{Op: op, IDs: ids})
	if err != nil {
		return reply{}, err
	}
	return reply{contentType: typeText, body: strconv.AppendInt(nil, int64(res.Count), 10)}, nil
}

// formatRanges appends ids as comma-separated runs, "7-9,12" for 7, 8, 9,
// 12: the ids of one take are mostly consecutive.
func formatRanges(b []byte, ids []uint64) []byte {
	for i := 0; i < len(ids); {
		j := i
		for j+1 < len(ids) && ids[j+1] == ids[j]+1 {
			j++
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, ids[i], 10)
		if j > i {
			b = append(b, '-')
			b = strconv.AppendUint(b, ids[j], 10)
		}
		i = j + 1
	}
	return b
}

// parseRanges reads formatRanges' output, at most limit ids.
func parseRanges(s string, limit int) ([]uint64, error) {
	var ids []uint64
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		b := a
		if err == nil && isRange {
			b, err = strconv.ParseUint(hi, 10, 64)
		}
		if err != nil || b < a || b-a >= uint64(limit-len(ids)) {
			return nil, api.ErrBadRequest.Errorf("ids: want at most %d ids as ID or FIRST-LAST, comma-separated", limit)
		}
		for id := a; ; id++ {
			ids = append(ids, id)
			if id == b {
				break
			}
		}
	}
	return ids, nil
}

// handoverIDs removes headerHandover from a relayed answer's headers and
// returns the ids it lists; nil when there are none.
func handoverIDs(h http.Header) []uint64 {
	v := h.Get(headerHandover)
	if v == "" {
		return nil
	}
	h.Del(headerHandover)
	ids, err := parseRanges(v, 1<<20)
	if err != nil {
		return nil // from a node we cannot read: the lease settles them
	}
	return ids
}

// relayHandover relays the leader's answer to a get that took messages
// under a handover this node confirms (see relaysConfirmation): confirmed
// once written and flushed to the client, given back when the client was
// gone first, or the leader's answer or the write to the client broke
// (see sendHandover). A request whose context ended first is the
// engine's to answer: err.
func (f *forwarder) relayHandover(w http.ResponseWriter, req *request, res *http.Response, ids []uint64) (int, error) {
	if err := req.Context().Err(); err != nil {
		f.handovers.giveBack(ids)
		return 0, errTakenThenCanceled(len(ids))
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Now().Add(f.handovers.writeTimeout()))
	w.WriteHeader(res.StatusCode)
	_, err := io.Copy(w, res.Body) // fails too when the leader's answer is cut
	err = cmpErr(err, flush(rc))
	rc.SetWriteDeadline(time.Time{})
	if err != nil {
		f.log.Debug("relayed answer not delivered: handover given back", "route", req.rt.name, "messages", len(ids), "err", err)
		f.handovers.giveBack(ids)
		// The status is out: a cut body must reach the client as cut,
		// never as a complete shorter (or empty) answer.
		abortResponse(w)
	} else {
		f.handovers.confirm(ids)
	}
	return res.StatusCode, nil
}
