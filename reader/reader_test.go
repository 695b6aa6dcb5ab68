package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestReader_AllTasksRunOnlyFailedRetried: every task runs on an attempt
// even after an earlier one failed; the retry envelope names only the
// failed task, so the task that succeeded is not run again; tries and
// retry_on grow as in BaseReader.
func TestReader_AllTasksRunOnlyFailedRetried(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	cfg := testConfig(tc, map[string]Task{
		"a_flaky": func(ctx context.Context, m *Message) error {
			c.add("a_flaky", m)
			if m.Attempts == 1 {
				return errors.New("first time fails")
			}
			return nil
		},
		"b_ok": func(ctx context.Context, m *Message) error { c.add("b_ok", m); return nil },
	})
	cfg.RequeueDelay = 300 * time.Millisecond
	cfg.OnEvent = ev.on
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.put("q", `{"a": 1}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "the retry", func() bool { return ev.count(EventRetry) == 1 })
	requeuedAt := time.Now()
	testwait.For(t, 10*time.Second, "the message done", func() bool { return ev.count(EventDone) == 1 })
	if d := time.Since(requeuedAt); d < 250*time.Millisecond {
		t.Errorf("second attempt %v after the first, want about RequeueDelay×1 = 300ms", d)
	}
	if n := c.count("b_ok", ""); n != 1 {
		t.Errorf("b_ok ran %d times, want 1 (it succeeded on the first attempt)", n)
	}
	if n := c.count("a_flaky", ""); n != 2 {
		t.Errorf("a_flaky ran %d times, want 2", n)
	}
	for _, x := range c.all() {
		if x.body != `{"a": 1}` {
			t.Errorf("%s saw body %q, want the original message", x.task, x.body)
		}
	}
	// The second attempt's message came from the envelope.
	evs := ev.list()
	if last := evs[len(evs)-1].Message; last.Attempts != 2 || !slices.Equal(last.TasksLeft, []string{"a_flaky"}) || last.Deliveries != 2 {
		t.Errorf("second attempt: attempts %d deliveries %d tasks %v", last.Attempts, last.Deliveries, last.TasksLeft)
	}
	testwait.For(t, 5*time.Second, "an empty queue", func() bool {
		st := tc.stats("q")
		return st.Depth == 0 && st.InFlight == 0 && st.Deferred == 0
	})

	s := r.Stats()
	if s.Processed != 1 || s.Failed != 1 || s.Retried != 1 || s.Delivered != 2 || s.TaskFailures["a_flaky"] != 1 || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestReader_RetryEnvelopeOnQueue: after a failed attempt the queue holds
// BaseReader's envelope: the original data, tries 1, tasks_left the failed
// task, retry_on about now + RequeueDelay, started when first wrapped; the
// server holds it back until then.
func TestReader_RetryEnvelopeOnQueue(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{
		"fails": func(ctx context.Context, m *Message) error { return errors.New("nope") },
		"ok":    func(ctx context.Context, m *Message) error { return nil },
	})
	cfg.RequeueDelay = 700 * time.Millisecond
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"a": 1}`)
	before := time.Now()
	rr := start(t, r)
	testwait.For(t, 10*time.Second, "the retry", func() bool { return ev.count(EventRetry) == 1 })
	requeued := time.Now()
	rr.stop(t)
	if st := tc.stats("q"); st.Deferred != 1 {
		t.Fatalf("stats %+v, want the message deferred", st)
	}
	body, deliveries := tc.peek("q", 5*time.Second)
	if back := time.Since(requeued); back < 500*time.Millisecond {
		t.Errorf("the message was back %v after the requeue, want RequeueDelay", back)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if env["tries"] != float64(1) || fmt.Sprint(env["tasks_left"]) != "[fails]" || fmt.Sprint(env["data"]) != "map[a:1]" || deliveries != 2 {
		t.Errorf("envelope %s (delivery %d)", body, deliveries)
	}
	if started := env["started"].(float64); started < float64(before.Unix()) || started > float64(requeued.Unix()) {
		t.Errorf("started %v", started)
	}
	retryOn := env["retry_on"].(float64)
	if lo, hi := float64(before.Add(700*time.Millisecond).UnixMicro())/1e6, float64(requeued.Add(700*time.Millisecond).UnixMicro())/1e6; retryOn < lo || retryOn > hi {
		t.Errorf("retry_on %f, want within [%f, %f]", retryOn, lo, hi)
	}
}

// TestReader_GiveUpAfterMaxTries: a message that always fails is attempted
// exactly MaxTries times, with delays RequeueDelay×1, ×2, ...; GiveUp runs
// once, with the final envelope; the message is acked, the queue empty.
func TestReader_GiveUpAfterMaxTries(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	var gaveUp []*Message
	var mu sync.Mutex
	cfg := testConfig(tc, map[string]Task{
		"bad":  func(ctx context.Context, m *Message) error { c.add("bad", m); return errors.New("poison") },
		"good": func(ctx context.Context, m *Message) error { c.add("good", m); return nil },
	})
	cfg.MaxTries = 3
	cfg.OnEvent = ev.on
	cfg.GiveUp = func(ctx context.Context, m *Message) {
		mu.Lock()
		gaveUp = append(gaveUp, m)
		mu.Unlock()
	}
	r, _ := New(cfg)
	tc.put("q", "poison pill")
	start(t, r)
	testwait.For(t, 10*time.Second, "give-up", func() bool { return ev.count(EventGiveUp) == 1 })
	testwait.For(t, 5*time.Second, "an empty queue", func() bool {
		st := tc.stats("q")
		return st.Depth == 0 && st.InFlight == 0 && st.Deferred == 0
	})

	if n := c.count("bad", ""); n != 3 {
		t.Errorf("bad ran %d times, want MaxTries=3", n)
	}
	if n := c.count("good", ""); n != 1 {
		t.Errorf("good ran %d times, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(gaveUp) != 1 {
		t.Fatalf("GiveUp called %d times", len(gaveUp))
	}
	m := gaveUp[0]
	if m.Attempts != 3 || !slices.Equal(m.TasksLeft, []string{"bad"}) || string(m.Body) != "poison pill" || m.Err == nil || !strings.Contains(m.Err.Error(), "poison") {
		t.Errorf("GiveUp got attempts %d tasks %v body %q err %v", m.Attempts, m.TasksLeft, m.Body, m.Err)
	}
	var env map[string]any
	json.Unmarshal(m.Envelope(), &env)
	if env["tries"] != float64(3) || env["data"] != "poison pill" || env["data_encoding"] != "text" {
		t.Errorf("final envelope %s", m.Envelope())
	}
	if got := ev.kinds(); !slices.Equal(got, []EventKind{EventRetry, EventRetry, EventGiveUp}) {
		t.Errorf("events %v", got)
	}
	s := r.Stats()
	if s.GivenUp != 1 || s.Failed != 3 || s.Retried != 2 || s.Processed != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestReader_GiveUpToDeadLetter: with DeadLetter set, the final envelope
// is put there once.
func TestReader_GiveUpToDeadLetter(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{"bad": func(ctx context.Context, m *Message) error { return errors.New("x") }})
	cfg.MaxTries = 1
	cfg.DeadLetter = "q.dead"
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"k": "v"}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "give-up", func() bool { return ev.count(EventGiveUp) == 1 })
	dead := tc.dump("q.dead")
	if len(dead) != 1 {
		t.Fatalf("dead letters %q", dead)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(dead[0]), &env); err != nil || env["tries"] != float64(1) || fmt.Sprint(env["data"]) != "map[k:v]" {
		t.Errorf("dead letter %s (%v)", dead[0], err)
	}
}

