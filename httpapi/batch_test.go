package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// batcherOf is the follower e's batcher.
func batcherOf(e *env) *batcher { return e.h.(*engine).fwd.batch }

// queued is how many commands wait in b for a batch.
func queued(b *batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// holdProposals makes every Propose of e wait until the returned function
// is called (also at the end of the test).
func holdProposals(t *testing.T, e *env) (release func()) {
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	e.q.failPropose(func(ctx context.Context, _ fsm.Command) error {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return release
}

// sendAll sends every target (GET) to srv at once and returns the
// answers in the order of targets.
func sendAll(t *testing.T, srv *httptest.Server, targets []string) []resp {
	out := make([]resp, len(targets))
	var wg sync.WaitGroup
	for i, target := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := srv.Client().Get(srv.URL + target)
			if err != nil {
				t.Errorf("GET %s: %v", target, err)
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err != nil {
				t.Errorf("GET %s: %v", target, err)
			}
			out[i] = resp{code: res.StatusCode, header: res.Header, body: string(b)}
		}()
	}
	wg.Wait()
	return out
}

// inParallel runs sendAll in the background; wait returns its answers.
func inParallel(t *testing.T, srv *httptest.Server, targets []string) (wait func() []resp) {
	done := make(chan []resp, 1)
	go func() { done <- sendAll(t, srv, targets) }()
	return func() []resp { return <-done }
}

// learnLeader sends one write through follower, relayed to the leader,
// whose answer tells follower that it serves batches.
func learnLeader(t *testing.T, follower *env, leader string) {
	t.Helper()
	follower.want(follower.get("/put?queue=learn&data=x"), 200, "")
	if !batcherOf(follower).supports(leader) {
		t.Fatalf("%s does not know that %s serves batches", follower.opts.Cluster.ID(), leader)
	}
}

// TestBatch_ConcurrentPutsViaFollower_ShareBatches checks that writes
// through a follower travel in batches: while two batches wait on the
// leader, the others queue up and go together in the next one; each
// request gets the id of its own message and the leader's X-Served-By.
func TestBatch_ConcurrentPutsViaFollower_ShareBatches(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	learnLeader(t, n2, "n1")
	release := holdProposals(t, n1)

	const n = 50
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("/put?queue=q&data=m%d", i)
	}
	wait := inParallel(t, n2.srv, targets)
	// The leader holds the commands of two batches; the rest wait here.
	testwait.For(t, 10*time.Second, "every put proposed or queued", func() bool {
		return int(n1.q.proposals.Load())-1+queued(batcherOf(n2)) == n
	})
	release()

	ids := map[string]string{}
	for i, r := range wait() {
		n2.want(r, 200, "")
		wantHeader(t, r, api.HeaderServedBy, "n1")
		ids[r.header.Get(api.HeaderMessageID)] = fmt.Sprintf("m%d", i)
	}
	if len(ids) != n {
		t.Fatalf("%d distinct message ids for %d puts", len(ids), n)
	}
	// Each id is that of the request's own message.
	for range n {
		r := n1.get("/get?queue=q")
		if want := ids[r.header.Get(api.HeaderMessageID)]; r.body != want {
			t.Fatalf("message %s is %q, but its put was told it stored %q", r.header.Get(api.HeaderMessageID), r.body, want)
		}
	}
	wantProposals(t, n2, 0)
	if got := n2.metric("quorumq_forward_batches_total"); got != "3" {
		t.Fatalf("batches %q, want 3 (two held, then the rest in one)", got)
	}
	if got := n2.metric("quorumq_forward_batch_commands_sum"); got != "50" {
		t.Fatalf("commands in batches %q, want 50", got)
	}
	if got := n2.metric(`quorumq_http_forwarded_total{result="batched",route="put"}`); got != "50" {
		t.Fatalf("batched puts %q, want 50", got)
	}
	// The leader counts what it stored, as for relayed puts.
	if got := n1.metric(`quorumq_messages_put_total{queue="q"}`); got != "50" {
		t.Fatalf("leader's put count %q, want 50", got)
	}
	if got := n2.metric(`quorumq_messages_put_total{queue="q"}`); got != "" {
		t.Fatalf("follower's put count %q, want none", got)
	}
}

// TestBatch_PerCommandErrors_ReachTheirOwnRequest checks that the
// commands of one batch each answer their own request, exactly as the
// leader answers the same request: a 409 for an ack of an unknown id, a
// 400 for a touch without a lease, the same id for two puts with one
// id= key, 200s for the rest. The leader proposes the batch as one group
// when its Queue can (GroupProposer), else command by command; the
// answers are the same.
func TestBatch_PerCommandErrors_ReachTheirOwnRequest(t *testing.T) {
	for _, mode := range []struct {
		name    string
		opts    []func(*Options)
		grouped bool
	}{
		{name: "grouped", grouped: true},
		{name: "one by one", opts: []func(*Options){withoutGroups}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			f := newFleet(t, []string{"n1", "n2"}, mode.opts...)
			f.setLeader("n1")
			n1, n2 := f.nodes["n1"], f.nodes["n2"]
			n1.mustPut("/put?queue=q&data=a")
			n1.mustPut("/put?queue=q&data=b")
			n1.mustPut("/put?queue=q&data=c")
			n1.mustGet("/mget?queue=q&items=3&lease=1m", "a\nb\nc") // ids 1, 2, 3 in flight
			learnLeader(t, n2, "n1")                                // id 4
			release := holdProposals(t, n1)

			targets := []string{
				"/ack?queue=q&id=1",
				"/ack?queue=q&id=99",
				"/nack?queue=q&id=2&delay=1m&reason=boom",
				"/touch?queue=q&id=3",
				"/put?queue=q&data=dup&id=k1",
				"/put?queue=q&data=dup&id=k1",
				"/put?queue=bad%20name&data=x",
			}
			wait := inParallel(t, n2.srv, targets[:6])
			// A bad queue name is refused here, before anything is queued.
			n2.want(n2.get(targets[6]), 400, n1.get(targets[6]).body)
			testwait.For(t, 10*time.Second, "every command proposed or queued", func() bool {
				return int(n1.q.proposals.Load())-5+queued(batcherOf(n2)) == 6
			})
			release()
			got := wait()

			n2.want(got[0], 200, "")
			direct := n1.get("/ack?queue=q&id=99")
			n2.want(got[1], 409, direct.body)
			wantHeader(t, got[1], api.HeaderErrorCode, "NOT_IN_FLIGHT")
			n2.want(got[2], 200, "")
			n2.want(got[3], 400, "missing lease: give lease=DUR (the message's queue has no default lease)\n")
			n2.want(got[4], 200, "")
			n2.want(got[5], 200, "")
			if a, b := got[4].header.Get(api.HeaderMessageID), got[5].header.Get(api.HeaderMessageID); a == "" || a != b {
				t.Fatalf("ids %q and %q for one id= key, want one", a, b)
			}
			st := n1.stats("q")
			if st.InFlight != 1 || st.Deferred != 1 || st.Depth != 1 {
				t.Fatalf("leader's stats %+v: want 3 still in flight, 2 deferred, the duplicate put stored once", st)
			}
			// The learning put was relayed on its own; the six commands
			// went in at most three batches: two held on the leader, the
			// rest queued behind them.
			if groups := n1.q.groups.Load(); mode.grouped != (groups >= 1 && groups <= 3) {
				t.Fatalf("%d groups proposed on the leader; grouped: %v", groups, mode.grouped)
			}
		})
	}
}

