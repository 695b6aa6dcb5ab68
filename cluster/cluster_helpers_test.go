package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/peer/peertest"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// tnode is one in-process cluster node with an HTTP server that answers
// GET /internal/status on its queue address, as httpapi does in production:
// the leader reads non-voters' progress from it and Leave asks the leader.
type tnode struct {
	*Node
	f    *fsm.FSM
	opts Options
	srv  *http.Server
}

// clusterOptions returns options for one node of a multi-node test
// cluster: production raft timings (failover is measured with them), fast
// reconcile and reconnect loops, loopback ports reserved in advance.
func clusterOptions(t testing.TB, expect int) Options {
	o := DefaultOptions()
	o.DataDir = t.TempDir()
	o.RaftBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	o.GossipBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	o.QueueAddr = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	o.PubsubAddr = "127.0.0.1:1" // not served in these tests
	o.BootstrapExpect = expect
	o.ReconcileInterval = 200 * time.Millisecond
	o.PromoteAfter = time.Second
	o.Logger = testlog.New(t)
	o.Peer = peertest.Client(t)
	o.reconnectInterval = time.Second
	o.bootstrapSettle = 300 * time.Millisecond
	return o
}

// withSeeds sets every node's Join list to all nodes' gossip addresses,
// its own included (a node skips itself, as in a compose file where every
// service has the same list).
func withSeeds(opts []Options) {
	var seeds []string
	for _, o := range opts {
		seeds = append(seeds, o.GossipBind)
	}
	for i := range opts {
		opts[i].Join = slices.Clone(seeds)
	}
}

// aFollower returns a node of nodes other than leader, and the others.
func aFollower(nodes []*tnode, leader *tnode) (follower *tnode, others []*tnode) {
	i := slices.IndexFunc(nodes, func(n *tnode) bool { return n != leader })
	follower = nodes[i]
	return follower, slices.Delete(slices.Clone(nodes), i, i+1)
}

// startNode opens a node and serves its /internal/status. The node is shut
// down when the test ends (a no-op if the test already stopped it).
func startNode(t testing.TB, opts Options) *tnode {
	t.Helper()
	n, err := tryStartNode(opts)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func tryStartNode(opts Options) (*tnode, error) {
	ln, err := net.Listen("tcp", opts.QueueAddr)
	if err != nil {
		return nil, fmt.Errorf("queue listener: %w", err)
	}
	f := fsm.New()
	node, err := openWith(opts, f)
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &tnode{Node: node, f: f, opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.PathStatus, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(node.Status())
	})
	n.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go n.srv.Serve(ln)
	return n, nil
}

// startNodes opens nodes concurrently, as processes started together would.
func startNodes(t testing.TB, opts []Options) []*tnode {
	t.Helper()
	nodes := make([]*tnode, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = tryStartNode(o)
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		if n != nil {
			t.Cleanup(func() { n.stop(t) })
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("start node: %v", err)
		}
	}
	return nodes
}

// stop shuts the node down and closes its HTTP server.
func (n *tnode) stop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown %s: %v", n.ID(), err)
	}
	n.srv.Close()
}

// crash stops the node the way a kill does, as far as its peers can tell:
// no leadership transfer, no gossip leave. Its files stay consistent, so it
// can be restarted.
func (n *tnode) crash(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.shutdownLikeCrash(ctx); err != nil {
		t.Errorf("Shutdown %s: %v", n.ID(), err)
	}
	n.srv.Close()
}

// bootstrapped reports whether n called BootstrapCluster from its
// bootstrap loop.
func (n *tnode) bootstrapped(t testing.TB) bool {
	return metricValue(t, n.Node, "quorumq_cluster_bootstrap_evaluations_total", map[string]string{"outcome": "bootstrapped"}) > 0
}

// bootstrapChecks returns how many bootstrap decisions n has made,
// outcome among them if not "".
func (n *tnode) bootstrapChecks(t testing.TB, outcome string) float64 {
	want := map[string]string{}
	if outcome != "" {
		want["outcome"] = outcome
	}
	return metricValue(t, n.Node, "quorumq_cluster_bootstrap_evaluations_total", want)
}

