package httpapi

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// fakeClock is a settable clock shared by the handler (Options.Now) and the
// fake queue (the leader time stamped into entries).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 26, 15, 34, 59, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fsmQueue is a Queue backed by a real *fsm.FSM without raft: Propose
// applies the command as the next log entry, stamped with the fake clock.
type fsmQueue struct {
	*fsm.FSM
	now func() time.Time // the leader's clock

	mu    sync.Mutex // serializes applies, as raft does
	index uint64

	proposals atomic.Int64
	groups    atomic.Int64     // calls of ProposeGroup
	byOp      [16]atomic.Int64 // proposals by fsm.Op
	changed   atomic.Int64     // calls of Changed: a long-poll is running

	hookMu sync.Mutex
	// proposeErr, when set, runs first in Propose; a non-nil error is
	// returned instead of applying.
	proposeErr func(ctx context.Context, cmd fsm.Command) error
	readErr    error
	// onRead runs in ConsistentRead, e.g. to apply entries the local state
	// had not caught up with.
	onRead func()
}

func newFSMQueue(now func() time.Time) *fsmQueue {
	return &fsmQueue{FSM: fsm.New(), now: now}
}

func (q *fsmQueue) failPropose(fn func(ctx context.Context, cmd fsm.Command) error) {
	q.hookMu.Lock()
	defer q.hookMu.Unlock()
	q.proposeErr = fn
}

func (q *fsmQueue) failRead(err error) {
	q.hookMu.Lock()
	defer q.hookMu.Unlock()
	q.readErr = err
}