// TestBatch_QueueFull_RelaysOnItsOwn checks the documented bound: a write
// that finds the batch queue full is relayed as one request, as without
// batching, and counted as a fallback; every write succeeds.
func TestBatch_QueueFull_RelaysOnItsOwn(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardBatchQueue = 1 })
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	learnLeader(t, n2, "n1")
	release := holdProposals(t, n1)

	const n = 8
	targets := make([]string, n)
	for i := range targets {
		targets[i] = fmt.Sprintf("/put?queue=q&data=m%d", i)
	}
	wait := inParallel(t, n2.srv, targets)
	testwait.For(t, 10*time.Second, "every put proposed or queued", func() bool {
		return int(n1.q.proposals.Load())-1+queued(batcherOf(n2)) == n
	})
	release()
	for _, r := range wait() {
		n2.want(r, 200, "")
		wantHeader(t, r, api.HeaderServedBy, "n1")
	}
	if st := n1.stats("q"); st.Depth != n {
		t.Fatalf("leader holds %d messages, want %d", st.Depth, n)
	}
	full := n2.metric(`quorumq_forward_batch_fallbacks_total{reason="queue_full"}`)
	proxied := n2.metric(`quorumq_http_forwarded_total{result="proxied",route="put"}`)
	if full == "" || full == "0" || proxied != fmt.Sprint(1+atoi(full)) {
		t.Fatalf("fallbacks %q, relayed puts %q: want some, each relayed", full, proxied)
	}
}

