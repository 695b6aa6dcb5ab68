package httpapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// fleet is a cluster of real queue handlers on real HTTP servers, each over
// its own fsm-backed queue, sharing a leadership that the test switches.
type fleet struct {
	t     *testing.T
	nodes map[string]*env // written before the first request

	mu       sync.Mutex
	leader   string            // "": no leader known
	hideAddr bool              // the leader is known, its queue address not yet
	electing bool              // Leader() names a node whose IsLeader() is still false
	believe  map[string]string // one node's own idea of the leader
	addrs    map[string]string // queue addresses of leaders that are not nodes
	polls    map[string]int    // Leader() calls by node
	// onPoll, when set, runs (under mu) at each Leader() call before it is
	// answered, with the node's poll count: it switches leadership at a
	// known point of a held request, without sleeping.
	onPoll func(id string, n int)
}

// newFleet starts one node per id. Options apply to every node.
func newFleet(t *testing.T, ids []string, opts ...func(*Options)) *fleet {
	t.Helper()
	f := &fleet{t: t, nodes: map[string]*env{}, believe: map[string]string{}, addrs: map[string]string{}, polls: map[string]int{}}
	for _, id := range ids {
		member := fleetMember{f: f, id: id}
		f.nodes[id] = newEnv(t, append([]func(*Options){func(o *Options) {
			o.Cluster = member
			o.Logger = discardLogger()
		}}, opts...)...)
	}
	return f
}

func (f *fleet) setLeader(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leader = id
}

// view is the leader as node id sees it; count tells Leader() calls from
// IsLeader() calls.
func (f *fleet) view(id string, count bool) (api.Leader, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if count {
		f.polls[id]++
		if f.onPoll != nil {
			f.onPoll(id, f.polls[id])
		}
	}
	leader := f.leader
	if b, ok := f.believe[id]; ok {
		leader = b
	}
	if leader == "" {
		return api.Leader{}, false
	}
	info := api.Leader{ID: leader}
	if !f.hideAddr {
		info.QueueAddr = f.addrs[leader]
		if n := f.nodes[leader]; n != nil && info.QueueAddr == "" {
			info.QueueAddr = n.srv.Listener.Addr().String()
		}
	}
	return info, true
}

// fleetMember is one node's Cluster.
type fleetMember struct {
	f  *fleet
	id string
}

func (m fleetMember) Status() api.Status { return api.Status{NodeID: m.id} }
func (m fleetMember) Ready() bool        { return true }
func (m fleetMember) ID() string         { return m.id }

func (m fleetMember) IsLeader() bool {
	info, ok := m.f.view(m.id, false)
	m.f.mu.Lock()
	defer m.f.mu.Unlock()
	return ok && info.ID == m.id && !m.f.electing
}

func (m fleetMember) Leader() (api.Leader, bool) { return m.f.view(m.id, true) }

// rawLeader starts a stand-in leader with its own handler, known to the
// fleet as id.
func (f *fleet) rawLeader(id string, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	f.t.Cleanup(srv.Close)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs[id] = srv.Listener.Addr().String()
	return srv
}

// metric returns the value of one sample on e's /metrics, "" if absent.
func (e *env) metric(sample string) string {
	e.t.Helper()
	for line := range strings.Lines(e.get("/metrics").body) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			return v
		}
	}
	return ""
}

// wantHeader checks one response header.
func wantHeader(t *testing.T, r resp, name, want string) {
	t.Helper()
	if got := r.header.Get(name); got != want {
		t.Fatalf("%s %q, want %q (status %d, body %q)", name, got, want, r.code, r.body)
	}
}

func wantProposals(t *testing.T, e *env, want int64) {
	t.Helper()
	if n := e.q.proposals.Load(); n != want {
		t.Fatalf("%d proposals, want %d", n, want)
	}
}

