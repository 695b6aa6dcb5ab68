package testkit

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Poll pacing: the pause after a failed check starts at minPause and
// doubles up to maxPause, so a condition that holds soon is noticed soon,
// and one that takes seconds does not load the nodes with requests.
const (
	minPause = 10 * time.Millisecond
	maxPause = 100 * time.Millisecond
	// checkTimeout bounds one check: a node that stopped answering must
	// not hold the poll past its deadline.
	checkTimeout = 5 * time.Second
)

// permanentError stops Poll at once.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// Permanent marks an error that no amount of waiting cures (the process
// exited, say): Poll returns it at once.
func Permanent(err error) error { return permanentError{err} }

// Poll calls check until it returns nil, a Permanent error, timeout passes
// or ctx ends; the error then says what was awaited and what was still
// wrong. Each check gets a context bounded to 5 s.
func Poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	pause := minPause
	for {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %w", timeout, what, err)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}
