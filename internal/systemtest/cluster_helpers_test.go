package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// leaderTimeout bounds the wait for a leader that all nodes agree on.
const leaderTimeout = 60 * time.Second

// cluster is a testkit cluster bound to its test: node i (from 1) has
// --node-id=node<i> and its own data directory and ports. On loopback the
// ports come from internal/testport; in network namespaces (inNetns) every
// node has its own IP and the default ports. The cluster and its nodes
// share the test's user (open or secured, as the cluster is).
type cluster struct {
	*user
	kit   *testkit.Cluster
	nodes []*node // every node started, in order: node<i> is nodes[i-1]
}

// clusterOption configures mustStartCluster.
type clusterOption func(*testkit.ClusterOptions)

// withServeArgs appends flags to every node's serve command line.
func withServeArgs(args ...string) clusterOption {
	return func(o *testkit.ClusterOptions) { o.ServeArgs = append(o.ServeArgs, args...) }
}

// withFastRaft halves raft's default timeouts (1 s heartbeat and election,
// 500 ms lease), for tests that measure failover or start many clusters.
func withFastRaft() clusterOption {
	return withServeArgs("--raft-heartbeat-timeout=500ms", "--raft-election-timeout=500ms", "--raft-leader-lease-timeout=250ms")
}

// withProfiler gives every node serve's profiler (--debug-addr), for tests
// that look at where requests wait (parkedPolls).
func withProfiler() clusterOption {
	return func(o *testkit.ClusterOptions) { o.Debug = true }
}

// inNetns runs every node inside a network namespace of its own of nn.
func inNetns(nn *netnsNet) clusterOption {
	return func(o *testkit.ClusterOptions) { o.Net = nn.net }
}

// mustStartCluster starts n nodes at the same moment, each with
// --bootstrap-expect=n and --join=<the gossip addresses of all n nodes, its
// own included>, so they find each other and bootstrap one cluster. It
// returns once every node is ready and all name the same leader. The nodes
// are killed at cleanup, and their logs printed if the test failed.
func mustStartCluster(t testing.TB, n int, opts ...clusterOption) *cluster {
	t.Helper()
	o := testkit.ClusterOptions{Binary: mustBinary(t), Dir: t.TempDir(), Port: reservePort(t)}
	for _, opt := range opts {
		opt(&o)
	}
	kc, err := testkit.NewCluster(o)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{user: newUser(t, o.Security), kit: kc}
	t.Cleanup(func() {
		kc.Close()
		if t.Failed() {
			logTails(t, kc.Nodes()...)
		}
	})
	start := time.Now()
	if err := kc.Start(context.Background(), n, readyTimeout); err != nil {
		t.Fatalf("%v; the nodes' logs follow the test output", err)
	}
	for _, kn := range kc.Nodes() {
		c.nodes = append(c.nodes, &node{Node: kn, user: c.user})
	}
	l := c.waitForLeader()
	t.Logf("%d nodes ready, %s leads, %v after the start", n, l.ID, time.Since(start).Round(time.Millisecond))
	if c.secured() {
		c.mustRefuseAnonymous(c.nodes...)
	}
	return c
}

// addNode starts one more node that joins the running cluster and returns
// at once (call mustBeReady to wait); see testkit.Cluster.AddNode.
func (c *cluster) addNode() *node {
	c.t.Helper()
	kn, err := c.kit.AddNode()
	if err != nil {
		c.t.Fatal(err)
	}
	nd := &node{Node: kn, user: c.user}
	c.nodes = append(c.nodes, nd)
	return nd
}

// of returns the test's node for a testkit node of the cluster.
func (c *cluster) of(kn *testkit.Node) *node {
	for _, nd := range c.nodes {
		if nd.Node == kn {
			return nd
		}
	}
	c.t.Fatalf("%s is not in the cluster", kn.Name())
	return nil
}

// kit returns the testkit nodes of nodes.
func kit(nodes []*node) []*testkit.Node {
	r := make([]*testkit.Node, len(nodes))
	for i, nd := range nodes {
		r[i] = nd.Node
	}
	return r
}

// running returns the nodes whose processes are alive.
func (c *cluster) running() []*node {
	var r []*node
	for _, nd := range c.nodes {
		if nd.Running() {
			r = append(r, nd)
		}
	}
	return r
}

// ids returns the nodes' ids, sorted.
func ids(nodes []*node) []string { return testkit.IDs(kit(nodes)) }

func without(nodes []*node, drop ...*node) []*node {
	var r []*node
	for _, nd := range nodes {
		if !slices.Contains(drop, nd) {
			r = append(r, nd)
		}
	}
	return r
}