// advertising is a stand-in leader that serves forwarded requests with
// api.HeaderPropose and hands api.PathPropose to propose.
func advertising(t *testing.T, f *fleet, id string, propose http.HandlerFunc) (srv *httptest.Server, batches *atomic.Int64) {
	batches = new(atomic.Int64)
	srv = f.rawLeader(id, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathPropose {
			batches.Add(1)
			propose(w, r)
			return
		}
		w.Header().Set(api.HeaderPropose, "1")
		w.Header().Set(api.HeaderMessageID, "7")
	})
	f.setLeader(id)
	return srv, batches
}

// TestBatch_SilentLeader_OutcomeUnknownWithinForwardTimeout checks that a
// leader that takes a batch and never answers costs its writes the
// forward timeout and a 503 OUTCOME_UNKNOWN (they may have been applied),
// never more, never a 200.
func TestBatch_SilentLeader_OutcomeUnknownWithinForwardTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = timeout })
	_, batches := advertising(t, f, "n9", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // frozen: never answers
	})
	n2 := f.nodes["n2"]
	learnLeader(t, n2, "n9")

	start := time.Now()
	got := sendAll(t, n2.srv, []string{"/put?data=a", "/ack?id=1"})
	took := time.Since(start)
	for _, r := range got {
		n2.want(r, 503, api.ErrOutcomeUnknown.Text+"\n")
		wantHeader(t, r, api.HeaderErrorCode, "OUTCOME_UNKNOWN")
		wantHeader(t, r, "Retry-After", "1")
		wantHeader(t, r, api.HeaderServedBy, "n2")
	}
	if took < timeout-50*time.Millisecond || took > timeout+2*time.Second {
		t.Fatalf("answered after %v, want about the forward timeout of %v", took, timeout)
	}
	if batches.Load() == 0 {
		t.Fatalf("no batch reached the leader")
	}
}

// TestBatch_LeaderGone_NoLeaderWhenNothingWasSent checks that a batch
// that never reached a leader (connection refused) is held and tried
// again until the forward timeout, then answered NO_LEADER: nothing was
// applied, a plain retry is safe.
func TestBatch_LeaderGone_NoLeaderWhenNothingWasSent(t *testing.T) {
	f := newFleet(t, []string{"n2"}, func(o *Options) { o.ForwardTimeout = 300 * time.Millisecond })
	_, batches := advertising(t, f, "n9", func(w http.ResponseWriter, r *http.Request) { t.Error("batch reached a leader that is gone") })
	n2 := f.nodes["n2"]
	learnLeader(t, n2, "n9")
	// n9 is gone: nothing listens where the cluster still places it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	f.mu.Lock()
	f.addrs["n9"] = ln.Addr().String()
	f.mu.Unlock()

	r := n2.get("/put?data=a")
	if r.code != 503 || !strings.HasPrefix(r.body, "no leader: none could be reached within 300ms") {
		t.Fatalf("got %d %q", r.code, r.body)
	}
	wantHeader(t, r, api.HeaderErrorCode, "NO_LEADER")
	if batches.Load() != 0 {
		t.Fatalf("%d batches reached the leader", batches.Load())
	}
}