// hangUp answers nothing: it takes the connection and closes it, as a
// leader that dies after reading the request.
func hangUp(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

// TestForward_WriteViaFollower_LandsOnLeader checks that writes sent to
// followers are executed by the leader: stored in its FSM, nothing
// proposed on the followers, the leader's answer (headers included)
// relayed with X-Served-By naming it.
func TestForward_WriteViaFollower_LandsOnLeader(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2", "n3"})
	f.setLeader("n1")
	n1, n2, n3 := f.nodes["n1"], f.nodes["n2"], f.nodes["n3"]

	r := n2.post("/put?queue=jobs", "hello") // the body travels too
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	wantHeader(t, r, api.HeaderMessageID, "1")
	n3.want(n3.get("/mput?queue=jobs&data=a%0Ab"), 200, "")
	if st := n1.stats("jobs"); st.Depth != 3 || st.Puts != 3 {
		t.Fatalf("leader's stats %+v, want 3 stored", st)
	}

	// /get is a write too: it pops from the leader's FSM.
	r = n3.mustGet("/get?queue=jobs", "hello")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	wantHeader(t, r, api.HeaderMessageID, "1")
	wantHeader(t, r, api.HeaderAttempts, "1")
	r = n2.mustGet("/mget?queue=jobs&items=5&format=json", `{"messages":[{"id":"2","attempts":1,"data":"a"},{"id":"3","attempts":1,"data":"b"}]}`+"\n")
	wantHeader(t, r, "Content-Type", typeJSON)
	// An empty poll on a follower is answered by the leader's state too.
	r = n2.mustGet("/get?queue=jobs", "")
	wantHeader(t, r, api.HeaderServedBy, "n1")

	wantProposals(t, n2, 0)
	wantProposals(t, n3, 0)
	if st := n2.stats("jobs"); st.Puts != 0 {
		t.Fatalf("follower's own FSM changed: %+v", st)
	}
	if got := n2.metric(`quorumq_http_forwarded_total{result="proxied",route="put"}`); got != "1" {
		t.Fatalf("proxied puts on n2: %q, want 1", got)
	}
	// The leader serves locally and says so; so does a 404 anywhere.
	wantHeader(t, n1.get("/put?data=x"), api.HeaderServedBy, "n1")
	wantHeader(t, n2.get("/nothing"), api.HeaderServedBy, "n2")
}

// TestForward_Redirect_Gives307ToLeader checks redirect=1: 307 with the
// request's own URI on the leader and an empty body, nothing applied
// anywhere. 307 makes clients repeat the method and the body (RFC 9110
// §15.4.8; curl -L and Go's client do), unlike 301/302/303, on which
// they switch a POST to GET.
func TestForward_Redirect_Gives307ToLeader(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	leaderAddr := n1.srv.Listener.Addr().String()

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Post(n2.srv.URL+"/put?queue=q&redirect=1&data=a%20b", "text/plain", strings.NewReader("ignored"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusTemporaryRedirect || len(body) != 0 {
		t.Fatalf("got %d %q, want 307 with an empty body", res.StatusCode, body)
	}
	if loc, want := res.Header.Get("Location"), "http://"+leaderAddr+"/put?queue=q&redirect=1&data=a%20b"; loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	if res.Header.Get(api.HeaderLeaderID) != "n1" || res.Header.Get(api.HeaderServedBy) != "n2" {
		t.Fatalf("headers %v", res.Header)
	}
	wantProposals(t, n1, 0)
	wantProposals(t, n2, 0)

	// Following it repeats the POST with its body on the leader.
	r := n2.post("/put?queue=q&redirect=1", "posted body")
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	n1.mustGet("/get?queue=q", "posted body")

	// On the leader redirect=1 changes nothing; a malformed one is a 400.
	n1.want(n1.get("/put?queue=q&redirect=1&data=x"), 200, "")
	n2.want(n2.get("/put?redirect=yes&data=x"), 400, "invalid redirect=\"yes\": want 1 or 0\n")
	// A stale read needs no leader: answered here, never redirected.
	n2.want(n2.get("/stats?queue=q&stale=1&redirect=1"), 200, "puts:0\ngets:0\ndepth:0\ndepth_high_water:0\nbytes:0\noverflow:0\n")
}

// TestForward_LoopGuard_OneHopOnly checks the loop guard: two followers
// that each take the other for the leader do not bounce a request between
// them. The forwarded request is refused (503 NOT_LEADER) by the second;
// the first holds and retries until ForwardTimeout, then answers 503.
func TestForward_LoopGuard_OneHopOnly(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardTimeout = 300 * time.Millisecond })
	f.believe["n1"], f.believe["n2"] = "n2", "n1"
	n1, n2 := f.nodes["n1"], f.nodes["n2"]

	r := n1.get("/put?data=x")
	if r.code != 503 || !strings.HasPrefix(r.body, "no leader: none could be reached within 300ms (n2 answered NOT_LEADER)") {
		t.Fatalf("got %d %q", r.code, r.body)
	}
	wantHeader(t, r, "Retry-After", "1")
	wantHeader(t, r, api.HeaderErrorCode, "NO_LEADER")
	wantHeader(t, r, api.HeaderLeaderID, "n2")
	wantProposals(t, n1, 0)
	wantProposals(t, n2, 0)
	// n1 handled the client's request only: n2 never forwarded back.
	if got := n1.metric(`quorumq_http_requests_total{code="503",route="put"}`); got != "1" {
		t.Fatalf("put requests answered by n1: %q, want 1", got)
	}
	if n2.metric(`quorumq_http_forwarded_total{result="refused",route="put"}`) == "" ||
		n2.metric(`quorumq_http_forwarded_total{result="proxied",route="put"}`) != "" {
		t.Fatal("n2 did not refuse the forwarded request, or forwarded it")
	}

	// What n2 answers a forwarded request, seen directly.
	req, _ := http.NewRequest("GET", n2.srv.URL+"/put?data=x", nil)
	req.Header.Set(api.HeaderForwardedBy, "n1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if want := "not the leader: \"n1\" forwarded this request to n2, which does not lead; retry\n"; res.StatusCode != 503 || string(body) != want {
		t.Fatalf("got %d %q, want 503 %q", res.StatusCode, body, want)
	}
	for k, want := range map[string]string{"Retry-After": "1", api.HeaderErrorCode: "NOT_LEADER", api.HeaderLeaderID: "n1", api.HeaderServedBy: "n2"} {
		if got := res.Header.Get(k); got != want {
			t.Fatalf("%s %q, want %q", k, got, want)
		}
	}
}

// TestForward_NoLeader_WaitsThenServes checks the hold: a write that
// arrives while no leader is known, then while its address is not known,
// waits and is served once both are.
func TestForward_NoLeader_WaitsThenServes(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	f.onPoll = func(id string, n int) {
		switch {
		case id != "n2":
		case n == 3: // elected, address still unknown
			f.leader, f.hideAddr = "n1", true
		case n == 6: // gossip caught up
			f.hideAddr = false
		}
	}
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	r := n2.get("/put?data=held")
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	n1.mustGet("/get", "held")
	wantProposals(t, n2, 0)
}

// TestForward_NoLeader_503AfterTimeout checks that the hold ends after
// ForwardTimeout with 503, Retry-After and a body that says why.
func TestForward_NoLeader_503AfterTimeout(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardTimeout = 100 * time.Millisecond })
	n2 := f.nodes["n2"]

	r := n2.get("/put?data=x")
	n2.want(r, 503, "no leader: none was elected within 100ms; retry\n")
	wantHeader(t, r, "Retry-After", "1")
	wantHeader(t, r, api.HeaderErrorCode, "NO_LEADER")
	wantHeader(t, r, api.HeaderLeaderID, "")
	wantHeader(t, r, api.HeaderServedBy, "n2")

	// Known leader, unknown address: the same hold, a precise answer.
	f.mu.Lock()
	f.leader, f.hideAddr = "n1", true
	f.mu.Unlock()
	r = n2.get("/stats")
	n2.want(r, 503, "no leader: none could be reached within 100ms (n1 leads, but its queue address is not known here yet); retry\n")
	wantHeader(t, r, api.HeaderLeaderID, "n1")
	wantProposals(t, f.nodes["n1"], 0)
	wantProposals(t, n2, 0)
}

