package main

import (
	"fmt"

	"github.com/quorumq/quorumq/deploy/bench/load"
)

// Answers of a target check.
const (
	targetMet     = "yes"
	targetMissed  = "no"
	targetUnknown = "–" // not measured in this run
)

// The performance issue's targets, as ratios and bounds.
const (
	alwaysPutRatio      = 2.0   // 3-node put against JetStream R3 sync always
	defaultPutRatio     = 1.3   // 3-node put against JetStream R3 default
	followerPutRatio    = 0.8   // put through the followers against put at the leader
	clusterPutRatio     = 0.75  // 3 nodes against 1 node, put at 64 clients
	leasePutRatio       = 0.6   // lease+ack against put, 3 nodes
	alwaysBatchRatio    = 5.0   // /mput of 100 against JetStream R3 sync always
	singlePutP50BoundUs = 1000  // p50 of one client's puts on 3 nodes
	halfRateP99BoundUs  = 10000 // p99 of puts offered at half the peak, 3 nodes
	leaderCPUCut        = 0.5   // leader CPU per put against the baseline
)

// DefaultLeaderCPUBaselineUs is the leader's CPU per put before the CPU
// work, in µs: 50 µs at ~17k puts/s with one entry in flight, measured
// from /proc/PID/stat around a 10 s run (notes.md, "Where the time goes").
const DefaultLeaderCPUBaselineUs = 50.0

// TargetCheck is one target and how this run did against it.
type TargetCheck struct {
	Target   string
	Measured string
	// Met is targetMet, targetMissed or targetUnknown.
	Met string
}

// checkTargets answers the performance issue's targets from r's results
// alone: a target whose inputs were not measured (a system not run, a
// workload that acknowledged nothing, CPU not sampled) is targetUnknown.
// baselineUs is the leader CPU per put to beat; 0: no comparison.
func checkTargets(r *report, baselineUs float64) []TargetCheck {
	q1, q3 := r.system("quorumq1"), r.system("quorumq3")
	js, jsAlways := r.system("nats-r3"), r.system("nats-r3-always")
	put := func(s *SystemResult) *load.Result { return s.Put }
	batch := func(s *SystemResult) *load.Result { return s.Batch }
	put3, put1 := result(q3, put), result(q1, put)
	putJS, putAlways := result(js, put), result(jsAlways, put)
	batch3, batchAlways := result(q3, batch), result(jsAlways, batch)
	fol := result(q3, func(s *SystemResult) *load.Result { return s.PutFollower })
	lease := result(q3, func(s *SystemResult) *load.Result { return s.Lease })
	one := result(q3, func(s *SystemResult) *load.Result { return s.Put1 })
	half := result(q3, func(s *SystemResult) *load.Result { return s.HalfRate })
	leaderUs, leaderOK := leaderCPUPerPut(q3)

	var out []TargetCheck
	// add appends target; measured is called only when known.
	add := func(target string, known bool, measured func() (string, bool)) {
		c := TargetCheck{Target: target, Measured: targetUnknown, Met: targetUnknown}
		if known {
			var met bool
			c.Measured, met = measured()
			c.Met = answer(met)
		}
		out = append(out, c)
	}
	// ratio adds "a ≥ min× b" for two throughputs.
	ratio := func(target string, a, b *load.Result, min float64) {
		add(fmt.Sprintf(target, min), a != nil && b != nil, func() (string, bool) {
			return versus(a, b), a.MsgsPerSec >= min*b.MsgsPerSec
		})
	}
	ratio("3-node put, 64 clients ≥ %.1f× JetStream R3 sync always", put3, putAlways, alwaysPutRatio)
	ratio("3-node put, 64 clients ≥ %.1f× JetStream R3 default", put3, putJS, defaultPutRatio)
	ratio("put through the followers ≥ %.1f× put at the leader", fol, put3, followerPutRatio)
	ratio("3 nodes ≥ %.2f× 1 node, put 64 clients", put3, put1, clusterPutRatio)
	ratio("lease+ack ≥ %.1f× put, 3 nodes", lease, put3, leasePutRatio)
	ratio("3-node /mput of 100 ≥ %.0f× JetStream R3 sync always", batch3, batchAlways, alwaysBatchRatio)
	add(fmt.Sprintf("1-client put p50 ≤ %s on 3 nodes", ms(singlePutP50BoundUs)), one != nil, func() (string, bool) {
		return fmt.Sprintf("p50 %s (%s msgs/s)", ms(one.Latency.P50), rate(one.MsgsPerSec)), one.Latency.P50 <= singlePutP50BoundUs
	})
	add(fmt.Sprintf("put p99 < %s at half the peak rate, 3 nodes", ms(halfRateP99BoundUs)), half != nil, func() (string, bool) {
		return fmt.Sprintf("p99 %s at %s msgs/s offered", ms(half.Latency.P99), rate(half.Rate)), half.Latency.P99 < halfRateP99BoundUs
	})
	leader := "leader CPU per put halved (3 nodes, put 64 clients)"
	if leaderOK && baselineUs <= 0 {
		// Without a baseline the figure is still worth reporting.
		out = append(out, TargetCheck{Target: leader, Measured: fmt.Sprintf("%.1f µs per put; no baseline", leaderUs), Met: targetUnknown})
	} else {
		add(leader, leaderOK, func() (string, bool) {
			return fmt.Sprintf("%.1f µs per put against %.1f µs before (%+.0f %%)", leaderUs, baselineUs, 100*(leaderUs-baselineUs)/baselineUs),
				leaderUs <= leaderCPUCut*baselineUs
		})
	}
	return out
}

// versus is "a against b msgs/s (a/b×)".
func versus(a, b *load.Result) string {
	return fmt.Sprintf("%s against %s msgs/s (%.2f×)", rate(a.MsgsPerSec), rate(b.MsgsPerSec), a.MsgsPerSec/b.MsgsPerSec)
}

// leaderCPUPerPut is the leader's CPU per acknowledged put at 64 clients,
// in µs; ok is false when it was not sampled.
func leaderCPUPerPut(q3 *SystemResult) (us float64, ok bool) {
	if q3 == nil || q3.CPU == nil || q3.CPU.Put == nil || q3.CPU.Put.LeaderUs <= 0 {
		return 0, false
	}
	return q3.CPU.Put.PerMsg(q3.CPU.Put.LeaderUs)
}

// result is the result get picks from s when it acknowledged something;
// nil for a system not run or a workload not measured.
func result(s *SystemResult, get func(*SystemResult) *load.Result) *load.Result {
	if s == nil {
		return nil
	}
	if r := get(s); r != nil && r.Msgs > 0 {
		return r
	}
	return nil
}

func answer(ok bool) string {
	if ok {
		return targetMet
	}
	return targetMissed
}
