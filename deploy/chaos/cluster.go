package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/quorumq/quorumq/internal/netns"
)

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
	// Binary is the quorumq binary the nodes run.
	Binary string
	// Dir holds one directory per node (data/ and node.log).
	Dir string
	// ServeArgs are appended to every node's serve command line.
	ServeArgs []string
	// Net, if set, runs each node in its own network namespace (one slot
	// per node, never reused) with the default ports on its own address;
	// otherwise nodes run on loopback with fresh free ports.
	Net *netns.Net
	// Logf receives progress lines.
	Logf Logf
}

// Cluster is a set of quorumq serve processes forming one raft cluster.
// Nodes are named node1, node2, ... in the order they are created; a node
// that is added after another left gets a fresh name, directory and slot,
// so a left data directory never comes back (raft-patterns §9.3).
//
// All methods are safe for concurrent use.
type Cluster struct {
	cfg ClusterConfig

	mu      sync.Mutex
	nodes   []*Node
	created int // nodes named so far
	expect  int // --bootstrap-expect of every node, added ones included
}

// NewCluster returns an empty cluster; Start creates its first nodes.
func NewCluster(cfg ClusterConfig) *Cluster {
	return &Cluster{cfg: cfg}
}

// Start creates n nodes and starts them at the same moment, each with
// --bootstrap-expect=n and --join=<the gossip addresses of all n>, then
// waits until every node is ready and all name the same leader.
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
		c.configure(nd, join)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nodes...)
	c.mu.Unlock()
	if err := startTogether(nodes); err != nil {
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
// joins the running cluster, starts it and returns at once: the leader
// adds it as a non-voter and promotes it once caught up. It gets the
// cluster's --bootstrap-expect, so it never bootstraps a cluster of its
// own, and --join lists every member, itself included.
func (c *Cluster) AddNode() (*Node, error) {
	nd, err := c.newNode()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, nd)
	join := gossipAddrs(c.membersLocked())
	c.mu.Unlock()
	c.configure(nd, join)
	return nd, nd.Start()
}

// newNode prepares node<k> with its addresses.
func (c *Cluster) newNode() (*Node, error) {
	c.mu.Lock()
	c.created++
	k := c.created
	c.mu.Unlock()
	id := fmt.Sprintf("node%d", k)
	spec := NodeSpec{ID: id, Dir: filepath.Join(c.cfg.Dir, id), Binary: c.cfg.Binary, Extra: c.cfg.ServeArgs, Logf: c.cfg.Logf}
	if nn := c.cfg.Net; nn != nil {
		slot, err := nn.AddSlot()
		if err != nil {
			return nil, err
		}
		ip := nn.IP(slot)
		spec.Slot, spec.Prefix = slot, nn.Exec(slot)
		spec.Queue, spec.Pubsub, spec.Raft, spec.Gossip = ip+":8081", ip+":8080", ip+":8300", ip+":7946"
	} else {
		ports, err := freePorts(4)
		if err != nil {
			return nil, err
		}
		spec.Queue, spec.Pubsub, spec.Raft, spec.Gossip = loopback(ports[0]), loopback(ports[1]), loopback(ports[2]), loopback(ports[3])
	}
	// Join and Expect are filled in by configure.
	return NewNode(spec), nil
}

// configure sets the serve command line of nd, which is not started yet.
func (c *Cluster) configure(nd *Node, join []string) {
	c.mu.Lock()
	expect := c.expect
	c.mu.Unlock()
	nd.SetJoin(join, expect)
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

// Running returns the members whose processes are alive (paused ones
// included).
func (c *Cluster) Running() []*Node {
	var r []*Node
	for _, nd := range c.Members() {
		if nd.Running() {
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
// they all name as leader. It is an error if one cannot answer or knows no
// leader, if they disagree, or if the named node is not among them or
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
	if st.State != "leader" {
		return nil, fmt.Errorf("%s is named leader but reports state %s", l.ID, st.State)
	}
	return l, nil
}

// Leader is LeaderOf the running, unpaused members.
func (c *Cluster) Leader(ctx context.Context) (*Node, error) {
	var nodes []*Node
	for _, nd := range c.Running() {
		if !nd.Paused() {
			nodes = append(nodes, nd)
		}
	}
	return c.LeaderOf(ctx, nodes)
}

// WaitLeader waits until nodes agree on a leader among them other than
// not (which may be nil).
func (c *Cluster) WaitLeader(ctx context.Context, nodes []*Node, not *Node, timeout time.Duration) (*Node, error) {
	var l *Node
	err := poll(ctx, timeout, fmt.Sprintf("a leader of %v", IDs(nodes)), func(ctx context.Context) error {
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

// WaitVoters waits until every one of nodes reports a configuration whose
// voters are exactly want.
func (c *Cluster) WaitVoters(ctx context.Context, nodes []*Node, want []string, timeout time.Duration) error {
	want = slices.Sorted(slices.Values(want))
	return poll(ctx, timeout, fmt.Sprintf("voters %v on %v", want, IDs(nodes)), func(ctx context.Context) error {
		for _, nd := range nodes {
			st, err := nd.Status(ctx)
			if err != nil {
				return err
			}
			var got []string
			for _, m := range st.Members {
				if m.Voter {
					got = append(got, m.ID)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("%s reports voters %v", nd.ID, got)
			}
		}
		return nil
	})
}

// Close kills every node that still runs.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, nd := range c.Nodes() {
		wg.Add(1)
		go func() { defer wg.Done(); nd.Kill() }()
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

// Without returns nodes without drop.
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

// startTogether launches the nodes' processes at the same moment.
func startTogether(nodes []*Node) error {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, len(nodes))
	for i, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = nd.Start()
		}()
	}
	close(gate)
	wg.Wait()
	return errors.Join(errs...)
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePorts returns n loopback ports that were free for TCP and UDP (as
// memberlist needs) a moment ago, never one handed out before in this
// process.
func freePorts(n int) ([]int, error) {
	var r []int
	for tries := 0; len(r) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("no free ports")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", loopback(port))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		portsMu.Lock()
		fresh := !portsGiven[port]
		portsGiven[port] = true
		portsMu.Unlock()
		if fresh {
			r = append(r, port)
		}
	}
	return r, nil
}

func loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