// stopAll shuts nodes down concurrently.
func stopAll(t testing.TB, nodes []*tnode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.stop(t) }()
	}
	wg.Wait()
}

// configOf returns n's latest raft configuration as "id:voter" / "id:nonvoter", sorted.
func configOf(n *tnode) []string {
	var out []string
	for _, s := range n.host.ConfigServers() {
		kind := "voter"
		if s.Suffrage != raft.Voter {
			kind = "nonvoter"
		}
		out = append(out, string(s.ID)+":"+kind)
	}
	slices.Sort(out)
	return out
}

// allVoters returns the configuration in which every node is a voter.
func allVoters(nodes []*tnode) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID()+":voter")
	}
	slices.Sort(out)
	return out
}

// waitFormed waits until every node knows the same leader, one of them,
// and holds the configuration in which all of them are voters. It returns
// the leader.
func waitFormed(t testing.TB, nodes []*tnode, timeout time.Duration) *tnode {
	t.Helper()
	want := allVoters(nodes)
	var leader *tnode
	testwait.For(t, timeout, "cluster of "+strings.Join(want, ","), func() bool {
		leader = nil
		id := nodes[0].LeaderID()
		if id == "" {
			return false
		}
		for _, n := range nodes {
			if n.LeaderID() != id || !slices.Equal(configOf(n), want) {
				return false
			}
			if n.ID() == id {
				leader = n
			}
		}
		return leader != nil && leader.IsLeader()
	})

	return leader
}

// leaderOf returns the node that leads, waiting for one.
func leaderOf(t testing.TB, nodes []*tnode, timeout time.Duration) *tnode {
	t.Helper()
	var leader *tnode
	testwait.For(t, timeout, "a leader", func() bool {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
				return true
			}
		}
		return false
	})

	return leader
}

// proposeOn proposes cmd on whichever node leads, retrying across an
// election, and returns the result.
func proposeOn(t testing.TB, nodes []*tnode, cmd fsm.Command) fsm.Result {
	t.Helper()
	var res fsm.Result
	testwait.For(t, 20*time.Second, fmt.Sprintf("propose %v", cmd.Op), func() bool {
		leader := leaderOf(t, nodes, 20*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		res, err = leader.Propose(ctx, cmd)
		switch {
		case err == nil && res.Err != nil:
			t.Fatalf("propose %v: %v", cmd.Op, res.Err)
		case err != nil && !errors.Is(err, api.ErrNotLeader):
			t.Logf("propose %v: %v; retrying", cmd.Op, err)
		}
		return err == nil
	})
	return res
}

// memberStatus returns the status n reports for id, or "" if absent.
func memberStatus(n *tnode, id string) (api.Member, bool) {
	for _, m := range n.Status().Members {
		if m.ID == id {
			return m, true
		}
	}
	return api.Member{}, false
}

// recordingLogger returns a logger that writes to t.Log (at WARN) and
// remembers every WARN message.
func recordingLogger(t testing.TB) (*slog.Logger, func() []string) {
	rec := &recorder{next: testlog.New(t).Handler(), mu: new(sync.Mutex), msgs: new([]string)}
	return slog.New(rec), rec.messages
}

type recorder struct {
	next slog.Handler
	mu   *sync.Mutex
	msgs *[]string
}

func (r *recorder) Enabled(ctx context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (r *recorder) Handle(ctx context.Context, rec slog.Record) error {
	r.mu.Lock()
	*r.msgs = append(*r.msgs, rec.Message)
	r.mu.Unlock()
	return r.next.Handle(ctx, rec)
}

func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{next: r.next.WithAttrs(as), mu: r.mu, msgs: r.msgs}
}

func (r *recorder) WithGroup(g string) slog.Handler {
	return &recorder{next: r.next.WithGroup(g), mu: r.mu, msgs: r.msgs}
}

func (r *recorder) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(*r.msgs)
}