// leader is the leader every running node names (testkit.Cluster.LeaderOf).
func (c *cluster) leader() (*node, error) {
	l, err := c.kit.LeaderOf(context.Background(), kit(c.running()))
	if err != nil {
		return nil, err
	}
	return c.of(l), nil
}

// waitForLeader waits until every running node names the same leader.
func (c *cluster) waitForLeader() *node {
	c.t.Helper()
	return c.waitForLeaderOf(c.running(), nil)
}

// waitForNewLeader waits until every running node names the same leader,
// other than old.
func (c *cluster) waitForNewLeader(old *node) *node {
	c.t.Helper()
	return c.waitForLeaderOf(c.running(), old)
}

// waitForLeaderOf waits until nodes agree on a leader among them other
// than not (which may be nil). If it had to wait, it logs how long.
func (c *cluster) waitForLeaderOf(nodes []*node, not *node) *node {
	c.t.Helper()
	start := time.Now()
	var notKit *testkit.Node
	if not != nil {
		notKit = not.Node
	}
	ctx := context.Background()
	if l, err := c.kit.LeaderOf(ctx, kit(nodes)); err == nil && l != notKit {
		return c.of(l)
	}
	l, err := c.kit.WaitLeader(ctx, kit(nodes), notKit, leaderTimeout)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("%s leads %v after a wait of %v", l.ID, ids(nodes), time.Since(start).Round(time.Millisecond))
	return c.of(l)
}

// followers returns the running nodes other than the leader.
func (c *cluster) followers() []*node {
	c.t.Helper()
	l, err := c.leader()
	if err != nil {
		c.t.Fatalf("followers: %v", err)
	}
	return without(c.running(), l)
}

// waitForVoters waits until every one of nodes reports a configuration
// whose voters are exactly want.
func (c *cluster) waitForVoters(nodes []*node, want ...string) {
	c.t.Helper()
	if err := c.kit.WaitVoters(context.Background(), kit(nodes), want, leaderTimeout); err != nil {
		c.t.Fatal(err)
	}
}

// waitSameData waits until nd's local state (stale=1) of the queue
// matches ref's: the same /dump and the same /stats.
func waitSameData(t *testing.T, nd, ref *node, queue string) {
	t.Helper()
	q := url.Values{"stale": {"1"}, "queue": {queue}}.Encode()
	eventually(t, readyTimeout, fmt.Sprintf("%s to hold the same data as %s", nd.ID, ref.ID), func() error {
		for _, path := range []string{"/dump?", "/stats?format=json&extended=1&"} {
			want, err := ref.getOK(ref.QueueURL + path + q)
			if err != nil {
				return err
			}
			got, err := nd.getOK(nd.QueueURL + path + q)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s%s: %s has %s, %s has %s", path, q, nd.ID, abbrev(got), ref.ID, abbrev(want))
			}
		}
		return nil
	})
}

// getOK sends a GET and returns the body of a 200, or an error.
func (u *user) getOK(url string) (string, error) {
	code, body := u.get(url)
	if code != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, code, strings.TrimSpace(body))
	}
	return body, nil
}

