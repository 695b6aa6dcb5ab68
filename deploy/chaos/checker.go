package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// Check names, in report order.
const (
	CheckAckedDelivered  = "acked-puts-delivered"
	CheckNoUnexpected    = "no-unexpected-or-duplicate"
	CheckAttempts        = "attempts-grow"
	CheckDelays          = "delays-honoured"
	CheckLin             = "linearizable-put-pop"
	CheckMGetCap         = "mget-within-cap"
	CheckPubLatency      = "pub-latency-bounded"
	CheckServed          = "clients-served"
	CheckConverge        = "replicas-converge"
	CheckRecovery        = "recovery-and-drain"
	CheckNoCrash         = "no-unexpected-exits"
	maxExamples          = 10
	delayToleranceMillis = 10
)

// DelayTolerance is the slack of the delay check. Nodes and the chaos
// process share one machine, so there is no clock skew: a deferred
// message is ready at (leader's wall clock at the put) + delay, and the
// put reached the leader after the chaos process sent it. The chaos
// process measures with the monotonic clock and the leader stamps with
// the wall clock; the two can drift apart by NTP slewing (at most 500 ppm,
// 2.5 ms over a 5 s delay) and a clock read has jitter, so 10 ms is
// allowed, nothing more.
const DelayTolerance = delayToleranceMillis * time.Millisecond

