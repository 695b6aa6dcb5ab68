package analytics

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/online"
	"github.com/quorumq/quorumq/reader"
)

// Defaults of ReaderConfig.
const (
	DefaultBatch         = 100
	DefaultConcurrency   = 100
	DefaultFlush         = 100 * time.Millisecond
	DefaultEmptyFor      = 2 * time.Second
	DefaultMaxTries      = 20
	DefaultRequeueDelay  = 5 * time.Second
	DefaultDedupWindow   = time.Hour
	DefaultMergeAttempts = 3
)

// ReaderConfig is what every analyze reader needs. Start from
// DefaultReaderConfig; the readers only validate.
type ReaderConfig struct {
	// Addrs are queue-port base URLs of one or more nodes.
	Addrs []string
	// Queue is the queue to read ("" is default).
	Queue string
	// Redis is the client of the Redis that holds the aggregate.
	Redis redis.Cmdable

	// Batch is the most messages merged at once. A batch is merged when it
	// is full, when every worker waits on it, or Flush after its first
	// message.
	Batch int
	// Concurrency is the number of messages in flight (the reader's
	// workers, each waiting on its batch).
	Concurrency int
	// Flush bounds how long a message waits for its batch to fill.
	Flush time.Duration
	// Lease is the lease of each message.
	Lease time.Duration
	// MaxTries and RequeueDelay: see reader.Config. The defaults let a
	// Redis outage of about a quarter of an hour lose nothing.
	MaxTries     int
	RequeueDelay time.Duration
	// DeadLetter, when set, receives messages given up on.
	DeadLetter string
	// DedupWindow is how long merged message ids are remembered (see the
	// package documentation), 0 or at least 1s. 0: no dedup,
	// at-least-once.
	DedupWindow time.Duration
	// Balance and DisableDiscovery: see reader.Config.
	Balance          reader.Balance
	DisableDiscovery bool
	// Token and TLS are the credentials of a secured cluster: see
	// reader.Config.
	Token string
	TLS   *tls.Config

	// ExitWhenEmpty ends Run once the queue has had no ready, leased or
	// deferred message, and this reader nothing pending, for EmptyFor.
	ExitWhenEmpty bool
	EmptyFor      time.Duration

	// Registerer, when set, receives the run's collectors (the reader's
	// quorumq_reader_* and the merges' quorumq_analyze_*) while it runs.
	Registerer prometheus.Registerer

	// Logger receives the logs.
	Logger *slog.Logger
	// ProgressInterval is the reader's progress log interval; <= 0: never.
	ProgressInterval time.Duration
}

// DefaultReaderConfig returns the defaults: batches of DefaultBatch,
// DefaultConcurrency messages in flight, flushed after DefaultFlush,
// reader.DefaultLease, DefaultMaxTries attempts DefaultRequeueDelay apart,
// a DefaultDedupWindow, the leader, DefaultEmptyFor, slog.Default(), a
// progress line every 10s. Addrs and Redis are left to the caller.
func DefaultReaderConfig() ReaderConfig {
	return ReaderConfig{
		Batch:            DefaultBatch,
		Concurrency:      DefaultConcurrency,
		Flush:            DefaultFlush,
		Lease:            reader.DefaultLease,
		MaxTries:         DefaultMaxTries,
		RequeueDelay:     DefaultRequeueDelay,
		DedupWindow:      DefaultDedupWindow,
		Balance:          reader.BalanceLeader,
		EmptyFor:         DefaultEmptyFor,
		Logger:           slog.Default(),
		ProgressInterval: 10 * time.Second,
	}
}

// Validate reports the first problem of c, wrapping ErrInvalid. The Redis
// client is checked when a reader starts.
func (c ReaderConfig) Validate() error {
	var err error
	switch {
	case len(c.Addrs) == 0:
		err = errors.New("no queue address")
	case c.Batch < 1:
		err = fmt.Errorf("--batch=%d: want at least 1", c.Batch)
	case c.Concurrency < 1:
		err = fmt.Errorf("--concurrency=%d: want at least 1", c.Concurrency)
	case c.Flush <= 0:
		err = fmt.Errorf("--flush-interval=%v: must be positive", c.Flush)
	case c.Lease <= 0:
		err = fmt.Errorf("--lease=%v: must be positive", c.Lease)
	case c.MaxTries < 1:
		err = fmt.Errorf("--max-tries=%d: want at least 1", c.MaxTries)
	case c.RequeueDelay <= 0:
		err = fmt.Errorf("--requeue-delay=%v: must be positive", c.RequeueDelay)
	case c.EmptyFor <= 0:
		err = fmt.Errorf("--empty-for=%v: must be positive", c.EmptyFor)
	case c.DedupWindow < 0 || (c.DedupWindow > 0 && c.DedupWindow < time.Second):
		err = fmt.Errorf("--dedup-window=%v: want 0 (off) or at least 1s", c.DedupWindow)
	case c.Balance != reader.BalanceLeader && c.Balance != reader.BalanceSpread:
		err = fmt.Errorf("unknown %v", c.Balance)
	case c.Logger == nil:
		err = errors.New("no logger")
	}
	if err != nil {
		return invalid(fmt.Errorf("analytics: %w", err))
	}
	return nil
}