// TestReader_ExhaustedEnvelopeGivenUp: an envelope that arrives with its
// tries used up (written by a reader with a larger budget) is given up
// without running any task, as BaseReader does.
func TestReader_ExhaustedEnvelopeGivenUp(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error { c.add("t", m); return nil }})
	cfg.MaxTries = 2
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"started": 1795706944, "tasks_left": ["t"], "tries": 2, "data": {"a": 1}, "retry_on": 1795706945.943299}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "give-up", func() bool { return ev.count(EventGiveUp) == 1 })
	if n := c.count("t", ""); n != 0 {
		t.Errorf("task ran %d times", n)
	}
	if m := ev.list()[0].Message; m.Attempts != 2 || !errors.Is(m.Err, errNoTriesLeft) {
		t.Errorf("attempts %d err %v", m.Attempts, m.Err)
	}
}

// TestReader_NotDueEnvelope: a Python-written envelope whose retry_on is
// ahead is given back with the server's delay, untouched and without an
// attempt, once (no cycling), and processed when due with tries+1.
func TestReader_NotDueEnvelope(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	cfg := testConfig(tc, map[string]Task{
		"flaky": func(ctx context.Context, m *Message) error { c.add("flaky", m); return nil },
		"ok":    func(ctx context.Context, m *Message) error { c.add("ok", m); return nil },
	})
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	due := time.Now().Add(2500 * time.Millisecond)
	body := fmt.Sprintf(`{"started": 1795706944, "tasks_left": ["flaky"], "tries": 1, "data": {"a": 1}, "retry_on": %.6f}`, float64(due.UnixMicro())/1e6)
	tc.put("q", body)
	start(t, r)
	testwait.For(t, 10*time.Second, "processing", func() bool { return ev.count(EventDone) == 1 })
	if time.Now().Before(due.Add(-dueSlack)) {
		t.Errorf("processed %v before retry_on", time.Until(due))
	}
	if got := ev.kinds(); !slices.Equal(got, []EventKind{EventNotDue, EventDone}) {
		t.Errorf("events %v, want one not_due then done", got)
	}
	calls := c.all()
	if len(calls) != 1 || calls[0].task != "flaky" || calls[0].attempts != 2 || calls[0].body != `{"a": 1}` {
		t.Errorf("calls %+v, want flaky once at attempt 2", calls)
	}
	if m := ev.list()[1].Message; m.Deliveries != 2 {
		t.Errorf("deliveries %d, want 2 (one not-due, one attempt)", m.Deliveries)
	}
}

