package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/membership"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// formTimeout bounds cluster formation: gossip join, bootstrap settle, one
// election and replication of the configuration, on a loaded two-CPU
// machine under the race detector.
const formTimeout = 30 * time.Second

// startCluster starts size nodes together with BootstrapExpect=size and
// each other as seeds, and waits until they form one cluster.
func startCluster(t testing.TB, size int, edit func(i int, o *Options)) ([]*tnode, *tnode) {
	t.Helper()
	opts := make([]Options, size)
	for i := range opts {
		opts[i] = clusterOptions(t, size)
	}
	withSeeds(opts)
	if edit != nil {
		for i := range opts {
			edit(i, &opts[i])
		}
	}
	nodes := startNodes(t, opts)
	return nodes, waitFormed(t, nodes, formTimeout)
}

// Three nodes opened at the same moment, each with the others as seeds and
// BootstrapExpect=3, always form exactly one three-voter cluster: only the
// node with the smallest id bootstraps, everyone agrees on the leader and
// the configuration, and a write reaches all three.
func TestCluster_BootstrapExpect3_StartedTogether_FormsOneCluster(t *testing.T) {
	const rounds = 5
	for round := range rounds {
		start := time.Now()
		opts := make([]Options, 3)
		for i := range opts {
			opts[i] = clusterOptions(t, 3)
		}
		withSeeds(opts)
		nodes := startNodes(t, opts)
		leader := waitFormed(t, nodes, formTimeout)

		ids := []string{nodes[0].ID(), nodes[1].ID(), nodes[2].ID()}
		slices.Sort(ids)
		var bootstrappers []string
		for _, n := range nodes {
			if n.bootstrapped(t) {
				bootstrappers = append(bootstrappers, n.ID())
			}
		}
		if len(bootstrappers) != 1 || bootstrappers[0] != ids[0] {
			t.Fatalf("round %d: bootstrapped by %v, want only the smallest id %s", round, bootstrappers, ids[0])
		}
		proposeOn(t, nodes, putCmd("q", fmt.Sprintf("round-%d", round)))
		for _, n := range nodes {
			testwait.For(t, 10*time.Second, n.ID()+" applies the put", func() bool {
				return slices.Equal(dump(t, n.f, "q"), []string{fmt.Sprintf("round-%d", round)})
			})

			// Every node reports every member alive with its addresses.
			for _, other := range nodes {
				m, ok := memberStatus(n, other.ID())
				if !ok || m.Status != api.MemberAlive || !m.Voter || m.Suffrage != api.SuffrageVoter ||
					m.QueueAddr != other.opts.QueueAddr || m.RaftAddr != other.opts.RaftBind {
					t.Fatalf("round %d: %s sees %s as %+v (ok=%v)", round, n.ID(), other.ID(), m, ok)
				}
			}
		}
		info, ok := nodes[0].Leader()
		if !ok || info.ID != leader.ID() || info.QueueAddr != leader.opts.QueueAddr || info.RaftAddr != leader.opts.RaftBind {
			t.Fatalf("round %d: Leader() = %+v, %v; want %s at %s", round, info, ok, leader.ID(), leader.opts.QueueAddr)
		}
		t.Logf("round %d: formed in %v, bootstrapped by %s, leader %s", round, time.Since(start).Round(time.Millisecond), bootstrappers[0], leader.ID())
		stopAll(t, nodes)
	}
}

// A fourth node started later with the same command line (BootstrapExpect=3,
// the others as seeds) does not bootstrap: the leader adds it as a
// non-voter, and promotes it once it has caught up and stayed healthy for
// PromoteAfter.
func TestCluster_FourthNode_JoinsAsNonvoterThenPromoted(t *testing.T) {
	nodes, _ := startCluster(t, 3, nil)
	for i := range 20 {
		proposeOn(t, nodes, putCmd("q", strconv.Itoa(i)))
	}

	o := clusterOptions(t, 3)
	o.PromoteAfter = 1500 * time.Millisecond
	for _, n := range nodes {
		o.Join = append(o.Join, n.GossipAddr())
	}
	fourth := startNode(t, o)
	id := fourth.ID()

	var sawNonvoter bool
	var nonvoterAt time.Time
	testwait.For(t, formTimeout, id+" becomes a voter", func() bool {
		leader := leaderOf(t, nodes, 10*time.Second)
		cfg := configOf(leader)
		switch {
		case slices.Contains(cfg, id+":nonvoter"):
			if !sawNonvoter {
				sawNonvoter, nonvoterAt = true, time.Now()
			}
		case slices.Contains(cfg, id+":voter"):
			return true
		}
		return false
	})

	if !sawNonvoter {
		t.Fatal("the fourth node never showed up as a non-voter")
	}
	t.Logf("non-voter for %v before promotion", time.Since(nonvoterAt).Round(time.Millisecond))
	if fourth.bootstrapped(t) {
		t.Fatal("the fourth node bootstrapped")
	}
	if got := dump(t, fourth.f, "q"); len(got) != 20 {
		t.Fatalf("fourth node holds %d messages, want 20", len(got))
	}
	all := append(slices.Clone(nodes), fourth)
	waitFormed(t, all, formTimeout)

	for _, action := range []string{"add_nonvoter", "promote"} {
		var sum float64
		for _, n := range all {
			sum += metricValue(t, n.Node, "quorumq_cluster_reconcile_actions_total", map[string]string{"action": action, "result": "ok"})
		}
		if sum < 1 {
			t.Errorf("no %s action counted", action)
		}
	}
}