// ReaderStats counts what a Run did.
type ReaderStats struct {
	// Merged counts messages merged into the aggregate.
	Merged int64 `json:"merged"`
	// Duplicates counts messages skipped because their id was merged
	// before (redeliveries).
	Duplicates int64 `json:"duplicates"`
	// Invalid counts messages that did not parse (acked, not counted).
	Invalid int64 `json:"invalid"`
	// Skipped counts messages that are not data by design, such as the
	// 1.usa.gov heartbeats (acked, not counted).
	Skipped int64 `json:"skipped"`
	// Batches counts merges; MergeErrors failed merges (after retries).
	Batches     int64 `json:"batches"`
	MergeErrors int64 `json:"merge_errors"`
	// Elapsed is the whole run; Busy the time from the first merge to the
	// end of the last.
	Elapsed time.Duration `json:"elapsed_ns"`
	Busy    time.Duration `json:"busy_ns"`
	// Reader holds the reader's own counters.
	Reader reader.Stats `json:"reader"`
}

// Rate is merged messages per second of Busy time.
func (s ReaderStats) Rate() float64 {
	if s.Busy <= 0 {
		return 0
	}
	return float64(s.Merged) / s.Busy.Seconds()
}

// String names each rate by what it divides: merged messages per second
// of the whole run, and per second of Busy time (the reader's own speed,
// without the waits for messages).
func (s ReaderStats) String() string {
	perElapsed := 0.0
	if s.Elapsed > 0 {
		perElapsed = float64(s.Merged) / s.Elapsed.Seconds()
	}
	return fmt.Sprintf("merged=%d duplicates=%d invalid=%d skipped=%d batches=%d merge_errors=%d given_up=%d elapsed=%s busy=%s merged_per_s=%.0f merged_per_busy_s=%.0f",
		s.Merged, s.Duplicates, s.Invalid, s.Skipped, s.Batches, s.MergeErrors, s.Reader.GivenUp,
		s.Elapsed.Round(time.Millisecond), s.Busy.Round(time.Millisecond), perElapsed, s.Rate())
}

// aggregator is what differs between the analyses.
type aggregator struct {
	task string
	// parse reads a message body; an error makes the message invalid,
	// except errSkip, which skips it quietly.
	parse func(body []byte) (any, error)
	// merge merges the items of one batch (ids are "<queue>/<id>").
	merge func(ctx context.Context, ids []string, items []any) (BatchResult, error)
	// init runs once before reading (e.g. to store a layout).
	init func(ctx context.Context) error
}

// MomentsOptions configures RunMoments.
type MomentsOptions struct {
	// Key is the moments hash.
	Key string
	// Naive merges with the tutorial's racy read-modify-write
	// (NaiveMerge) instead of the Lua script, to watch several
	// readers lose updates. Never dedups.
	Naive bool
}

// RunMoments reads numbers (one per message, as text) and merges their
// moments into the hash opts.Key.
func RunMoments(ctx context.Context, cfg ReaderConfig, opts MomentsOptions) (ReaderStats, error) {
	if opts.Key == "" {
		return ReaderStats{}, errors.New("analytics: no moments key")
	}
	m := NewMoments(cfg.Redis, opts.Key)
	m.DedupWindow = cfg.DedupWindow
	return run(ctx, cfg, aggregator{
		task:  "moments",
		parse: parseNumber,
		merge: func(ctx context.Context, ids []string, items []any) (BatchResult, error) {
			xs := make([]float64, len(items))
			for i, it := range items {
				xs[i] = it.(float64)
			}
			if opts.Naive {
				var acc online.Moments
				if err := acc.AddAll(xs...); err != nil {
					return BatchResult{}, err
				}
				err := NaiveMerge(ctx, cfg.Redis, opts.Key, acc.Raw(), nil)
				return BatchResult{Applied: len(xs)}, err
			}
			if m.DedupWindow == 0 {
				ids = nil
			}
			_, r, err := m.MergeBatch(ctx, ids, xs)
			return r, err
		},
	})
}

