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
// Cluster.Status with the contract's field names, members never null.
func Test_Admin_ClusterStatus(t *testing.T) {
	st := api.Status{NodeID: "n1", State: "leader", LeaderID: "n1", Term: 3, CommitIndex: 10, AppliedIndex: 9,
		Members: []api.Member{{ID: "n1", Status: "alive", Voter: true, QueueAddr: "10.0.0.1:8081", PubsubAddr: "10.0.0.1:8080", RaftAddr: "10.0.0.1:8300"}}}
	e := newEnv(t, func(o *Options) { o.Cluster = &fakeCluster{status: func() api.Status { return st }} })
	r := e.mustGet("/cluster/status", `{"node_id":"n1","state":"leader","leader_id":"n1","term":3,"commit_index":10,"applied_index":9,`+
		`"members":[{"id":"n1","status":"alive","voter":true,"queue_addr":"10.0.0.1:8081","pubsub_addr":"10.0.0.1:8080","raft_addr":"10.0.0.1:8300"}]}`+"\n")
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
// request and message counters httpapi registers.
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

// Test_Admin_HandlerServesOnlyAdmin checks that NewAdminHandler serves the
// admin routes and nothing of the queue, and shares metrics when built
// twice on one registry.
func Test_Admin_HandlerServesOnlyAdmin(t *testing.T) {
	reg := prometheus.NewRegistry()
	o := Options{Cluster: &fakeCluster{}, Registerer: reg, Gatherer: reg}
	h1 := NewAdminHandler(o)
	h2 := NewAdminHandler(o)
	for _, h := range []http.Handler{h1, h2} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != 200 || rec.Body.String() != "ok\n" {
			t.Fatalf("/healthz %d %q", rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/put?data=x", nil))
		if rec.Code != 404 {
			t.Fatalf("/put on the admin handler: %d", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	h1.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `quorumq_http_requests_total{code="200",route="healthz"} 2`) {
		t.Fatalf("shared counters missing:\n%s", rec.Body)
	}
	// Without a Cluster the admin handler still answers.
	h := NewAdminHandler(Options{Registerer: prometheus.NewRegistry(), Logger: discardLogger()})
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 {
		t.Fatalf("/readyz without a Cluster: %d", rec.Code)
	}
}

// Test_Options_Validation checks that NewQueueHandler refuses missing
// dependencies and out-of-range values.
func Test_Options_Validation(t *testing.T) {
	reg := prometheus.NewRegistry()
	ok := Options{Queue: newFSMQueue(newFakeClock().Now), Cluster: &fakeCluster{}, Registerer: reg}
	if _, err := NewQueueHandler(ok); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, o := range map[string]Options{
		"no queue":       {Cluster: &fakeCluster{}, Registerer: reg},
		"no cluster":     {Queue: ok.Queue, Registerer: reg},
		"negative size":  {Queue: ok.Queue, Cluster: ok.Cluster, Registerer: reg, MaxMsgSize: -1},
		"negative mget":  {Queue: ok.Queue, Cluster: ok.Cluster, Registerer: reg, MaxMGet: -1},
		"negative hold":  {Queue: ok.Queue, Cluster: ok.Cluster, Registerer: reg, ForwardTimeout: -1},
		"unknown policy": {Queue: ok.Queue, Cluster: ok.Cluster, Registerer: reg, Limits: fsm.Limits{Policy: 7}},
	} {
		if _, err := NewQueueHandler(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Test_Routes_NeedsLeader checks the flag the forwarding step will use:
// writes and linearizable reads need the leader, stale reads and admin
// endpoints do not.
func Test_Routes_NeedsLeader(t *testing.T) {
	e := newEnv(t)
	s := e.h.(*server)
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
		rt := s.match(tc.path)
		if rt == nil {
			t.Fatalf("%s: no route", tc.path)
		}
		if got := rt.needsLeader(parseQuery(tc.query)); got != tc.want {
			t.Errorf("%s?%s: needsLeader %v, want %v", tc.path, tc.query, got, tc.want)
		}
	}
}