// TestForward_LeaderDown_DialFailsThenRetriesNewLeader checks that a
// write whose leader cannot be reached (nothing was sent) is held and
// sent to the next leader, and stored exactly once.
func TestForward_LeaderDown_DialFailsThenRetriesNewLeader(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2", "n3"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	f.setLeader("n1")
	n1, n2, n3 := f.nodes["n1"], f.nodes["n2"], f.nodes["n3"]
	n1.srv.Close() // the leader died; the cluster has not noticed yet
	f.onPoll = func(id string, n int) {
		if id == "n2" && n == 2 { // after the first attempt failed
			f.leader = "n3"
		}
	}

	r := n2.get("/put?data=once&id=k1")
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n3")
	if st := n3.stats(api.DefaultQueue); st.Puts != 1 || st.Depth != 1 {
		t.Fatalf("new leader's stats %+v, want the message once", st)
	}
	wantProposals(t, n1, 0)
	wantProposals(t, n2, 0)
	wantProposals(t, n3, 1)
	if got := n2.metric(`quorumq_http_forward_retries_total{route="put"}`); got != "1" {
		t.Fatalf("retries %q, want 1", got)
	}
}

// TestForward_StaleRead_AnsweredLocally checks that stale=1 reads are
// answered from the follower's own state, without a leader.
func TestForward_StaleRead_AnsweredLocally(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	// The follower's FSM lags: it has one message, the leader two.
	n2.q.Propose(context.Background(), fsm.Command{Op: fsm.OpPut, Queue: api.DefaultQueue, Messages: [][]byte{[]byte("old")}})
	f.setLeader("n1")
	n1.mustPut("/mput?data=old%0Anew")
	f.setLeader("") // no leader at all: stale reads do not care

	r := n2.mustGet("/stats?stale=1", "puts:1\ngets:0\ndepth:1\ndepth_high_water:1\nbytes:3\noverflow:0\n")
	wantHeader(t, r, api.HeaderServedBy, "n2")
	r = n2.mustGet("/dump?stale=1", "old\n")
	wantHeader(t, r, api.HeaderServedBy, "n2")
	// Admin endpoints are local too.
	n2.mustGet("/healthz", "ok\n")
	n2.mustGet("/readyz", "ready\n")
	if r := n2.get("/cluster/status"); r.code != 200 || !strings.Contains(r.body, `"node_id":"n2"`) {
		t.Fatalf("/cluster/status %d %q", r.code, r.body)
	}
	if n2.metric(`quorumq_http_forwarded_total{result="proxied",route="stats"}`) != "" {
		t.Fatal("a stale read was forwarded")
	}
}