// parseNumber reads a finite float64 from the text of a message.
func parseNumber(body []byte) (any, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(string(body)), 64)
	if err != nil {
		return nil, fmt.Errorf("not a number: %q", truncate(body))
	}
	if x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308 {
		return nil, fmt.Errorf("not a finite number: %q", truncate(body))
	}
	return x, nil
}

// RunHistogram reads numbers and counts them in h's bins (integers
// exactly for an integer layout; non-integers are then invalid).
func RunHistogram(ctx context.Context, cfg ReaderConfig, h *Histogram) (ReaderStats, error) {
	h.DedupWindow = cfg.DedupWindow
	return run(ctx, cfg, aggregator{
		task: "histogram",
		parse: func(body []byte) (any, error) {
			f, err := h.ParseField(body)
			if err != nil {
				return nil, fmt.Errorf("%v (message %q)", err, truncate(body))
			}
			return f, nil
		},
		merge: func(ctx context.Context, ids []string, items []any) (BatchResult, error) {
			fields := make([]string, len(items))
			for i, it := range items {
				fields[i] = it.(string)
			}
			if h.DedupWindow == 0 {
				err := h.AddFields(ctx, fields)
				return BatchResult{Applied: len(fields)}, err
			}
			return h.AddBatch(ctx, ids, fields)
		},
		init: h.Init,
	})
}

// RunGraph reads 1.usa.gov click records and adds their edges to g.
// Heartbeats and records without a url are invalid (skipped).
func RunGraph(ctx context.Context, cfg ReaderConfig, g *Graph) (ReaderStats, error) {
	g.DedupWindow = cfg.DedupWindow
	return run(ctx, cfg, aggregator{
		task: "graph",
		parse: func(body []byte) (any, error) {
			e, err := ParseClick(body)
			if errors.Is(err, ErrNotClick) {
				return nil, errSkip
			}
			if err != nil {
				return nil, err
			}
			return e, nil
		},
		merge: func(ctx context.Context, ids []string, items []any) (BatchResult, error) {
			edges := make([]Edge, len(items))
			for i, it := range items {
				edges[i] = it.(Edge)
			}
			if g.DedupWindow == 0 {
				err := g.Add(ctx, edges)
				return BatchResult{Applied: len(edges)}, err
			}
			return g.AddBatch(ctx, ids, edges)
		},
	})
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}

// errSkip marks a message that is not data by design (a heartbeat).
var errSkip = errors.New("analytics: not data")

// parsed is what Preprocess leaves in Message.Data.
type parsed struct {
	item any
	err  error
}

// runner is one Run.
type runner struct {
	cfg   ReaderConfig
	agg   aggregator
	log   *slog.Logger
	b     *batcher
	stats struct {
		merged, dupes, invalid, skipped, batches, mergeErrors atomic.Int64
	}
	mu         sync.Mutex
	firstMerge time.Time
	lastMerge  time.Time
	pending    atomic.Int64 // tasks waiting on a batch
}

func run(ctx context.Context, cfg ReaderConfig, agg aggregator) (ReaderStats, error) {
	if err := cfg.Validate(); err != nil {
		return ReaderStats{}, err
	}
	if cfg.Redis == nil {
		return ReaderStats{}, errors.New("analytics: no Redis client")
	}
	start := time.Now()
	r := &runner{cfg: cfg, agg: agg, log: cfg.Logger.With("component", "analyze", "analysis", agg.task)}
	if agg.init != nil {
		ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := agg.init(ictx)
		cancel()
		if err != nil {
			return ReaderStats{}, err
		}
	}
	r.b = newBatcher(min(cfg.Batch, cfg.Concurrency), cfg.Flush, r.flush)
	defer r.b.stop()

	rc := reader.DefaultConfig()
	rc.Addrs, rc.Queue, rc.Tasks = cfg.Addrs, cfg.Queue, map[string]reader.Task{agg.task: r.task}
	rc.MaxTries, rc.RequeueDelay, rc.MGetItems, rc.Lease, rc.Concurrency = cfg.MaxTries, cfg.RequeueDelay, cfg.Concurrency, cfg.Lease, cfg.Concurrency
	rc.Preprocess, rc.Validate, rc.DeadLetter = r.preprocess, r.validate, cfg.DeadLetter
	rc.Balance, rc.DisableDiscovery, rc.Logger, rc.ProgressInterval = cfg.Balance, cfg.DisableDiscovery, cfg.Logger, cfg.ProgressInterval
	rc.Token, rc.TLS = cfg.Token, cfg.TLS
	// A failed merge (Redis down) must not slow fetching for minutes.
	rc.BackoffStep = -1
	rd, err := reader.New(rc)
	if err != nil {
		return ReaderStats{}, fmt.Errorf("analytics: %w", err)
	}
	unregister, err := registerRun(cfg.Registerer, r, rd)
	if err != nil {
		return ReaderStats{}, fmt.Errorf("analytics: metrics: %w", err)
	}
	defer unregister()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var emptyErr error
	var wg sync.WaitGroup
	if cfg.ExitWhenEmpty {
		wg.Go(func() { emptyErr = r.watchEmpty(runCtx, rd, cancel) })
	}
	err = rd.Run(runCtx)
	cancel()
	wg.Wait()
	st := r.snapshot(start)
	st.Reader = rd.Stats()
	r.log.Info("analyze done", "stats", st.String())
	if err != nil {
		return st, fmt.Errorf("analytics: %w", err)
	}
	return st, emptyErr
}