// Leave removes a node from the configuration, first a follower, then the
// leader (which hands leadership over first). Peers report the node as
// left, the cluster keeps working with the remaining voters, and Leave
// returns only after the removal.
func TestCluster_Leave_RemovesFromConfiguration(t *testing.T) {
	nodes, leader := startCluster(t, 4, nil)
	follower, remaining := aFollower(nodes, leader)
	for _, gone := range []*tnode{follower, leader} {
		remaining = slices.DeleteFunc(remaining, func(n *tnode) bool { return n == gone })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		err := gone.Leave(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Leave %s: %v", gone.ID(), err)
		}
		t.Logf("%s left in %v", gone.ID(), time.Since(start).Round(time.Millisecond))
		// Leave returned after the removal: the leader's configuration no
		// longer has it, without waiting.
		newLeader := leaderOf(t, remaining, 10*time.Second)
		if cfg := configOf(newLeader); slices.ContainsFunc(cfg, func(s string) bool { return strings.HasPrefix(s, gone.ID()+":") }) {
			t.Fatalf("after Leave, leader %s still lists %s: %v", newLeader.ID(), gone.ID(), cfg)
		}
		waitFormed(t, remaining, formTimeout)
		for _, n := range remaining {
			testwait.For(t, 10*time.Second, n.ID()+" sees "+gone.ID()+" as left", func() bool {
				m, ok := memberStatus(n, gone.ID())
				return ok && m.Status == api.MemberLeft && m.Suffrage == api.SuffrageNone && !m.Voter
			})

		}
		if gone.Status().State != "shutdown" {
			t.Fatalf("%s is %s after Leave, want shutdown", gone.ID(), gone.Status().State)
		}
		if err := gone.Leave(context.Background()); !errors.Is(err, api.ErrShuttingDown) {
			t.Fatalf("second Leave: %v, want api.ErrShuttingDown", err)
		}
		// Its data directory never comes back as a member.
		if _, err := openWith(gone.opts, fsm.New()); !errors.Is(err, ErrLeft) {
			t.Fatalf("reopening the data directory of %s after Leave: %v, want ErrLeft", gone.ID(), err)
		}
		proposeOn(t, remaining, putCmd("q", "after "+gone.ID()))
	}
}

// TestCluster_Leave_RightAfterARestartAlone_RemovedFromConfiguration: a
// node restarted when none of its seeds answers (here its join list names
// only itself) is alone in gossip until a member's reconnect loop reaches
// it. A leave asked at once still reaches the others, and the leader
// removes the node from the configuration.
func TestCluster_Leave_RightAfterARestartAlone_RemovedFromConfiguration(t *testing.T) {
	nodes, leader := startCluster(t, 3, nil)
	gone, remaining := aFollower(nodes, leader)
	gone.crash(t)
	opts := gone.opts
	opts.Join = []string{opts.GossipBind}
	restarted := startNode(t, opts)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	if err := restarted.Leave(ctx); err != nil {
		t.Fatalf("Leave %s: %v", gone.ID(), err)
	}
	t.Logf("%s left in %v", gone.ID(), time.Since(start).Round(time.Millisecond))
	testwait.For(t, 15*time.Second, "the leader's configuration without "+gone.ID(), func() bool {
		cfg := configOf(leaderOf(t, remaining, 10*time.Second))
		return !slices.ContainsFunc(cfg, func(s string) bool { return strings.HasPrefix(s, gone.ID()+":") })
	})
	waitFormed(t, remaining, formTimeout)
	proposeOn(t, remaining, putCmd("q", "after "+gone.ID()))
}

