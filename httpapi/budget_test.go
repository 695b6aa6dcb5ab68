package httpapi

import (
	"context"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// TestBudget_PutPastBudget_507NamesBudgetStoresNothing fills a node's
// budget of queued bytes with /put: the put that would pass it is a 507
// QUEUE_FULL whose one line gives the figures and names the budget, and
// nothing of it is stored; once a reader drains a message, puts fit
// again.
func TestBudget_PutPastBudget_507NamesBudgetStoresNothing(t *testing.T) {
	const msg = "0123456789"
	e := newEnv(t, func(o *Options) { o.MaxQueuedBytes = 3 * (int64(len(msg)) + fsm.MessageOverhead) })
	for range 3 {
		e.mustPut("/put?data=" + msg)
	}
	r := e.get("/put?data=" + msg)
	if r.code != api.StatusQueueFull || r.header.Get(api.HeaderErrorCode) != "QUEUE_FULL" {
		t.Fatalf("put past the budget: %d %s %q, want 507 QUEUE_FULL", r.code, r.header.Get(api.HeaderErrorCode), r.body)
	}
	budget, need := api.FormatBytes(3*(int64(len(msg))+fsm.MessageOverhead)), api.FormatBytes(int64(len(msg))+fsm.MessageOverhead)
	for _, want := range []string{"node is full", budget, need + " more", "budget of " + budget, "--max-queued-bytes", "nothing was stored"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("507 body %q does not say %q", r.body, want)
		}
	}
	if strings.Count(r.body, "\n") != 1 {
		t.Errorf("507 body %q is not one line", r.body)
	}
	if st := e.stats(api.DefaultQueue); st.Depth != 3 {
		t.Fatalf("depth %d after a refused put, want 3", st.Depth)
	}
	e.mustGet("/get", msg)
	e.mustPut("/put?data=" + msg)
}

// TestBudget_MessagesPastIndexBudget_507NamesMemoryBudget fills the
// node's budget of messages, which bounds the index in memory: the put or
// mput that would pass it is a 507 that names --memory-budget, and
// nothing of it is stored.
func TestBudget_MessagesPastIndexBudget_507NamesMemoryBudget(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxQueuedBytes, o.MaxQueuedMessages = Unlimited, 3 })
	e.mustPut("/put?data=a")
	e.want(e.post("/mput", "b\nc"), 200, "")
	for _, r := range []resp{e.get("/put?data=d"), e.post("/mput", "d\ne")} {
		if r.code != api.StatusQueueFull || !strings.Contains(r.body, "--memory-budget") || !strings.Contains(r.body, "nothing was stored") {
			t.Fatalf("write past the budget of messages: %d %q, want 507 naming --memory-budget", r.code, r.body)
		}
	}
	if u := e.q.Usage(); u.Messages != 3 {
		t.Fatalf("usage %+v after refused writes, want 3 messages", u)
	}
	e.mustGet("/get", "a")
	e.mustPut("/put?data=d")
}

// TestBudget_MputOfTinyRecords_CountsOverheadPerRecord checks that a
// /mput is budgeted by its records, not only its bytes: 40 records of 1
// byte cost 40 bodies and 40 overheads, which pass a budget their 80
// bytes of body would not.
func TestBudget_MputOfTinyRecords_CountsOverheadPerRecord(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxQueuedBytes = 20 * fsm.MessageOverhead })
	body := strings.Repeat("x\n", 40)
	r := e.post("/mput", body)
	if r.code != api.StatusQueueFull {
		t.Fatalf("mput of 40 tiny records: %d %q, want 507", r.code, r.body)
	}
	if qs := e.q.Queues(); len(qs) != 0 {
		t.Fatalf("queues %q exist after a refused mput", qs)
	}
	e.want(e.post("/mput", strings.Repeat("x\n", 10)), 200, "")
	if u := e.q.Usage(); u.Messages != 10 || u.Bytes != 10 {
		t.Fatalf("usage %+v, want 10 messages of 1 byte", u)
	}
	// Ten more would pass the budget (20 bodies and 20 overheads).
	if r := e.post("/mput", strings.Repeat("x\n", 10)); r.code != api.StatusQueueFull {
		t.Fatalf("mput past the budget: %d %q, want 507", r.code, r.body)
	}
	// Empty data stores nothing and costs nothing, even on a full node.
	e.mustPut("/put?data=")
}

// TestBudget_Validate_ZeroRefusedUnlimitedExplicit checks the budget's
// convention: a positive size, or Unlimited; 0 is not a default.
func TestBudget_Validate_ZeroRefusedUnlimitedExplicit(t *testing.T) {
	o := DefaultOptions()
	o.Queue, o.Cluster = newFSMQueue(newFakeClock().Now), &fakeCluster{}
	if o.MaxQueuedBytes <= 0 {
		t.Fatalf("default budget %d, want a positive size derived from the machine", o.MaxQueuedBytes)
	}
	o.MaxQueuedBytes = 0
	if _, err := NewQueueHandler(o); err == nil || !strings.Contains(err.Error(), "MaxQueuedBytes") {
		t.Fatalf("MaxQueuedBytes 0: err %v, want a refusal", err)
	}
	e := newEnv(t, func(o *Options) { o.MaxQueuedBytes = Unlimited })
	e.want(e.post("/mput", strings.Repeat("x\n", 1000)), 200, "")
}

// TestBudget_FollowerOrLeaderFull_507FromEither checks that the budget is
// checked on the node the client asked, against its own state, before
// anything is forwarded, and again on the leader: a full follower refuses
// without a hop, and a full leader refuses what a follower forwards.
func TestBudget_FollowerOrLeaderFull_507FromEither(t *testing.T) {
	budget := int64(10 * (1 + fsm.MessageOverhead))
	f := newFleet(t, []string{"n1", "n2", "n3"}, func(o *Options) { o.MaxQueuedBytes = budget })
	f.setLeader("n1")
	n1, n2, n3 := f.nodes["n1"], f.nodes["n2"], f.nodes["n3"]
	fill := func(e *env) {
		t.Helper()
		msgs := make([][]byte, 10)
		for i := range msgs {
			msgs[i] = []byte("x")
		}
		if _, err := e.q.Propose(context.Background(), fsm.Command{Op: fsm.OpPut, Queue: "full", Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}

	// n2's own state is at its budget (it has applied what the leader
	// has not yet, say): it refuses at once.
	fill(n2)
	before := n1.q.proposals.Load()
	r := n2.get("/put?data=y")
	if r.code != api.StatusQueueFull || r.header.Get(api.HeaderServedBy) != "n2" {
		t.Fatalf("put on a full follower: %d served by %q %q, want 507 from n2", r.code, r.header.Get(api.HeaderServedBy), r.body)
	}
	if n1.q.proposals.Load() != before {
		t.Fatal("a full follower forwarded the put")
	}

	// The leader is full, n3 is not: n3 forwards, the leader refuses.
	fill(n1)
	r = n3.get("/put?data=y")
	if r.code != api.StatusQueueFull || r.header.Get(api.HeaderServedBy) != "n1" || !strings.Contains(r.body, "--max-queued-bytes") {
		t.Fatalf("put via n3 to a full leader: %d served by %q %q, want 507 from n1", r.code, r.header.Get(api.HeaderServedBy), r.body)
	}
	if st := n1.stats(api.DefaultQueue); st.Exists {
		t.Fatalf("the full leader stored %+v", st)
	}
}