// TestReader_ValidateFalseSkips: Validate false acks the message without
// running a task; Preprocess output reaches Validate and the tasks.
func TestReader_ValidateFalseSkips(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		c.add("t", m)
		if m.Data.(float64) <= 0.5 {
			return errors.New("validate let a small number through")
		}
		return nil
	}})
	cfg.Preprocess = func(ctx context.Context, m *Message) error {
		var v struct{ N float64 }
		if err := m.Decode(&v); err != nil {
			return err
		}
		m.Data = v.N
		return nil
	}
	cfg.Validate = func(ctx context.Context, m *Message) bool { return m.Data.(float64) > 0.5 }
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"n": 0.2}`, `{"n": 0.7}`, `{"n": 0.4}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "3 outcomes", func() bool { return len(ev.list()) == 3 })
	if ev.count(EventSkipped) != 2 || ev.count(EventDone) != 1 {
		t.Errorf("events %v", ev.kinds())
	}
	if n := c.count("t", ""); n != 1 {
		t.Errorf("task ran %d times", n)
	}
	testwait.For(t, 5*time.Second, "an empty queue", func() bool { st := tc.stats("q"); return st.Depth == 0 && st.InFlight == 0 })
	if s := r.Stats(); s.Skipped != 2 || s.Processed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestReader_PreprocessFailure: a Preprocess error fails the attempt for
