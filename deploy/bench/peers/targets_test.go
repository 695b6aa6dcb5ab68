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

// figures are the results the targets read; a nil result is a workload
// not measured.
type figures struct {
	q1Put, q3Put, q3Follower, q3Put1, q3Lease, q3Batch, q3Half, jsPut, jsAlwaysPut, jsAlwaysBatch *load.Result
	q3CPU                                                                                         *SystemCPU
}

// runReport is a report of quorumq 1 node, quorumq 3 nodes and the two
// JetStream R3 systems with f's figures.
func runReport(f figures) *report {
	return &report{Systems: []SystemResult{
		{Key: "quorumq1", Put: f.q1Put},
		{Key: "quorumq3", Put: f.q3Put, PutFollower: f.q3Follower, Put1: f.q3Put1, Lease: f.q3Lease, Batch: f.q3Batch, HalfRate: f.q3Half, CPU: f.q3CPU},
		{Key: "nats-r3", Put: f.jsPut},
		{Key: "nats-r3-always", Put: f.jsAlwaysPut, Batch: f.jsAlwaysBatch},
		{Key: "redis-always", Put: put(1e6, 1)}, // not a target's peer
	}}
}

// halfRate is an open-loop run offered at rate with a p99 of p99us.
func halfRate(rate, p99us float64) *load.Result {
	r := put(rate, 1000)
	r.Rate, r.Latency.P99 = rate, p99us
	return r
}

// met is every target met, each by a margin.
func met() figures {
	return figures{
		q1Put: put(10000, 2000), q3Put: put(8000, 3000), q3Follower: put(7000, 5000), q3Put1: put(1500, 800),
		q3Lease: put(5000, 4000), q3Batch: put(300000, 9000), q3Half: halfRate(4000, 8000),
		jsPut: put(6000, 3000), jsAlwaysPut: put(3500, 5000), jsAlwaysBatch: put(50000, 30000), q3CPU: leaderCPU(20),
	}
}

// TestCheckTargets_AnswersEachTargetFromTheResults: every target is yes,
// no or – from the results alone, bounds are inclusive (but for p99,
// which must stay under), and the leader's CPU has to be halved.
func TestCheckTargets_AnswersEachTargetFromTheResults(t *testing.T) {
	all := func(v string) []string {
		out := make([]string, 9)
		for i := range out {
			out[i] = v
		}
		return out
	}
	missed := met()
	missed.q3Put = put(6900, 3000) // < 2×3500, < 1.3×6000, < 0.75×10000
	missed.q3Follower = put(5000, 5000)
	missed.q3Lease = put(4000, 4000)
	missed.q3Batch = put(240000, 9000)
	missed.q3Put1 = put(600, 1500)
	missed.q3Half = halfRate(3000, 12000)
	missed.q3CPU = leaderCPU(30)

	bound := met()
	bound.q3Put = put(7800, 3000)
	bound.jsAlwaysPut, bound.jsPut, bound.q1Put = put(3900, 5000), put(6000, 3000), put(10400, 2000)
	bound.q3Follower, bound.q3Lease = put(6240, 5000), put(4680, 4000)
	bound.q3Batch = put(250000, 9000)
	bound.q3Put1 = put(1000, 1000)
	bound.q3Half = halfRate(3900, 10000)
	bound.q3CPU = leaderCPU(25)

	noOne := met()
	noOne.q3Put1, noOne.q3CPU = nil, nil
	noPeers := met()
	noPeers.q1Put, noPeers.jsPut, noPeers.jsAlwaysPut, noPeers.jsAlwaysBatch = nil, nil, nil, nil
	nothing := met()
	nothing.q3Put = &load.Result{Errors: 5}

	tests := []struct {
		name     string
		r        *report
		baseline float64
		exp      []string // Met of each target, in checkTargets' order
	}{
		{"nothing run", &report{}, 50, all("–")},
		{"every target met", runReport(met()), 50, all("yes")},
		{"every target missed", runReport(missed), 50, all("no")},
		{"exactly on each bound", runReport(bound), 50, []string{"yes", "yes", "yes", "yes", "yes", "yes", "yes", "no", "yes"}},
		{"old report: no 1-client run, no CPU", runReport(noOne), 50, []string{"yes", "yes", "yes", "yes", "yes", "yes", "–", "yes", "–"}},
		{"no baseline", runReport(met()), 0, []string{"yes", "yes", "yes", "yes", "yes", "yes", "yes", "yes", "–"}},
		{"no peers and no single node", runReport(noPeers), 50, []string{"–", "–", "yes", "–", "yes", "–", "yes", "yes", "yes"}},
		{"a put run that acknowledged nothing", runReport(nothing), 50, []string{"–", "–", "–", "–", "–", "yes", "yes", "yes", "yes"}},
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
	r := runReport(figures{q3Put: put(8000, 3000), q3CPU: leaderCPU(42)})
	for _, baseline := range []float64{0, 50} {
		got := checkTargets(r, baseline)
		last := got[len(got)-1]
		if !strings.Contains(last.Measured, "42.0 µs per put") {
			t.Fatalf("baseline %v: exp the leader's 42.0 µs per put, got %q", baseline, last.Measured)
		}
	}
}
