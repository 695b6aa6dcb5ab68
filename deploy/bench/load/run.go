package load

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Worker performs one operation per Do call on its own connection. Run
// calls each Worker from one goroutine only.
type Worker interface {
	// Do performs one operation and returns how many messages it moved
	// (0 for an empty poll). An error counts as a failed operation.
	Do() (msgs int, err error)
	Close()
}

// RunConfig says how long and how hard Run drives its workers.
type RunConfig struct {
	// Label names the run in progress lines and results.
	Label string
	// Concurrency is the number of workers (at least 1), each with its own
	// connection and one operation outstanding at a time.
	Concurrency int
	// Duration bounds the measured phase; Count, when set, bounds it by the
	// number of operations instead (whichever comes first when both are
	// set). One of them must be positive.
	Duration time.Duration
	Count    int64
	// Warmup runs the workers this long before measuring.
	Warmup time.Duration
	// Rate, when > 0, is the total operations per second to offer (open
	// loop): each worker sends on a fixed schedule, and latency is
	// measured from the scheduled time, so a stall is not hidden by the
	// requests it delayed (coordinated omission).
	Rate float64
	// Progress, when set, gets a live status line every second ("\r"-
	// rewritten, for a terminal's stderr).
	Progress io.Writer
	// MsgsPerOp describes an operation for the progress line only.
	MsgsPerOp int
	// OnMeasureStart and OnMeasureEnd, when set, are called once each
	// from Run's own goroutine: just before the first measured operation
	// may start (after the warmup) and just as the measured window
	// closes, before the workers are told to stop. A caller samples what
	// the counters cannot see there (processes' CPU time); the hooks
	// should return quickly, as the workers keep running through them.
	OnMeasureStart func()
	OnMeasureEnd   func()
}

// Result is what one run measured.
type Result struct {
	Label       string  `json:"label"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"offered_rate,omitempty"`
	Ops         uint64  `json:"ops"`
	Msgs        uint64  `json:"msgs"`
	Errors      uint64  `json:"errors"`
	// Empty counts operations that succeeded but moved no message (an
	// empty /get).
	Empty      uint64         `json:"empty"`
	Elapsed    float64        `json:"elapsed_s"`
	OpsPerSec  float64        `json:"ops_per_s"`
	MsgsPerSec float64        `json:"msgs_per_s"`
	Latency    LatencySummary `json:"latency_us"`
	FirstError string         `json:"first_error,omitempty"`
	// Hist holds every operation's latency.
	Hist *Histogram `json:"-"`
	// Extra carries mode-specific figures (pubsub deliveries).
	Extra map[string]float64 `json:"extra,omitempty"`
}

