package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// seen is one request as a fake node received it.
type seen struct {
	method, path string
	query        url.Values
	rawQuery     string
	body         []byte
}

// fakeNode is an httptest server that records requests and answers with
// answer (200 with an empty body when nil).
type fakeNode struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []seen
	answer func(w http.ResponseWriter, r *http.Request, n int)
}

func newFakeNode(t *testing.T, answer func(w http.ResponseWriter, r *http.Request, n int)) *fakeNode {
	t.Helper()
	f := &fakeNode{answer: answer}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, seen{method: r.Method, path: r.URL.Path, query: r.URL.Query(), rawQuery: r.URL.RawQuery, body: body})
		n := len(f.reqs)
		f.mu.Unlock()
		if f.answer != nil {
			f.answer(w, r, n)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func (f *fakeNode) last(t *testing.T) seen {
	t.Helper()
	r := f.requests()
	if len(r) == 0 {
		t.Fatal("no request received")
	}
	return r[len(r)-1]
}

// fail answers status with an X-Error-Code token, as a node does.
func fail(w http.ResponseWriter, status int, token, msg string) {
	if token != "" {
		w.Header().Set(api.HeaderErrorCode, token)
	}
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

func mustQueue(t *testing.T, addrs ...string) *Queue {
	t.Helper()
	q, err := NewQueue(addrs, withOptions(func(o *Options) { o.Backoff = Backoff{Min: time.Millisecond, Max: 5 * time.Millisecond} }))
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// deadAddr returns the address of a port nobody listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Test_Queue_Put_Request: Put sends the data as the raw POST body (any
// byte, newline and NUL included) with queue, id and delay in the query,
// and returns X-Message-Id.
func Test_Queue_Put_Request(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set(api.HeaderMessageID, "42")
	})
	q := mustQueue(t, f.URL)
	data := []byte("a b\n\x00c&d=e")
	id, err := q.Put(ctxT(t), "jobs", data, PutOptions{ID: "order-1", Delay: 90 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if id != "42" {
		t.Fatalf("id = %q", id)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/put" || !bytes.Equal(r.body, data) {
		t.Fatalf("got %s %s body %q", r.method, r.path, r.body)
	}
	if r.query.Get("queue") != "jobs" || r.query.Get("id") != "order-1" || r.query.Get("delay") != "1m30s" || r.query.Has("data") {
		t.Fatalf("query %v", r.query)
	}

	// Default queue and no options: no parameters at all.
	if _, err := q.Put(ctxT(t), "", []byte("x"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.rawQuery != "" {
		t.Fatalf("query %q", r.rawQuery)
	}
	// An empty message is refused without a request.
	before := len(f.requests())
	if _, err := q.Put(ctxT(t), "", nil, PutOptions{}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("empty put: %v", err)
	}
	if len(f.requests()) != before {
		t.Fatal("empty put was sent")
	}
}

// Test_Queue_MPut_Separator: messages are joined with a newline; when one
// contains a newline another separator no message contains is chosen and
// passed as separator=; an explicit separator found in a message, and an
// empty message, are refused without a request.
func Test_Queue_MPut_Separator(t *testing.T) {
	f := newFakeNode(t, nil)
	q := mustQueue(t, f.URL)
	ctx := ctxT(t)

	if err := q.MPut(ctx, "q", [][]byte{[]byte("a"), []byte("b")}, MPutOptions{ID: "k"}); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.path != "/mput" || string(r.body) != "a\nb" || r.query.Has("separator") || r.query.Get("id") != "k" {
		t.Fatalf("got %s body %q query %v", r.path, r.body, r.query)
	}

	if err := q.MPut(ctx, "q", [][]byte{[]byte("line1\nline2"), []byte("x\x1ey")}, MPutOptions{}); err != nil {
		t.Fatal(err)
	}
	r = f.last(t)
	sep := r.query.Get("separator")
	if sep != "\x1f" || string(r.body) != "line1\nline2\x1fx\x1ey" {
		t.Fatalf("separator %q body %q", sep, r.body)
	}

	if err := q.MPut(ctx, "q", [][]byte{[]byte("a,b")}, MPutOptions{Separator: ","}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("separator inside a message: %v", err)
	}
	if err := q.MPut(ctx, "q", [][]byte{[]byte("a"), {}}, MPutOptions{}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("empty message: %v", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Fatalf("%d requests sent, want 2", n)
	}
}

// Test_Queue_Get_Message: Get reads the body and the X-Message-Id,
// X-Attempts and X-Last-Error headers; an empty body is nil; lease and
// wait are passed as durations, api.NoLease as lease=0s.
func Test_Queue_Get_Message(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set(api.HeaderMessageID, "7")
			w.Header().Set(api.HeaderAttempts, "3")
			w.Header().Set(api.HeaderLastError, "timeout")
			io.WriteString(w, "resize photo 17\r")
		}
	})
	q := mustQueue(t, f.URL)
	m, err := q.Get(ctxT(t), "jobs", GetOptions{Lease: 30 * time.Second, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := Message{ID: "7", Attempts: 3, Data: []byte("resize photo 17\r"), LastError: "timeout"}
	if m == nil || m.ID != want.ID || m.Attempts != want.Attempts || string(m.Data) != string(want.Data) || m.LastError != want.LastError {
		t.Fatalf("got %+v", m)
	}
	r := f.last(t)
	if r.method != "POST" || r.path != "/get" || r.query.Get("lease") != "30s" || r.query.Get("wait") != "2s" || r.query.Get("queue") != "jobs" {
		t.Fatalf("got %s %s %v", r.method, r.path, r.query)
	}
	m, err = q.Get(ctxT(t), "", GetOptions{Lease: api.NoLease})
	if err != nil || m != nil {
		t.Fatalf("empty queue: %+v, %v", m, err)
	}
	if r := f.last(t); r.query.Get("lease") != "0s" {
		t.Fatalf("api.NoLease: %v", r.query)
	}
}

// Test_Queue_MGet_JSON: MGet asks for format=json and decodes ids,
// attempts, last errors and base64 bodies.
func Test_Queue_MGet_JSON(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			io.WriteString(w, `{"messages":[{"id":"8","attempts":1,"data":"héllo"},{"id":"9","attempts":2,"data":"/w==","encoding":"base64","last_error":"lease expired"}]}`+"\n")
			return
		}
		io.WriteString(w, `{"messages":[]}`+"\n")
	})
	q := mustQueue(t, f.URL)
	msgs, err := q.MGet(ctxT(t), "jobs", 10, GetOptions{Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].ID != "8" || string(msgs[0].Data) != "héllo" || msgs[0].Attempts != 1 ||
		msgs[1].ID != "9" || !bytes.Equal(msgs[1].Data, []byte{0xff}) || msgs[1].Attempts != 2 || msgs[1].LastError != "lease expired" {
		t.Fatalf("got %+v", msgs)
	}
	r := f.last(t)
	if r.path != "/mget" || r.query.Get("items") != "10" || r.query.Get("format") != "json" || r.query.Get("lease") != "1m" {
		t.Fatalf("got %s %v", r.path, r.query)
	}
	msgs, err = q.MGet(ctxT(t), "jobs", 10, GetOptions{})
	if err != nil || msgs == nil || len(msgs) != 0 {
		t.Fatalf("empty: %v %v", msgs, err)
	}
	if _, err := q.MGet(ctxT(t), "jobs", 0, GetOptions{}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("items=0: %v", err)
	}
}

// Test_Queue_Settle_Requests: Ack joins ids with commas; Nack sends delay,
// reason and the new data as the body; Touch sends the lease; a 409 is
// api.ErrNotInFlight.
func Test_Queue_Settle_Requests(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("id") == "404" {
			fail(w, 409, "NOT_IN_FLIGHT", "message 404 is not in flight")
		}
	})
	q := mustQueue(t, f.URL)
	ctx := ctxT(t)
	if err := q.Ack(ctx, "1", "2", "3"); err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.path != "/ack" || r.query.Get("id") != "1,2,3" {
		t.Fatalf("ack: %s %v", r.path, r.query)
	}
	if err := q.Nack(ctx, "5", NackOptions{Delay: 10 * time.Second, Reason: "bad input", NewData: []byte(`{"retry":2}`)}); err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.path != "/nack" || r.query.Get("id") != "5" || r.query.Get("delay") != "10s" || r.query.Get("reason") != "bad input" || string(r.body) != `{"retry":2}` {
		t.Fatalf("nack: %s %v %q", r.path, r.query, r.body)
	}
	if err := q.Touch(ctx, "5", time.Minute); err != nil {
		t.Fatal(err)
	}
	if r := f.last(t); r.path != "/touch" || r.query.Get("lease") != "1m" {
		t.Fatalf("touch: %s %v", r.path, r.query)
	}
	err := q.Ack(ctx, "404")
	var he *HTTPError
	if !errors.Is(err, api.ErrNotInFlight) || !errors.As(err, &he) || he.Status != 409 || he.Body != "message 404 is not in flight" {
		t.Fatalf("ack 404: %v", err)
	}
}

// Test_Queue_StatsConfigStatus_Decode: the JSON forms of /stats, /config
// and /cluster/status are decoded, durations included.
func Test_Queue_StatsConfigStatus_Decode(t *testing.T) {
	f := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/stats":
			io.WriteString(w, `{"puts": 9,"gets": 1,"depth": 6,"depth_high_water": 6,"bytes": 49,"overflow": 2,"in_flight": 3,"deferred": 4,"dead": 5,"lease": "30s","max_attempts": 5,"dead_letter": "jobs.dead"}`+"\n")
		case "/config":
			io.WriteString(w, `{"queue":"jobs","lease":"2m","max_attempts":7,"dead_letter":"d","max_depth":100,"max_bytes":0,"overflow":"reject"}`+"\n")
		case "/cluster/status":
			w.Header().Set(api.HeaderServedBy, "n2")
			io.WriteString(w, `{"node_id":"n2","state":"follower","leader_id":"n1","term":3,"commit_index":10,"applied_index":10,"members":[{"id":"n1","status":"alive","voter":true,"suffrage":"voter","queue_addr":"h:8081","pubsub_addr":"h:8080","raft_addr":"h:8300"}]}`+"\n")
		}
	})
	q := mustQueue(t, f.URL)
	ctx := ctxT(t)
	st, err := q.Stats(ctx, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Puts: 9, Gets: 1, Depth: 6, DepthHighWater: 6, Bytes: 49, Overflow: 2, InFlight: 3, Deferred: 4, Dead: 5, Lease: 30 * time.Second, MaxAttempts: 5, DeadLetter: "jobs.dead"}
	if *st != want {
		t.Fatalf("stats %+v", *st)
	}
	if r := f.last(t); r.method != "GET" || r.query.Get("format") != "json" || r.query.Get("queue") != "jobs" {
		t.Fatalf("stats request %s %v", r.method, r.query)
	}

	cfg, err := q.Config(ctx, "jobs", ConfigChange{})
	if err != nil {
		t.Fatal(err)
	}
	if (*cfg != QueueConfig{Queue: "jobs", Lease: 2 * time.Minute, MaxAttempts: 7, DeadLetter: "d", MaxDepth: 100, Overflow: "reject"}) {
		t.Fatalf("config %+v", *cfg)
	}
	if r := f.last(t); r.method != "GET" || r.rawQuery != "queue=jobs" {
		t.Fatalf("config read %s %q", r.method, r.rawQuery)
	}
	if _, err := q.Config(ctx, "jobs", ConfigChange{Lease: Ptr(30 * time.Second), MaxAttempts: Ptr(uint32(5)), DeadLetter: Ptr(""), Overflow: Ptr("evict-oldest")}); err != nil {
		t.Fatal(err)
	}
	r := f.last(t)
	if r.method != "POST" || r.query.Get("lease") != "30s" || r.query.Get("max_attempts") != "5" || !r.query.Has("dead_letter") || r.query.Get("overflow") != "evict-oldest" || r.query.Has("max_depth") {
		t.Fatalf("config change %s %v", r.method, r.query)
	}

	var info CallInfo
	s, err := q.Status(WithCallInfo(ctx, &info))
	if err != nil {
		t.Fatal(err)
	}
	if s.NodeID != "n2" || s.LeaderID != "n1" || s.Term != 3 || len(s.Members) != 1 || !s.Members[0].Voter || s.Members[0].QueueAddr != "h:8081" {
		t.Fatalf("status %+v", s)
	}
	if info.ServedBy != "n2" || info.Attempts != 1 || info.Addr != f.URL {
		t.Fatalf("call info %+v", info)
	}
}

