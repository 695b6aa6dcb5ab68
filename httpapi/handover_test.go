package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// drained waits until e's queued background confirmations were all tried.
func drained(t *testing.T, e *env) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := DrainHandovers(ctx, e.h); err != nil {
		t.Fatalf("confirmations not drained: %v", err)
	}
}

// waitOps waits until e's queue has had n proposals of op: a confirmation
// is queued after the answer is flushed, which the client may see first.
func waitOps(t *testing.T, e *env, op fsm.Op, n int64) {
	t.Helper()
	testwait.For(t, 10*time.Second, fmt.Sprintf("%d %s proposals", n, op), func() bool {
		return e.q.byOp[op].Load() >= n
	})
	drained(t, e)
	if got := e.q.byOp[op].Load(); got != n {
		t.Fatalf("%d %s proposals, want %d", got, op, n)
	}
}

// putN stores n messages "m0".."m<n-1>" in queue q through /mput.
func putN(e *env, q string, n int) {
	e.t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "m%d\n", i)
	}
	e.want(e.post("/mput?queue="+q, b.String()), 200, "")
}

// expireHandovers moves the clock past the handover lease and applies a
// tick, as the leader would.
func expireHandovers(e *env) {
	e.clock.Advance(e.opts.HandoverLease + time.Second)
	if _, err := e.q.Propose(context.Background(), fsm.Command{Op: fsm.OpTick}); err != nil {
		e.t.Fatal(err)
	}
}

func TestMget_HugeItems_AnswersAtMostMaxMGetAndDepthDropsByThat(t *testing.T) {
	e := newEnv(t)
	putN(e, "big", 2500)
	r := e.get("/mget?queue=big&items=99999999")
	got := len(strings.Split(r.body, "\n")) // the full answer has no trailing separator
	ids := strings.Split(r.header.Get(api.HeaderMessageIDs), ",")
	if r.code != 200 || got != DefaultMaxMGet || len(ids) != got {
		t.Fatalf("%d, %d items and %d ids, want %d of each", r.code, got, len(ids), DefaultMaxMGet)
	}
	if st := e.stats("big"); st.Depth != 2500-int64(got) || st.Gets != uint64(got) {
		t.Fatalf("stats %+v: depth must drop by exactly the %d handed out", st, got)
	}
	waitOps(t, e, fsm.OpHandoverAck, 1)
	expireHandovers(e)
	if st := e.stats("big"); st.Depth != 2500-int64(got) {
		t.Fatalf("depth %d after the handover lease: confirmed messages came back", st.Depth)
	}
}

func TestMget_TextAnswer_IDsHeaderWithinLimitAndNothingLeftOut(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxMGet = 5000 })
	putN(e, "q", 5000)
	r := e.get("/mget?queue=q&items=5000")
	h := r.header.Get(api.HeaderMessageIDs)
	n := strings.Count(r.body, "\n")
	if len(h) > maxIDsHeader || len(h) < maxIDsHeader-5 {
		t.Fatalf("X-Message-Ids is %d bytes, want just under %d", len(h), maxIDsHeader)
	}
	if ids := strings.Split(h, ","); len(ids) != n || n >= 5000 {
		t.Fatalf("%d ids for %d items: every message taken is in the answer and its header", len(ids), n)
	}
	if st := e.stats("q"); st.Depth != int64(5000-n) {
		t.Fatalf("depth %d, want %d: the state machine took exactly what was answered", st.Depth, 5000-n)
	}
	// format=json carries the ids in the body: no header cut.
	r = e.get("/mget?queue=q&items=5000&format=json")
	if c := strings.Count(r.body, `"id":`); c != 5000-n {
		t.Fatalf("json answer has %d messages, want the %d left", c, 5000-n)
	}
}

func TestMget_ByteCap_StopsBeforeItButHandsOutOne(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxGetBytes = 10 })
	e.want(e.post("/mput", "aaaa\nbbbb\ncccc\n"+strings.Repeat("x", 20)+"\n"), 200, "")
	e.mustGet("/mget?items=10", "aaaa\nbbbb\n")
	e.mustGet("/mget?items=10&separator=,", "cccc,")
	e.mustGet("/mget?items=10&separator=,", strings.Repeat("x", 20)+",")
}

