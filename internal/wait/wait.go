// Package wait holds the one cancellable pause every retry loop uses.
package wait

import (
	"context"
	"sync"
	"time"
)

// Sleep waits for d, or not at all if d <= 0, and returns nil; if ctx
// ends first it returns ctx.Err() at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Group waits until wg's count is zero and returns nil; if ctx ends first
// it returns ctx.Err() (the goroutine that waits on wg then ends with it).
func Group(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Every calls f every d (positive) until ctx ends, and returns then; the
// first call is d after the start.
func Every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
