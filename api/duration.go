package api

import (
	"fmt"
	"strings"
	"time"
)

// Durations travel as Go duration text (DUR: 500ms, 30s, 2m).

// NoLease asks a get to pop even on a queue with a default lease. On the
// wire it is lease=0s; an absent lease= means the queue's default lease
// (0 in Go), which pops when the queue has none.
const NoLease time.Duration = -1

// ParseDuration parses a DUR parameter. Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 500ms, 30s or 2m")
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative")
	}
	return d, nil
}

// FormatDuration writes d as a DUR without trailing zero units ("12h",
// "5m", "30s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// LeaseParam is the lease= value that asks for lease: ok is false for 0
// (send no lease=: the queue's default), "0s" for NoLease, else the
// duration.
func LeaseParam(lease time.Duration) (v string, ok bool) {
	switch {
	case lease == NoLease:
		return "0s", true
	case lease > 0:
		return FormatDuration(lease), true
	}
	return "", false
}

// LeaseOf turns a parsed lease= into a lease: absent is 0 (the queue's
// default), zero is NoLease (pop).
func LeaseOf(d time.Duration, present bool) time.Duration {
	switch {
	case !present:
		return 0
	case d == 0:
		return NoLease
	}
	return d
}