// LatencySummary is a histogram's percentiles, in microseconds.
type LatencySummary struct {
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// Summarize returns h's percentiles in microseconds.
func Summarize(h *Histogram) LatencySummary {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	return LatencySummary{
		Mean: us(h.Mean()), P50: us(h.Quantile(0.5)), P90: us(h.Quantile(0.9)),
		P99: us(h.Quantile(0.99)), P999: us(h.Quantile(0.999)), Max: us(h.Max()),
	}
}

// slot is one worker's shared counters, padded to its own cache line.
type slot struct {
	ops, msgs, errs, empty atomic.Uint64
	_                      [32]byte
}

// Run creates cfg.Concurrency workers with newWorker (all before the clock
// starts), drives them as cfg says, and returns the merged result. ctx
// ends the run early.
func Run(ctx context.Context, cfg RunConfig, newWorker func(i int) (Worker, error)) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	workers := make([]Worker, cfg.Concurrency)
	for i := range workers {
		w, err := newWorker(i)
		if err != nil {
			for _, w := range workers[:i] {
				w.Close()
			}
			return nil, err
		}
		workers[i] = w
	}
	defer func() {
		for _, w := range workers {
			w.Close()
		}
	}()

	var (
		stop      atomic.Bool
		measuring atomic.Bool
		remaining atomic.Int64
		firstErr  atomic.Value // string
		slots     = make([]slot, cfg.Concurrency)
		hists     = make([]*Histogram, cfg.Concurrency)
		wg        sync.WaitGroup
	)
	remaining.Store(cfg.Count)
	startMeasuring := func() {
		if cfg.OnMeasureStart != nil {
			cfg.OnMeasureStart()
		}
		measuring.Store(true)
	}
	if cfg.Warmup <= 0 {
		// Measured from the first operation: sample before any starts.
		startMeasuring()
	}
	var interval time.Duration
	if cfg.Rate > 0 {
		interval = time.Duration(float64(cfg.Concurrency) / cfg.Rate * 1e9)
	}
	begin := time.Now()
	for i := range workers {
		hists[i] = new(Histogram)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			w, h, s := workers[i], hists[i], &slots[i]
			measured := measuring.Load()
			// Spread the workers' schedules over one interval.
			next := begin.Add(interval * time.Duration(i) / time.Duration(cfg.Concurrency))
			for !stop.Load() {
				if !measured && measuring.Load() {
					measured = true
					h.Reset()
				}
				if measured && cfg.Count > 0 && remaining.Add(-1) < 0 {
					return
				}
				start := time.Now()
				if interval > 0 {
					if d := next.Sub(start); d > 0 {
						time.Sleep(d)
					}
					start = next
					next = next.Add(interval)
				}
				n, err := w.Do()
				lat := time.Since(start)
				if !measured {
					continue
				}
				h.Record(lat)
				switch {
				case err != nil:
					s.errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					if stop.Load() {
						return
					}
				case n == 0:
					s.empty.Add(1)
				}
				s.ops.Add(1)
				s.msgs.Add(uint64(n))
			}
		}(i)
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var timeout <-chan time.Time
	if cfg.Warmup > 0 {
		select {
		case <-time.After(cfg.Warmup):
		case <-ctx.Done():
		case <-done:
		}
		// Counters of the warmup are dropped: take them as the baseline.
		startMeasuring()
	}
	// Workers count only measured operations, so the counters start at zero.
	base := counts{}
	mstart := time.Now()
	if cfg.Warmup <= 0 {
		mstart = begin
	}
	if cfg.Duration > 0 {
		timeout = time.After(cfg.Duration)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := base, mstart
loop:
	for {
		select {
		case <-done:
			break loop
		case <-ctx.Done():
			break loop
		case <-timeout:
			break loop
		case now := <-tick.C:
			if cfg.Progress != nil {
				cur := snapshot(slots)
				dt := now.Sub(lastAt).Seconds()
				fmt.Fprintf(cfg.Progress, "\r%-24s %5.0fs  %9.0f ops/s  %10.0f msgs/s  errors %d  ",
					cfg.Label, now.Sub(mstart).Seconds(),
					float64(cur.ops-last.ops)/dt, float64(cur.msgs-last.msgs)/dt, cur.errs-base.errs)
				last, lastAt = cur, now
			}
		}
	}
	if cfg.OnMeasureEnd != nil {
		cfg.OnMeasureEnd()
	}
	elapsed := time.Since(mstart)
	stop.Store(true)
	end := snapshot(slots)
	// Workers finish their operation in flight; wait for them so that
	// the histograms are complete, but not forever.
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	if cfg.Progress != nil {
		fmt.Fprint(cfg.Progress, "\r\033[K")
	}
	total := new(Histogram)
	for _, h := range hists {
		total.Merge(h)
	}
	r := &Result{
		Label:       cfg.Label,
		Concurrency: cfg.Concurrency,
		Rate:        cfg.Rate,
		Ops:         end.ops - base.ops,
		Msgs:        end.msgs - base.msgs,
		Errors:      end.errs - base.errs,
		Empty:       end.empty - base.empty,
		Elapsed:     elapsed.Seconds(),
		Latency:     Summarize(total),
		Hist:        total,
	}
	if s := elapsed.Seconds(); s > 0 {
		r.OpsPerSec = float64(r.Ops) / s
		r.MsgsPerSec = float64(r.Msgs) / s
	}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	return r, nil
}

type counts struct{ ops, msgs, errs, empty uint64 }

func snapshot(slots []slot) counts {
	var c counts
	for i := range slots {
		c.ops += slots[i].ops.Load()
		c.msgs += slots[i].msgs.Load()
		c.errs += slots[i].errs.Load()
		c.empty += slots[i].empty.Load()
	}
	return c
}