func (r *runner) snapshot(start time.Time) ReaderStats {
	r.mu.Lock()
	busy := r.lastMerge.Sub(r.firstMerge)
	r.mu.Unlock()
	return ReaderStats{Merged: r.stats.merged.Load(), Duplicates: r.stats.dupes.Load(), Invalid: r.stats.invalid.Load(), Skipped: r.stats.skipped.Load(),
		Batches: r.stats.batches.Load(), MergeErrors: r.stats.mergeErrors.Load(), Elapsed: time.Since(start), Busy: busy}
}

func (r *runner) preprocess(_ context.Context, m *reader.Message) error {
	item, err := r.agg.parse(m.Body)
	m.Data = parsed{item: item, err: err}
	return nil
}

func (r *runner) validate(_ context.Context, m *reader.Message) bool {
	p := m.Data.(parsed)
	if errors.Is(p.err, errSkip) {
		r.stats.skipped.Add(1)
		return false
	}
	if p.err != nil {
		if n := r.stats.invalid.Add(1); n <= 5 || n%1000 == 0 {
			r.log.Warn("skipping a message that does not parse", "id", m.ID, "err", p.err, "invalid_so_far", n)
		}
		return false
	}
	return true
}

func (r *runner) task(ctx context.Context, m *reader.Message) error {
	r.pending.Add(1)
	defer r.pending.Add(-1)
	return r.b.submit(ctx, queueName(r.cfg.Queue)+"/"+m.ID, m.Data.(parsed).item)
}

func queueName(q string) string {
	if q == "" {
		return "default"
	}
	return q
}

// flush merges one batch, retrying a failed merge a few times.
func (r *runner) flush(items []*pending) error {
	ids := make([]string, len(items))
	vals := make([]any, len(items))
	for i, p := range items {
		ids[i], vals[i] = p.id, p.val
	}
	var err error
	for attempt := range DefaultMergeAttempts {
		if attempt > 0 {
			time.Sleep(time.Duration(100*attempt*attempt) * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var res BatchResult
		res, err = r.agg.merge(ctx, ids, vals)
		cancel()
		if err == nil {
			now := time.Now()
			r.mu.Lock()
			if r.firstMerge.IsZero() {
				r.firstMerge = now
			}
			r.lastMerge = now
			r.mu.Unlock()
			r.stats.batches.Add(1)
			r.stats.merged.Add(int64(res.Applied))
			r.stats.dupes.Add(int64(res.Duplicates))
			if res.Duplicates > 0 {
				r.log.Info("skipped redelivered messages that were already merged", "count", res.Duplicates)
			}
			return nil
		}
		r.log.Warn("merge failed", "attempt", attempt+1, "items", len(items), "err", err)
	}
	r.stats.mergeErrors.Add(1)
	return err
}

// watchEmpty cancels the run once the queue and this reader have been
// idle for EmptyFor.
func (r *runner) watchEmpty(ctx context.Context, rd *reader.Reader, cancel context.CancelFunc) error {
	opts := client.DefaultOptions()
	opts.Token, opts.TLS = r.cfg.Token, r.cfg.TLS
	q, err := client.NewQueue(r.cfg.Addrs, &opts)
	if err != nil {
		return err
	}
	var since time.Time
	tick := time.NewTicker(min(250*time.Millisecond, r.cfg.EmptyFor/4))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := q.Stats(sctx, r.cfg.Queue)
		scancel()
		idle := err == nil && st.Depth == 0 && st.InFlight == 0 && st.Deferred == 0 &&
			r.pending.Load() == 0 && rd.Stats().InFlight == 0
		if !idle {
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
			continue
		}
		if time.Since(since) >= r.cfg.EmptyFor {
			r.log.Info("queue empty: exiting", "queue", queueName(r.cfg.Queue), "empty_for", r.cfg.EmptyFor)
			cancel()
			return nil
		}
	}
}
