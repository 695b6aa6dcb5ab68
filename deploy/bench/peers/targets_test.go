package main

import (
	"strings"
	"testing"

	"github.com/quorumq/quorumq/deploy/bench/load"
)

// put is a result of msgsPerSec acknowledged messages per second with a
// p50 of p50us.
func put(msgsPerSec, p50us float64) *load.Result {
	return &load.Result{Msgs: uint64(msgsPerSec * 10), MsgsPerSec: msgsPerSec, Latency: load.LatencySummary{P50: p50us}}
}

// leaderCPU is a put window in which the leader spent usPerMsg per message.
func leaderCPU(usPerMsg float64) *SystemCPU {
	return &SystemCPU{Put: &CPUUsage{Msgs: 1000, WindowUs: 1e6, SystemUs: 3 * usPerMsg * 1000, LeaderUs: usPerMsg * 1000, FollowersUs: 2 * usPerMsg * 1000}}
}

// runReport is a report of quorumq 1 node, quorumq 3 nodes and JetStream
// R3 with the given figures; a nil result is a workload not measured.
func runReport(q1Put, q3Put, q3Follower, q3Put1, jsPut *load.Result, q3CPU *SystemCPU) *report {
	return &report{Systems: []SystemResult{
		{Key: "quorumq1", Put: q1Put},
		{Key: "quorumq3", Put: q3Put, PutFollower: q3Follower, Put1: q3Put1, CPU: q3CPU},
		{Key: "nats-r3", Put: jsPut},
		{Key: "nats-r3-always", Put: put(1e6, 1)}, // not a target's peer
	}}
}

// TestCheckTargets_AnswersEachTargetFromTheResults: every target is yes,
// no or – from the results alone, bounds are inclusive, and the leader's
// CPU has to fall strictly below the baseline.
func TestCheckTargets_AnswersEachTargetFromTheResults(t *testing.T) {
	tests := []struct {
		name     string
		r        *report
		baseline float64
		exp      []string // Met of each target, in checkTargets' order
	}{
		{"nothing run", &report{}, 50, []string{"–", "–", "–", "–", "–"}},
		{"every target met", runReport(put(10000, 2000), put(8000, 3000), put(7000, 5000), put(1500, 800), put(7000, 3000), leaderCPU(40)), 50,
			[]string{"yes", "yes", "yes", "yes", "yes"}},
		{"every target missed", runReport(put(10000, 2000), put(5000, 3000), put(3000, 5000), put(600, 1500), put(7000, 3000), leaderCPU(60)), 50,
			[]string{"no", "no", "no", "no", "no"}},
		{"exactly on each bound", runReport(put(10000, 2000), put(7000, 3000), put(5600, 5000), put(1000, 1000), put(7000, 3000), leaderCPU(50)), 50,
			[]string{"yes", "yes", "yes", "yes", "no"}},
		{"old report: no 1-client run, no CPU", runReport(put(10000, 2000), put(8000, 3000), put(7000, 5000), nil, put(7000, 3000), nil), 50,
			[]string{"yes", "yes", "–", "yes", "–"}},
		{"no baseline", runReport(put(10000, 2000), put(8000, 3000), put(7000, 5000), put(1500, 800), put(7000, 3000), leaderCPU(40)), 0,
			[]string{"yes", "yes", "yes", "yes", "–"}},
		{"no peer and no single node", runReport(nil, put(8000, 3000), nil, put(1500, 800), nil, leaderCPU(40)), 50,
			[]string{"–", "–", "yes", "–", "yes"}},
		{"a workload that acknowledged nothing", runReport(put(10000, 2000), &load.Result{Errors: 5}, put(7000, 5000), put(1500, 800), put(7000, 3000), leaderCPU(40)), 50,
			[]string{"–", "–", "yes", "–", "yes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkTargets(tt.r, tt.baseline)
			if len(got) != len(tt.exp) {
				t.Fatalf("exp %d targets, got %d: %+v", len(tt.exp), len(got), got)
			}
			for i, c := range got {
				if c.Met != tt.exp[i] {
					t.Errorf("%q: exp %q, got %q (%s)", c.Target, tt.exp[i], c.Met, c.Measured)
				}
				if c.Met == targetUnknown && c.Measured != targetUnknown && !strings.Contains(c.Target, "leader CPU") {
					t.Errorf("%q: not measured, yet reports %q", c.Target, c.Measured)
				}
			}
		})
	}
}

// TestCheckTargets_ReportsLeaderCPUWithoutABaseline: the leader's CPU
// per put is shown even when there is nothing to compare it with.
func TestCheckTargets_ReportsLeaderCPUWithoutABaseline(t *testing.T) {
	r := runReport(nil, put(8000, 3000), nil, nil, nil, leaderCPU(42))
	for _, baseline := range []float64{0, 50} {
		got := checkTargets(r, baseline)
		last := got[len(got)-1]
		if !strings.Contains(last.Measured, "42.0 µs per put") {
			t.Fatalf("baseline %v: exp the leader's 42.0 µs per put, got %q", baseline, last.Measured)
		}
	}
}