func TestGet_AnswerWritten_ConfirmedInTheBackground(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=one")
	r := e.mustGet("/get", "one")
	if v := r.header.Get(headerHandover); v != "" {
		t.Fatalf("a client's answer carries %s %q", headerHandover, v)
	}
	waitOps(t, e, fsm.OpHandoverAck, 1)
	expireHandovers(e)
	e.mustGet("/get", "")
	if got := e.metric(`quorumq_handover_messages_total{result="confirmed"}`); got != "1" {
		t.Fatalf("confirmed %q, want 1", got)
	}
}

func TestGet_Leased_NoHandover(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=one")
	r := e.mustGet("/get?lease=1m", "one")
	if st := e.stats(api.DefaultQueue); st.InFlight != 1 {
		t.Fatalf("in flight %d, want the lease the client holds", st.InFlight)
	}
	e.want(e.get("/ack?id="+r.header.Get(api.HeaderMessageID)), 200, "")
}

// rawRequest sends one GET on a new connection to srv and returns it
// unread.
func rawRequest(t *testing.T, srv *httptest.Server, target string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	return c
}

// ctxServer serves h, passing each request's context to ctxs.
func ctxServer(t *testing.T, h http.Handler, ctxs chan<- context.Context) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctxs <- r.Context()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closeDuringTake makes e's next get proposal close conn first and wait
// until the server has seen the client go (its request context ends):
// the messages are taken for a client that is already gone.
func closeDuringTake(t *testing.T, e *env, conn func() net.Conn, reqCtx <-chan context.Context) {
	var once sync.Once
	e.q.failPropose(func(_ context.Context, cmd fsm.Command) error {
		if cmd.Op != fsm.OpGet {
			return nil
		}
		once.Do(func() {
			ctx := <-reqCtx
			conn().Close()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("the server never noticed the client going away")
			}
		})
		return nil
	})
}

func TestMget_ClientGoneBeforeTheAnswer_MessagesGivenBackAtOnce(t *testing.T) {
	e := newEnv(t)
	putN(e, "q", 5)
	ctxs := make(chan context.Context, 4)
	srv := ctxServer(t, e.h, ctxs)
	var conn net.Conn
	var mu sync.Mutex
	closeDuringTake(t, e, func() net.Conn { mu.Lock(); defer mu.Unlock(); return conn }, ctxs)
	mu.Lock()
	conn = rawRequest(t, srv, "/mget?queue=q&items=3")
	mu.Unlock()
	testwait.For(t, 10*time.Second, "the handover given back", func() bool {
		return e.q.byOp[fsm.OpHandoverNack].Load() == 1
	})
	if st := e.stats("q"); st.Depth != 5 {
		t.Fatalf("depth %d, want all 5 back without waiting for the lease", st.Depth)
	}
	e.mustGet("/mget?queue=q&items=5", "m0\nm1\nm2\nm3\nm4")
	r := e.get("/get?queue=q")
	e.want(r, 200, "")
	if got := e.metric(`quorumq_handover_messages_total{result="given_back"}`); got != "3" {
		t.Fatalf("given back %q, want 3", got)
	}
}

// TestGet_ContextEndedByTheServerAfterTheTake_AnswersOutcomeUnknown: a
// draining node ends the contexts of the requests still running while
// their clients wait. A get that had taken a message then answers 503
// OUTCOME_UNKNOWN, never an empty 200 ("the queue is empty"), and the
// message comes back at once.
func TestGet_ContextEndedByTheServerAfterTheTake_AnswersOutcomeUnknown(t *testing.T) {
	for _, target := range []string{"/get?queue=q", "/mget?queue=q&items=2"} {
		t.Run(target, func(t *testing.T) {
			e := newEnv(t)
			putN(e, "q", 2)
			cancels := make(chan context.CancelFunc, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx, cancel := context.WithCancel(r.Context())
				defer cancel()
				cancels <- cancel
				e.h.ServeHTTP(w, r.WithContext(ctx))
			}))
			t.Cleanup(srv.Close)
			e.q.failPropose(func(_ context.Context, cmd fsm.Command) error {
				if cmd.Op == fsm.OpGet {
					(<-cancels)() // as the drain does, with the client still there
				}
				return nil
			})
			r := roundTrip(t, srv, http.MethodGet, target, "")
			if r.code != http.StatusServiceUnavailable || r.header.Get(api.HeaderErrorCode) != api.ErrOutcomeUnknown.Token {
				t.Fatalf("got %d %s %q, want 503 OUTCOME_UNKNOWN", r.code, r.header.Get(api.HeaderErrorCode), r.body)
			}
			for _, h := range []string{api.HeaderMessageID, api.HeaderMessageIDs, api.HeaderAttempts} {
				if v := r.header.Get(h); v != "" {
					t.Fatalf("the error answer carries %s %q", h, v)
				}
			}
			testwait.For(t, 10*time.Second, "the handover given back", func() bool {
				return e.q.byOp[fsm.OpHandoverNack].Load() == 1
			})
			e.q.failPropose(nil)
			e.mustGet("/mget?queue=q&items=2", "m0\nm1")
		})
	}
}