// every task (none runs, all stay in tasks_left), counts as a try and is
// retried after RequeueDelay×tries.
func TestReader_PreprocessFailure(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	var pre atomic.Int32
	cfg := testConfig(tc, map[string]Task{
		"a": func(ctx context.Context, m *Message) error { c.add("a", m); return nil },
		"b": func(ctx context.Context, m *Message) error { c.add("b", m); return nil },
	})
	cfg.Preprocess = func(ctx context.Context, m *Message) error {
		if pre.Add(1) == 1 {
			return errors.New("decoder down")
		}
		return nil
	}
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"z": 1}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return ev.count(EventDone) == 1 })
	evs := ev.list()
	if evs[0].Kind != EventRetry || !slices.Equal(evs[0].Message.TasksLeft, []string{"a", "b"}) || !strings.Contains(evs[0].Message.Err.Error(), "decoder down") {
		t.Errorf("first outcome %v tasks %v err %v", evs[0].Kind, evs[0].Message.TasksLeft, evs[0].Message.Err)
	}
	if calls := c.all(); len(calls) != 2 || calls[0].attempts != 2 {
		t.Errorf("calls %+v, want a and b once each, at attempt 2", calls)
	}
	if s := r.Stats(); s.TaskFailures[preprocessTimer] != 1 || s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestReader_UnknownTaskFails: a tasks_left name this reader lacks fails
