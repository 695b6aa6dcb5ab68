package reader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

const (
	// dueSlack: a retry_on at most this far ahead counts as due, so that a
	// small clock difference between readers does not cost a round trip.
	dueSlack = 250 * time.Millisecond
	// maxAckBatch bounds the ids of one /ack.
	maxAckBatch = 256
	// fetchDrain is how long a fetch in flight at shutdown may still take.
	fetchDrain = 500 * time.Millisecond
	// abandonAfter is how long Run waits, after cancelling the tasks'
	// context at the end of the grace period, before it gives back the
	// messages of tasks that still run.
	abandonAfter = 2 * time.Second
)

// fetchBackoff spaces out fetches that fail; settleBackoff the retries of
// an ack, nack or touch (each retry goes to the next node).
var (
	fetchBackoff  = client.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	settleBackoff = client.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
)

// errNoTriesLeft is GiveUp's m.Err for a message that arrived with its
// tries used up (written by a reader with a larger MaxTries, or by hand).
var errNoTriesLeft = errors.New("no tries left")

// Reader reads a queue and runs its tasks on every message. See the package
// documentation for the semantics.
type Reader struct {
	cfg       Config
	log       *slog.Logger
	tasks     []string // sorted task names
	pool      *pool
	counters  *counters
	collector *collector
	backoff   *failureBackoff
	now       func() time.Time
	running   atomic.Bool

	// Set up by Run.
	slots   chan struct{}
	work    chan *delivery
	acks    chan *delivery
	hardCtx context.Context // ends when the shutdown grace period is over

	mu   sync.Mutex
	held map[*delivery]struct{}
}

// New checks cfg and returns a reader; nothing is sent before Run.
func New(cfg Config) (*Reader, error) {
	cfg, err := cfg.validated()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "reader", "queue", queueLabel(cfg.Queue))
	p, err := newPool(cfg.Addrs, cfg.Balance, !cfg.DisableDiscovery, nodeOptions(cfg), log)
	if err != nil {
		return nil, fmt.Errorf("reader: %w", err)
	}
	tasks := slices.Sorted(maps.Keys(cfg.Tasks))
	c := newCounters(tasks)
	return &Reader{
		cfg: cfg, log: log, tasks: tasks, pool: p, counters: c,
		collector: newCollector(c, cfg.Queue),
		backoff:   newFailureBackoff(cfg.BackoffStep, cfg.BackoffMax),
		now:       time.Now,
		held:      map[*delivery]struct{}{},
	}, nil
}

func queueLabel(q string) string {
	if q == "" {
		return "default"
	}
	return q
}

// Stats returns the reader's counters.
func (r *Reader) Stats() Stats { return r.counters.snapshot() }

// Collectors returns the reader's Prometheus collectors (counters named
// quorumq_reader_*_total and the gauge quorumq_reader_in_flight, labelled
// with the queue), for a prometheus.Registerer.
func (r *Reader) Collectors() []prometheus.Collector {
	return []prometheus.Collector{r.collector}
}

// Nodes returns the nodes the reader knows, configured and discovered.
func (r *Reader) Nodes() []NodeInfo { return r.pool.info() }

// delivery states.
const (
	stateQueued    int32 = iota // fetched, waiting for a worker
	stateRunning                // a worker runs it
	stateSettling               // its outcome is being sent
	stateAbandoned              // shutdown gave it back; its worker's result is dropped
)

// delivery is one leased message in the reader's hands.
type delivery struct {
	id  string
	raw client.Message
	m   *Message
	env envelope // as read: tries before this attempt

	state   atomic.Int32
	settled chan struct{} // closed once the worker (or the shutdown) is done with it

	kind      EventKind // what the ack is for
	mu        sync.Mutex
	succeeded []string // tasks that succeeded in this attempt
	leaseLost atomic.Bool
}

func (d *delivery) succeed(task string) {
	d.mu.Lock()
	d.succeeded = append(d.succeeded, task)
	d.mu.Unlock()
}

