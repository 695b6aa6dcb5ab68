package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// Test_Admin_HealthAndReady checks /healthz and /readyz following Cluster.Ready.
func Test_Admin_HealthAndReady(t *testing.T) {
	var ready atomic.Bool
	e := newEnv(t, func(o *Options) { o.Cluster = &fakeCluster{ready: ready.Load} })
	r := e.mustGet("/healthz", "ok\n")
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	e.want(e.get("/readyz"), 503, "not ready\n")
	ready.Store(true)
	e.mustGet("/readyz", "ready\n")
	e.want(e.post("/healthz", ""), 405, "method not allowed\n")
	if r := e.do("HEAD", "/readyz", ""); r.code != 200 {
		t.Fatalf("HEAD /readyz: %d", r.code)
	}
}

// Test_Admin_ClusterStatus checks that /cluster/status is the JSON of
// Cluster.Status with the contract's field names (each member's
// applied_index and lag included), members never null.
func Test_Admin_ClusterStatus(t *testing.T) {
	st := api.Status{NodeID: "n1", State: "leader", LeaderID: "n1", Term: 3, CommitIndex: 10, AppliedIndex: 9,
		Members: []api.Member{{ID: "n1", Status: "alive", Voter: true, QueueAddr: "10.0.0.1:8081", PubsubAddr: "10.0.0.1:8080", RaftAddr: "10.0.0.1:8300", AppliedIndex: 9, Lag: 1}}}
	e := newEnv(t, func(o *Options) { o.Cluster = &fakeCluster{status: func() api.Status { return st }} })
	r := e.mustGet("/cluster/status", `{"node_id":"n1","state":"leader","leader_id":"n1","term":3,"commit_index":10,"applied_index":9,`+
		`"members":[{"id":"n1","status":"alive","voter":true,"queue_addr":"10.0.0.1:8081","pubsub_addr":"10.0.0.1:8080","raft_addr":"10.0.0.1:8300","applied_index":9,"lag":1}]}`+"\n")
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	st.Members = nil
	var got map[string]any
	if err := json.Unmarshal([]byte(e.get("/cluster/status").body), &got); err != nil {
		t.Fatal(err)
	}
	if m, ok := got["members"].([]any); !ok || len(m) != 0 {
		t.Fatalf("members %v, want []", got["members"])
	}
}

// Test_Admin_Metrics checks /metrics serves the Gatherer, including the
// request and message counters and the latency histogram httpapi
// registers.
func Test_Admin_Metrics(t *testing.T) {
	e := newEnv(t)
	e.mustPut("/put?data=x&queue=m")
	e.mustGet("/get?queue=m", "x")
	e.get("/nothere")
	r := e.get("/metrics")
	for _, want := range []string{
		`quorumq_http_requests_total{code="200",route="put"} 1`,
		`quorumq_http_requests_total{code="404",route="none"} 1`,
		`quorumq_messages_put_total{queue="m"} 1`,
		`quorumq_messages_delivered_total{queue="m"} 1`,
		`quorumq_http_request_duration_seconds_count{route="put"} 1`,
		`quorumq_http_request_duration_seconds_count{route="get"} 1`,
		`quorumq_http_request_duration_seconds_count{route="ack"} 0`, // every route's, from the start
	} {
		if !strings.Contains(r.body, want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, r.body)
		}
	}
}

// Test_Admin_Leave checks POST /cluster/leave: 501 without a Leaver, 405
// for GET, and the Leaver's outcome otherwise.
func Test_Admin_Leave(t *testing.T) {
	e := newEnv(t)
	e.want(e.post("/cluster/leave", ""), 501, "leave is not supported by this node yet\n")
	r := e.get("/cluster/leave")
	e.want(r, 405, "method not allowed\n")
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}

	var left atomic.Int64
	fail := atomic.Bool{}
	lc := &leavingCluster{leave: func(ctx context.Context) error {
		if fail.Load() {
			return api.ErrNoLeader
		}
		left.Add(1)
		return nil
	}}
	e = newEnv(t, func(o *Options) { o.Cluster = lc })
	e.want(e.post("/cluster/leave", ""), 200, "left the cluster\n")
	if left.Load() != 1 {
		t.Fatalf("Leave called %d times", left.Load())
	}
	fail.Store(true)
	e.want(e.post("/cluster/leave", ""), 503, "no leader is known; retry shortly\n")
}

