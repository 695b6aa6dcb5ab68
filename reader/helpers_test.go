package reader

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
)

// memQueue is httpapi.Queue over a real *fsm.FSM without raft: Propose
// applies the command at once, stamped with the wall clock.
type memQueue struct {
	*fsm.FSM
	mu    sync.Mutex
	index uint64
}

func (q *memQueue) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.index++
	e := fsm.Entry{Now: time.Now().UnixNano(), Commands: []fsm.Command{cmd}}
	return q.FSM.ApplyEntry(q.index, &e)[0], nil
}

func (q *memQueue) ConsistentRead(context.Context) error { return nil }

// memCluster is one node of a fake cluster that every node leads (they all
// serve the same memQueue).
type memCluster struct {
	id     string
	status func() api.Status
}

func (c *memCluster) ID() string     { return c.id }
func (c *memCluster) Ready() bool    { return true }
func (c *memCluster) IsLeader() bool { return true }
func (c *memCluster) Leader() (api.Leader, bool) {
	return api.Leader{ID: c.id}, true
}
func (c *memCluster) Status() api.Status {
	if c.status != nil {
		return c.status()
	}
	return api.Status{NodeID: c.id, State: "leader", LeaderID: c.id}
}

// testNode is one HTTP server over the shared queue, with fault injection
// and request counting.
type testNode struct {
	t   *testing.T
	id  string
	srv *httptest.Server
	h   http.Handler

	mu       sync.Mutex
	requests map[string]int // by path
	// fault, when set, may take over a request before the handler: it
	// returns true when it answered (or dropped) the request itself.
	fault func(w http.ResponseWriter, r *http.Request) bool
}

func (n *testNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.requests[r.URL.Path]++
	f := n.fault
	n.mu.Unlock()
	if f != nil && f(w, r) {
		return
	}
	n.h.ServeHTTP(w, r)
}

func (n *testNode) count(path string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.requests[path]
}

func (n *testNode) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	n.mu.Lock()
	n.fault = f
	n.mu.Unlock()
}

// applyThenDrop serves the request, so that it takes effect, and then
// drops the connection without an answer: the client sees an unknown
// outcome.
func (n *testNode) applyThenDrop(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	n.h.ServeHTTP(rec, r)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		n.t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// testCluster is a set of test nodes over one queue.
type testCluster struct {
	t     *testing.T
	q     *memQueue
	nodes []*testNode
	// leader is the id /cluster/status names as leader.
	leader atomic.Value
	c      *client.Queue // talks to node 0
}

// newTestCluster starts n nodes (ids n1..nN) over one in-memory queue.
// /cluster/status lists all of them as alive members; n1 leads.
func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return newTestClusterServed(t, n, httptest.NewServer, func() *client.Options { return nil })
}

// newTestClusterServed is newTestCluster with each node served by serve
// (an HTTPS server behind a token gate, say) and the test's own client
// made with the options opts returns once the nodes are served.
func newTestClusterServed(t *testing.T, n int, serve func(http.Handler) *httptest.Server, opts func() *client.Options) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, q: &memQueue{FSM: fsm.New()}}
	tc.leader.Store("n1")
	for i := range n {
		id := "n" + string(rune('1'+i))
		cl := &memCluster{id: id}
		cl.status = func() api.Status { return tc.status(id) }
		reg := prometheus.NewRegistry()
		o := httpapi.DefaultOptions()
		o.Queue, o.Cluster, o.Registerer, o.Gatherer = tc.q, cl, reg, reg
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		h, err := httpapi.NewQueueHandler(o)
		if err != nil {
			t.Fatal(err)
		}
		nd := &testNode{t: t, id: id, h: h, requests: map[string]int{}}
		nd.srv = serve(nd)
		t.Cleanup(nd.srv.Close)
		tc.nodes = append(tc.nodes, nd)
	}
	c, err := client.NewQueue([]string{tc.nodes[0].srv.URL}, opts())
	if err != nil {
		t.Fatal(err)
	}
	tc.c = c
	return tc
}

