package load

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// countingWorker counts every Do, measured or not, in a shared counter.
type countingWorker struct{ done *atomic.Int64 }

func (w countingWorker) Do() (int, error) {
	w.done.Add(1)
	runtime.Gosched()
	return 1, nil
}

func (countingWorker) Close() {}

// hookRecord is what the measure hooks saw when they fired.
type hookRecord struct {
	starts, ends       int
	doneAtStart        int64
	doneAtEnd          int64
	startedAt, endedAt time.Time
}

func runWithHooks(t *testing.T, cfg RunConfig) (*Result, *hookRecord, *atomic.Int64) {
	t.Helper()
	var done atomic.Int64
	rec := &hookRecord{}
	cfg.OnMeasureStart = func() {
		rec.starts++
		rec.doneAtStart, rec.startedAt = done.Load(), time.Now()
	}
	cfg.OnMeasureEnd = func() {
		rec.ends++
		rec.doneAtEnd, rec.endedAt = done.Load(), time.Now()
	}
	res, err := Run(context.Background(), cfg, func(int) (Worker, error) { return countingWorker{&done}, nil })
	if err != nil {
		t.Fatal(err)
	}
	if rec.starts != 1 || rec.ends != 1 {
		t.Fatalf("OnMeasureStart fired %d times, OnMeasureEnd %d times, want once each", rec.starts, rec.ends)
	}
	return res, rec, &done
}

// TestRun_MeasureHooks_BracketTheMeasuredWindow: after a warmup, the
// hooks fire once each, the start after the warmup's operations and the
// end after the measured ones, and the operations between them are the
// ones the result counts (give or take the few a worker starts while the
// window opens or closes).
func TestRun_MeasureHooks_BracketTheMeasuredWindow(t *testing.T) {
	const workers = 2
	begin := time.Now()
	res, rec, done := runWithHooks(t, RunConfig{Concurrency: workers, Warmup: 50 * time.Millisecond, Duration: 100 * time.Millisecond})
	if rec.startedAt.Sub(begin) < 50*time.Millisecond {
		t.Fatalf("OnMeasureStart fired %v after the start, inside the 50ms warmup", rec.startedAt.Sub(begin))
	}
	if rec.doneAtStart == 0 {
		t.Fatalf("no warmup operation before OnMeasureStart")
	}
	between := rec.doneAtEnd - rec.doneAtStart
	// The hooks read a counter the workers bump without a lock, a few
	// operations either side of the run's own boundaries (more under
	// -race on a busy machine); a hook in the wrong place would be off by
	// the warmup's operations, about half of the count.
	tolerance := max(int64(4*workers), int64(res.Ops)/100)
	if d := between - int64(res.Ops); d < -tolerance || d > tolerance {
		t.Fatalf("%d operations between the hooks, the result counts %d", between, res.Ops)
	}
	// Within a scheduling delay or two of the measured window; a start
	// hook inside the warmup would add half of it.
	if window := rec.endedAt.Sub(rec.startedAt).Seconds(); window < res.Elapsed*0.8-0.01 || window > res.Elapsed*1.2+0.02 {
		t.Fatalf("hooks %.3fs apart, measured window %.3fs", window, res.Elapsed)
	}
	if done.Load() < rec.doneAtEnd {
		t.Fatalf("operation counter went back")
	}
}

// TestRun_MeasureHooks_WithoutWarmup_StartBeforeAnyOperation: a run
// measured from its first operation and bounded by a count samples before
// any operation and after every counted one.
func TestRun_MeasureHooks_WithoutWarmup_StartBeforeAnyOperation(t *testing.T) {
	res, rec, _ := runWithHooks(t, RunConfig{Concurrency: 2, Count: 500})
	if rec.doneAtStart != 0 {
		t.Fatalf("%d operations before OnMeasureStart, want 0", rec.doneAtStart)
	}
	if res.Ops != 500 || rec.doneAtEnd < int64(res.Ops) {
		t.Fatalf("result counts %d operations, %d done at OnMeasureEnd", res.Ops, rec.doneAtEnd)
	}
}