// TestBatch_NotLeader_RetriedOnTheNewLeader checks that a batch the node
// it was sent to refuses with NOT_LEADER (it applied nothing) goes again
// to the new leader within the forward deadline, and is applied once.
func TestBatch_NotLeader_RetriedOnTheNewLeader(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2", "n3"}, func(o *Options) { o.ForwardTimeout = time.Minute })
	n1, n2, n3 := f.nodes["n1"], f.nodes["n2"], f.nodes["n3"]
	f.setLeader("n3")
	learnLeader(t, n2, "n3")
	f.setLeader("n1")
	learnLeader(t, n2, "n1")

	// n1 has lost the lead to n3, but n2 does not know it yet: its batch
	// goes to n1 first, and n2 learns of n3 on its next look.
	f.mu.Lock()
	f.leader, f.believe["n2"] = "n3", "n1"
	start := f.polls["n2"]
	f.onPoll = func(id string, n int) {
		if id == "n2" && n == start+3 { // forward, the batch's first try, then this
			delete(f.believe, "n2")
		}
	}
	f.mu.Unlock()

	r := n2.get("/put?queue=q&data=once")
	n2.want(r, 200, "")
	wantHeader(t, r, api.HeaderServedBy, "n3")
	if got := n1.metric(`quorumq_http_requests_total{code="503",route="internal_propose"}`); got != "1" {
		t.Fatalf("NOT_LEADER answers of n1: %q, want 1", got)
	}
	if st := n3.stats("q"); st.Depth != 1 {
		t.Fatalf("new leader's stats %+v, want the message once", st)
	}
	if st := n1.stats("q"); st.Puts != 0 {
		t.Fatalf("old leader stored %+v", st)
	}
	if got := n2.metric("quorumq_forward_batches_total"); got != "2" {
		t.Fatalf("batches %q, want 2 (refused, then applied)", got)
	}
}

// TestBatch_OlderLeader_RelaysOneByOne checks the fallback for a leader
// that does not serve batches: one that does not advertise them gets
// every write relayed; one that advertised them and then refuses the
// route (a node downgraded under the same id) gets the refused write
// relayed at once, and the next ones without a batch.
func TestBatch_OlderLeader_RelaysOneByOne(t *testing.T) {
	f := newFleet(t, []string{"n2"})
	var relayed atomic.Int64
	f.rawLeader("old", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathPropose {
			t.Error("a batch went to a leader that never advertised them")
		}
		relayed.Add(1)
		w.Header().Set(api.HeaderMessageID, "7")
	})
	f.setLeader("old")
	n2 := f.nodes["n2"]
	for range 3 {
		r := n2.get("/put?data=a")
		n2.want(r, 200, "")
		wantHeader(t, r, api.HeaderMessageID, "7")
	}
	if relayed.Load() != 3 {
		t.Fatalf("%d writes relayed, want 3", relayed.Load())
	}

	_, batches := advertising(t, f, "downgraded", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	learnLeader(t, n2, "downgraded")
	for range 2 {
		r := n2.get("/put?data=a")
		n2.want(r, 200, "")
		wantHeader(t, r, api.HeaderMessageID, "7")
		if r.header.Get(api.HeaderPropose) != "" {
			t.Fatalf("%s reached the client", api.HeaderPropose)
		}
	}
	if batches.Load() != 1 {
		t.Fatalf("%d batches sent, want 1 (then none)", batches.Load())
	}
	if got := n2.metric(`quorumq_forward_batch_fallbacks_total{reason="unsupported"}`); got != "1" {
		t.Fatalf("unsupported fallbacks %q, want 1", got)
	}
}

// TestBatch_Disabled_RelaysEveryWrite checks --forward-batch=false: a
// follower relays each write even to a leader that serves batches.
func TestBatch_Disabled_RelaysEveryWrite(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, func(o *Options) { o.ForwardBatch = false })
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	for range 3 {
		n2.want(n2.get("/put?data=a"), 200, "")
	}
	if got := n2.metric(`quorumq_http_forwarded_total{result="proxied",route="put"}`); got != "3" {
		t.Fatalf("relayed puts %q, want 3", got)
	}
	if got := n1.metric(`quorumq_http_requests_total{code="200",route="internal_propose"}`); got != "" {
		t.Fatalf("batches on the leader: %q", got)
	}
}

