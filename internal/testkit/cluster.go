package testkit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/netns"
)

// Ports a node listens on inside its network namespace: the defaults of
// serve, since every namespace has an address of its own.
const (
	nsPubsubPort = 8080
	nsQueuePort  = 8081
	nsRaftPort   = 8300
	nsGossipPort = 7946
	nsDebugPort  = 6060
)

// ClusterOptions configures a Cluster.
type ClusterOptions struct {
	// Binary is the quorumq binary the nodes run (required).
	Binary string
	// Dir holds one directory per node, Dir/<id>, with data/ and node.log
	// (required).
	Dir string
	// ServeArgs are appended to every node's serve command line.
	ServeArgs []string
	// Net, when set, runs each node in a network namespace of its own (a
	// fresh slot per node, never reused) on the default ports of its own
	// address. Otherwise the nodes run on loopback on ports from Port.
	Net *netns.Net
	// Port hands out loopback ports free for TCP and UDP. Default
	// FreePort.
	Port func() (int, error)
	// Debug gives every node a --debug-addr too (Node.DebugAddr), where
	// Go's profiler answers.
	Debug bool
	// Lifetime of the node processes. Default SameGroup.
	Lifetime Lifetime
	// Logf receives progress lines and unexpected exits.
	Logf Logf
	// Security, when set, runs a secured cluster (NodeConfig.Security).
	Security *Security
}

// Cluster is a set of quorumq serve processes forming one raft cluster.
// Nodes are named node1, node2, ... in the order they are created; a node
// added after another left gets a fresh name, directory and slot, so a
// left data directory never comes back (raft-patterns §9.3).
//
// All methods are safe for concurrent use.
type Cluster struct {
	o ClusterOptions

	mu      sync.Mutex
	nodes   []*Node
	created int // nodes named so far
	expect  int // --bootstrap-expect of every node, added ones included
}

// NewCluster returns an empty cluster; Start creates its first nodes.
func NewCluster(o ClusterOptions) (*Cluster, error) {
	if o.Binary == "" || o.Dir == "" {
		return nil, errors.New("testkit: ClusterOptions.Binary and Dir are required")
	}
	if o.Port == nil {
		o.Port = FreePort
	}
	return &Cluster{o: o}, nil
}

// Start creates n nodes and starts them at the same moment, each with
// --bootstrap-expect=n and --join=<the gossip addresses of all n, its own
// included>, so they find each other and bootstrap one cluster. It returns
// once every node is ready and all name the same leader, or timeout has
// passed.
func (c *Cluster) Start(ctx context.Context, n int, timeout time.Duration) error {
	c.mu.Lock()
	c.expect = n
	c.mu.Unlock()
	var nodes []*Node
	for range n {
		nd, err := c.newNode()
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
	}
	join := gossipAddrs(nodes)
	for _, nd := range nodes {
		nd.SetJoin(join, n)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nodes...)
	c.mu.Unlock()
	if err := StartTogether(nodes); err != nil {
		return err
	}
	for _, nd := range nodes {
		if err := nd.WaitReady(ctx, timeout); err != nil {
			return err
		}
	}
	_, err := c.WaitLeader(ctx, nodes, nil, timeout)
	return err
}

// AddNode creates one more node (fresh name, directory and slot) that
// joins the running cluster, starts it and returns at once (see
// WaitReady): the leader adds it as a non-voter and promotes it once it
// has caught up. It gets the cluster's --bootstrap-expect, not 1: with 1
// a fresh node bootstraps a cluster of its own before it hears of anyone,
// whereas with the cluster's value it sees members that already have
// raft state and never bootstraps (raft-patterns §8.3). Its --join lists
// every member, itself included.
func (c *Cluster) AddNode() (*Node, error) {
	nd, err := c.newNode()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	join, expect := gossipAddrs(c.membersLocked()), c.expect
	c.mu.Unlock()
	nd.SetJoin(join, expect)
	return nd, nd.Start()
}

// newNode prepares node<k> with its addresses; Start or AddNode set its
// --join.
func (c *Cluster) newNode() (*Node, error) {
	c.mu.Lock()
	c.created++
	k := c.created
	c.mu.Unlock()
	id := fmt.Sprintf("node%d", k)
	dir := filepath.Join(c.o.Dir, id)
	cfg := NodeConfig{
		ID: id, Binary: c.o.Binary, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "node.log"),
		ServeArgs: c.o.ServeArgs, Lifetime: c.o.Lifetime, Logf: c.o.Logf, Security: c.o.Security,
	}
	// secure issues the node's certificate for the host it listens on.
	secure := func(host string) (*Node, error) {
		if c.o.Security != nil {
			if _, err := c.o.Security.NodeFiles(id, host); err != nil {
				return nil, err
			}
		}
		return NewNode(cfg), nil
	}
	if nn := c.o.Net; nn != nil {
		slot, err := nn.AddSlot()
		if err != nil {
			return nil, err
		}
		ip := nn.IP(slot)
		addr := func(port int) string { return fmt.Sprintf("%s:%d", ip, port) }
		cfg.Slot, cfg.Prefix = slot, nn.Exec(slot)
		cfg.PubsubAddr, cfg.QueueAddr, cfg.RaftAddr, cfg.GossipAddr = addr(nsPubsubPort), addr(nsQueuePort), addr(nsRaftPort), addr(nsGossipPort)
		if c.o.Debug {
			cfg.DebugAddr = addr(nsDebugPort)
		}
		return secure(ip)
	}
	n := 4
	if c.o.Debug {
		n = 5
	}
	ports := make([]string, n)
	for i := range ports {
		p, err := c.o.Port()
		if err != nil {
			return nil, err
		}
		ports[i] = Loopback(p)
	}
	cfg.PubsubAddr, cfg.QueueAddr, cfg.RaftAddr, cfg.GossipAddr = ports[0], ports[1], ports[2], ports[3]
	if c.o.Debug {
		cfg.DebugAddr = ports[4]
	}
	return secure("127.0.0.1")
}

