package reader

import (
	"context"
	"sync"
	"time"

	"github.com/quorumq/quorumq/internal/wait"
)

// failureBackoff is pysimplehttp's per-task BackoffTimer, shared by the
// workers: each task (and preprocessTimer) has an interval that grows by
// step on a failure and shrinks by step on a success, within [0, max].
// After every attempt the reader fetches nothing new for the largest
// interval. A negative step turns it off.
type failureBackoff struct {
	step, max time.Duration

	mu        sync.Mutex
	intervals map[string]time.Duration
	until     time.Time
}

func newFailureBackoff(step, max time.Duration) *failureBackoff {
	return &failureBackoff{step: step, max: max, intervals: map[string]time.Duration{}}
}

func (b *failureBackoff) enabled() bool { return b.step > 0 }

// record notes the outcome of timer name in one attempt.
func (b *failureBackoff) record(name string, ok bool) {
	if !b.enabled() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.intervals[name]
	if ok {
		d = max(d-b.step, 0)
	} else {
		d = min(d+b.step, b.max)
	}
	if d == 0 {
		delete(b.intervals, name)
	} else {
		b.intervals[name] = d
	}
}

// attemptDone starts the pause after an attempt: no fetch before now plus
// the largest interval. It returns that interval.
func (b *failureBackoff) attemptDone(now time.Time) time.Duration {
	if !b.enabled() {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var d time.Duration
	for _, v := range b.intervals {
		d = max(d, v)
	}
	if d > 0 && now.Add(d).After(b.until) {
		b.until = now.Add(d)
	}
	return d
}

// wait blocks until the pause is over or ctx ends.
func (b *failureBackoff) wait(ctx context.Context) {
	if !b.enabled() {
		return
	}
	for {
		b.mu.Lock()
		d := time.Until(b.until)
		b.mu.Unlock()
		if d <= 0 {
			return
		}
		if wait.Sleep(ctx, d) != nil {
			return
		}
	}
}

// current returns the largest interval (for the progress line).
func (b *failureBackoff) current() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	var d time.Duration
	for _, v := range b.intervals {
		d = max(d, v)
	}
	return d
}