// Test_Admin_PubsubPortServesAdmin checks that the pubsub port serves the
// admin routes and nothing of the queue, shares metrics when built twice
// on one registry, and without a Cluster is bitly pubsub's alone.
func Test_Admin_PubsubPortServesAdmin(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := DefaultOptions()
	o.Hub, o.Cluster, o.Registerer, o.Gatherer = &fakeHub{}, &fakeCluster{}, reg, reg
	h1, err := NewPubsubHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := NewPubsubHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []http.Handler{h1, h2} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 200 || rec.Body.String() != "ok\n" {
			t.Fatalf("/healthz %d %q", rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/put?data=x", nil))
		if rec.Code != 404 {
			t.Fatalf("/put on the pubsub port: %d", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h1.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `quorumq_http_requests_total{code="200",route="healthz"} 2`) {
		t.Fatalf("shared counters missing:\n%s", rec.Body)
	}
	// Without a Cluster there are no admin routes.
	o = DefaultOptions()
	o.Hub, o.Registerer, o.Logger = &fakeHub{}, prometheus.NewRegistry(), discardLogger()
	h, err := NewPubsubHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 404 {
		t.Fatalf("/readyz without a Cluster: %d", rec.Code)
	}
}

// Test_Options_Validation checks that the defaults are valid and that
// NewQueueHandler refuses missing dependencies and out-of-range values,
// zero ones included: the constructors complete nothing.
func Test_Options_Validation(t *testing.T) {
	reg := prometheus.NewRegistry()
	ok := DefaultOptions()
	ok.Queue, ok.Cluster, ok.Registerer = newFSMQueue(newFakeClock().Now), &fakeCluster{}, reg
	if _, err := NewQueueHandler(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Options)
	}{
		{"no queue", func(o *Options) { o.Queue = nil }},
		{"no cluster", func(o *Options) { o.Cluster = nil }},
		{"no registerer", func(o *Options) { o.Registerer = nil }},
		{"no logger", func(o *Options) { o.Logger = nil }},
		{"negative size", func(o *Options) { o.MaxMsgSize = -1 }},
		{"zero size", func(o *Options) { o.MaxMsgSize = 0 }},
		{"zero body size", func(o *Options) { o.MaxBodySize = 0 }},
		{"negative mget", func(o *Options) { o.MaxMGet = -1 }},
		{"empty mput separator", func(o *Options) { o.MPutSep = "" }},
		{"negative hold", func(o *Options) { o.ForwardTimeout = -1 }},
		{"zero propose timeout", func(o *Options) { o.ProposeTimeout = 0 }},
		{"unknown policy", func(o *Options) { o.Limits = fsm.Limits{Policy: 7} }},
		{"peer without deliver", func(o *Options) { o.Peer = &PubsubPeer{} }},
		{"zero options", func(o *Options) { *o = Options{Queue: o.Queue, Cluster: o.Cluster} }},
	}
	for _, tc := range tests {
		o := ok
		tc.change(&o)
		if _, err := NewQueueHandler(o); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// Test_Routes_NeedsLeader checks the flag the forwarding step will use:
// writes and linearizable reads need the leader, stale reads and admin
// endpoints do not.
func Test_Routes_NeedsLeader(t *testing.T) {
	e := newEnv(t)
	s := e.h.(*engine)
	tests := []struct {
		path, query string
		want        bool
	}{
		{"/put", "data=x", true}, {"/get", "", true}, {"/mget", "", true}, {"/mput", "", true},
		{"/ack", "id=1", true}, {"/nack", "id=1", true}, {"/touch", "id=1", true}, {"/config", "", true},
		{"/dump", "", true}, {"/dump", "stale=1", false}, {"/stats", "", true}, {"/stats", "stale=1", false},
		{"/stats", "stale=1&reset=1", true}, {"/healthz", "", false}, {"/readyz", "", false},
		{"/metrics", "", false}, {"/cluster/status", "", false}, {"/cluster/leave", "", false},
	}
	for _, tc := range tests {
		rt := s.match(tc.path, false)
		if rt == nil {
			t.Fatalf("%s: no route", tc.path)
		}
		if got := rt.needsLeader(parseQuery(tc.query)); got != tc.want {
			t.Errorf("%s?%s: needsLeader %v, want %v", tc.path, tc.query, got, tc.want)
		}
	}
}