// Nodes returns every node ever created, left ones included, in creation
// order.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// Members returns the nodes that have not left, running or not.
func (c *Cluster) Members() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.membersLocked()
}

func (c *Cluster) membersLocked() []*Node {
	var r []*Node
	for _, nd := range c.nodes {
		if !nd.Left() {
			r = append(r, nd)
		}
	}
	return r
}

// Running returns the members whose processes are alive, paused ones
// included.
func (c *Cluster) Running() []*Node {
	var r []*Node
	for _, nd := range c.Members() {
		if nd.Running() {
			r = append(r, nd)
		}
	}
	return r
}

// Healthy returns the running members that are not paused: the ones that
// can answer.
func (c *Cluster) Healthy() []*Node {
	var r []*Node
	for _, nd := range c.Running() {
		if !nd.Paused() {
			r = append(r, nd)
		}
	}
	return r
}

// Node returns the node with the given id, or nil.
func (c *Cluster) Node(id string) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.ID == id {
			return nd
		}
	}
	return nil
}

// LeaderOf asks each of nodes for /cluster/status and returns the node
// they all name as leader. It is an error if one cannot answer or knows
// no leader, if they disagree, or if the named node is not among them or
// does not say it leads.
func (c *Cluster) LeaderOf(ctx context.Context, nodes []*Node) (*Node, error) {
	if len(nodes) == 0 {
		return nil, errors.New("no nodes to ask")
	}
	id := ""
	for _, nd := range nodes {
		st, err := nd.Status(ctx)
		if err != nil {
			return nil, err
		}
		switch {
		case st.LeaderID == "":
			return nil, fmt.Errorf("%s knows no leader (state %s, term %d)", nd.ID, st.State, st.Term)
		case id == "":
			id = st.LeaderID
		case st.LeaderID != id:
			return nil, fmt.Errorf("%s names leader %s, %s names %s", nodes[0].ID, id, nd.ID, st.LeaderID)
		}
	}
	l := c.Node(id)
	if l == nil || !slices.Contains(nodes, l) {
		return nil, fmt.Errorf("leader %s is not among %v", id, IDs(nodes))
	}
	st, err := l.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.State != api.StateLeader {
		return nil, fmt.Errorf("%s is named leader but reports state %s", l.ID, st.State)
	}
	return l, nil
}

// Leader is LeaderOf the healthy members.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	return c.LeaderOf(ctx, c.Healthy())
}

// Followers returns the healthy members other than the leader they agree
// on.
func (c *Cluster) Followers(ctx context.Context) ([]*Node, error) {
	l, err := c.Leader(ctx)
	if err != nil {
		return nil, err
	}
	return Without(c.Healthy(), l), nil
}

// WaitLeader waits up to timeout until nodes agree on a leader among them
// other than not (which may be nil), and returns it.
func (c *Cluster) WaitLeader(ctx context.Context, nodes []*Node, not *Node, timeout time.Duration) (*Node, error) {
	var l *Node
	err := Poll(ctx, timeout, fmt.Sprintf("a leader of %v", IDs(nodes)), func(ctx context.Context) error {
		var err error
		if l, err = c.LeaderOf(ctx, nodes); err != nil {
			return err
		}
		if l == not {
			return fmt.Errorf("%s still leads", l.ID)
		}
		return nil
	})
	return l, err
}

// WaitVoters waits up to timeout until every one of nodes reports a
// configuration whose voters are exactly want.
func (c *Cluster) WaitVoters(ctx context.Context, nodes []*Node, want []string, timeout time.Duration) error {
	want = slices.Sorted(slices.Values(want))
	return Poll(ctx, timeout, fmt.Sprintf("voters %v on %v", want, IDs(nodes)), func(ctx context.Context) error {
		for _, nd := range nodes {
			st, err := nd.Status(ctx)
			if err != nil {
				return err
			}
			got := Voters(st)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s reports voters %v", nd.ID, got)
			}
		}
		return nil
	})
}

// Close kills every node that still runs and waits for them.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, nd := range c.Nodes() {
		wg.Go(nd.Kill)
	}
	wg.Wait()
}

// IDs returns the nodes' ids, sorted.
func IDs(nodes []*Node) []string {
	s := make([]string, len(nodes))
	for i, nd := range nodes {
		s[i] = nd.ID
	}
	slices.Sort(s)
	return s
}

// Without returns nodes without drop, in order.
func Without(nodes []*Node, drop ...*Node) []*Node {
	var r []*Node
	for _, nd := range nodes {
		if !slices.Contains(drop, nd) {
			r = append(r, nd)
		}
	}
	return r
}

func gossipAddrs(nodes []*Node) []string {
	addrs := make([]string, len(nodes))
	for i, nd := range nodes {
		addrs[i] = nd.GossipAddr
	}
	return addrs
}

// StartTogether launches the nodes' processes at the same moment, each
// from its own goroutine, all released at once: nodes that bootstrap
// together must not see one of them come up seconds before the others.
func StartTogether(nodes []*Node) error {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Go(func() {
			<-gate
			errs[i] = nd.Start()
		})
	}
	close(gate)
	wg.Wait()
	return errors.Join(errs...)
}
