package chaos

import (
	"strings"
	"testing"
	"time"
)

const s = time.Second

func lin(client int, op, value string, start, end time.Duration, out Outcome) LinOp {
	return LinOp{Client: client, Queue: "lin-000", Op: op, Value: value, Start: start, End: end, Outcome: out, Node: "node1"}
}

// linVerdict checks ops and returns the first piece that is not ok, or
// the first piece when all are.
func linVerdict(t *testing.T, ops []LinOp) LinResult {
	t.Helper()
	rs := CheckLinearizable(ops, 10*s, 1000, "")
	if len(rs) == 0 {
		t.Fatal("no result")
	}
	for _, r := range rs {
		if r.Result != LinOK {
			return r
		}
	}
	return rs[0]
}

func TestLin_SequentialFIFO_Ok(t *testing.T) {
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, OK),
		lin(1, "put", "b", 2, 3, OK),
		lin(0, "get", "a", 4, 5, OK),
		lin(1, "get", "b", 6, 7, OK),
		lin(0, "get", "", 8, 9, OK),
	})
	if r.Result != "ok" {
		t.Fatalf("result %s, want ok", r.Result)
	}
}

// The pattern found by the suite: a get answered "empty" while a value
// acknowledged before it was sent was popped only after it.
func TestLin_StaleEmpty_IllegalWithWitness(t *testing.T) {
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, OK),
		lin(1, "get", "", 2, 3, OK),
		lin(2, "get", "a", 4, 5, OK),
	})
	if r.Result != "illegal" {
		t.Fatalf("result %s, want illegal", r.Result)
	}
	if len(r.Witnesses) == 0 || !strings.Contains(r.Witnesses[0], "stale empty") {
		t.Fatalf("witnesses %q, want a stale empty", r.Witnesses)
	}
}

func TestLin_FIFOInversion_Illegal(t *testing.T) {
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, OK),
		lin(0, "put", "b", 2, 3, OK),
		lin(1, "get", "b", 4, 5, OK),
		lin(1, "get", "a", 6, 7, OK),
	})
	if r.Result != "illegal" || len(r.Witnesses) == 0 || !strings.Contains(r.Witnesses[0], "FIFO inversion") {
		t.Fatalf("result %s, witnesses %q; want illegal with a FIFO inversion", r.Result, r.Witnesses)
	}
}

func TestLin_UnknownPut_MayTakeEffectLate(t *testing.T) {
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, Unknown),
		lin(1, "get", "", 2, 3, OK),
		lin(1, "get", "a", 4, 5, OK),
	})
	if r.Result != "ok" {
		t.Fatalf("result %s, want ok: an unknown put may be applied after the empty get", r.Result)
	}
	r = linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, Unknown),
		lin(1, "get", "", 2, 3, OK),
	})
	if r.Result != "ok" {
		t.Fatalf("result %s, want ok: an unknown put may never be applied", r.Result)
	}
}

func TestLin_UnknownGet_MayOrMayNotPop(t *testing.T) {
	for name, ops := range map[string][]LinOp{
		"popped":     {lin(0, "put", "a", 0, 1, OK), lin(1, "get", "", 2, 3, Unknown), lin(2, "get", "", 4, 5, OK)},
		"not popped": {lin(0, "put", "a", 0, 1, OK), lin(1, "get", "", 2, 3, Unknown), lin(2, "get", "a", 4, 5, OK)},
	} {
		if r := linVerdict(t, ops); r.Result != "ok" {
			t.Errorf("%s: result %s, want ok", name, r.Result)
		}
	}
}

