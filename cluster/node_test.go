package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// A fresh node bootstraps itself, leads, applies puts and a get, and reports
// itself in Status.
func TestNode_SingleNode_BootstrapsAndApplies(t *testing.T) {
	f := fsm.New()
	n := mustOpen(t, testOptions(t, t.TempDir()), f)
	mustLead(t, n)

	r1 := mustPropose(t, n, putCmd("jobs", "a", "b"))
	r2 := mustPropose(t, n, putCmd("jobs", "c"))
	if len(r1.IDs) != 2 || len(r2.IDs) != 1 || r2.IDs[0] <= r1.IDs[1] {
		t.Fatalf("put ids = %v then %v, want 2 then 1 increasing", r1.IDs, r2.IDs)
	}
	got := mustPropose(t, n, popCmd("jobs", 2))
	if len(got.Messages) != 2 || string(got.Messages[0].Data) != "a" || string(got.Messages[1].Data) != "b" {
		t.Fatalf("get = %+v, want a, b", got.Messages)
	}
	st := f.Stats("jobs")
	if st.Puts != 3 || st.Gets != 2 || st.Depth != 1 {
		t.Fatalf("stats = puts %d gets %d depth %d, want 3 2 1", st.Puts, st.Gets, st.Depth)
	}
	testwait.For(t, 5*time.Second, "ready", n.Ready)

	s := n.Status()
	if s.NodeID != n.ID() || s.State != "leader" || s.LeaderID != n.ID() || s.Term == 0 {
		t.Fatalf("status = %+v", s)
	}
	if s.AppliedIndex == 0 || s.CommitIndex < s.AppliedIndex {
		t.Fatalf("status indexes: commit %d applied %d", s.CommitIndex, s.AppliedIndex)
	}
	if len(s.Members) != 1 {
		t.Fatalf("members = %+v, want one", s.Members)
	}
	m := s.Members[0]
	if m.ID != n.ID() || m.Status != api.MemberAlive || !m.Voter || m.QueueAddr != "127.0.0.1:8081" ||
		m.PubsubAddr != "127.0.0.1:8080" || !strings.HasPrefix(m.RaftAddr, "127.0.0.1:") || strings.HasSuffix(m.RaftAddr, ":0") {
		t.Fatalf("member = %+v", m)
	}
}

// State survives a restart in the same process through both recovery
// paths (snapshot restore, then log replay of the entries after it), and
// the node keeps its id without bootstrapping again, on either log store.
func TestNode_Restart_KeepsStateAndID(t *testing.T) {
	for _, kind := range []LogStore{LogStoreBoltDB, LogStoreWAL} {
		t.Run(kind.String(), func(t *testing.T) { testRestartKeepsStateAndID(t, kind) })
	}
}

func testRestartKeepsStateAndID(t *testing.T, kind LogStore) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.LogStore = kind
	// Keep almost no log behind the snapshot, so the entries before it are
	// really gone and only the snapshot can bring them back.
	opts.TrailingLogs = 1

	f1 := fsm.New()
	n1, err := openWith(opts, f1)
	if err != nil {
		t.Fatal(err)
	}
	mustLead(t, n1)
	id := n1.ID()
	for i := range 10 {
		mustPropose(t, n1, putCmd("q", fmt.Sprintf("before-%d", i)))
	}
	if err := n1.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	snapApplied := f1.AppliedIndex()
	for i := range 5 {
		mustPropose(t, n1, putCmd("q", fmt.Sprintf("after-%d", i)))
	}
	mustPropose(t, n1, popCmd("q", 1))
	want := dump(t, f1, "q")
	wantStats := f1.Stats("q")
	addr := n1.Status().Members[0].RaftAddr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The entries before the snapshot are gone from the log: only the
	// snapshot can bring them back.
	if first := firstLogIndex(t, dir, kind); first <= snapApplied-5 {
		t.Fatalf("log first index = %d; want compaction past %d", first, snapApplied-5)
	}

	b, err := os.ReadFile(filepath.Join(dir, "node-id"))
	if err != nil || strings.TrimSpace(string(b)) != id {
		t.Fatalf("node-id file = %q, %v; want %q", b, err, id)
	}

	// Reopen with no NodeID: the persisted one is used. Same raft address,
	// as a restarted server would have.
	opts2 := opts
	opts2.RaftBind = addr
	f2 := fsm.New()
	n2 := mustOpen(t, opts2, f2)
	if n2.ID() != id {
		t.Fatalf("id after restart = %q, want %q", n2.ID(), id)
	}
	if n2.Ready() {
		t.Fatal("ready before the first election after restart")
	}
	// NewRaft restores the snapshot before returning.
	if got := f2.AppliedIndex(); got < snapApplied {
		t.Fatalf("applied index right after Open = %d, want >= snapshot's %d", got, snapApplied)
	}
	mustLead(t, n2)
	testwait.For(t, 5*time.Second, "log tail replayed", n2.Ready)
	if got := dump(t, f2, "q"); !slices.Equal(got, want) {
		t.Fatalf("queue after restart = %v, want %v", got, want)
	}
	if got := f2.Stats("q"); got != wantStats {
		t.Fatalf("stats after restart = %+v, want %+v", got, wantStats)
	}
	// And it still takes writes.
	mustPropose(t, n2, putCmd("q", "later"))
}