// Test_Queue_Failover_ConnectionRefused: a dead first address is skipped
// for any request (nothing was sent), and the address that answered
// becomes the preferred one.
func Test_Queue_Failover_ConnectionRefused(t *testing.T) {
	f := newFakeNode(t, nil)
	dead := deadAddr(t)
	q := mustQueue(t, dead, f.URL)
	var info CallInfo
	if _, err := q.Put(WithCallInfo(ctxT(t), &info), "", []byte("m"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if info.Attempts != 2 || info.Addr != f.URL {
		t.Fatalf("call info %+v", info)
	}
	info = CallInfo{}
	if err := q.Ack(WithCallInfo(ctxT(t), &info), "1"); err != nil {
		t.Fatal(err)
	}
	if info.Attempts != 1 || info.Addr != f.URL {
		t.Fatalf("second call did not start at the preferred address: %+v", info)
	}
}

// Test_Queue_Failover_Retryable503: 503 NO_LEADER and SHUTTING_DOWN move
// the request to the next node; when every node keeps answering it, the
// caller gets api.ErrNoLeader after MaxAttempts.
func Test_Queue_Failover_Retryable503(t *testing.T) {
	a := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) { fail(w, 503, "NO_LEADER", "no leader") })
	b := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			fail(w, 503, "SHUTTING_DOWN", "shutting down")
		}
	})
	q := mustQueue(t, a.URL, b.URL)
	var info CallInfo
	if _, err := q.Get(WithCallInfo(ctxT(t), &info), "", GetOptions{}); err != nil {
		t.Fatal(err)
	}
	// a (NO_LEADER), b (SHUTTING_DOWN), a (NO_LEADER), b (200).
	if info.Attempts != 4 || info.Addr != b.URL || len(a.requests()) != 2 || len(b.requests()) != 2 {
		t.Fatalf("info %+v, a %d, b %d", info, len(a.requests()), len(b.requests()))
	}

	q = mustQueue(t, a.URL)
	_, err := q.Get(ctxT(t), "", GetOptions{})
	if !errors.Is(err, api.ErrNoLeader) || !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