// A pop whose confirmation was lost comes again with X-Attempts 2 once
// its handover lease ends: at least once, never lost. The model accepts
// the repeat; a plain second pop of the same value stays illegal.
func TestLin_HandoverRedelivery_Accepted(t *testing.T) {
	again := lin(1, "get", "", 6, 7, OK)
	again.Redelivered = []string{"a"}
	mget := LinOp{Client: 2, Queue: "lin-000", Op: "mget", Items: 2, Values: []string{"b"}, Redelivered: []string{"a"}, Start: 8, End: 9, Outcome: OK, Node: "node1"}
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, OK),
		lin(0, "put", "b", 2, 3, OK),
		lin(1, "get", "a", 4, 5, OK),
		again,
		mget,
		lin(0, "get", "", 10, 11, OK),
	})
	if r.Result != "ok" {
		t.Fatalf("result %s, want ok: a redelivery is not a second pop", r.Result)
	}
	r = linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, OK),
		lin(1, "get", "a", 4, 5, OK),
		lin(1, "get", "a", 6, 7, OK),
	})
	if r.Result != "illegal" {
		t.Fatalf("result %s, want illegal: popped twice without a redelivery", r.Result)
	}
}

func TestLin_FailedPut_NeverApplied(t *testing.T) {
	r := linVerdict(t, []LinOp{
		lin(0, "put", "a", 0, 1, Fail),
		lin(1, "get", "a", 2, 3, OK),
	})
	if r.Result != "illegal" {
		t.Fatalf("result %s, want illegal: a put answered NO_LEADER must not take effect", r.Result)
	}
}

// history builds a History by hand for the checks.
type history struct{ h *History }

func newTestHistory() *history { return &history{h: &History{Mgets: map[Outcome]int{}}} }

func (b *history) put(key string, delay time.Duration, attempts ...PutAttempt) *history {
	p := &PutRecord{Key: key, Queue: WorkQueue, Delay: delay, Attempts: attempts}
	p.finish()
	b.h.Puts = append(b.h.Puts, p)
	return b
}

func (b *history) deliver(id, body string, attempts int, start, end time.Duration) *history {
	b.h.Deliveries = append(b.h.Deliveries, Delivery{MsgID: id, Body: body, Attempts: attempts, Queue: WorkQueue, Start: start, End: end, Consumer: "c0", Action: "ack"})
	return b
}

func (b *history) settle(op string, id string, delay, start, end time.Duration, out Outcome) *history {
	b.h.Settles = append(b.h.Settles, Settle{Op: op, MsgIDs: []string{id}, Delay: delay, Start: start, End: end, Outcome: out})
	return b
}

func attempt(out Outcome, code, msgID string, start, end time.Duration) PutAttempt {
	return PutAttempt{Node: "node1", Start: start, End: end, Outcome: out, Code: code, MsgID: msgID}
}

func results(t *testing.T, b *history) map[string]CheckResult {
	t.Helper()
	m := map[string]CheckResult{}
	for _, c := range CheckAll(b.h, true) {
		m[c.Name] = c
	}
	return m
}

func wantOnlyFailing(t *testing.T, rs map[string]CheckResult, failing ...string) {
	t.Helper()
	for name, c := range rs {
		want := true
		for _, f := range failing {
			if f == name {
				want = false
			}
		}
		if c.Pass != want {
			t.Errorf("%s: pass=%v, want %v; examples %q", name, c.Pass, want, c.Examples)
		}
	}
}

func TestChecks_CleanHistoryPasses(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 0, attempt(Unknown, "TIMEOUT", "", 0, 1*s), attempt(OK, "", "7", 2*s, 3*s)).
		put("p0-2", 2*s, attempt(OK, "", "8", 1*s, 2*s)).
		put("p0-3", 0, attempt(Fail, "NO_LEADER", "", 1*s, 2*s)).
		put("p0-4", 0, attempt(Unknown, "TIMEOUT", "", 1*s, 2*s)).
		deliver("7", "p0-1", 1, 3*s, 4*s).
		settle("nack", "7", s, 4*s, 5*s, OK).
		deliver("7", "p0-1", 2, 6*s, 7*s).
		settle("ack", "7", 0, 7*s, 8*s, OK).
		deliver("8", "p0-2", 1, 3*s, 4*s).
		settle("ack", "8", 0, 4*s, 5*s, Unknown).
		deliver("9", "p0-4", 1, 3*s, 4*s).
		settle("ack", "9", 0, 4*s, 5*s, OK)
	wantOnlyFailing(t, results(t, b))
}