// 200 concurrent single-message puts all succeed, each message is stored
// once, in the order of the ids handed back, and group commit packs them
// into far fewer than 200 log entries.
func TestNode_ConcurrentProposals_Coalesce(t *testing.T) {
	f := fsm.New()
	n := mustOpen(t, testOptions(t, t.TempDir()), f)
	mustLead(t, n)
	// Let the leader's barrier settle so it does not count as our entry.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ConsistentRead(ctx); err != nil {
		t.Fatal(err)
	}

	const N = 200
	lastBefore := n.raft.LastIndex()
	entriesBefore := uint64(metricValue(t, n, "quorumq_raft_commands_per_entry", nil))

	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		ids   [N]uint64
		errs  [N]error
	)
	for i := range N {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			res, err := n.Propose(ctx, putCmd("c", fmt.Sprintf("msg-%03d", i)))
			switch {
			case err != nil:
				errs[i] = err
			case res.Err != nil:
				errs[i] = res.Err
			case len(res.IDs) != 1:
				errs[i] = fmt.Errorf("got %d ids", len(res.IDs))
			default:
				ids[i] = res.IDs[0]
			}
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
	}

	// Message with id ids[i] must be body i; reading the queue in order
	// must give the bodies sorted by id, each exactly once.
	bodyByID := make(map[uint64]string, N)
	for i, id := range ids {
		if _, dup := bodyByID[id]; dup {
			t.Fatalf("id %d handed out twice", id)
		}
		bodyByID[id] = fmt.Sprintf("msg-%03d", i)
	}
	sorted := slices.Sorted(func(yield func(uint64) bool) {
		for id := range bodyByID {
			if !yield(id) {
				return
			}
		}
	})
	got := mustPropose(t, n, popCmd("c", 2*N))
	if len(got.Messages) != N {
		t.Fatalf("queue holds %d messages, want %d", len(got.Messages), N)
	}
	for i, m := range got.Messages {
		if m.ID != sorted[i] || string(m.Data) != bodyByID[m.ID] {
			t.Fatalf("message %d = id %d %q, want id %d %q", i, m.ID, m.Data, sorted[i], bodyByID[sorted[i]])
		}
	}
	if st := f.Stats("c"); st.Puts != N {
		t.Fatalf("puts = %d, want %d", st.Puts, N)
	}

	entries := uint64(metricValue(t, n, "quorumq_raft_commands_per_entry", nil)) - entriesBefore - 1 // minus the get
	logEntries := n.raft.LastIndex() - lastBefore - 1
	t.Logf("%d puts travelled in %d coalesced entries (%d raft log entries), %.1f commands/entry",
		N, entries, logEntries, float64(N)/float64(entries))
	if entries >= N/2 || logEntries >= N/2 {
		t.Fatalf("%d puts took %d entries (%d log entries); group commit should need well under %d", N, entries, logEntries, N/2)
	}
}

// A second start with another id on the same directory is refused, and so
// is a directory whose node-id file was removed while raft state remains.
func TestNode_NodeIDMismatch_Fails(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.NodeID = "alpha"
	n, err := openWith(opts, fsm.New())
	if err != nil {
		t.Fatal(err)
	}
	if n.ID() != "alpha" {
		t.Fatalf("id = %q", n.ID())
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	opts.NodeID = "beta"
	if _, err := openWith(opts, fsm.New()); !errors.Is(err, ErrNodeIDMismatch) {
		t.Fatalf("Open with another id: err = %v, want ErrNodeIDMismatch", err)
	}
	// The same id again is fine.
	opts.NodeID = "alpha"
	n2 := mustOpen(t, opts, fsm.New())
	if err := n2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filepath.Join(dir, "node-id")); err != nil {
		t.Fatal(err)
	}
	opts.NodeID = ""
	if _, err := openWith(opts, fsm.New()); !errors.Is(err, ErrNodeIDMismatch) {
		t.Fatalf("Open without node-id but with a raft log: err = %v, want ErrNodeIDMismatch", err)
	}
}