// TestForward_ConsistentRead_Forwarded checks that /stats and /dump
// without stale=1 are answered by the leader, HEAD included.
func TestForward_ConsistentRead_Forwarded(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	n1.mustPut("/mput?data=a%0Abb")

	r := n2.mustGet("/stats", "puts:2\ngets:0\ndepth:2\ndepth_high_water:2\nbytes:3\noverflow:0\n")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	r = n2.mustGet("/dump", "a\nbb\n")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	r = n2.do(http.MethodHead, "/stats?format=json", "")
	if r.code != 200 || r.body != "" || r.header.Get(api.HeaderServedBy) != "n1" || r.header.Get("Content-Length") == "" {
		t.Fatalf("HEAD: %d %q %v", r.code, r.body, r.header)
	}
	if n2.stats(api.DefaultQueue).Puts != 0 {
		t.Fatal("follower state changed")
	}
}

// TestForward_LongPoll_ThroughProxy checks that a wait= get sent to a
// follower waits on the leader and returns the message put there later.
func TestForward_LongPoll_ThroughProxy(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]

	done := make(chan resp, 1)
	go func() {
		res, err := http.Get(n2.srv.URL + "/get?queue=lp&wait=30s")
		if err != nil {
			done <- resp{body: "error: " + err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- resp{code: res.StatusCode, header: res.Header, body: string(b)}
	}()
	testwait.For(t, 10*time.Second, "the long-poll to wait on the leader", func() bool { return n1.q.changed.Load() > 0 })
	n1.mustPut("/put?queue=lp&data=wake")
	select {
	case r := <-done:
		n2.want(r, 200, "wake")
		wantHeader(t, r, api.HeaderServedBy, "n1")
		wantHeader(t, r, api.HeaderMessageID, "1")
	case <-time.After(25 * time.Second):
		t.Fatal("the long-poll did not return after the put")
	}
	wantProposals(t, n2, 0)
}

// TestForward_SelfBecomesLeaderDuringWait checks a freshly started single
// node: a write that arrives during its first election is held, then
// served locally once the node leads.
func TestForward_SelfBecomesLeaderDuringWait(t *testing.T) {
	f := newFleet(t, []string{"n1"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	f.onPoll = func(_ string, n int) {
		switch n {
		case 2: // its own id is reported before it leads: not forwarded to itself
			f.leader, f.electing = "n1", true
		case 4:
			f.electing = false
		}
	}
	n1 := f.nodes["n1"]
	r := n1.get("/put?data=first")
	n1.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	wantProposals(t, n1, 1)
	n1.mustGet("/get", "first")
	if n1.metric(`quorumq_http_forwarded_total{result="proxied",route="put"}`) != "" {
		t.Fatal("the node forwarded to itself")
	}
}

// TestForward_LocalNotLeader_Rerouted checks that a request whose local
// Propose finds that leadership just moved (nothing applied) goes through
// the forwarding step once, body included, instead of failing.
func TestForward_LocalNotLeader_Rerouted(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n2")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	n2.q.failPropose(func(context.Context, fsm.Command) error {
		f.setLeader("n1") // n2 stepped down after the check
		return api.ErrNotLeader
	})
	r := n2.post("/mput", "a\nb")
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n1")
	n1.mustGet("/mget?items=3", "a\nb\n")
	wantProposals(t, n2, 1)

	// Still leading after the refusal: one more local try, then the 503.
	e := newEnv(t)
	e.q.failPropose(func(context.Context, fsm.Command) error { return api.ErrNotLeader })
	e.want(e.get("/put?data=x"), 503, "this node is not the leader; retry\n")
	wantProposals(t, e, 2)
}

// TestForward_PartialMput_OutcomeUnknown checks that a large /mput whose
// later command meets "not the leader" after an earlier one committed
// answers outcome unknown, never NOT_LEADER (which a forwarder would
// retry, storing the first part twice).
func TestForward_PartialMput_OutcomeUnknown(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Logger = discardLogger() })
	var calls atomic.Int64
	e.q.failPropose(func(context.Context, fsm.Command) error {
		if calls.Add(1) == 2 {
			return api.ErrNotLeader
		}
		return nil
	})
	big := strings.Repeat(strings.Repeat("x", 1000)+"\n", 600) // ~600 KB: several commands
	r := e.post("/mput", big)
	e.want(r, 503, api.ErrOutcomeUnknown.Text+"\n")
	wantHeader(t, r, api.HeaderErrorCode, "OUTCOME_UNKNOWN")
	wantProposals(t, e, 2)
}