func TestMget_ClientStopsReading_WriteTimesOutAndGivesBack(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.HandoverLease = 400 * time.Millisecond // writes bounded by 200 ms
		o.MaxGetBytes = 64 << 20
		o.MaxBodySize = 64 << 20
	})
	// 32 MiB: more than the socket buffers of a reader that reads nothing.
	body := strings.Repeat(strings.Repeat("x", 256<<10-1)+"\n", 128)
	e.want(e.post("/mput?queue=q", body), 200, "")
	c := rawRequest(t, e.srv, "/mget?queue=q&items=128")
	testwait.For(t, 20*time.Second, "the handover given back", func() bool {
		return e.q.byOp[fsm.OpHandoverNack].Load() == 1
	})
	c.Close()
	if st := e.stats("q"); st.Depth != 128 {
		t.Fatalf("depth %d, want all 128 back", st.Depth)
	}
	if n := e.q.byOp[fsm.OpHandoverAck].Load(); n != 0 {
		t.Fatalf("%d confirmations of an answer that was never read", n)
	}
}

func TestForward_RelayedGet_FollowerConfirmsAfterItsWrite(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	putN(n1, "q", 3)
	r := n2.mustGet("/mget?queue=q&items=2", "m0\nm1")
	if v := r.header.Get(headerHandover); v != "" {
		t.Fatalf("the follower's client sees %s %q", headerHandover, v)
	}
	wantHeader(t, r, api.HeaderMessageIDs, "1,2")
	testwait.For(t, 10*time.Second, "the follower's confirmation on the leader", func() bool {
		return n1.q.byOp[fsm.OpHandoverAck].Load() >= 1
	})
	drained(t, n2)
	drained(t, n1)
	if got := n1.q.byOp[fsm.OpHandoverAck].Load(); got != 1 {
		t.Fatalf("%d handover acks on the leader, want 1 (relayed by the follower)", got)
	}
	if got := n1.metric(`quorumq_handover_messages_total{result="confirmed"}`); got != "" {
		t.Fatalf("the leader confirmed %s itself: the follower's write was not awaited", got)
	}
	if got := n2.metric(`quorumq_handover_messages_total{result="confirmed"}`); got != "2" {
		t.Fatalf("follower confirmed %q, want 2", got)
	}
	expireHandovers(n1)
	n1.mustGet("/mget?queue=q&items=5", "m2\n")
}

// A follower that no longer knows a leader once it has written a relayed
// answer (it has just left the cluster, an election is under way)
// confirms with the leader that took the messages, rather than leaving
// them to come back when their lease ends.
func TestForward_RelayedGet_LeaderForgottenAfterTheWrite_ConfirmedWithItsServer(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	f.onPoll = func(id string, n int) {
		if id == "n2" && n >= 2 { // after the forward's own Leader() call
			f.believe["n2"] = ""
		}
	}
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	putN(n1, "q", 3)
	n2.mustGet("/mget?queue=q&items=2", "m0\nm1")
	testwait.For(t, 10*time.Second, "the follower's confirmation on the leader", func() bool {
		return n1.q.byOp[fsm.OpHandoverAck].Load() >= 1
	})
	drained(t, n2)
	if got := n2.metric(`quorumq_handover_messages_total{result="confirmed"}`); got != "2" {
		t.Fatalf("follower confirmed %q, want 2", got)
	}
	expireHandovers(n1)
	n1.mustGet("/mget?queue=q&items=5", "m2\n")
}

