//go:build !linux

package testkit

import "time"

// awaitStopped: without /proc there is nothing to watch; SIGSTOP is taken
// to act at once.
func awaitStopped(int, time.Duration) error { return nil }
