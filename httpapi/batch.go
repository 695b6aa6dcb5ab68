package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/wait"
)

// Batched forwarding, the follower's side (batchwire.go is the leader's).
// A forwarded write that is one command per proposal (/put, /mput, /ack,
// /nack, /touch: route.batch) is not relayed: the handler runs here,
// checks and builds its commands as on the leader, and proposes each
// through the batcher, which sends the commands of many requests to the
// leader in one POST api.PathPropose and hands each request its own
// result. The handler then answers exactly as the leader would have. See
// DESIGN.md, "Batched forwarding".

// batchInFlight is how many batches may wait for the leader at once: one
// being applied while the next fills, as raft's own pipeline does.
const batchInFlight = 2

// errUnbatched says that a command was not sent and will not be: the
// request is to be relayed on its own (engine.serve), which is safe
// because nothing of it was applied.
var errUnbatched = errors.New("not batched")

// errSelfLeads says that this node leads now: the command was not sent,
// and is proposed here.
var errSelfLeads = errors.New("this node leads")

// batcher queues the commands of forwarded writes and sends them to the
// leader in batches. Its sender runs only while there is something to
// send, so an idle node has no goroutine for it, and every command queued
// is answered by its deadline (see send).
type batcher struct {
	f *forwarder // the leader, its client and scheme, the hold
	m *metrics
	// log is the forwarder's.
	log *slog.Logger
	// maxQueue and maxQueueBytes bound the commands waiting.
	maxQueue      int
	maxQueueBytes int64
	// slots holds one token per batch in flight.
	slots chan struct{}

	mu      sync.Mutex
	queue   []*batchCommand
	queued  int64 // the queue's encoded bytes
	running bool  // the sender runs
	closed  bool
	// active counts the sender and the batches in flight, for drain.
	active sync.WaitGroup

	// leaders are what this node knows of leaders and batches: those that
	// serve api.PathPropose (they sent api.HeaderPropose), to which
	// batches go, and those that refused a batch lately. An immutable
	// map, replaced on change, read without a lock on every forwarded
	// write; a few ids, as leadership moves among the voters.
	leaders atomic.Pointer[map[string]leaderBatches]
	learnMu sync.Mutex
}

// leaderBatches is what one leader's answers said of batches.
type leaderBatches struct {
	supported bool
	// refusedUntil: the leader refused a batch although it advertised
	// them (a node downgraded under the same id, a node-to-node gate
	// that refuses this node); its advertisements are ignored until
	// then, so that writes are not tried in a batch and relayed in turn.
	refusedUntil time.Time
}

const (
	// maxKnownLeaders bounds the leaders remembered; past it they are
	// forgotten and learned again from their next answers.
	maxKnownLeaders = 16
	// refusedBatchesFor is how long a leader that refused a batch gets
	// every write relayed.
	refusedBatchesFor = time.Minute
)

// batchCommand is one command waiting for its result.
type batchCommand struct {
	cmd  fsm.Command
	size int
	// deadline is when the request's forwarding step ends: past it, a
	// command not yet sent is answered "no leader".
	deadline time.Time
	done     chan batchOutcome // buffered: the sender never blocks on it
}

// batchOutcome is a command's result, as Queue.Propose would return it,
// and the leader that served it.
type batchOutcome struct {
	res      fsm.Result
	err      error
	servedBy string
}

func newBatcher(f *forwarder, o *Options) *batcher {
	return &batcher{f: f, m: f.m, log: f.log, maxQueue: o.ForwardBatchQueue, maxQueueBytes: o.ForwardBatchQueueBytes,
		slots: make(chan struct{}, batchInFlight)}
}

// supports reports whether leader is known to serve batches.
func (b *batcher) supports(leader string) bool {
	m := b.leaders.Load()
	return m != nil && (*m)[leader].supported
}

// learn records what a leader's answer said of batches.
func (b *batcher) learn(leader string, supported bool) {
	var st leaderBatches
	if m := b.leaders.Load(); m != nil {
		st = (*m)[leader]
	}
	if st.supported == supported || supported && time.Now().Before(st.refusedUntil) {
		return
	}
	b.learnMu.Lock()
	defer b.learnMu.Unlock()
	next := map[string]leaderBatches{}
	if old := b.leaders.Load(); old != nil && len(*old) < maxKnownLeaders {
		maps.Copy(next, *old)
	}
	if supported {
		next[leader] = leaderBatches{supported: true}
		b.log.Debug("the leader serves batches: forwarded writes are batched", "leader", leader)
	} else {
		next[leader] = leaderBatches{refusedUntil: time.Now().Add(refusedBatchesFor)}
		b.log.Warn("the leader refused a batch: forwarded writes are relayed one by one", "leader", leader, "for", refusedBatchesFor)
	}
	b.leaders.Store(&next)
}