func (q *fsmQueue) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	q.proposals.Add(1)
	q.byOp[cmd.Op%16].Add(1)
	q.hookMu.Lock()
	hook := q.proposeErr
	q.hookMu.Unlock()
	if hook != nil {
		if err := hook(ctx, cmd); err != nil {
			return fsm.Result{}, err
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.index++
	e := fsm.Entry{Now: q.now().UnixNano(), Commands: []fsm.Command{cmd}}
	return q.FSM.ApplyEntry(q.index, &e)[0], nil
}

// ProposeGroup applies cmds as one entry, as the raft host does with a
// small group: the proposal hook runs for each command, and an error of
// any fails them all.
func (q *fsmQueue) ProposeGroup(ctx context.Context, cmds []fsm.Command) ([]fsm.Result, []error) {
	q.groups.Add(1)
	q.proposals.Add(int64(len(cmds)))
	for _, cmd := range cmds {
		q.byOp[cmd.Op%16].Add(1)
	}
	q.hookMu.Lock()
	hook := q.proposeErr
	q.hookMu.Unlock()
	if hook != nil {
		for _, cmd := range cmds {
			if err := hook(ctx, cmd); err != nil {
				errs := make([]error, len(cmds))
				for i := range errs {
					errs[i] = err
				}
				return make([]fsm.Result, len(cmds)), errs
			}
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.index++
	e := fsm.Entry{Now: q.now().UnixNano(), Commands: cmds}
	return q.FSM.ApplyEntry(q.index, &e), make([]error, len(cmds))
}

// queueWrapper, set as Options.Queue by an option of newEnv, makes the
// env's Queue wrap(the fake queue).
type queueWrapper struct {
	Queue
	wrap func(*fsmQueue) Queue
}

// withoutGroups is an option of newEnv: the queue proposes one command at a
// time (no GroupProposer).
func withoutGroups(o *Options) {
	o.Queue = queueWrapper{wrap: func(q *fsmQueue) Queue { return struct{ Queue }{q} }}
}

func (q *fsmQueue) ConsistentRead(context.Context) error {
	q.hookMu.Lock()
	err, onRead := q.readErr, q.onRead
	q.onRead = nil
	q.hookMu.Unlock()
	if onRead != nil {
		onRead()
	}
	return err
}

// lagBehind makes the local state miss cmd until the next consistent read,
// like a new leader that has not yet applied its predecessor's entries.
func (q *fsmQueue) lagBehind(cmd fsm.Command) {
	q.hookMu.Lock()
	defer q.hookMu.Unlock()
	q.onRead = func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.index++
		q.FSM.ApplyEntry(q.index, &fsm.Entry{Now: q.now().UnixNano(), Commands: []fsm.Command{cmd}})
	}
}

func (q *fsmQueue) Changed(queue string) <-chan struct{} {
	q.changed.Add(1)
	return q.FSM.Changed(queue)
}

// fakeCluster is a Cluster with function fields. By default it is node n1,
// the leader of a one-node cluster.
type fakeCluster struct {
	id     string // default "n1"
	status func() api.Status
	ready  func() bool
	// leader answers Leader (default: this node). IsLeader is "the leader
	// is this node", so switching it switches both.
	leader func() (api.Leader, bool)
}

func (c *fakeCluster) ID() string { return cmp.Or(c.id, "n1") }

func (c *fakeCluster) IsLeader() bool {
	info, ok := c.Leader()
	return ok && info.ID == c.ID()
}

func (c *fakeCluster) Leader() (api.Leader, bool) {
	if c.leader == nil {
		return api.Leader{ID: c.ID()}, true
	}
	return c.leader()
}

func (c *fakeCluster) Status() api.Status {
	if c.status == nil {
		return api.Status{NodeID: "n1", State: "leader", LeaderID: "n1"}
	}
	return c.status()
}

func (c *fakeCluster) Ready() bool { return c.ready == nil || c.ready() }

// leavingCluster also implements Leaver.
type leavingCluster struct {
	fakeCluster
	leave func(ctx context.Context) error
}

func (c *leavingCluster) Leave(ctx context.Context) error { return c.leave(ctx) }

// env is a queue handler on a real HTTP server, over a fresh FSM.
type env struct {
	t     *testing.T
	clock *fakeClock
	q     *fsmQueue
	reg   *prometheus.Registry
	opts  Options
	h     http.Handler
	srv   *httptest.Server
}

// newEnv starts a handler on a fresh fsm-backed queue whose clock is the
// fake clock (an option may replace Options.Now; the queue then uses it
// too). Each option function may change the Options.
func newEnv(t *testing.T, opts ...func(*Options)) *env {
	t.Helper()
	clock := newFakeClock()
	reg := prometheus.NewRegistry()
	o := DefaultOptions()
	o.Cluster, o.Registerer, o.Gatherer, o.Now = &fakeCluster{}, reg, reg, clock.Now
	for _, f := range opts {
		f(&o)
	}
	// The leader stamps entries with the same clock the handler reads.
	q := newFSMQueue(o.Now)
	if w, ok := o.Queue.(queueWrapper); ok {
		o.Queue = w.wrap(q)
	} else {
		o.Queue = q
	}
	h, err := NewQueueHandler(o)
	if err != nil {
		t.Fatalf("NewQueueHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, clock: clock, q: q, reg: reg, opts: o, h: h, srv: srv}
}

// resp is a response read whole.
type resp struct {
	code   int
	header http.Header
	body   string
}

// do sends one request; body "" sends none.
func (e *env) do(method, target, body string) resp {
	return roundTrip(e.t, e.srv, method, target, body)
}

// roundTrip sends one request to srv the way curl does (a body goes as
// curl -d sends it; body "" sends none) and reads the response whole.
func roundTrip(t *testing.T, srv *httptest.Server, method, target, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+target, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	switch {
	case body != "":
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case method == http.MethodPost:
		req.Body, req.ContentLength = http.NoBody, 0
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, target, err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(target string) resp { return e.do(http.MethodGet, target, "") }

func (e *env) post(target, body string) resp { return e.do(http.MethodPost, target, body) }

// want checks a request's status and exact body.
func (e *env) want(r resp, code int, body string) {
	e.t.Helper()
	wantResp(e.t, r, code, body)
}

func wantResp(t *testing.T, r resp, code int, body string) {
	t.Helper()
	if r.code != code || r.body != body {
		t.Fatalf("got %d %q, want %d %q", r.code, r.body, code, body)
	}
}

// mustGet requests target and checks status 200 and the exact body.
func (e *env) mustGet(target, body string) resp {
	e.t.Helper()
	r := e.get(target)
	if r.code != http.StatusOK || r.body != body {
		e.t.Fatalf("GET %s: got %d %q, want 200 %q", target, r.code, r.body, body)
	}
	return r
}

// mustPut stores data in the default queue through /put?data=.
func (e *env) mustPut(target string) {
	e.t.Helper()
	e.mustGet(target, "")
}

func (e *env) stats(queue string) fsm.QueueStats { return e.q.Stats(queue) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