func TestForward_FollowersClientGone_MessagesComeBack(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	putN(n1, "q", 3)
	ctxs := make(chan context.Context, 4)
	srv := ctxServer(t, n2.h, ctxs)
	var conn net.Conn
	var mu sync.Mutex
	closeDuringTake(t, n1, func() net.Conn { mu.Lock(); defer mu.Unlock(); return conn }, ctxs)
	mu.Lock()
	conn = rawRequest(t, srv, "/mget?queue=q&items=3")
	mu.Unlock()
	// The follower cannot deliver: it gives the messages back, or, if the
	// relay was cut before it learned their ids, the lease does; the relay
	// was sent, so it counts as outcome_unknown, not canceled.
	testwait.For(t, 10*time.Second, "the relay to end", func() bool {
		return n1.q.byOp[fsm.OpHandoverNack].Load() == 1 || n2.metric(`quorumq_http_forwarded_total{result="outcome_unknown",route="mget"}`) == "1"
	})
	drained(t, n2)
	if n := n1.q.byOp[fsm.OpHandoverAck].Load(); n != 0 {
		t.Fatalf("%d confirmations of an answer the client never had", n)
	}
	expireHandovers(n1)
	n1.mustGet("/mget?queue=q&items=3", "m0\nm1\nm2")
}

func TestHandover_ForwardedWithoutTheOffer_LeaderConfirms(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=one")
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/get", nil)
	req.Header.Set(api.HeaderForwardedBy, "old-follower") // a follower that predates handovers
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if v := res.Header.Get(headerHandover); v != "" {
		t.Fatalf("answer carries %s %q for a follower that did not offer to confirm", headerHandover, v)
	}
	waitOps(t, e, fsm.OpHandoverAck, 1)
}

func TestHandoverRoute_BadInput_400AndNothingProposed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ target, body string }{
		{"/internal/handover?op=eat", "1"},
		{"/internal/handover?op=ack", ""},
		{"/internal/handover?op=ack", "5-2"},
		{"/internal/handover?op=ack", "1-99999999"},
		{"/internal/handover?op=back", "x"},
	} {
		if r := e.post(tc.target, tc.body); r.code != 400 {
			t.Fatalf("POST %s %q: %d %q, want 400", tc.target, tc.body, r.code, r.body)
		}
	}
	wantProposals(t, e, 0)
	e.want(e.post("/internal/handover?op=ack", "1-3,9"), 200, "0")
}

func TestRanges_RoundTrip(t *testing.T) {
	for _, ids := range [][]uint64{{1}, {1, 2, 3}, {7, 9, 10, 11, 20}, {1 << 60, 1<<60 + 1}} {
		s := string(formatRanges(nil, ids))
		got, err := parseRanges(s, 100)
		if err != nil || !reflect.DeepEqual(got, ids) {
			t.Fatalf("%v -> %q -> %v, %v", ids, s, got, err)
		}
	}
	if s := string(formatRanges(nil, []uint64{7, 8, 9, 12})); s != "7-9,12" {
		t.Fatalf("got %q", s)
	}
	if _, err := parseRanges("1-200", 100); err == nil {
		t.Fatal("200 ids accepted with a limit of 100")
	}
}

func TestOptions_MaxMGetZero_Refused(t *testing.T) {
	o := DefaultOptions()
	o.Queue, o.Cluster = newFSMQueue(time.Now), &fakeCluster{}
	o.MaxMGet = 0
	if _, err := NewQueueHandler(o); err == nil || !strings.Contains(err.Error(), "MaxMGet") {
		t.Fatalf("err %v, want MaxMGet refused", err)
	}
}

// The raw client's answer is never read in the tests above; this one reads
// it, to show that a raw client that does read gets its messages.
func TestGet_RawClientReads_Confirmed(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=one")
	c := rawRequest(t, e.srv, "/get")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	waitOps(t, e, fsm.OpHandoverAck, 1)
}