// propose sends cmd to the leader in a batch and returns its result.
// Errors, beside those of Queue.Propose that the leader returned:
// ErrNoLeader (nothing was applied: no leader took it by deadline),
// ErrOutcomeUnknown (sent, no answer), errUnbatched (not sent: relay the
// request), errSelfLeads (not sent: propose here). force queues the
// command past the queue's bounds: a request part of which was committed
// cannot fall back any more.
func (b *batcher) propose(cmd fsm.Command, deadline time.Time, force bool) batchOutcome {
	c := &batchCommand{cmd: cmd, size: fsm.EncodedSize(&cmd), deadline: deadline, done: make(chan batchOutcome, 1)}
	if err := b.enqueue(c, force); err != nil {
		return batchOutcome{err: err}
	}
	return <-c.done
}

func (b *batcher) enqueue(c *batchCommand, force bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		b.m.batchFallback("shutting_down")
		return fmt.Errorf("%w: forwarding is stopping", errUnbatched)
	}
	if !force && (len(b.queue) >= b.maxQueue || b.queued+int64(c.size) > b.maxQueueBytes) {
		b.m.batchFallback("queue_full")
		return fmt.Errorf("%w: %d commands (%s) wait already", errUnbatched, len(b.queue), api.FormatBytes(b.queued))
	}
	b.queue = append(b.queue, c)
	b.queued += int64(c.size)
	if !b.running {
		b.running = true
		b.active.Add(1)
		go b.run()
	}
	return nil
}

// run is the sender: it takes a free slot, then every command waiting (up
// to maxBatchCommands and maxBatchBytes), and sends them. Commands queue
// up while both slots are busy, so batches grow with load. It returns
// when nothing waits.
func (b *batcher) run() {
	defer b.active.Done()
	for {
		b.slots <- struct{}{}
		batch := b.take()
		if batch == nil {
			<-b.slots
			return
		}
		b.active.Add(1)
		go func() {
			defer b.active.Done()
			defer func() { <-b.slots }()
			b.send(batch)
		}()
	}
}

// take removes the next batch from the queue, answering the commands
// whose deadline has passed unsent. nil: nothing waits, and the sender
// is marked stopped.
func (b *batcher) take() []*batchCommand {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	var batch []*batchCommand
	size, n := 0, 0
	for ; n < len(b.queue) && len(batch) < maxBatchCommands; n++ {
		c := b.queue[n]
		if !now.Before(c.deadline) {
			b.queued -= int64(c.size)
			c.done <- batchOutcome{err: api.ErrNoLeader.Errorf("no leader: the leader took no batch within %s; nothing was sent; retry",
				api.FormatDuration(b.f.hold))}
			continue
		}
		if len(batch) > 0 && size+c.size > maxBatchBytes {
			break
		}
		batch = append(batch, c)
		size += c.size
		b.queued -= int64(c.size)
	}
	clear(b.queue[:n]) // do not pin bodies
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	if batch == nil && len(b.queue) == 0 {
		b.running = false
	}
	return batch
}

// send delivers a batch and answers each of its commands. It is bounded
// by the earliest deadline of the batch's commands: until then it waits
// for a leader and sends again what the leader left unapplied (the whole
// batch when it answered NOT_LEADER, or commands it could not propose);
// past it they are answered NO_LEADER. A batch that may have reached the
// leader and got no readable answer is answered OUTCOME_UNKNOWN.
func (b *batcher) send(batch []*batchCommand) {
	deadline := batch[0].deadline
	for _, c := range batch[1:] {
		if c.deadline.Before(deadline) {
			deadline = c.deadline
		}
	}
	answer := func(cs []*batchCommand, o batchOutcome) {
		for _, c := range cs {
			c.done <- o
		}
	}
	ctx := context.Background()
	var last error
	for attempt := 0; len(batch) > 0; attempt++ {
		var pause time.Duration
		if attempt > 0 {
			pause = min(leaderPoll<<min(attempt, 4), maxRetryPause)
		}
		leader, self, err := b.f.awaitLeader(ctx, deadline, pause, last)
		switch {
		case err != nil:
			answer(batch, batchOutcome{err: err})
			return
		case self:
			answer(batch, batchOutcome{err: errSelfLeads})
			return
		case !b.supports(leader.ID):
			// A new leader, not known to serve batches: nothing was
			// applied, so the requests can be relayed to it.
			b.m.batchFallback("leader_changed")
			answer(batch, batchOutcome{err: fmt.Errorf("%w: leader %s is not known to serve batches", errUnbatched, leader.ID)})
			return
		case attempt > 0 && time.Until(deadline) < minRetryTime:
			answer(batch, batchOutcome{err: b.f.noLeader(last)})
			return
		}
		results, servedBy, err := b.post(leader, batch, deadline)
		var retry *retryError
		switch {
		case errors.As(err, &retry):
			last = retry.err
			b.log.Debug("batch not taken by the leader; holding it", "leader", leader.ID, "commands", len(batch), "attempt", attempt+1, "err", last)
			continue
		case errors.Is(err, errUnbatched):
			b.learn(leader.ID, false)
			b.m.batchFallback("unsupported")
			answer(batch, batchOutcome{err: err})
			return
		case err != nil:
			answer(batch, batchOutcome{err: err})
			return
		}
		// The commands the leader could not propose (it lost its role
		// midway) were not applied: they go again.
		again := batch[:0]
		for i, c := range batch {
			r := results[i]
			if r.err != nil && !r.final && retryable(r.err) {
				k, _, _ := api.Classify(r.err)
				last = fmt.Errorf("%s answered %s for a command", leader.ID, k.Token)
				again = append(again, c)
				continue
			}
			err := r.err
			if r.final {
				err = &finalError{err}
			}
			c.done <- batchOutcome{res: r.res, err: err, servedBy: servedBy}
		}
		clear(batch[len(again):])
		batch = again
	}
}