func abbrev(s string) string {
	if len(s) > 200 {
		return fmt.Sprintf("%q... (%d bytes)", s[:200], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// snapshotIndex returns the highest index among the raft snapshots in a
// node's data directory (snapshots/<term>-<index>-<ms>/meta.json), 0 if
// there is none.
func snapshotIndex(dataDir string) uint64 {
	metas, _ := filepath.Glob(filepath.Join(dataDir, "snapshots", "*", "meta.json"))
	var best uint64
	for _, m := range metas {
		if strings.HasSuffix(filepath.Dir(m), ".tmp") {
			continue // being written
		}
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var meta struct{ Index uint64 }
		if json.Unmarshal(b, &meta) == nil && meta.Index > best {
			best = meta.Index
		}
	}
	return best
}

// writeLoad is a set of concurrent writers, each putting its own numbered
// messages ("w03-00042") through a list of nodes in turn. Every message is
// sent with id=<message>, and a writer retries it (on the next node, after
// a short backoff) until it is acknowledged with a 200, so a retry after an
// unknown outcome cannot store it twice. A writer sends its next message
// only once the current one is acknowledged, so each writer's messages are
// stored in the order it wrote them.
type writeLoad struct {
	t       *testing.T
	targets []*node
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu   sync.Mutex
	sent map[string]bool
	acks []ack
}

// ack is one acknowledged message.
type ack struct {
	msg      string
	via      string    // the node it was sent to
	sentAt   time.Time // when the request that got the 200 was sent
	ackedAt  time.Time
	servedBy string // X-Served-By, if the node said
}

func startWrites(t *testing.T, writers int, targets ...*node) *writeLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &writeLoad{t: t, targets: targets, cancel: cancel, sent: map[string]bool{}}
	for w := range writers {
		l.wg.Add(1)
		go l.write(ctx, w)
	}
	t.Cleanup(l.halt)
	return l
}

func (l *writeLoad) write(ctx context.Context, w int) {
	defer l.wg.Done()
	for seq := 0; ; seq++ {
		msg := fmt.Sprintf("w%02d-%05d", w, seq)
		l.mu.Lock()
		l.sent[msg] = true
		l.mu.Unlock()
		for attempt := 0; ; attempt++ {
			nd := l.targets[(w+seq+attempt)%len(l.targets)]
			sentAt := time.Now()
			res, err := nd.do(ctx, http.MethodPost, nd.QueueURL+"/put?id="+msg, []byte(msg))
			if err == nil && res.code == http.StatusOK {
				l.mu.Lock()
				l.acks = append(l.acks, ack{msg: msg, via: nd.ID, sentAt: sentAt, ackedAt: time.Now(), servedBy: res.header.Get("X-Served-By")})
				l.mu.Unlock()
				break
			}
			backoff := min(20*time.Millisecond<<min(attempt, 4), 250*time.Millisecond)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// mayStore adds a message sent outside the writers, whose outcome the
// test does not know: verify accepts it stored once or not at all.
func (l *writeLoad) mayStore(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent[msg] = true
}

// acksVia returns the acknowledgments of requests sent to nd within
// [from, to) and acknowledged before to.
func (l *writeLoad) acksVia(nd *node, from, to time.Time) []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	var r []ack
	for _, a := range l.acks {
		if a.via == nd.ID && !a.sentAt.Before(from) && a.ackedAt.Before(to) {
			r = append(r, a)
		}
	}
	return r
}

// halt stops the writers and waits for them; a message in flight has an
// unknown outcome.
func (l *writeLoad) halt() {
	l.cancel()
	l.wg.Wait()
}

func (l *writeLoad) acked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

// waitAcked waits until n messages in all have been acknowledged.
func (l *writeLoad) waitAcked(n int, timeout time.Duration) {
	l.t.Helper()
	eventually(l.t, timeout, fmt.Sprintf("%d acknowledged writes", n), func() error {
		if got := l.acked(); got < n {
			return fmt.Errorf("%d acknowledged", got)
		}
		return nil
	})
}

// firstAckSentAfter returns the earliest acknowledgment of a request sent
// after t0.
func (l *writeLoad) firstAckSentAfter(t0 time.Time) (ack, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first ack
	found := false
	for _, a := range l.acks {
		if a.sentAt.After(t0) && (!found || a.ackedAt.Before(first.ackedAt)) {
			first, found = a, true
		}
	}
	return first, found
}

// waitFirstAckAfter waits for a write sent after t0 to be acknowledged.
func waitFirstAckAfter(t *testing.T, w *writeLoad, t0 time.Time) ack {
	t.Helper()
	var first ack
	eventually(t, 60*time.Second, "a write acknowledged after "+t0.Format("15:04:05.000"), func() error {
		var ok bool
		if first, ok = w.firstAckSentAfter(t0); !ok {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	return first
}

// verify checks a /dump of the default queue against what was written:
// every acknowledged message is there exactly once, nothing is there twice
// or was never sent, and each writer's messages are in its order.
func (l *writeLoad) verify(dump string) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]int{}
	last := map[int]int{}
	items := dumpItems(dump)
	for _, it := range items {
		if !l.sent[it] {
			report("%q is stored but was never sent", it)
			continue
		}
		seen[it]++
		var w, seq int
		if n, err := fmt.Sscanf(it, "w%02d-%05d", &w, &seq); err != nil || n != 2 {
			continue // not a writer's message (see mayStore)
		}
		if prev, ok := last[w]; ok && seq <= prev {
			report("writer %d: %q stored after seq %d", w, it, prev)
		}
		last[w] = seq
	}
	for msg, n := range seen {
		if n > 1 {
			report("%q stored %d times", msg, n)
		}
	}
	for _, a := range l.acks {
		if seen[a.msg] != 1 {
			report("acknowledged %q (via %s at %s) stored %d times", a.msg, a.via, a.ackedAt.Format("15:04:05.000"), seen[a.msg])
		}
	}
	l.t.Logf("writes: %d sent, %d acknowledged, %d stored", len(l.sent), len(l.acks), len(items))
	if len(problems) > 0 {
		l.t.Fatalf("the stored messages do not match the acknowledged writes:\n%s", strings.Join(problems, "\n"))
	}
}