func (tc *testCluster) status(self string) api.Status {
	leader := tc.leader.Load().(string)
	st := api.Status{NodeID: self, State: "follower", LeaderID: leader, Term: 1}
	if self == leader {
		st.State = "leader"
	}
	for _, nd := range tc.nodes {
		_, hostPort, _ := strings.Cut(nd.srv.URL, "://")
		st.Members = append(st.Members, api.Member{ID: nd.id, Status: "alive", Voter: true, QueueAddr: hostPort})
	}
	return st
}

func (tc *testCluster) put(queue string, bodies ...string) {
	tc.t.Helper()
	for _, b := range bodies {
		if _, err := tc.c.Put(context.Background(), queue, []byte(b), client.PutOptions{}); err != nil {
			tc.t.Fatalf("put %q: %v", b, err)
		}
	}
}

func (tc *testCluster) stats(queue string) *client.Stats {
	tc.t.Helper()
	st, err := tc.c.Stats(context.Background(), queue)
	if err != nil {
		tc.t.Fatal(err)
	}
	return st
}

// dump returns the ready messages of queue.
func (tc *testCluster) dump(queue string) []string {
	tc.t.Helper()
	var out []string
	tc.q.Dump(queue, func(data []byte) error {
		out = append(out, string(data))
		return nil
	})
	return out
}

// peek leases the next message for a moment and gives it back unchanged,
// returning its body ("" if none).
func (tc *testCluster) peek(queue string, wait time.Duration) (string, int) {
	tc.t.Helper()
	m, err := tc.c.Get(context.Background(), queue, client.GetOptions{Lease: time.Minute, Wait: wait})
	if err != nil {
		tc.t.Fatal(err)
	}
	if m == nil {
		return "", 0
	}
	if err := tc.c.Nack(context.Background(), m.ID, client.NackOptions{}); err != nil {
		tc.t.Fatal(err)
	}
	return string(m.Data), m.Attempts
}

func (tc *testCluster) urls() []string {
	var u []string
	for _, nd := range tc.nodes {
		u = append(u, nd.srv.URL)
	}
	return u
}

// running is a reader started in the background.
type running struct {
	r      *Reader
	cancel context.CancelFunc
	done   chan error
}

// start runs r until stop.
func start(t *testing.T, r *Reader) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rr := &running{r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

// stop cancels Run and waits for it (once).
func (rr *running) stop(t *testing.T) {
	t.Helper()
	rr.cancel()
	select {
	case err, ok := <-rr.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(rr.done)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return")
	}
}

// testConfig is a fast configuration for the test cluster.
func testConfig(tc *testCluster, tasks map[string]Task) Config {
	c := DefaultConfig()
	c.Addrs, c.Queue, c.Tasks = tc.urls()[:1], "q", tasks
	c.RequeueDelay, c.LongPoll, c.BackoffStep, c.ProgressInterval = 20*time.Millisecond, 200*time.Millisecond, -1, -1
	c.ShutdownGrace, c.SettleTimeout, c.Logger = 2*time.Second, 10*time.Second, testLogger()
	return c
}

func testLogger() *slog.Logger {
	if os.Getenv("READER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// calls records task executions.
type calls struct {
	mu  sync.Mutex
	log []call
}

type call struct {
	task     string
	body     string
	attempts int
}

func (c *calls) add(task string, m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, call{task, string(m.Body), m.Attempts})
}

func (c *calls) count(task, body string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, x := range c.log {
		if x.task == task && (body == "" || x.body == body) {
			n++
		}
	}
	return n
}

func (c *calls) all() []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.log...)
}

// events records Config.OnEvent.
type events struct {
	mu  sync.Mutex
	evs []Event
}

func (e *events) on(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) kinds() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var k []EventKind
	for _, ev := range e.evs {
		k = append(k, ev.Kind)
	}
	return k
}

func (e *events) count(k EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

func (e *events) list() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.evs...)
}

// refuseConnections closes a node's listener so that connecting fails.
func (n *testNode) refuseConnections() {
	n.srv.Listener.Close()
	n.srv.CloseClientConnections()
}