// retryable: the leader applied nothing of the command and another node
// may.
func retryable(err error) bool {
	return !errors.Is(err, api.ErrOutcomeUnknown) &&
		(errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrShuttingDown))
}

// finalError is the leader's own answer to a request (its budget of
// queued bytes), which the handler returns as is.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

// post sends one batch and reads its results. Errors: *retryError when the
// leader applied nothing of it (it was never sent, or the leader answered
// 503 NOT_LEADER, NO_LEADER or SHUTTING_DOWN), errUnbatched when the
// leader refused the route itself (an older version: 404 or 405; any other
// 4xx), ErrOutcomeUnknown when it may have been applied and no readable
// answer came by deadline.
func (b *batcher) post(leader api.Leader, batch []*batchCommand, deadline time.Time) ([]commandResult, string, error) {
	cmds := make([]fsm.Command, len(batch))
	for i, c := range batch {
		cmds[i] = c.cmd
	}
	body := encodeCommands(nil, cmds)
	b.m.batchSent(len(batch))

	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, b.f.scheme+leader.QueueAddr+api.PathPropose, bytes.NewReader(body))
	if err != nil {
		return nil, "", &retryError{fmt.Errorf("leader %s at %q: %w", leader.ID, leader.QueueAddr, err)}
	}
	out.Header.Set("Content-Type", "application/octet-stream")
	out.Header.Set(api.HeaderForwardedBy, b.f.nodes.ID())
	// Never replayed by the transport on its own: a second copy would
	// apply the writes twice.
	out.GetBody = nil
	res, err := b.f.client.Do(out)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("leader %s at %s: %w", leader.ID, leader.QueueAddr, err)
		if !sent.Load() {
			return nil, "", &retryError{err}
		}
		return nil, "", b.unknown(len(batch), err)
	}
	defer res.Body.Close()
	switch {
	case res.StatusCode == http.StatusOK:
	case res.StatusCode == http.StatusServiceUnavailable:
		io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // keep the connection
		switch kind := api.Decode(res.Header.Get(api.HeaderErrorCode), res.StatusCode); kind {
		case api.ErrNotLeader, api.ErrNoLeader, api.ErrShuttingDown:
			return nil, "", &retryError{fmt.Errorf("%s answered %s", leader.ID, kind.Token)}
		}
		return nil, "", b.unknown(len(batch), fmt.Errorf("leader %s answered 503 %s", leader.ID, res.Header.Get(api.HeaderErrorCode)))
	case res.StatusCode >= 400 && res.StatusCode < 500:
		// Refused before anything was proposed: no such route (an older
		// leader), a body it cannot read, the node-to-node gate.
		io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10))
		return nil, "", fmt.Errorf("%w: leader %s answered %d %s to a batch", errUnbatched, leader.ID, res.StatusCode, res.Header.Get(api.HeaderErrorCode))
	default:
		return nil, "", b.unknown(len(batch), fmt.Errorf("leader %s answered %d to a batch", leader.ID, res.StatusCode))
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBatchResultBytes))
	if err == nil {
		var results []commandResult
		if results, err = decodeResults(data, len(batch)); err == nil {
			return results, res.Header.Get(api.HeaderServedBy), nil
		}
	}
	return nil, "", b.unknown(len(batch), fmt.Errorf("leader %s: reading the batch's results: %w", leader.ID, err))
}

// unknown is the answer to the commands of a batch that may have been
// applied.
func (b *batcher) unknown(n int, err error) error {
	b.log.Debug("batch outcome unknown", "commands", n, "err", err)
	return fmt.Errorf("forwarded in a batch: %w: %w", api.ErrOutcomeUnknown, err)
}

// drain stops taking commands and waits until every queued command was
// answered, or ctx ends. Requests that arrive after it are relayed one by
// one.
func (b *batcher) drain(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return wait.Group(ctx, &b.active)
}

// DrainForwarding waits until the writes a queue port's handler
// (NewQueueHandler) batched for the leader were all answered, or ctx
// ends; later ones are relayed one by one. A node calls it once its HTTP
// servers have drained. Any other handler: nil at once.
func DrainForwarding(ctx context.Context, h http.Handler) error {
	e, ok := h.(*engine)
	if !ok || e.fwd == nil || e.fwd.batch == nil {
		return nil
	}
	return e.fwd.batch.drain(ctx)
}