// Test_Queue_OutcomeUnknown_RetriedOnlyWithID: a 503 OUTCOME_UNKNOWN ends
// a put without id (the caller decides) but a put with an id is sent
// again, to the next node.
func Test_Queue_OutcomeUnknown_RetriedOnlyWithID(t *testing.T) {
	a := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		fail(w, 503, "OUTCOME_UNKNOWN", "outcome unknown: retry with id=KEY")
	})
	b := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) { w.Header().Set(api.HeaderMessageID, "1") })
	q := mustQueue(t, a.URL, b.URL)
	_, err := q.Put(ctxT(t), "", []byte("m"), PutOptions{})
	if !errors.Is(err, api.ErrOutcomeUnknown) || errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("without id: %v", err)
	}
	if len(b.requests()) != 0 {
		t.Fatal("a put without id was retried")
	}
	q = mustQueue(t, a.URL, b.URL)
	id, err := q.Put(ctxT(t), "", []byte("m"), PutOptions{ID: "k1"})
	if err != nil || id != "1" {
		t.Fatalf("with id: %q %v", id, err)
	}
	if r := b.last(t); r.query.Get("id") != "k1" {
		t.Fatalf("retry lost the id: %v", r.query)
	}
}

// Test_Queue_ConnectionCutAfterSend: when a node closes the connection
// without answering, a write is api.ErrOutcomeUnknown and not retried, while a
// read moves on to the next node.
func Test_Queue_ConnectionCutAfterSend(t *testing.T) {
	cut := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	good := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		io.WriteString(w, `{"puts": 1,"gets": 0,"depth": 1,"depth_high_water": 1,"bytes": 1,"overflow": 0}`+"\n")
	})
	q := mustQueue(t, cut.URL, good.URL)
	_, err := q.Get(ctxT(t), "", GetOptions{})
	if !errors.Is(err, api.ErrOutcomeUnknown) {
		t.Fatalf("get: %v", err)
	}
	if len(good.requests()) != 0 {
		t.Fatal("a get was retried after an unknown outcome")
	}
	q = mustQueue(t, cut.URL, good.URL)
	st, err := q.Stats(ctxT(t), "")
	if err != nil || st.Puts != 1 {
		t.Fatalf("stats: %+v %v", st, err)
	}
}