// remaining returns the envelope's tasks_left minus the tasks that
// succeeded in this attempt.
func (d *delivery) remaining() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var left []string
	for _, t := range d.env.tasksLeft {
		if !slices.Contains(d.succeeded, t) {
			left = append(left, t)
		}
	}
	return left
}

// Run reads until ctx ends, then shuts down gracefully: it stops fetching,
// lets running tasks finish (up to ShutdownGrace, then cancels their
// context), gives back (nack, delay 0) the messages it did not start or
// could not finish, waits for its acks and nacks, and returns nil. It
// returns an error only if it is already running.
func (r *Reader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("reader: Run is already running")
	}
	defer r.running.Store(false)
	bg := context.WithoutCancel(ctx)
	hardCtx, hardCancel := context.WithCancel(bg)
	defer hardCancel()
	auxCtx, auxCancel := context.WithCancel(bg)
	var aux sync.WaitGroup
	defer func() { auxCancel(); aux.Wait() }()

	c := r.cfg.Concurrency
	r.hardCtx = hardCtx
	r.slots = make(chan struct{}, c)
	for range c {
		r.slots <- struct{}{}
	}
	r.work = make(chan *delivery, c)
	r.acks = make(chan *delivery, 2*c+maxAckBatch)

	// Learn the members and the leader before the first fetch.
	first, cancel := context.WithTimeout(ctx, statusTimeout)
	r.pool.refresh(first)
	cancel()
	aux.Go(func() { r.pool.refreshLoop(auxCtx, r.cfg.RefreshInterval) })
	aux.Go(func() { r.progressLoop(auxCtx) })
	ackDone := make(chan struct{})
	go r.ackLoop(ackDone)

	var workers sync.WaitGroup
	for range c {
		workers.Go(func() {
			for d := range r.work {
				r.handle(ctx, d)
				r.slots <- struct{}{}
			}
		})
	}
	start := r.counters.snapshot()
	startAt := time.Now()
	r.log.Info("reader starting", "nodes", len(r.pool.info()), "leader", r.pool.leader(), "balance", r.cfg.Balance,
		"concurrency", c, "mget_items", r.cfg.MGetItems, "lease", r.cfg.Lease, "max_tries", r.cfg.MaxTries, "tasks", r.tasks)

	r.fetchLoop(ctx)

	// Shutdown.
	close(r.work)
	r.log.Info("reader stopping", "in_flight", r.counters.inFlight.Load())
	workersDone := make(chan struct{})
	go func() { workers.Wait(); close(workersDone) }()
	grace := time.NewTimer(r.cfg.ShutdownGrace)
	select {
	case <-workersDone:
		grace.Stop()
	case <-grace.C:
		r.log.Warn("shutdown grace period over: cancelling the running tasks", "grace", r.cfg.ShutdownGrace)
		hardCancel()
		select {
		case <-workersDone:
		case <-time.After(abandonAfter):
			r.abandon()
		}
	}
	r.waitSettled()
	close(r.acks)
	<-ackDone
	r.logProgress("reader stopped", r.counters.snapshot(), start, time.Since(startAt))
	return nil
}