// The only voter cannot leave: Leave fails with api.ErrLastVoter and the node
// keeps serving.
func TestCluster_Leave_LastVoter_Refused(t *testing.T) {
	n := startNode(t, clusterOptions(t, 1))
	testwait.For(t, formTimeout, "single node leads", n.IsLeader)
	if err := n.Leave(context.Background()); !errors.Is(err, api.ErrLastVoter) {
		t.Fatalf("Leave: %v, want api.ErrLastVoter", err)
	}
	proposeOn(t, []*tnode{n}, putCmd("q", "still here"))
}

// Shutdown (SIGTERM) keeps the node a member: peers see it dead but keep it
// in the configuration. Restarted on the same data directory and
// addresses, it rejoins through its seeds and catches up with what was
// written while it was down, without any configuration change.
func TestCluster_Shutdown_StaysMember_RestartRejoins(t *testing.T) {
	nodes, leader := startCluster(t, 3, nil)
	var victim *tnode
	for _, n := range nodes {
		if n != leader {
			victim = n
			break
		}
	}
	others := slices.DeleteFunc(slices.Clone(nodes), func(n *tnode) bool { return n == victim })
	proposeOn(t, nodes, putCmd("q", "before"))
	cfgIndex := leader.raft.Stats()["latest_configuration_index"]

	victim.stop(t)
	start := time.Now()
	for _, n := range others {
		testwait.For(t, 20*time.Second, n.ID()+" sees "+victim.ID()+" dead", func() bool {
			m, ok := memberStatus(n, victim.ID())
			return ok && m.Status == api.MemberDead && m.Voter
		})

	}
	t.Logf("gossip declared the stopped node dead after %v", time.Since(start).Round(time.Millisecond))
	for i := range 10 {
		proposeOn(t, others, putCmd("q", fmt.Sprintf("while-down-%d", i)))
	}
	want := dump(t, leaderOf(t, others, 10*time.Second).f, "q")

	restarted := startNode(t, victim.opts)
	if restarted.ID() != victim.ID() {
		t.Fatalf("restarted with id %s, want %s", restarted.ID(), victim.ID())
	}
	all := append(slices.Clone(others), restarted)
	waitFormed(t, all, formTimeout)
	testwait.For(t, 20*time.Second, "restarted node catches up", func() bool {
		return slices.Equal(dump(t, restarted.f, "q"), want)
	})

	for _, n := range others {
		testwait.For(t, 20*time.Second, n.ID()+" sees the restarted node alive", func() bool {
			m, ok := memberStatus(n, victim.ID())
			return ok && m.Status == api.MemberAlive
		})

	}
	for _, n := range all {
		if got := n.raft.Stats()["latest_configuration_index"]; got != cfgIndex {
			t.Fatalf("%s: configuration index %s, want %s (no membership change)", n.ID(), got, cfgIndex)
		}
	}
}

// When the leader dies without handing over, the others elect a new leader
// within about a second with the default raft timings. The measured time
// is logged (DESIGN.md quotes it).
func TestCluster_LeaderShutdown_NewLeaderElected(t *testing.T) {
	nodes, leader := startCluster(t, 3, nil)
	proposeOn(t, nodes, putCmd("q", "x"))
	const rounds = 3
	var total time.Duration
	for round := range rounds {
		others := slices.DeleteFunc(slices.Clone(nodes), func(n *tnode) bool { return n == leader })
		// Everyone is caught up and has heard from the leader recently.
		testwait.For(t, 10*time.Second, "followers in contact", func() bool {
			for _, n := range others {
				if n.LeaderID() != leader.ID() {
					return false
				}
			}
			return true
		})

		start := time.Now()
		leader.crash(t)
		var newID string
		testwait.For(t, 20*time.Second, "new leader", func() bool {
			id := others[0].LeaderID()
			if id == "" || id == leader.ID() {
				return false
			}
			for _, n := range others {
				if n.LeaderID() != id {
					return false
				}
			}
			newID = id
			return true
		})

		took := time.Since(start)
		total += took
		t.Logf("round %d: leader %s crashed; %s leads after %v", round, leader.ID(), newID, took.Round(time.Millisecond))
		proposeOn(t, others, putCmd("q", fmt.Sprintf("after-%d", round)))

		// Bring the old leader back for the next round.
		back := startNode(t, leader.opts)
		for i, n := range nodes {
			if n == leader {
				nodes[i] = back
			}
		}
		waitFormed(t, nodes, formTimeout)
		leader = leaderOf(t, nodes, 10*time.Second)
	}
	t.Logf("mean failover over %d rounds: %v (heartbeat %v, election %v, lease %v)", rounds,
		(total / rounds).Round(time.Millisecond), DefaultHeartbeatTimeout, DefaultElectionTimeout, DefaultLeaderLeaseTimeout)
}

