// Package testwait is how quorumq's tests wait: by polling a condition
// until a deadline, never by sleeping a fixed time.
package testwait

import (
	"testing"
	"time"
)

// maxPause caps the pause between polls: short enough that a test notices
// a condition within a few tens of milliseconds, long enough that polling
// an HTTP endpoint of a node does not load the machine.
const maxPause = 20 * time.Millisecond

// For polls cond until it holds, pausing 1 ms after the first failed
// poll and twice as long after each next one, up to 20 ms. When timeout
// passes first, the test fails, naming what it waited for.
func For(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPause)
	}
}