// like a task (BaseReader stops on it), is retried, and given up.
func TestReader_UnknownTaskFails(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{"ok": func(ctx context.Context, m *Message) error { return nil }})
	cfg.MaxTries = 2
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"data": {"q": 1}, "tries": 0, "retry_on": null, "tasks_left": ["nope"]}`)
	start(t, r)
	testwait.For(t, 10*time.Second, "give-up", func() bool { return ev.count(EventGiveUp) == 1 })
	if got := ev.kinds(); !slices.Equal(got, []EventKind{EventRetry, EventGiveUp}) {
		t.Errorf("events %v", got)
	}
}

// TestReader_PanicIsFailure: a panicking task fails; the reader lives on.
func TestReader_PanicIsFailure(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{"p": func(ctx context.Context, m *Message) error {
		if m.Attempts == 1 {
			panic("boom")
		}
		return nil
	}})
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "x")
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return ev.count(EventDone) == 1 })
	if ev.list()[0].Kind != EventRetry {
		t.Errorf("events %v", ev.kinds())
	}
}

// TestReader_RawBodyRoundTrip: text and binary bodies that fail once come
// back to the tasks byte for byte.
func TestReader_RawBodyRoundTrip(t *testing.T) {
	tc := newTestCluster(t, 1)
	var c calls
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		c.add("t", m)
		if m.Attempts == 1 {
			return errors.New("once")
		}
		return nil
	}})
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	bodies := []string{"hello world\n", "\xff\xfe binary", "0", `{"data": 0}`, "[1, 2]"}
	tc.put("q", bodies...)
	start(t, r)
	testwait.For(t, 10*time.Second, "all done", func() bool { return ev.count(EventDone) == len(bodies) })
	for _, b := range bodies {
		if n := c.count("t", b); n != 2 {
			t.Errorf("body %q seen %d times, want 2 (both attempts with the same body)", b, n)
		}
	}
}

// TestReader_RequeueWithoutBackoff: such a failure is retried but does not
// grow the back-off; an ordinary failure does.
func TestReader_RequeueWithoutBackoff(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{
		"soft": func(ctx context.Context, m *Message) error {
			if m.Attempts == 1 {
				return fmt.Errorf("busy: %w", ErrRequeueWithoutBackoff)
			}
			return nil
		},
	})
	cfg.BackoffStep = time.Minute // any counted failure would stall the test
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a")
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return ev.count(EventDone) == 1 })
	if d := r.backoff.current(); d != 0 {
		t.Errorf("backoff %v", d)
	}
}

// TestFailureBackoff: intervals per timer grow and shrink by the step
// within [0, max]; the pause is the largest.
func TestFailureBackoff(t *testing.T) {
	b := newFailureBackoff(3*time.Second, 10*time.Second)
	b.record("a", false)
	b.record("a", false)
	b.record("b", false)
	if d := b.current(); d != 6*time.Second {
		t.Fatalf("current %v", d)
	}
	for range 5 {
		b.record("a", false)
	}
	if d := b.current(); d != 10*time.Second {
		t.Fatalf("capped %v", d)
	}
	b.record("a", true)
	b.record("a", true)
	b.record("a", true)
	b.record("a", true)
	if d := b.current(); d != 3*time.Second {
		t.Fatalf("after successes %v, want b's 3s", d)
	}
	now := time.Now()
	if d := b.attemptDone(now); d != 3*time.Second || !b.until.Equal(now.Add(3*time.Second)) {
		t.Fatalf("pause %v until %v", d, b.until)
	}
	off := newFailureBackoff(-1, time.Minute)
	off.record("a", false)
	if off.current() != 0 || off.attemptDone(now) != 0 {
		t.Fatal("disabled backoff paused")
	}
}

// TestReader_BackoffPausesFetching: after a failure the reader fetches
// nothing new for the back-off interval.
func TestReader_BackoffPausesFetching(t *testing.T) {
	tc := newTestCluster(t, 1)
	var mu sync.Mutex
	var starts []time.Time
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if string(m.Body) == "fail" {
			return errors.New("x")
		}
		return nil
	}})
	cfg.BackoffStep = 400 * time.Millisecond
	cfg.RequeueDelay = time.Hour
	r, _ := New(cfg)
	tc.put("q", "fail", "next")
	start(t, r)
	testwait.For(t, 10*time.Second, "two starts", func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) == 2 })
	if gap := starts[1].Sub(starts[0]); gap < 350*time.Millisecond {
		t.Errorf("next message started %v after the failure, want the 400ms back-off", gap)
	}
}

// TestReader_AckOutcomeUnknown: an ack whose answer is lost after it was
// applied is retried; the retry's 409 means it happened: counted as done,
// marked uncertain, not as a lost lease.
func TestReader_AckOutcomeUnknown(t *testing.T) {
	tc := newTestCluster(t, 2)
	var ev events
	var dropped atomic.Bool
	for _, nd := range tc.nodes {
		nd.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/ack" && dropped.CompareAndSwap(false, true) {
				nd.applyThenDrop(w, r)
				return true
			}
			return false
		})
	}
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error { return nil }})
	cfg.Addrs = tc.urls()
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a")
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return len(ev.list()) == 1 })
	e := ev.list()[0]
	if e.Kind != EventDone || !e.Uncertain || e.LeaseLost || e.Err != nil {
		t.Errorf("event %+v", e)
	}
	if s := r.Stats(); s.Processed != 1 || s.LeaseLost != 0 || s.SettleErrors != 0 {
		t.Errorf("stats %+v", s)
	}
	if st := tc.stats("q"); st.InFlight != 0 || st.Depth != 0 {
		t.Errorf("queue %+v", st)
	}
}

// TestReader_NackOutcomeUnknown: the same for the retry nack: the
// message is requeued once and processed on its second attempt.
func TestReader_NackOutcomeUnknown(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	var dropped atomic.Bool
	nd := tc.nodes[0]
	nd.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/nack" && dropped.CompareAndSwap(false, true) {
			nd.applyThenDrop(w, r)
			return true
		}
		return false
	})
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		if m.Attempts == 1 {
			return errors.New("x")
		}
		return nil
	}})
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a")
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return ev.count(EventDone) == 1 })
	evs := ev.list()
	if len(evs) != 2 || evs[0].Kind != EventRetry || !evs[0].Uncertain || evs[1].Message.Attempts != 2 {
		t.Errorf("events %+v", evs)
	}
}

// TestReader_LeaseLostAck: an ack after the lease ended (a stalled task)
// answers 409 at once: reported as a lost lease; the message comes back.
func TestReader_LeaseLostAck(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	var runs atomic.Int32
	release := make(chan struct{})
	nd := tc.nodes[0]
	// Touches fail, so the lease runs out while the task works.
	nd.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/touch" {
			http.Error(w, "no", http.StatusBadRequest)
			return true
		}
		return false
	})
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		if runs.Add(1) == 1 {
			<-release
		}
		return nil
	}})
	cfg.Lease = 150 * time.Millisecond
	cfg.Concurrency = 2
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a")
	start(t, r)
	// The second worker gets the message again once the lease ended.
	testwait.For(t, 10*time.Second, "the redelivery", func() bool { return ev.count(EventDone) == 1 })
	close(release)
	testwait.For(t, 10*time.Second, "the stalled ack", func() bool { return len(ev.list()) == 2 })
	evs := ev.list()
	if evs[0].LeaseLost || evs[1].Kind != EventDone || !evs[1].LeaseLost {
		t.Errorf("events %+v", evs)
	}
	if r.Stats().LeaseLost != 1 {
		t.Errorf("stats %+v", r.Stats())
	}
}

// TestReader_LongTaskTouched: a task that runs for several leases keeps
// its lease by touches: the message is not delivered again.
func TestReader_LongTaskTouched(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	var runs atomic.Int32
	cfg := testConfig(tc, map[string]Task{"slow": func(ctx context.Context, m *Message) error {
		runs.Add(1)
		time.Sleep(2500 * time.Millisecond)
		return nil
	}})
	cfg.Lease = time.Second
	cfg.Concurrency = 2
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a")
	start(t, r)
	testwait.For(t, 10*time.Second, "done", func() bool { return ev.count(EventDone) == 1 })
	if n := runs.Load(); n != 1 {
		t.Errorf("task ran %d times", n)
	}
	if e := ev.list()[0]; e.LeaseLost || e.Message.Deliveries != 1 {
		t.Errorf("event %+v", e)
	}
	if n := tc.nodes[0].count("/touch"); n < 3 {
		t.Errorf("%d touches, want one every Lease/3", n)
	}
}

// TestReader_FailoverToAnotherNode: when the node in use stops answering,
// the reader goes on through another (discovered) node.
func TestReader_FailoverToAnotherNode(t *testing.T) {
	tc := newTestCluster(t, 2)
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error { return nil }})
	cfg.OnEvent = ev.on
	// A long-poll cut by the failure may have leased the next message on
	// the dying node (here it shares the queue): that lease must run out.
	cfg.Lease = time.Second
	r, _ := New(cfg) // knows n1 only; discovers n2
	tc.put("q", "a")
	start(t, r)
	testwait.For(t, 10*time.Second, "the first message", func() bool { return ev.count(EventDone) == 1 })
	if len(r.Nodes()) != 2 {
		t.Fatalf("nodes %+v, want n2 discovered", r.Nodes())
	}
	tc.nodes[0].refuseConnections()
	tc.leader.Store("n2")
	c2, _ := client.NewQueue([]string{tc.nodes[1].srv.URL}, nil)
	c2.Put(context.Background(), "q", []byte("b"), client.PutOptions{})
	testwait.For(t, 15*time.Second, "the second message through n2", func() bool { return ev.count(EventDone) == 2 })
	if tc.nodes[1].count("/mget") == 0 {
		t.Errorf("no fetch through n2")
	}
}

// TestReader_LeaderRouting: under BalanceLeader the requests go to the
// leader that /cluster/status names; under BalanceSpread to every node.
func TestReader_LeaderRouting(t *testing.T) {
	for _, b := range []Balance{BalanceLeader, BalanceSpread} {
		t.Run(b.String(), func(t *testing.T) {
			tc := newTestCluster(t, 3)
			tc.leader.Store("n2")
			var ev events
			cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error { return nil }})
			cfg.Balance = b
			cfg.OnEvent = ev.on
			cfg.LongPoll = 20 * time.Millisecond
			r, _ := New(cfg)
			for i := range 30 {
				tc.put("q", fmt.Sprint(i))
			}
			start(t, r)
			testwait.For(t, 10*time.Second, "all done", func() bool { return ev.count(EventDone) == 30 })
			var gets []int
			for _, nd := range tc.nodes {
				gets = append(gets, nd.count("/mget"))
			}
			switch b {
			case BalanceLeader:
				if gets[0] != 0 || gets[2] != 0 || gets[1] == 0 {
					t.Errorf("fetches per node %v, want all on n2", gets)
				}
			case BalanceSpread:
				if gets[0] == 0 || gets[1] == 0 || gets[2] == 0 {
					t.Errorf("fetches per node %v, want all nodes used", gets)
				}
			}
		})
	}
}

// TestReader_ConcurrencyBound: the reader never holds more unfinished
// leases (waiting for a worker or running) than it has workers, even when
// MGetItems is larger, and runs up to Concurrency messages at once.
func TestReader_ConcurrencyBound(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	var cur, peak atomic.Int32
	var peakLeases atomic.Int64
	var r *Reader
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if h := heldUnfinished(r); h > peakLeases.Load() {
			peakLeases.Store(h)
		}
		time.Sleep(20 * time.Millisecond)
		return nil
	}})
	cfg.Concurrency = 4
	cfg.MGetItems = 100
	cfg.OnEvent = ev.on
	r, _ = New(cfg)
	for i := range 40 {
		tc.put("q", fmt.Sprint(i))
	}
	start(t, r)
	testwait.For(t, 20*time.Second, "all done", func() bool { return ev.count(EventDone) == 40 })
	if p := peak.Load(); p != 4 {
		t.Errorf("peak concurrency %d, want 4", p)
	}
	if p := peakLeases.Load(); p > 4 {
		t.Errorf("peak of leases not yet finished %d, want at most Concurrency=4", p)
	}
}

// heldUnfinished counts the deliveries r holds that are waiting for a
// worker or running.
func heldUnfinished(r *Reader) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for d := range r.held {
		if s := d.state.Load(); s == stateQueued || s == stateRunning {
			n++
		}
	}
	return n
}

// TestReader_GracefulShutdown: at shutdown a running task finishes and is
// acked; nothing new is fetched; Run returns.
func TestReader_GracefulShutdown(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	started := make(chan struct{}, 10)
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		started <- struct{}{}
		time.Sleep(300 * time.Millisecond)
		return nil
	}})
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "a", "b", "c")
	rr := start(t, r)
	<-started
	rr.stop(t)
	if got := ev.kinds(); !slices.Equal(got, []EventKind{EventDone}) {
		t.Errorf("events %v, want the running message done and nothing else", got)
	}
	if st := tc.stats("q"); st.Depth != 2 || st.InFlight != 0 {
		t.Errorf("queue %+v, want the two others ready", st)
	}
}

// TestReader_ShutdownReleasesStuckTask: a task that outlives the grace
// period and ignores its context is given back (nack, delay 0) with the
// tasks that succeeded removed and tries unchanged; Run returns.
func TestReader_ShutdownReleasesStuckTask(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	started := make(chan struct{})
	block := make(chan struct{})
	defer close(block)
	cfg := testConfig(tc, map[string]Task{
		"a_quick": func(ctx context.Context, m *Message) error { return nil },
		"b_stuck": func(ctx context.Context, m *Message) error { close(started); <-block; return nil },
	})
	cfg.ShutdownGrace = 200 * time.Millisecond
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", `{"a": 1}`)
	rr := start(t, r)
	<-started
	t0 := time.Now()
	rr.stop(t)
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("Run took %v to return", d)
	}
	if got := ev.kinds(); !slices.Equal(got, []EventKind{EventReleased}) {
		t.Fatalf("events %v", got)
	}
	body, attempts := tc.peek("q", 0)
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("released body %q: %v", body, err)
	}
	if env["tries"] != float64(0) || fmt.Sprint(env["tasks_left"]) != "[b_stuck]" || attempts != 2 {
		t.Errorf("released %s (delivery %d), want tries 0 and tasks_left [b_stuck]", body, attempts)
	}
}

// TestReader_StatsAndCollectors: Stats and the Prometheus collector agree
// and count every delivery once.
func TestReader_StatsAndCollectors(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		if string(m.Body) == "bad" {
			return errors.New("x")
		}
		return nil
	}})
	cfg.MaxTries = 2
	cfg.Validate = func(ctx context.Context, m *Message) bool { return string(m.Body) != "skip" }
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	tc.put("q", "ok1", "bad", "skip", "ok2")
	start(t, r)
	testwait.For(t, 10*time.Second, "all outcomes", func() bool { return len(ev.list()) == 5 })
	s := r.Stats()
	want := Stats{Delivered: 5, Processed: 2, Failed: 2, Retried: 1, GivenUp: 1, Skipped: 1}
	s.TaskFailures = nil
	if !reflect.DeepEqual(s, want) {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(r.Collectors()[0]); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "queue" && l.GetValue() != "q" {
					t.Errorf("%s: queue label %q", name, l.GetValue())
				}
				if l.GetName() == "task" {
					name += "/" + l.GetValue()
				}
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			} else {
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, v := range map[string]float64{
		"quorumq_reader_delivered_total": 5, "quorumq_reader_processed_total": 2, "quorumq_reader_failed_total": 2,
		"quorumq_reader_retried_total": 1, "quorumq_reader_given_up_total": 1, "quorumq_reader_skipped_total": 1,
		"quorumq_reader_in_flight": 0, "quorumq_reader_task_failures_total/t": 2, "quorumq_reader_task_failures_total/__preprocess": 0,
	} {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
}

// TestNew_Validates: bad configurations are refused with every problem
// named.
func TestNew_Validates(t *testing.T) {
	_, err := New(Config{Queue: "bad name", Tasks: map[string]Task{"": nil}, MaxTries: -1})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"no address", "queue name \"bad name\"", "empty name", "MaxTries is negative", "Lease is zero", "no logger"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	cfg := DefaultConfig()
	cfg.Addrs, cfg.Tasks = []string{"127.0.0.1:1"}, map[string]Task{"t": func(context.Context, *Message) error { return nil }}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.cfg.MaxTries != 5 || r.cfg.RequeueDelay != 90*time.Second || r.cfg.MGetItems != 1 || r.cfg.Balance != BalanceLeader {
		t.Errorf("defaults %+v", r.cfg)
	}
}

// TestReader_ShutdownLeavesNothingLeased: stopped in the middle of a busy
// queue, the reader acks what it finished and gives back everything else,
// the messages of a fetch in flight included: no lease is left to expire.
func TestReader_ShutdownLeavesNothingLeased(t *testing.T) {
	tc := newTestCluster(t, 1)
	var ev events
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		time.Sleep(time.Millisecond)
		return nil
	}})
	cfg.Concurrency = 8
	cfg.OnEvent = ev.on
	r, _ := New(cfg)
	var bodies []string
	for i := range 2000 {
		bodies = append(bodies, fmt.Sprint(i))
	}
	if err := tc.c.MPut(context.Background(), "q", toBytes(bodies), client.MPutOptions{}); err != nil {
		t.Fatal(err)
	}
	rr := start(t, r)
	testwait.For(t, 20*time.Second, "some progress", func() bool { return ev.count(EventDone) >= 100 })
	rr.stop(t)
	st := tc.stats("q")
	done, released := ev.count(EventDone), ev.count(EventReleased)
	if st.InFlight != 0 || st.Depth != int64(2000-done) {
		t.Errorf("after Run: %+v; %d done, %d released", st, done, released)
	}
	if s := r.Stats(); s.Delivered != int64(done+released) || s.InFlight != 0 {
		t.Errorf("stats %+v; %d done, %d released", s, done, released)
	}
	t.Logf("%d done, %d given back at shutdown", done, released)
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}