// fetchLoop leases messages for idle workers until ctx ends.
func (r *Reader) fetchLoop(ctx context.Context) {
	fails := 0
	for ctx.Err() == nil {
		n := r.acquire(ctx, r.cfg.MGetItems)
		if n == 0 {
			return
		}
		r.backoff.wait(ctx)
		if ctx.Err() != nil {
			for range n {
				r.slots <- struct{}{}
			}
			return
		}
		nd := r.pool.pick()
		info := new(client.CallInfo)
		// At shutdown a fetch in flight gets fetchDrain to come back: a
		// fetch from a busy queue returns its leases to be given back
		// at once, rather than leaving them until they expire; a parked
		// long-poll is cut.
		fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(fetchDrain, fcancel) })
		msgs, err := nd.q.MGet(client.WithCallInfo(fctx, info), r.cfg.Queue, n, client.GetOptions{Lease: r.cfg.Lease, Wait: r.cfg.LongPoll})
		stop()
		fcancel()
		r.pool.observe(ctx, nd, info, err)
		for range n - len(msgs) {
			r.slots <- struct{}{}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if fails == 0 {
				r.log.Warn("fetch failed; retrying with backoff", "node", nd.url, "err", err)
			} else {
				r.log.Debug("fetch failed", "node", nd.url, "err", err, "failures", fails+1)
			}
			fetchBackoff.Sleep(ctx, fails)
			fails++
			continue
		}
		if fails > 0 {
			r.log.Info("fetching again", "node", nd.url, "after_failures", fails)
			fails = 0
		}
		now := r.now()
		for _, msg := range msgs {
			d := r.newDelivery(msg, now)
			r.mu.Lock()
			r.held[d] = struct{}{}
			r.mu.Unlock()
			r.counters.delivered.Add(1)
			r.counters.inFlight.Add(1)
			r.work <- d
		}
	}
}

// newDelivery parses a fetched message.
func (r *Reader) newDelivery(msg client.Message, now time.Time) *delivery {
	env, body, _ := parseMessage(msg.Data, now, r.tasks)
	m := &Message{ID: msg.ID, Body: body, Attempts: env.tries, Deliveries: msg.Attempts,
		Started: time.Unix(env.started, 0), TasksLeft: slices.Clone(env.tasksLeft), env: env}
	return &delivery{id: msg.ID, raw: msg, m: m, env: env, settled: make(chan struct{})}
}

// acquire waits for one idle worker and takes up to want of them; 0 when
// ctx ended first.
func (r *Reader) acquire(ctx context.Context, want int) int {
	select {
	case <-r.slots:
	case <-ctx.Done():
		return 0
	}
	got := 1
	for got < want {
		select {
		case <-r.slots:
			got++
		default:
			return got
		}
	}
	return got
}

// handle runs one delivery: not due, give up, or an attempt.
func (r *Reader) handle(runCtx context.Context, d *delivery) {
	if !d.state.CompareAndSwap(stateQueued, stateRunning) {
		return // given back by the shutdown
	}
	now := r.now()
	env, m := d.env, d.m
	if runCtx.Err() != nil {
		// Shutting down: not started.
		if d.state.CompareAndSwap(stateRunning, stateSettling) {
			r.release(d)
		}
		return
	}
	if env.tries >= r.cfg.MaxTries {
		if !d.state.CompareAndSwap(stateRunning, stateSettling) {
			return
		}
		m.Err = errNoTriesLeft
		r.giveUp(d)
		return
	}
	if ok, wait := env.due(now, dueSlack); !ok {
		if !d.state.CompareAndSwap(stateRunning, stateSettling) {
			return
		}
		r.nack(d, EventNotDue, client.NackOptions{Delay: wait, Reason: "not due"})
		return
	}

	tries := env.tries + 1
	m.Attempts = tries
	stopTouch := r.keepLease(d)
	ctx := r.hardCtx
	var (
		failed      []string
		errs        []error
		skipped     bool
		interrupted bool
	)
	if err := r.prepare(ctx, m, &skipped); err != nil {
		if ctx.Err() != nil {
			interrupted = true
		} else {
			r.counters.taskFailed(preprocessTimer)
			r.backoff.record(preprocessTimer, false)
			failed = slices.Clone(env.tasksLeft)
			errs = append(errs, err)
		}
	} else if !skipped {
		r.backoff.record(preprocessTimer, true)
		for _, name := range env.tasksLeft {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			err := r.runTask(ctx, name, m)
			if err == nil {
				d.succeed(name)
				r.backoff.record(name, true)
				continue
			}
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			r.counters.taskFailed(name)
			if !errors.Is(err, ErrRequeueWithoutBackoff) {
				r.backoff.record(name, false)
			}
			failed = append(failed, name)
			errs = append(errs, fmt.Errorf("task %s: %w", name, err))
		}
	}
	stopTouch()
	if pause := r.backoff.attemptDone(r.now()); pause > 0 && len(failed) > 0 {
		r.log.Debug("backing off", "for", pause)
	}
	if !d.state.CompareAndSwap(stateRunning, stateSettling) {
		return // the shutdown gave it back meanwhile
	}
	switch {
	case interrupted:
		r.release(d)
	case skipped:
		r.ack(d, EventSkipped)
	case len(failed) == 0:
		r.ack(d, EventDone)
	default:
		r.counters.failed.Add(1)
		m.TasksLeft, m.Err = failed, errors.Join(errs...)
		if tries >= r.cfg.MaxTries {
			r.giveUp(d)
			return
		}
		delay := min(r.cfg.RequeueDelay*time.Duration(tries), maxNackDelay)
		next := env.clone()
		next.tries, next.tasksLeft = tries, failed
		next.setRetryOn(r.now().Add(delay))
		r.log.Debug("requeue", "id", d.id, "tries", tries, "tasks_left", failed, "delay", delay, "err", m.Err)
		r.nack(d, EventRetry, client.NackOptions{Delay: delay, Reason: reason(m.Err), NewData: next.encode()})
	}
}