// A node announces its addresses, bootstrap-expect and state in its
// NodeMeta, and Open refuses an address too long for it.
func TestCluster_NodeMetaAnnouncesTheNode(t *testing.T) {
	n := startNode(t, clusterOptions(t, 1))
	own := n.members.LocalMeta()
	if own.QueueAddr != n.opts.QueueAddr || own.RaftAddr != n.opts.RaftBind || own.Expect != 1 || !own.HasState {
		t.Fatalf("node meta = %+v", own)
	}

	o := clusterOptions(t, 1)
	o.PubsubAddr = strings.Repeat("p", membership.MaxAddrLen) + ":1"
	if _, err := openWith(o, fsm.New()); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("Open with a %d-byte address: %v, want ErrInvalidOptions", len(o.PubsubAddr), err)
	}
}

// A node with raft state never bootstraps, even with BootstrapExpect set:
// here a former single-node cluster restarts with BootstrapExpect=3 next
// to two fresh nodes. The fresh ones see a member with raft state and wait
// to be added; nobody calls BootstrapCluster, and the one cluster that
// results carries the old node's data.
func TestCluster_NodeWithState_NeverBootstraps(t *testing.T) {
	old := clusterOptions(t, 1)
	first := startNode(t, old)
	testwait.For(t, formTimeout, "single node leads", first.IsLeader)
	proposeOn(t, []*tnode{first}, putCmd("q", "from the old cluster"))
	first.stop(t)

	opts := []Options{old, clusterOptions(t, 3), clusterOptions(t, 3)}
	opts[0].BootstrapExpect = 3
	withSeeds(opts)
	nodes := startNodes(t, opts)
	waitFormed(t, nodes, formTimeout)
	for _, n := range nodes {
		if n.bootstrapped(t) {
			t.Fatalf("%s bootstrapped", n.ID())
		}
		testwait.For(t, 10*time.Second, n.ID()+" has the old data", func() bool {
			return slices.Equal(dump(t, n.f, "q"), []string{"from the old cluster"})
		})

	}
	for _, n := range nodes[1:] {
		if n.bootstrapChecks(t, "") == 0 {
			t.Fatalf("%s never evaluated bootstrap", n.ID())
		}
	}
	if nodes[0].bootstrapChecks(t, "") != 0 {
		t.Fatal("the node with raft state evaluated bootstrap")
	}
}

// Members that advertise different BootstrapExpect values never bootstrap:
// each keeps waiting and warns about the mismatch.
func TestCluster_MismatchedExpect_DoesNotBootstrap(t *testing.T) {
	logger, warnings := recordingLogger(t)
	opts := []Options{clusterOptions(t, 3), clusterOptions(t, 3), clusterOptions(t, 2)}
	withSeeds(opts)
	for i := range opts {
		opts[i].Logger = logger
	}
	nodes := startNodes(t, opts)
	testwait.For(t, formTimeout, "all members see each other", func() bool {
		for _, n := range nodes {
			alive := 0
			for _, m := range n.members.Members() {
				if m.Status == api.MemberAlive && m.MetaOK {
					alive++
				}
			}
			if alive != 3 {
				return false
			}
		}
		return true
	})

	// Let every node evaluate many times with the full view (including
	// several bootstrap settle periods), each time waiting for the mismatch.
	before := make([]float64, len(nodes))
	for i, n := range nodes {
		before[i] = n.bootstrapChecks(t, "wait_mismatch")
	}
	testwait.For(t, formTimeout, "repeated bootstrap evaluations", func() bool {
		for i, n := range nodes {
			if n.bootstrapChecks(t, "wait_mismatch") < before[i]+8 {
				return false
			}
		}
		return true
	})

	for _, n := range nodes {
		if n.bootstrapped(t) || n.raft.LastIndex() != 0 || n.LeaderID() != "" {
			t.Fatalf("%s: bootstrapped=%v last index %d leader %q", n.ID(), n.bootstrapped(t), n.raft.LastIndex(), n.LeaderID())
		}
	}
	if !slices.ContainsFunc(warnings(), func(s string) bool { return strings.Contains(s, "different bootstrap-expect") }) {
		t.Fatalf("no mismatch warning; warnings: %q", warnings())
	}
}