// Test_Queue_Timeouts: a node that never answers costs one attempt
// timeout; a long-poll's wait extends the attempt's bound.
func Test_Queue_Timeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	hang := newFakeNode(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("wait") != "" {
			time.Sleep(300 * time.Millisecond) // shorter than wait: an answer
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	q, err := NewQueue([]string{hang.URL}, withOptions(func(o *Options) { o.AttemptTimeout, o.Timeout, o.MaxAttempts = 200*time.Millisecond, 5*time.Second, 1 }))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = q.Stats(context.Background(), "")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, api.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %v", d)
	}
	// wait=1s: the attempt bound is 200ms + 1s, the node answers at 300ms.
	if m, err := q.Get(context.Background(), "", GetOptions{Wait: time.Second}); err != nil || m != nil {
		t.Fatalf("long-poll: %v %v", m, err)
	}
}

// Test_NewQueue_Addresses: addresses without a scheme are http; bad ones
// are refused.
func Test_NewQueue_Addresses(t *testing.T) {
	q, err := NewQueue([]string{"127.0.0.1:8081", "http://h:1/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.Addrs(); got[0] != "http://127.0.0.1:8081" || got[1] != "http://h:1" {
		t.Fatalf("addrs %v", got)
	}
	for _, bad := range [][]string{nil, {"ftp://h:1"}, {"http://h:1/?x=1"}, {"http://"}} {
		if _, err := NewQueue(bad, nil); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// withOptions is DefaultOptions changed by change.
func withOptions(change func(*Options)) *Options {
	o := DefaultOptions()
	change(&o)
	return &o
}

// TestNewQueue_InvalidOptions_AreBadRequests: zero timeouts and backoffs,
// which used to mean the defaults, and negative attempts are refused.
func TestNewQueue_InvalidOptions_AreBadRequests(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
	}{
		{"no HTTP client", func(o *Options) { o.HTTPClient = nil }},
		{"zero timeout", func(o *Options) { o.Timeout = 0 }},
		{"zero attempt timeout", func(o *Options) { o.AttemptTimeout = 0 }},
		{"negative attempts", func(o *Options) { o.MaxAttempts = -1 }},
		{"zero backoff", func(o *Options) { o.Backoff = Backoff{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewQueue([]string{"127.0.0.1:1"}, withOptions(tc.change)); !errors.Is(err, api.ErrBadRequest) {
				t.Fatalf("got %v, want api.ErrBadRequest", err)
			}
		})
	}
}