// maxNackDelay is the server's cap on delay=.
const maxNackDelay = 7 * 24 * time.Hour

// reason is the nack's reason= (the server keeps 1 KiB of it).
func reason(err error) string {
	s := err.Error()
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "")
	}
	return s
}

// prepare runs Preprocess and Validate. skipped is set when Validate turns
// the message down.
func (r *Reader) prepare(ctx context.Context, m *Message, skipped *bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in Preprocess or Validate", "id", m.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("preprocess: panic: %v", p)
		}
	}()
	if r.cfg.Preprocess != nil {
		if err := r.cfg.Preprocess(ctx, m); err != nil {
			r.log.Warn("preprocess failed", "id", m.ID, "err", err)
			return fmt.Errorf("preprocess: %w", err)
		}
	}
	if r.cfg.Validate != nil && !r.cfg.Validate(ctx, m) {
		*skipped = true
	}
	return nil
}

// runTask runs one task; a panic is a failure.
func (r *Reader) runTask(ctx context.Context, name string, m *Message) (err error) {
	fn := r.cfg.Tasks[name]
	if fn == nil {
		r.log.Warn("message names a task this reader does not have", "id", m.ID, "task", name)
		return fmt.Errorf("unknown task %q", name)
	}
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in task", "task", name, "id", m.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(ctx, m)
}

// keepLease touches d's lease every Lease/3 while it is processed, once
// processing has lasted that long. The returned function stops it.
func (r *Reader) keepLease(d *delivery) (stop func()) {
	every := r.cfg.Lease / 3
	done := make(chan struct{})
	var timer *time.Timer
	timer = time.AfterFunc(every, func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), every)
			res := r.settleCall(ctx, true, func(ctx context.Context, q *client.Queue) error {
				return q.Touch(ctx, d.id, r.cfg.Lease)
			})
			cancel()
			select {
			case <-done:
				return
			default:
			}
			if res.leaseLost {
				r.counters.leaseLost.Add(1)
				d.leaseLost.Store(true)
				r.log.Warn("lease lost while processing: the message may be processed twice", "id", d.id)
				return
			}
			if res.err != nil {
				r.log.Warn("touch failed", "id", d.id, "err", res.err)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() {
		timer.Stop()
		close(done)
	}
}