// Propose and ConsistentRead after Shutdown fail with api.ErrShuttingDown, and
// Shutdown is idempotent.
func TestNode_ProposeAfterShutdown_ReturnsErrShuttingDown(t *testing.T) {
	n := mustOpen(t, testOptions(t, t.TempDir()), fsm.New())
	mustLead(t, n)
	mustPropose(t, n, putCmd("q", "x"))
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if _, err := n.Propose(context.Background(), putCmd("q", "y")); !errors.Is(err, api.ErrShuttingDown) {
		t.Fatalf("Propose after Shutdown: %v, want api.ErrShuttingDown", err)
	}
	if err := n.ConsistentRead(context.Background()); !errors.Is(err, api.ErrShuttingDown) {
		t.Fatalf("ConsistentRead after Shutdown: %v, want api.ErrShuttingDown", err)
	}
	if n.Ready() {
		t.Fatal("Ready after Shutdown")
	}
	if s := n.Status(); s.State != "shutdown" {
		t.Fatalf("state after Shutdown = %q", s.State)
	}
}

// Shutdown with proposals in flight answers every caller: each either
// succeeded or got one of the documented errors, and nobody hangs.
func TestNode_ShutdownDrainsInFlight(t *testing.T) {
	n := mustOpen(t, testOptions(t, t.TempDir()), fsm.New())
	mustLead(t, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	stop := make(chan struct{})
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				_, err := n.Propose(context.Background(), putCmd("q", fmt.Sprintf("%d-%d", i, j)))
				kind := "ok"
				switch {
				case err == nil:
				case errors.Is(err, api.ErrShuttingDown):
					kind = "shutting_down"
				case errors.Is(err, api.ErrOutcomeUnknown):
					kind = "unknown"
				case errors.Is(err, api.ErrNotLeader):
					kind = "not_leader"
				default:
					t.Errorf("unexpected error: %v", err)
					return
				}
				mu.Lock()
				counts[kind]++
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	testwait.For(t, 5*time.Second, "some writes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return counts["ok"] > 50
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	close(stop)
	wg.Wait()
	t.Logf("outcomes: %v", counts)
}

// On a single node a consistent read returns nil, also before any write
// (when the commit index points at the election no-op and the barrier,
// which the FSM never sees), and the FSM then reflects prior writes.
func TestNode_ConsistentRead_SingleNode(t *testing.T) {
	f := fsm.New()
	n := mustOpen(t, testOptions(t, t.TempDir()), f)
	mustLead(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.ConsistentRead(ctx); err != nil {
		t.Fatalf("first ConsistentRead: %v", err)
	}
	if c, a := n.raft.CommitIndex(), f.AppliedIndex(); c <= a {
		t.Logf("note: commit %d, fsm applied %d (expected a no-op/barrier gap)", c, a)
	}
	mustPropose(t, n, putCmd("r", "1", "2", "3"))
	if err := n.ConsistentRead(ctx); err != nil {
		t.Fatalf("ConsistentRead: %v", err)
	}
	if st := f.Stats("r"); st.Depth != 3 {
		t.Fatalf("depth = %d, want 3", st.Depth)
	}
	if !n.Ready() {
		t.Fatal("not ready after a consistent read")
	}
}

// Before its first election the node is a follower: Propose and
// ConsistentRead fail at once with api.ErrNotLeader and nothing is enqueued.
func TestNode_NotLeader_RejectsImmediately(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.HeartbeatTimeout = 5 * time.Second // no election during this test
	opts.ElectionTimeout = 5 * time.Second
	n := mustOpen(t, opts, fsm.New())
	start := time.Now()
	if _, err := n.Propose(context.Background(), putCmd("q", "x")); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("Propose on follower: %v, want api.ErrNotLeader", err)
	}
	if err := n.ConsistentRead(context.Background()); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("ConsistentRead on follower: %v, want api.ErrNotLeader", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("rejection took %v", d)
	}
	if n.Ready() {
		t.Fatal("ready without a leader")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := n.WaitForLeader(ctx); !errors.Is(err, api.ErrNoLeader) {
		t.Fatalf("WaitForLeader: %v, want api.ErrNoLeader", err)
	}
}

// A Propose whose context has already ended is not proposed.
func TestNode_Propose_CancelledContext(t *testing.T) {
	f := fsm.New()
	n := mustOpen(t, testOptions(t, t.TempDir()), f)
	mustLead(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := n.Propose(ctx, putCmd("q", "x"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, api.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want context.Canceled without api.ErrOutcomeUnknown", err)
	}
	if f.Stats("q").Exists {
		t.Fatal("cancelled put was applied")
	}
}

// The leader proposes a tick once something is due, so a deferred message
// becomes ready without client traffic; time comes from Options.Now.
func TestNode_Tick_ReleasesDeferred(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	f := fsm.New()
	opts := testOptions(t, t.TempDir())
	opts.Now = clock
	opts.tickInterval = 20 * time.Millisecond
	n := mustOpen(t, opts, f)
	mustLead(t, n)

	put := putCmd("d", "later")
	put.Delay = time.Hour
	mustPropose(t, n, put)
	idx := f.AppliedIndex()
	if st := f.Stats("d"); st.Deferred != 1 || st.Depth != 0 {
		t.Fatalf("after put: %+v", st)
	}
	// Nothing is due yet: several tick checks pass without writing.
	checks := metricValue(t, n, "quorumq_raft_tick_checks_total", nil)
	testwait.For(t, 5*time.Second, "tick checks", func() bool {
		return metricValue(t, n, "quorumq_raft_tick_checks_total", nil) >= checks+3
	})
	if got := f.AppliedIndex(); got != idx {
		t.Fatalf("applied index moved from %d to %d with nothing due", idx, got)
	}

	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	testwait.For(t, 5*time.Second, "tick releases the deferred message", func() bool {
		st := f.Stats("d")
		return st.Deferred == 0 && st.Depth == 1
	})

}

// Collectors gather without error and include raft, coalescer and
// per-queue metrics.
func TestNode_Collectors(t *testing.T) {
	f := fsm.New()
	n := mustOpen(t, testOptions(t, t.TempDir()), f)
	mustLead(t, n)
	mustPropose(t, n, putCmd("m", "x", "y"))

	reg := prometheus.NewPedanticRegistry()
	for _, c := range n.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf
	}
	for _, name := range []string{
		"quorumq_raft_commit_index", "quorumq_raft_applied_index", "quorumq_raft_last_log_index",
		"quorumq_raft_term", "quorumq_raft_is_leader", "quorumq_propose_latency_seconds",
		"quorumq_raft_entries_proposed_total", "quorumq_raft_commands_per_entry", "quorumq_raft_entry_bytes",
		"quorumq_queue_depth", "quorumq_queue_in_flight", "quorumq_queue_deferred", "quorumq_queue_bytes",
		"quorumq_queue_puts_total", "quorumq_queue_gets_total", "quorumq_queue_overflow_total", "quorumq_queue_dead_total",
		"quorumq_cluster_members", "quorumq_cluster_voters", "quorumq_cluster_nonvoters",
	} {
		if got[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	if v := got["quorumq_raft_is_leader"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("is_leader = %v", v)
	}
	m := got["quorumq_queue_depth"].GetMetric()[0]
	if m.GetLabel()[0].GetValue() != "m" || m.GetGauge().GetValue() != 2 {
		t.Errorf("queue depth metric = %v", m)
	}
	if v := got["quorumq_queue_puts_total"].GetMetric()[0].GetCounter().GetValue(); v != 2 {
		t.Errorf("puts_total = %v", v)
	}
	if v := got["quorumq_cluster_voters"].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("voters = %v", v)
	}
	for _, m := range got["quorumq_cluster_members"].GetMetric() {
		want := 0.0
		if m.GetLabel()[0].GetValue() == api.MemberAlive {
			want = 1
		}
		if m.GetGauge().GetValue() != want {
			t.Errorf("members{status=%s} = %v, want %v", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue(), want)
		}
	}
}

// Open refuses a second process (here: a second Open) on the same data
// directory at once with ErrDataDirInUse, on either log store (raft-wal
// alone would wait on its metadata file's lock forever).
func TestNode_DataDirLocked(t *testing.T) {
	for _, kind := range []LogStore{LogStoreBoltDB, LogStoreWAL} {
		t.Run(kind.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			opts.LogStore = kind
			mustOpen(t, opts, fsm.New())
			start := time.Now()
			_, err := openWith(opts, fsm.New())
			if !errors.Is(err, ErrDataDirInUse) {
				t.Fatalf("second Open on the same DataDir: err = %v, want ErrDataDirInUse", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("second Open took %v", d)
			}
		})
	}
}

// firstLogIndex returns the first index of the raft log in a stopped
// node's data directory.
func firstLogIndex(t *testing.T, dir string, kind LogStore) uint64 {
	t.Helper()
	var store interface {
		FirstIndex() (uint64, error)
		Close() error
	}
	switch kind {
	case LogStoreWAL:
		meta := &metadb.BoltMetaDB{}
		defer meta.Close() // raft-wal's Close leaves it open
		w, err := wal.Open(filepath.Join(dir, datadir.RaftWALDir), wal.WithMetaStore(meta))
		if err != nil {
			t.Fatal(err)
		}
		store = w
	default:
		b, err := raftboltdb.NewBoltStore(filepath.Join(dir, datadir.RaftDBFile))
		if err != nil {
			t.Fatal(err)
		}
		store = b
	}
	defer store.Close()
	first, err := store.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	return first
}