// TestBatch_ProposeRoute_NodesOnly checks that api.PathPropose is a
// node-to-node route: refused (403) to a caller InternalAuth does not
// know, whatever its body.
func TestBatch_ProposeRoute_NodesOnly(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.InternalAuth = func(*http.Request) bool { return false } })
	body := encodeCommands(nil, []fsm.Command{{Op: fsm.OpPut, Queue: "q", Messages: [][]byte{[]byte("x")}}})
	r := e.post(api.PathPropose, string(body))
	if r.code != 403 {
		t.Fatalf("got %d %q, want 403", r.code, r.body)
	}
	wantProposals(t, e, 0)
}

// TestBatch_ProposeRoute_RefusesWhatIsNeverBatched checks that the leader
// applies nothing of a batch that holds a command no follower batches.
func TestBatch_ProposeRoute_RefusesWhatIsNeverBatched(t *testing.T) {
	e := newEnv(t)
	body := encodeCommands(nil, []fsm.Command{{Op: fsm.OpPut, Queue: "q", Messages: [][]byte{[]byte("x")}}, {Op: fsm.OpGet, Queue: "q", Max: 1}})
	r := e.post(api.PathPropose, string(body))
	e.want(r, 400, "batch: command 2 is a get, which is never batched\n")
	wantProposals(t, e, 0)
}

// TestBatch_Drained_RelaysLaterWrites checks shutdown: once drained, the
// batcher takes nothing more and later writes are relayed.
func TestBatch_Drained_RelaysLaterWrites(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"})
	f.setLeader("n1")
	n2 := f.nodes["n2"]
	learnLeader(t, n2, "n1")
	n2.want(n2.get("/put?data=batched"), 200, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := DrainForwarding(ctx, n2.h); err != nil {
		t.Fatal(err)
	}
	n2.want(n2.get("/put?data=relayed"), 200, "")
	if got := n2.metric(`quorumq_forward_batch_fallbacks_total{reason="shutting_down"}`); got != "1" {
		t.Fatalf("fallbacks %q, want 1", got)
	}
}

// TestBatchWire_Results_RoundTrip checks the results' framing: ids,
// duplicates, counts, business errors and proposal errors come back as
// the kinds they were.
func TestBatchWire_Results_RoundTrip(t *testing.T) {
	in := []commandResult{
		{res: fsm.Result{IDs: []uint64{5, 6, 7, 1000}, Count: 0}},
		{res: fsm.Result{IDs: []uint64{3}, Duplicate: true}},
		{res: fsm.Result{Err: api.ErrNotInFlight.Errorf("gone"), IDs: []uint64{99}}},
		{err: fmt.Errorf("x: %w", api.ErrNotLeader)},
		{err: api.ErrQueueFull.Errorf("node is full"), final: true},
		{res: fsm.Result{Count: 3}},
	}
	out, err := decodeResults(appendResults(nil, in), len(in))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case !slices.Equal(out[0].res.IDs, in[0].res.IDs) || out[0].err != nil:
		t.Fatalf("ids %v", out[0].res.IDs)
	case !out[1].res.Duplicate || out[1].res.IDs[0] != 3:
		t.Fatalf("duplicate %+v", out[1])
	case !errors.Is(out[2].res.Err, api.ErrNotInFlight) || out[2].err != nil || out[2].res.IDs[0] != 99:
		t.Fatalf("business error %+v", out[2])
	case !errors.Is(out[3].err, api.ErrNotLeader) || out[3].final:
		t.Fatalf("proposal error %+v", out[3])
	case !errors.Is(out[4].err, api.ErrQueueFull) || !out[4].final || out[4].err.Error() != "node is full":
		t.Fatalf("final error %+v", out[4])
	case out[5].res.Count != 3:
		t.Fatalf("count %+v", out[5])
	}
	if _, err := decodeResults(appendResults(nil, in)[:10], len(in)); !errors.Is(err, errBadResults) {
		t.Fatalf("truncated results: %v", err)
	}
}