// giveUp calls GiveUp, moves the message to the dead-letter queue if there
// is one, and acks it.
func (r *Reader) giveUp(d *delivery) {
	m := d.m
	r.log.Warn("giving up on message after max tries", "id", d.id, "tries", m.Attempts,
		"tasks_left", m.TasksLeft, "err", m.Err, "envelope", string(m.Envelope()))
	if r.cfg.GiveUp != nil {
		func() {
			defer func() {
				if p := recover(); p != nil {
					r.log.Error("panic in GiveUp", "id", d.id, "panic", p, "stack", string(debug.Stack()))
				}
			}()
			r.cfg.GiveUp(r.hardCtx, m)
		}()
	}
	if r.cfg.DeadLetter != "" {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.SettleTimeout)
		key := "reader-gave-up-" + queueLabel(r.cfg.Queue) + "-" + d.id
		res := r.settleCall(ctx, false, func(ctx context.Context, q *client.Queue) error {
			_, err := q.Put(ctx, r.cfg.DeadLetter, m.Envelope(), client.PutOptions{ID: key})
			return err
		})
		cancel()
		if res.err != nil {
			// Keep it: give it back with its final envelope; the next
			// delivery gives it up again.
			r.log.Error("dead-letter put failed; giving the message back", "id", d.id, "dead_letter", r.cfg.DeadLetter, "err", res.err)
			r.nack(d, EventGiveUp, client.NackOptions{Delay: r.cfg.RequeueDelay, Reason: "dead-letter put failed", NewData: m.Envelope()})
			return
		}
	}
	r.ack(d, EventGiveUp)
}

// release gives d back at once at shutdown. An attempt cut short does not
// count: tries stay as they were; tasks that succeeded in it are removed
// from tasks_left.
func (r *Reader) release(d *delivery) {
	opts := client.NackOptions{Reason: "reader shutting down"}
	d.mu.Lock()
	progressed := len(d.succeeded) > 0
	d.mu.Unlock()
	if progressed {
		next := d.env.clone()
		next.tasksLeft = d.remaining()
		opts.NewData = next.encode()
	}
	r.nack(d, EventReleased, opts)
}

// ack hands d to the ack batcher.
func (r *Reader) ack(d *delivery, kind EventKind) {
	d.kind = kind
	r.acks <- d
	r.settledBy(d)
}

// nack gives d back and records the outcome.
func (r *Reader) nack(d *delivery, kind EventKind, opts client.NackOptions) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.SettleTimeout)
	defer cancel()
	res := r.settleCall(ctx, false, func(ctx context.Context, q *client.Queue) error {
		return q.Nack(ctx, d.id, opts)
	})
	r.finish(d, kind, res)
	r.settledBy(d)
}

// settledBy marks that d needs nothing more from its worker.
func (r *Reader) settledBy(d *delivery) {
	r.mu.Lock()
	delete(r.held, d)
	r.mu.Unlock()
	close(d.settled)
}

// finish counts the outcome of d and reports it.
func (r *Reader) finish(d *delivery, kind EventKind, res settleResult) {
	r.counters.inFlight.Add(-1)
	r.counters.count(kind)
	if res.leaseLost {
		r.counters.leaseLost.Add(1)
		r.log.Warn("lease lost before "+kind.String()+": the message may be processed again", "id", d.id)
	}
	if res.err != nil {
		r.counters.settleErrors.Add(1)
		r.log.Error(kind.String()+": settling failed; the message comes back when its lease ends", "id", d.id, "err", res.err)
	}
	if r.cfg.OnEvent != nil {
		r.cfg.OnEvent(Event{Kind: kind, Message: d.m, LeaseLost: res.leaseLost, Uncertain: res.uncertain, Err: res.err})
	}
}

// ackLoop sends the acks handed to it, batching those that wait, until
// r.acks is closed and drained.
func (r *Reader) ackLoop(done chan<- struct{}) {
	defer close(done)
	batch := make([]*delivery, 0, maxAckBatch)
	for d := range r.acks {
		batch = append(batch[:0], d)
	fill:
		for len(batch) < maxAckBatch {
			select {
			case d, ok := <-r.acks:
				if !ok {
					break fill
				}
				batch = append(batch, d)
			default:
				break fill
			}
		}
		r.ackBatch(batch, false)
	}
}