func TestChecks_LostAckedPut(t *testing.T) {
	b := newTestHistory().put("p0-1", 0, attempt(OK, "", "7", 0, 1*s))
	wantOnlyFailing(t, results(t, b), CheckAckedDelivered)
}

func TestChecks_DeliveredButNeverAcked_IsLost(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 0, attempt(OK, "", "7", 0, 1*s)).
		deliver("7", "p0-1", 1, 2*s, 3*s) // skipped, never came back
	wantOnlyFailing(t, results(t, b), CheckAckedDelivered)
}

func TestChecks_FailedPutDelivered_Unexpected(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 0, attempt(Fail, "NO_LEADER", "", 0, 1*s)).
		deliver("7", "p0-1", 1, 2*s, 3*s).settle("ack", "7", 0, 3*s, 4*s, OK).
		deliver("8", "never-put", 1, 2*s, 3*s).settle("ack", "8", 0, 3*s, 4*s, OK)
	rs := results(t, b)
	wantOnlyFailing(t, rs, CheckNoUnexpected)
	if v := rs[CheckNoUnexpected].Violations; v != 2 {
		t.Fatalf("%d violations, want 2: %q", v, rs[CheckNoUnexpected].Examples)
	}
}

func TestChecks_KeyStoredTwice_DedupViolation(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 0, attempt(Unknown, "OUTCOME_UNKNOWN", "", 0, 1*s), attempt(OK, "", "8", 2*s, 3*s)).
		deliver("7", "p0-1", 1, 2*s, 3*s).settle("ack", "7", 0, 3*s, 4*s, OK).
		deliver("8", "p0-1", 1, 4*s, 5*s).settle("ack", "8", 0, 5*s, 6*s, OK)
	wantOnlyFailing(t, results(t, b), CheckNoUnexpected)
}

func TestChecks_AttemptsGoBack(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 0, attempt(OK, "", "7", 0, 1*s)).
		deliver("7", "p0-1", 2, 2*s, 3*s).
		deliver("7", "p0-1", 1, 4*s, 5*s).settle("ack", "7", 0, 5*s, 6*s, OK)
	wantOnlyFailing(t, results(t, b), CheckAttempts)
}

func TestChecks_EarlyDelivery(t *testing.T) {
	b := newTestHistory().
		put("p0-1", 5*s, attempt(OK, "", "7", 0, 1*s)).
		deliver("7", "p0-1", 1, 2*s, 3*s).settle("ack", "7", 0, 3*s, 4*s, OK)
	wantOnlyFailing(t, results(t, b), CheckDelays)

	b = newTestHistory().
		put("p0-1", 0, attempt(OK, "", "7", 0, 1*s)).
		deliver("7", "p0-1", 1, 2*s, 3*s).
		settle("nack", "7", 5*s, 3*s, 4*s, OK).
		deliver("7", "p0-1", 2, 5*s, 6*s).settle("ack", "7", 0, 6*s, 7*s, OK)
	wantOnlyFailing(t, results(t, b), CheckDelays)
}

func TestPlan_SameSeedSameSchedule(t *testing.T) {
	cfg := ScheduleConfig{Seed: 42, Duration: 10 * time.Minute, HoldMin: 3 * s, HoldMax: 15 * s, GapMin: 3 * s, GapMax: 10 * s}
	a, b := Plan(cfg), Plan(cfg)
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("plans of %d and %d steps", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d: %+v vs %+v", i, a[i], b[i])
		}
	}
	kinds := map[FaultKind]bool{}
	for _, p := range a {
		kinds[p.Kind] = true
		if p.At >= cfg.Duration || p.For < cfg.HoldMin || p.For > cfg.HoldMax {
			t.Fatalf("step %+v out of bounds", p)
		}
	}
	if len(kinds) < len(AllFaults)-1 {
		t.Errorf("10 minutes use only %d of %d kinds: %v", len(kinds), len(AllFaults), kinds)
	}
	cfg.Faults = []FaultKind{PauseLeader}
	for _, p := range Plan(cfg) {
		if p.Kind != PauseLeader {
			t.Fatalf("step %+v with only pause-leader enabled", p)
		}
	}
}
