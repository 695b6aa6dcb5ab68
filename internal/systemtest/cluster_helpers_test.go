package systemtest

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/quorumq/quorumq/internal/testport"
)

// leaderTimeout bounds the wait for a leader that all nodes agree on.
const leaderTimeout = 60 * time.Second

// cluster is a set of quorumq serve processes forming one raft cluster:
// node i (from 1) has --node-id=node<i> and its own data directory and
// ports. On loopback the ports are fresh free ports; in network namespaces
// (inNetns) every node has its own IP and the default ports.
type cluster struct {
	t      *testing.T
	nodes  []*node
	expect int // --bootstrap-expect of every node, added ones included
	cfg    clusterConfig
}

type clusterConfig struct {
	serveArgs []string
	net       *netnsNet
}

// clusterOption configures mustStartCluster.
type clusterOption func(*clusterConfig)

// withServeArgs appends flags to every node's serve command line.
func withServeArgs(args ...string) clusterOption {
	return func(c *clusterConfig) { c.serveArgs = append(c.serveArgs, args...) }
}

// withFastRaft halves raft's default timeouts (1 s heartbeat and election,
// 500 ms lease), for tests that measure failover or start many clusters.
func withFastRaft() clusterOption {
	return withServeArgs("--raft-heartbeat-timeout=500ms", "--raft-election-timeout=500ms", "--raft-leader-lease-timeout=250ms")
}

// inNetns runs every node inside its own network namespace of nn.
func inNetns(nn *netnsNet) clusterOption {
	return func(c *clusterConfig) { c.net = nn }
}

// mustStartCluster starts n nodes at the same moment, each with
// --bootstrap-expect=n and --join=<the gossip addresses of all n nodes, its
// own included>, so they find each other and bootstrap one cluster. It
// returns once every node is ready and all name the same leader.
func mustStartCluster(t *testing.T, n int, opts ...clusterOption) *cluster {
	t.Helper()
	c := &cluster{t: t, expect: n}
	for _, o := range opts {
		o(&c.cfg)
	}
	for i := 1; i <= n; i++ {
		c.nodes = append(c.nodes, c.newNode(i))
	}
	join := c.gossipAddrs()
	for _, nd := range c.nodes {
		nd.args = c.serveArgs(nd, join)
	}
	start := time.Now()
	c.startTogether(c.nodes...)
	for _, nd := range c.nodes {
		nd.mustBeReady(readyTimeout)
	}
	l := c.waitForLeader()
	t.Logf("%d nodes ready, %s leads, %v after the start", n, l.name, time.Since(start).Round(time.Millisecond))
	return c
}

// newNode prepares node i with its addresses; it does not start it.
func (c *cluster) newNode(i int) *node {
	nd := newNode(c.t, fmt.Sprintf("node%d", i), c.t.TempDir())
	if nn := c.cfg.net; nn != nil {
		if i > nn.slots {
			c.t.Fatalf("node%d: the network has namespaces for %d nodes only", i, nn.slots)
		}
		ip := nn.ip(i)
		nd.setAddrs(ip+":8081", ip+":8080", ip+":8300", ip+":7946")
		nd.prefix = nn.exec(i)
		return nd
	}
	nd.setAddrs(loopbackAddr(freePort(c.t)), loopbackAddr(freePort(c.t)), loopbackAddr(freePort(c.t)), loopbackAddr(testport.Reserve(c.t)))
	return nd
}

func (c *cluster) serveArgs(nd *node, join []string) []string {
	return append([]string{"serve",
		"--node-id=" + nd.name,
		"--data-dir=" + nd.dataDir,
		"--queue-addr=" + nd.queueAddr,
		"--pubsub-addr=" + nd.pubsubAddr,
		"--raft-addr=" + nd.raftAddr,
		"--gossip-addr=" + nd.gossipAddr,
		fmt.Sprintf("--bootstrap-expect=%d", c.expect),
		"--join=" + strings.Join(join, ","),
	}, c.cfg.serveArgs...)
}

func (c *cluster) gossipAddrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		addrs[i] = nd.gossipAddr
	}
	return addrs
}

// startTogether launches the nodes' processes at the same moment: each
// from its own goroutine, all released at once.
func (c *cluster) startTogether(nodes ...*node) {
	c.t.Helper()
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = nd.start()
		}()
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

// addNode starts one more node that joins the running cluster and returns
// at once (call mustBeReady to wait). It gets the cluster's own
// --bootstrap-expect, not 1: a fresh node with --bootstrap-expect=1
// bootstraps a cluster of its own before it hears of anyone, whereas with
// the cluster's value it sees members that already have raft state, never
// bootstraps (raft-patterns §8.3), and waits for the leader to add it. Its
// --join lists every node, itself included, like the others'.
func (c *cluster) addNode() *node {
	c.t.Helper()
	nd := c.newNode(len(c.nodes) + 1)
	c.nodes = append(c.nodes, nd)
	nd.args = c.serveArgs(nd, c.gossipAddrs())
	if err := nd.start(); err != nil {
		c.t.Fatal(err)
	}
	return nd
}