// TestForward_WriteLostAfterSend_OutcomeUnknown checks that a write whose
// leader hangs up after reading it is answered "outcome unknown" and sent
// once: not retried by the forwarder, not resent by the HTTP transport on
// a kept-alive connection.
func TestForward_WriteLostAfterSend_OutcomeUnknown(t *testing.T) {
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	var puts atomic.Int64
	f.rawLeader("raw", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/put") {
			puts.Add(1)
			hangUp(t, w)
			return
		}
		w.Write([]byte("puts:0\n"))
	})
	f.setLeader("raw")
	n2 := f.nodes["n2"]

	n2.mustGet("/stats", "puts:0\n") // leaves a kept-alive connection to reuse
	r := n2.get("/put?data=x")
	n2.want(r, 503, api.ErrOutcomeUnknown.Text+"\n")
	wantHeader(t, r, api.HeaderErrorCode, "OUTCOME_UNKNOWN")
	wantHeader(t, r, api.HeaderServedBy, "n2")
	if n := puts.Load(); n != 1 {
		t.Fatalf("the leader received the write %d times, want 1", n)
	}
	if got := n2.metric(`quorumq_http_forwarded_total{result="outcome_unknown",route="put"}`); got != "1" {
		t.Fatalf("outcome_unknown count %q", got)
	}
}