// ackBatch acks batch in one request. The server applies all ids or none:
// a 409 for a batch means one lease had ended, so the ids are then acked
// one by one.
func (r *Reader) ackBatch(batch []*delivery, priorUnknown bool) {
	ids := make([]string, len(batch))
	for i, d := range batch {
		ids[i] = d.id
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.SettleTimeout)
	res := r.settleCallFrom(ctx, false, priorUnknown, func(ctx context.Context, q *client.Queue) error {
		return q.Ack(ctx, ids...)
	})
	cancel()
	if len(batch) > 1 && (res.leaseLost || res.uncertain) {
		for _, d := range batch {
			r.ackBatch([]*delivery{d}, res.uncertain)
		}
		return
	}
	for _, d := range batch {
		r.finish(d, d.kind, res)
	}
}

// settleResult is the outcome of an ack, nack or touch.
type settleResult struct {
	// uncertain: a try had an unknown outcome and a later one answered
	// 409: the first most likely applied.
	uncertain bool
	// leaseLost: 409 without an earlier unknown outcome (for a touch:
	// any 409).
	leaseLost bool
	// err: failed for good.
	err error
}

// settleCall runs fn on the nodes the pool picks until it succeeds, fails
// for good, or ctx ends. A try that applied nothing (no node reached, 503)
// and a try with an unknown outcome are retried on the next node after a
// jittered backoff; a 409 after an unknown outcome means the unknown try
// applied, unless touch (a touch changes nothing a 409 could reveal).
// priorUnknown says an earlier call for the same ids had an unknown
// outcome.
func (r *Reader) settleCall(ctx context.Context, touch bool, fn func(context.Context, *client.Queue) error) settleResult {
	return r.settleCallFrom(ctx, touch, false, fn)
}

func (r *Reader) settleCallFrom(ctx context.Context, touch, priorUnknown bool, fn func(context.Context, *client.Queue) error) settleResult {
	unknown := priorUnknown
	for attempt := 0; ; attempt++ {
		nd := r.pool.pick()
		info := new(client.CallInfo)
		err := fn(client.WithCallInfo(ctx, info), nd.q)
		r.pool.observe(ctx, nd, info, err)
		switch {
		case err == nil:
			return settleResult{}
		case errors.Is(err, api.ErrNotInFlight):
			if unknown && !touch {
				return settleResult{uncertain: true}
			}
			return settleResult{leaseLost: true}
		case errors.Is(err, api.ErrOutcomeUnknown):
			unknown = true
		case errors.Is(err, api.ErrUnavailable):
		default:
			return settleResult{err: err}
		}
		if ctx.Err() != nil {
			return settleResult{err: err}
		}
		r.log.Debug("retrying on another node", "node", nd.url, "err", err, "attempt", attempt+1)
		if settleBackoff.Sleep(ctx, attempt) != nil {
			return settleResult{err: err}
		}
	}
}

// abandon gives back, at the end of the shutdown, the deliveries no worker
// finished: those still queued and those whose task ignores its cancelled
// context. A worker that returns later finds its delivery abandoned and
// drops its result.
func (r *Reader) abandon() {
	r.mu.Lock()
	var give []*delivery
	for d := range r.held {
		if d.state.CompareAndSwap(stateQueued, stateAbandoned) || d.state.CompareAndSwap(stateRunning, stateAbandoned) {
			give = append(give, d)
		}
	}
	r.mu.Unlock()
	if len(give) > 0 {
		r.log.Warn("giving back messages whose tasks did not stop", "count", len(give))
	}
	var wg sync.WaitGroup
	for _, d := range give {
		wg.Go(func() { r.release(d) })
	}
	wg.Wait()
}

// waitSettled waits until no delivery needs a worker any more.
func (r *Reader) waitSettled() {
	r.mu.Lock()
	pending := make([]*delivery, 0, len(r.held))
	for d := range r.held {
		pending = append(pending, d)
	}
	r.mu.Unlock()
	for _, d := range pending {
		<-d.settled
	}
}