// index returns nd's number i (it is node<i>).
func (c *cluster) index(nd *node) int {
	for i, n := range c.nodes {
		if n == nd {
			return i + 1
		}
	}
	c.t.Fatalf("%s is not in the cluster", nd.name)
	return 0
}

// node returns the node with the given id, or nil.
func (c *cluster) node(id string) *node {
	for _, nd := range c.nodes {
		if nd.name == id {
			return nd
		}
	}
	return nil
}

// running returns the nodes whose processes are alive.
func (c *cluster) running() []*node {
	var r []*node
	for _, nd := range c.nodes {
		if nd.running() {
			r = append(r, nd)
		}
	}
	return r
}

// ids returns the nodes' ids, sorted.
func ids(nodes []*node) []string {
	s := make([]string, len(nodes))
	for i, nd := range nodes {
		s[i] = nd.name
	}
	slices.Sort(s)
	return s
}

func without(nodes []*node, drop ...*node) []*node {
	var r []*node
	for _, nd := range nodes {
		if !slices.Contains(drop, nd) {
			r = append(r, nd)
		}
	}
	return r
}

// leaderOf asks each of nodes for /cluster/status and returns the node they
// all name as leader. It is an error if one cannot answer or knows no
// leader, if they disagree, or if the named node is not among them or does
// not say it leads.
func (c *cluster) leaderOf(nodes []*node) (*node, error) {
	if len(nodes) == 0 {
		return nil, errors.New("no nodes to ask")
	}
	id := ""
	for _, nd := range nodes {
		st, err := nd.status()
		if err != nil {
			return nil, err
		}
		switch {
		case st.LeaderID == "":
			return nil, fmt.Errorf("%s knows no leader (state %s, term %d)", nd.name, st.State, st.Term)
		case id == "":
			id = st.LeaderID
		case st.LeaderID != id:
			return nil, fmt.Errorf("%s names leader %s, %s names %s", nodes[0].name, id, nd.name, st.LeaderID)
		}
	}
	l := c.node(id)
	if l == nil || !slices.Contains(nodes, l) {
		return nil, fmt.Errorf("leader %s is not among %v", id, ids(nodes))
	}
	st, err := l.status()
	if err != nil {
		return nil, err
	}
	if st.State != "leader" {
		return nil, fmt.Errorf("%s is named leader but reports state %s", l.name, st.State)
	}
	return l, nil
}

// leader is leaderOf every running node.
func (c *cluster) leader() (*node, error) { return c.leaderOf(c.running()) }

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
	var l *node
	polls := 0
	eventually(c.t, leaderTimeout, fmt.Sprintf("a leader of %v", ids(nodes)), func() error {
		polls++
		var err error
		if l, err = c.leaderOf(nodes); err != nil {
			return err
		}
		if l == not {
			return fmt.Errorf("%s still leads", l.name)
		}
		return nil
	})
	if polls > 1 {
		c.t.Logf("%s leads %v after a wait of %v", l.name, ids(nodes), time.Since(start).Round(time.Millisecond))
	}
	return l
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
	slices.Sort(want)
	eventually(c.t, leaderTimeout, fmt.Sprintf("voters %v on %v", want, ids(nodes)), func() error {
		for _, nd := range nodes {
			st, err := nd.status()
			if err != nil {
				return err
			}
			got := st.voters()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s reports voters %v", nd.name, got)
			}
		}
		return nil
	})
}

// waitSameData waits until nd's local state (stale=1) of the queue
// matches ref's: the same /dump and the same /stats.
func waitSameData(t *testing.T, nd, ref *node, queue string) {
	t.Helper()
	q := url.Values{"stale": {"1"}, "queue": {queue}}.Encode()
	eventually(t, readyTimeout, fmt.Sprintf("%s to hold the same data as %s", nd.name, ref.name), func() error {
		for _, path := range []string{"/dump?", "/stats?format=json&"} {
			want, err := getOK(ref.queue + path + q)
			if err != nil {
				return err
			}
			got, err := getOK(nd.queue + path + q)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("%s%s: %s has %s, %s has %s", path, q, nd.name, abbrev(got), ref.name, abbrev(want))
			}
		}
		return nil
	})
}

func getOK(url string) (string, error) {
	code, body := httpGet(url)
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
			res, err := do(ctx, httpClient, http.MethodPost, nd.queue+"/put?id="+msg, []byte(msg))
			if err == nil && res.code == http.StatusOK {
				l.mu.Lock()
				l.acks = append(l.acks, ack{msg: msg, via: nd.name, sentAt: sentAt, ackedAt: time.Now(), servedBy: res.header.Get("X-Served-By")})
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
		if a.via == nd.name && !a.sentAt.Before(from) && a.ackedAt.Before(to) {
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