// TestForward_ReadLostAfterSend_Retried checks that a read whose exchange
// fails after it was sent is simply sent again.
func TestForward_ReadLostAfterSend_Retried(t *testing.T) {
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	var reads atomic.Int64
	f.rawLeader("raw", func(w http.ResponseWriter, r *http.Request) {
		if reads.Add(1) == 1 {
			hangUp(t, w)
			return
		}
		w.Write([]byte("a\n"))
	})
	f.setLeader("raw")
	n2 := f.nodes["n2"]
	n2.mustGet("/dump", "a\n")
	if n := reads.Load(); n != 2 {
		t.Fatalf("the leader was asked %d times, want 2", n)
	}
}

// TestForward_HeadersRelayed checks what travels: method, URI, body and
// end-to-end headers to the leader, with the loop guard; the leader's
// status, end-to-end headers and body back. Hop-by-hop headers stay on
// their connection.
func TestForward_HeadersRelayed(t *testing.T) {
	f := newFleet(t, []string{"n2"})
	type seen struct {
		method, uri, body string
		header            http.Header
		length            int64
		te                []string
	}
	got := make(chan seen, 2)
	f.rawLeader("raw", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, string(b), r.Header.Clone(), r.ContentLength, r.TransferEncoding}
		w.Header().Set(api.HeaderMessageID, "7")
		w.Header().Set(api.HeaderServedBy, "raw")
		w.Header().Set("Connection", "X-Leader-Hop")
		w.Header().Set("X-Leader-Hop", "v")
		w.WriteHeader(api.StatusQueueFull)
		w.Write([]byte("queue \"q\" is full\n"))
	})
	f.setLeader("raw")
	n2 := f.nodes["n2"]

	req, _ := http.NewRequest("POST", n2.srv.URL+"/put?queue=q&id=k%201", strings.NewReader("payload"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Trace", "t1")
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "v")
	req.Header.Set("Idempotency-Key", "z")
	req.Header.Set("Expect", "100-continue")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	s := <-got
	if s.method != "POST" || s.uri != "/put?queue=q&id=k%201" || s.body != "payload" || s.length != 7 {
		t.Fatalf("leader saw %s %s %q (length %d)", s.method, s.uri, s.body, s.length)
	}
	for k, want := range map[string]string{"Content-Type": "text/plain", "X-Trace": "t1", api.HeaderForwardedBy: "n2", "X-Client-Hop": "", "Idempotency-Key": "", "Expect": ""} {
		if v := s.header.Get(k); v != want {
			t.Errorf("leader saw %s %q, want %q", k, v, want)
		}
	}
	if res.StatusCode != api.StatusQueueFull || string(body) != "queue \"q\" is full\n" {
		t.Fatalf("relayed %d %q", res.StatusCode, body)
	}
	for k, want := range map[string]string{api.HeaderMessageID: "7", api.HeaderServedBy: "raw", "X-Leader-Hop": ""} {
		if v := res.Header.Get(k); v != want {
			t.Errorf("client saw %s %q, want %q", k, v, want)
		}
	}

	// A GET write goes as a GET without a body.
	r := n2.get("/get?queue=q")
	if r.code != api.StatusQueueFull {
		t.Fatalf("GET relayed %d", r.code)
	}
	s = <-got
	if s.method != "GET" || s.uri != "/get?queue=q" || s.body != "" || s.length != 0 || len(s.te) != 0 {
		t.Fatalf("leader saw %s %s %q (length %d, transfer-encoding %v)", s.method, s.uri, s.body, s.length, s.te)
	}
}