// CheckResult is the verdict of one check.
type CheckResult struct {
	Name       string `json:"name"`
	Pass       bool   `json:"pass"`
	Checked    int    `json:"checked"`
	Violations int    `json:"violations"`
	// Inconclusive says why the check could not fully decide (it then
	// passes only on what it could decide).
	Inconclusive string   `json:"inconclusive,omitempty"`
	Examples     []string `json:"examples,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

func (c *CheckResult) violation(format string, args ...any) {
	c.Violations++
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

// example adds an explanation of a violation already counted.
func (c *CheckResult) example(format string, args ...any) {
	if len(c.Examples) < maxExamples {
		c.Examples = append(c.Examples, fmt.Sprintf(format, args...))
	}
}

func (c *CheckResult) note(format string, args ...any) {
	c.Notes = append(c.Notes, fmt.Sprintf(format, args...))
}

func (c *CheckResult) done() CheckResult {
	c.Pass = c.Violations == 0
	return *c
}

func at(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// index is the history arranged for the checks.
type index struct {
	puts     map[string]*PutRecord // by key
	byKey    map[string][]Delivery // deliveries by body
	byID     map[string][]Delivery // deliveries by message id
	settled  map[string]bool       // message ids with an ack that is ok or unknown
	nacks    map[string][]Settle   // acknowledged nacks with a delay, by message id
	idsByKey map[string][]string   // distinct message ids delivered per key
}

func newIndex(h *History) *index {
	x := &index{
		puts: map[string]*PutRecord{}, byKey: map[string][]Delivery{}, byID: map[string][]Delivery{},
		settled: map[string]bool{}, nacks: map[string][]Settle{}, idsByKey: map[string][]string{},
	}
	for _, p := range h.Puts {
		x.puts[p.Key] = p
	}
	for _, d := range h.Deliveries {
		if d.Queue != WorkQueue {
			continue
		}
		x.byKey[d.Body] = append(x.byKey[d.Body], d)
		x.byID[d.MsgID] = append(x.byID[d.MsgID], d)
		if !slices.Contains(x.idsByKey[d.Body], d.MsgID) {
			x.idsByKey[d.Body] = append(x.idsByKey[d.Body], d.MsgID)
		}
	}
	for _, s := range h.Settles {
		switch {
		case s.Op == "ack" && s.Outcome != Fail:
			for _, id := range s.MsgIDs {
				x.settled[id] = true
			}
		case s.Op == "nack" && s.Outcome == OK && s.Delay > 0:
			x.nacks[s.MsgIDs[0]] = append(x.nacks[s.MsgIDs[0]], s)
		}
	}
	return x
}

// CheckAll runs the history checks 1-4 (the lin check, convergence and
// recovery are run separately). drained says whether the final drain
// emptied WorkQueue (every message acked): only then can "delivered but
// never acked" be judged.
func CheckAll(h *History, drained bool) []CheckResult {
	x := newIndex(h)
	return []CheckResult{
		checkAckedDelivered(x, drained),
		checkNoUnexpected(x),
		checkAttempts(x),
		checkDelays(x),
	}
}

// checkAckedDelivered: every acknowledged put is delivered at least once,
// and every delivered message (acknowledged put or not) is eventually
// acked by someone: a message that was handed out, not acked, and never
// came back is lost just the same.
func checkAckedDelivered(x *index, drained bool) CheckResult {
	c := CheckResult{Name: CheckAckedDelivered}
	keys := sortedKeys(x.puts)
	acked := 0
	for _, k := range keys {
		p := x.puts[k]
		if p.Final != OK {
			continue
		}
		acked++
		c.Checked++
		ds := x.byKey[k]
		if len(ds) == 0 {
			a := p.Attempts[len(p.Attempts)-1]
			c.violation("acknowledged put %s (msg id %s, acked by %s at %s, delay %v) was never delivered", k, p.MsgID, a.Node, at(a.End), p.Delay)
		}
	}
	if drained {
		ids := sortedKeys(x.byID)
		for _, id := range ids {
			if !x.settled[id] {
				ds := x.byID[id]
				last := ds[len(ds)-1]
				c.violation("message %s (%s) was delivered %d times, last to %s at %s (%s), but never acked, and the queue is empty at the end: lost after delivery",
					id, last.Body, len(ds), last.Consumer, at(last.End), last.Action)
			}
		}
	} else {
		c.Inconclusive = "the final drain did not empty the queue: messages delivered but not acked could not be judged"
	}
	c.note("%d acknowledged puts, %d distinct messages delivered", acked, len(x.byID))
	return c.done()
}

// checkNoUnexpected: nothing is delivered that was never put; a put that
// was answered as certainly not applied never shows up; a key is stored
// at most once (idempotency within the dedup window: producers give up
// long before the window ends), under the id its acknowledgment gave; and
// nothing is delivered before it was first sent.
func checkNoUnexpected(x *index) CheckResult {
	c := CheckResult{Name: CheckNoUnexpected}
	redelivered, extra := 0, 0
	for _, k := range sortedKeys(x.byKey) {
		ds := x.byKey[k]
		c.Checked++
		p, ok := x.puts[k]
		if !ok {
			c.violation("delivered %q (msg id %s, to %s at %s) was never put", k, ds[0].MsgID, ds[0].Consumer, at(ds[0].End))
			continue
		}
		if p.Final == Fail {
			codes := make([]string, len(p.Attempts))
			for i, a := range p.Attempts {
				codes[i] = a.Node + ":" + a.Code
			}
			c.violation("put %s failed on every attempt with an answer that means \"not applied\" (%s), yet it was delivered as msg id %s at %s",
				k, strings.Join(codes, ","), ds[0].MsgID, at(ds[0].End))
		}
		if ids := x.idsByKey[k]; len(ids) > 1 {
			c.violation("key %s stored %d times: message ids %v (idempotent put retried within the dedup window; first attempt at %s, last at %s)",
				k, len(ids), ids, at(p.Attempts[0].Start), at(p.Attempts[len(p.Attempts)-1].Start))
		}
		if p.Final == OK && p.MsgID != "" && !slices.Contains(x.idsByKey[k], p.MsgID) {
			c.violation("put %s was acknowledged with msg id %s but delivered as %v", k, p.MsgID, x.idsByKey[k])
		}
		first := p.Attempts[0].Start
		for _, d := range ds {
			if d.End < first {
				c.violation("%s delivered at %s (to %s), before its first put attempt at %s", k, at(d.End), d.Consumer, at(first))
			}
		}
		if len(ds) > 1 {
			redelivered++
			extra += len(ds) - 1
		}
	}
	unknown := 0
	for _, p := range x.puts {
		if p.Final == Unknown && len(x.byKey[p.Key]) > 0 {
			unknown++
		}
	}
	c.note("%d messages delivered more than once (%d extra deliveries; allowed: at-least-once)", redelivered, extra)
	c.note("%d puts of unknown outcome were delivered (allowed)", unknown)
	return c.done()
}

// checkAttempts: per message, the attempt counts of its deliveries are
// positive and distinct, and a delivery that began after another one
// ended has a higher count (the count only grows).
func checkAttempts(x *index) CheckResult {
	c := CheckResult{Name: CheckAttempts}
	for _, id := range sortedKeys(x.byID) {
		ds := slices.Clone(x.byID[id])
		sort.Slice(ds, func(i, j int) bool { return ds[i].Start < ds[j].Start })
		c.Checked++
		seen := map[int]int{}
		for i, d := range ds {
			if d.Attempts < 1 {
				c.violation("message %s delivered with attempts=%d at %s", id, d.Attempts, at(d.End))
			}
			if j, dup := seen[d.Attempts]; dup {
				c.violation("message %s delivered twice with attempts=%d: to %s at %s and to %s at %s", id, d.Attempts, ds[j].Consumer, at(ds[j].End), d.Consumer, at(d.End))
			}
			seen[d.Attempts] = i
			for _, e := range ds[:i] {
				if e.End < d.Start && d.Attempts <= e.Attempts {
					c.violation("message %s: attempts went from %d (to %s, answered at %s) to %d (to %s, asked at %s)",
						id, e.Attempts, e.Consumer, at(e.End), d.Attempts, d.Consumer, at(d.Start))
				}
			}
		}
	}
	return c.done()
}

// checkDelays: a put with delay=D is not delivered before its first
// attempt was sent + D, and a message nacked with delay=D is not
// delivered again (by a get sent after the nack was answered) before the
// nack was sent + D; both within DelayTolerance.
func checkDelays(x *index) CheckResult {
	c := CheckResult{Name: CheckDelays}
	for _, k := range sortedKeys(x.puts) {
		p := x.puts[k]
		if p.Delay <= 0 {
			continue
		}
		earliest := p.Attempts[0].Start + p.Delay
		for _, d := range x.byKey[k] {
			c.Checked++
			if d.End < earliest-DelayTolerance {
				c.violation("%s (delay %v, first sent at %s) delivered at %s to %s: %v early",
					k, p.Delay, at(p.Attempts[0].Start), at(d.End), d.Consumer, (earliest - d.End).Round(time.Microsecond))
			}
		}
	}
	for _, id := range sortedKeys(x.nacks) {
		for _, s := range x.nacks[id] {
			earliest := s.Start + s.Delay
			for _, d := range x.byID[id] {
				if d.Start <= s.End {
					continue
				}
				c.Checked++
				if d.End < earliest-DelayTolerance {
					c.violation("message %s nacked with delay %v at %s delivered again at %s to %s: %v early",
						id, s.Delay, at(s.Start), at(d.End), d.Consumer, (earliest - d.End).Round(time.Microsecond))
				}
			}
		}
	}
	c.note("tolerance %v (same machine: no skew; monotonic vs wall clock drift and read jitter only)", DelayTolerance)
	return c.done()
}

// LinCheck turns the porcupine results, one per piece of each lin queue,
// into a check. A piece porcupine could not decide within its time limit
// is a violation: what was not shown linearizable does not pass.
func LinCheck(results []LinResult) CheckResult {
	c := CheckResult{Name: CheckLin}
	ops, unknown := 0, 0
	queues := map[string]bool{}
	for _, r := range results {
		c.Checked++
		ops += r.Ops
		unknown += r.Unknown
		queues[r.Queue] = true
		switch r.Result {
		case LinIllegal:
			c.violation("queue %s piece %d (%s to %s, %d ops, %d of unknown outcome) is not linearizable as a FIFO queue; see %s",
				r.Queue, r.Piece, at(r.From), at(r.To), r.Ops, r.Unknown, r.Visualization)
			for _, w := range r.Witnesses {
				c.example("queue %s: %s", r.Queue, w)
			}
		case LinTimeout:
			if r.NotChecked {
				c.violation("queue %s piece %d (%s to %s, %d ops): not checked, the check's overall time was spent: counted as a failure",
					r.Queue, r.Piece, at(r.From), at(r.To), r.Ops)
				continue
			}
			c.violation("queue %s piece %d (%s to %s, %d ops, %d of unknown outcome): porcupine did not decide within %v: timed out, counted as a failure",
				r.Queue, r.Piece, at(r.From), at(r.To), r.Ops, r.Unknown, r.Took.Round(time.Millisecond))
		case LinOK:
		default:
			c.violation("queue %s piece %d: unknown verdict %q", r.Queue, r.Piece, r.Result)
		}
	}
	c.note("%d queues in %d pieces, %d operations (%d of unknown outcome, modelled as possibly applied)", len(queues), len(results), ops, unknown)
	return c.done()
}

// quietSettle: a fault's effects (elections, catch-up) are allowed this
// long after its step ended.
const quietSettle = 2 * time.Second

// faultWindows are the intervals in which a fault was in effect: from its
// injection to quietSettle after its step ended (the final heal
// included). Everything else is quiet: the cluster is whole and every
// member runs.
type faultWindows [][2]time.Duration

func newFaultWindows(events []FaultEvent) faultWindows {
	var w faultWindows
	for _, ev := range events {
		if ev.Skipped != "" {
			continue
		}
		w = append(w, [2]time.Duration{ev.Start, max(ev.Ended, ev.Healed, ev.Start) + quietSettle})
	}
	return w
}

// quiet reports whether [start, end] overlaps no fault window.
func (w faultWindows) quiet(start, end time.Duration) bool {
	for _, iv := range w {
		if start <= iv[1] && end >= iv[0] {
			return false
		}
	}
	return true
}

// checkMGetCap: no answer of a large mget holds more messages than the
// nodes' cap (WorkloadConfig.MGetCap). That every message they returned
// is accounted for is the other checks' work: on WorkQueue they are
// deliveries, on the lin queues pops in the model.
func checkMGetCap(h *History, limit int) CheckResult {
	c := CheckResult{Name: CheckMGetCap}
	msgs, largest, atCap := 0, 0, 0
	for _, m := range h.BigMGets {
		if m.Outcome != OK {
			continue
		}
		c.Checked++
		msgs += m.Returned
		largest = max(largest, m.Returned)
		if limit > 0 && m.Returned == limit {
			atCap++
		}
		if limit > 0 && m.Returned > limit {
			c.violation("mget of %s with items=%d via %s at %s returned %d messages (%d bytes), more than the cap of %d",
				m.Queue, m.Items, m.Node, at(m.Start), m.Returned, m.Bytes, limit)
		}
	}
	if len(h.BigMGets) == 0 {
		c.note("no large mgets in this run")
	}
	c.note("%d answers, %d messages, the largest %d; %d at the cap (%d; 0: none expected)", c.Checked, msgs, largest, atCap, limit)
	return c.done()
}

// checkPubLatency: with stalled subscribers on every node, each /pub
// sent while no fault was in effect came back within bound and was not
// refused, and after the final heal one /pub to every member (the
// probes) did too.
func checkPubLatency(h *History, events []FaultEvent, bound time.Duration) CheckResult {
	c := CheckResult{Name: CheckPubLatency}
	fw := newFaultWindows(events)
	var lats []time.Duration
	var maxAll time.Duration
	for _, p := range h.Pubs {
		lat := p.Latency()
		maxAll = max(maxAll, lat)
		switch {
		case p.Probe:
			c.Checked++
			if p.Outcome != OK || lat > bound {
				c.violation("probe /pub to %s after the final heal at %s: %s %s after %v (bound %v)", p.Node, at(p.Start), p.Outcome, p.Code, lat.Round(time.Millisecond), bound)
			}
			continue
		case !fw.quiet(p.Start, p.End):
			continue
		}
		c.Checked++
		lats = append(lats, lat)
		switch {
		case lat > bound:
			c.violation("/pub to %s at %s took %v (bound %v; %s %s) with no fault in effect", p.Node, at(p.Start), lat.Round(time.Millisecond), bound, p.Outcome, p.Code)
		case p.Outcome == Fail:
			c.violation("/pub to %s at %s failed (%s) with no fault in effect", p.Node, at(p.Start), p.Code)
		}
	}
	if len(h.Pubs) == 0 {
		c.note("no publishers in this run")
		return c.done()
	}
	c.note("%d /pubs, the slowest %v; %d with no fault in effect: %s", len(h.Pubs), maxAll.Round(time.Millisecond), len(lats), latencySummary(lats))
	return c.done()
}

// minServed is the share of requests sent while no fault was in effect
// that must succeed (elections the machine's load causes by itself may
// refuse a few).
const minServed = 0.9

// checkServed: while hostile clients hang on every node, the workload is
// still served: of the put attempts and lin operations sent while no
// fault was in effect, none took longer than bound and at least
// minServed succeeded.
func checkServed(h *History, events []FaultEvent, bound time.Duration) CheckResult {
	c := CheckResult{Name: CheckServed}
	fw := newFaultWindows(events)
	var lats []time.Duration
	ok := 0
	req := func(what, node string, start, end time.Duration, out Outcome, code string) {
		if !fw.quiet(start, end) {
			return
		}
		c.Checked++
		lat := end - start
		if out == OK {
			ok++
			lats = append(lats, lat)
		}
		if lat > bound {
			c.violation("%s via %s at %s took %v (bound %v; %s %s) with no fault in effect", what, node, at(start), lat.Round(time.Millisecond), bound, out, code)
		}
	}
	for _, p := range h.Puts {
		for _, a := range p.Attempts {
			req("put "+p.Key, a.Node, a.Start, a.End, a.Outcome, a.Code)
		}
	}
	for _, op := range h.Lin {
		req(op.Op+" "+op.Queue, op.Node, op.Start, op.End, op.Outcome, op.Code)
	}
	if c.Checked > 0 && float64(ok) < minServed*float64(c.Checked) {
		c.violation("only %d of %d requests sent with no fault in effect succeeded (%.1f%%, want at least %.0f%%)",
			ok, c.Checked, 100*float64(ok)/float64(c.Checked), 100*minServed)
	}
	c.note("%d requests with no fault in effect, %d succeeded: %s", c.Checked, ok, latencySummary(lats))
	return c.done()
}

// latencySummary describes latencies: median, 99th percentile and
// maximum.
func latencySummary(lats []time.Duration) string {
	if len(lats) == 0 {
		return "none"
	}
	lats = slices.Clone(lats)
	slices.Sort(lats)
	q := func(f float64) time.Duration {
		return lats[min(len(lats)-1, int(f*float64(len(lats))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("median %v, p99 %v, max %v", q(0.5), q(0.99), lats[len(lats)-1].Round(100*time.Microsecond))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// checkNoCrash: no node process ended without the nemesis ending it (a
// crash, a fatal error, an exit after a failed start).
func checkNoCrash(nodes []*testkit.Node) CheckResult {
	c := CheckResult{Name: CheckNoCrash}
	for _, nd := range nodes {
		c.Checked++
		for _, e := range nd.Crashes() {
			c.violation("%s (start %d) exited by itself at %s: %s; see %s", e.Name, e.Start, e.At.Format("15:04:05.000"), e.Status, nd.LogPath)
		}
	}
	return c.done()
}