// A voter that stays dead past ReapTimeout is removed, but never below
// MinVoters: of two dead voters in a four-voter cluster only one goes.
func TestCluster_DeadVoter_ReapedOnlyAboveMinVoters(t *testing.T) {
	nodes, leader := startCluster(t, 4, func(i int, o *Options) {
		o.ReapTimeout = 2 * time.Second
		o.MinVoters = 3
	})
	var dead []*tnode
	for _, n := range nodes {
		if n != leader && len(dead) < 2 {
			dead = append(dead, n)
		}
	}
	start := time.Now()
	dead[0].crash(t)
	testwait.For(t, formTimeout, dead[0].ID()+" reaped", func() bool {
		cfg := configOf(leaderOf(t, nodes, 10*time.Second))
		return len(cfg) == 3 && !slices.Contains(cfg, dead[0].ID()+":voter")
	})

	t.Logf("first dead voter reaped %v after the crash", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	dead[1].crash(t)
	// Wait for several reconcile rounds past the reap timeout: the second
	// dead voter must stay, or only two voters would be left.
	l := leaderOf(t, nodes, 10*time.Second)
	testwait.For(t, formTimeout, dead[1].ID()+" dead in gossip", func() bool {
		m, ok := memberStatus(l, dead[1].ID())
		return ok && m.Status == api.MemberDead
	})

	t.Logf("second dead voter declared dead %v after the crash", time.Since(start).Round(time.Millisecond))
	deadline := time.Now().Add(2 * time.Second) // the reap timeout
	rounds := metricValue(t, l.Node, "quorumq_cluster_reconcile_rounds_total", nil)
	testwait.For(t, formTimeout, "reconcile rounds past the reap timeout", func() bool {
		return time.Now().After(deadline) && metricValue(t, l.Node, "quorumq_cluster_reconcile_rounds_total", nil) >= rounds+10
	})

	if cfg := configOf(l); len(cfg) != 3 || !slices.Contains(cfg, dead[1].ID()+":voter") {
		t.Fatalf("configuration %v: the second dead voter was reaped below MinVoters", cfg)
	}
}

// A follower that comes back on new raft and gossip ports (a container
// with a new IP) is accepted by gossip once its old incarnation is dead,
// and the leader updates its address in place: it stays a voter and
// catches up.
func TestCluster_RestartOnNewAddress_UpdatedInPlace(t *testing.T) {
	fastPushPull := func(c *memberlist.Config) { c.PushPullInterval = time.Second }
	nodes, leader := startCluster(t, 3, func(i int, o *Options) { o.gossipConfig = fastPushPull })
	var victim *tnode
	for _, n := range nodes {
		if n != leader {
			victim = n
			break
		}
	}
	victim.crash(t)
	testwait.For(t, formTimeout, "victim dead in gossip", func() bool {
		m, ok := memberStatus(leader, victim.ID())
		return ok && m.Status == api.MemberDead
	})

	proposeOn(t, nodes, putCmd("q", "while away"))

	o := victim.opts
	o.RaftBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	o.GossipBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	moved := startNode(t, o)
	for i, n := range nodes {
		if n == victim {
			nodes[i] = moved
		}
	}
	testwait.For(t, formTimeout, "leader has the new raft address", func() bool {
		l := leaderOf(t, nodes, 10*time.Second)
		for _, s := range l.host.ConfigServers() {
			if string(s.ID) == moved.ID() {
				return string(s.Address) == o.RaftBind && s.Suffrage == raft.Voter
			}
		}
		return false
	})

	waitFormed(t, nodes, formTimeout)
	testwait.For(t, 20*time.Second, "moved node catches up", func() bool {
		return slices.Contains(dump(t, moved.f, "q"), "while away")
	})

}

// Nodes that advertise a host name for raft form a cluster whose
// configuration holds the names, so peers dial the name and a node that
// comes back on a new IP stays reachable.
func TestCluster_HostNameAdvertise_ConfigurationHoldsNames(t *testing.T) {
	nodes, leader := startCluster(t, 3, func(i int, o *Options) {
		_, port, _ := net.SplitHostPort(o.RaftBind)
		o.RaftAdvertise = net.JoinHostPort("localhost", port)
	})
	for _, s := range leader.host.ConfigServers() {
		if !strings.HasPrefix(string(s.Address), "localhost:") {
			t.Fatalf("configuration entry %s at %q does not hold the advertised name", s.ID, s.Address)
		}
	}
	proposeOn(t, nodes, putCmd("q", "via names"))
}