// TestForward_BodyTooLarge_413BeforeForwarding checks that the follower
// bounds the body it must buffer, and answers 413 without a leader trip.
func TestForward_BodyTooLarge_413BeforeForwarding(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.MaxBodySize = 10 })
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	n2.want(n2.post("/put", "more than ten bytes"), 413, "request body is 19 bytes, more than the limit of 10 bytes\n")
	if n1.metric(`quorumq_http_requests_total{code="413",route="put"}`) != "" {
		t.Fatal("the leader saw the request")
	}
}

// TestForward_ClientGone_StopsHolding checks that a held request ends when
// its client goes away, long before ForwardTimeout.
func TestForward_ClientGone_StopsHolding(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardTimeout = time.Hour })
	n2 := f.nodes["n2"]
	ctx, cancel := context.WithCancel(context.Background())
	f.onPoll = func(id string, n int) {
		if n == 2 {
			cancel() // the client hangs up while held
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", n2.srv.URL+"/put?data=x", nil)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("got %d, want the request canceled", res.StatusCode)
	}
	testwait.For(t, 30*time.Second, "the held request to end", func() bool {
		return n2.metric(`quorumq_http_forwarded_total{result="canceled",route="put"}`) == "1"
	})

}

// TestForward_NoLeader_503SaysWhatTheNodeKnows: when the hold runs out,
// the 503 says why there is no leader as the node's status tells it: a
// lost majority names the unreachable voters, an unjoined node its seeds.
func TestForward_NoLeader_503SaysWhatTheNodeKnows(t *testing.T) {
	voter := func(id, status string) api.Member {
		return api.Member{ID: id, Status: status, Voter: true, Suffrage: api.SuffrageVoter}
	}
	for _, tc := range []struct {
		name string
		st   api.Status
		want string
	}{
		{"majority lost", api.Status{NodeID: "n1", State: api.StateFollower,
			Members: []api.Member{voter("n1", api.MemberAlive), voter("n2", api.MemberDead), voter("n3", api.MemberDead)}},
			"no leader: 2 of 3 voters unreachable (n2, n3); a majority (2) must be up (waited 50ms); retry\n"},
		{"not joined", api.Status{NodeID: "n1", State: api.StateFollower, UnreachedSeeds: []string{"127.0.0.1:9003"},
			Members: []api.Member{{ID: "n1", Status: api.MemberAlive, Suffrage: api.SuffrageNone}}},
			"not joined: join seeds 127.0.0.1:9003 unreachable; start one of them or check --join (waited 50ms); retry\n"},
	} {
		e := newEnv(t, func(o *Options) {
			o.ForwardTimeout = 50 * time.Millisecond
			o.Cluster = &fakeCluster{
				leader: func() (api.Leader, bool) { return api.Leader{}, false },
				status: func() api.Status { return tc.st },
			}
		})
		r := e.get("/put?data=x")
		if r.code != 503 || r.body != tc.want {
			t.Errorf("%s: %d %q, want 503 %q", tc.name, r.code, r.body, tc.want)
		}
		if st := e.stats(api.DefaultQueue); st.Puts != 0 {
			t.Errorf("%s: the put was stored", tc.name)
		}
	}
}
