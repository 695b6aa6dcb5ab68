// Package membership is how a node finds the others and how the raft
// configuration follows them: memberlist with this node's NodeMeta (and the
// application channels it carries), the member table, joining the seeds
// and reconnecting, bootstrap-expect, the leader's reconcile loop
// (add, promote, remove, reap) and the gossip half of leave and shutdown.
// It changes the raft configuration only through rafthost.
package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/rafthost"
	"github.com/quorumq/quorumq/internal/peer"
)

// NeverReap, as Options.ReapTimeout, keeps dead servers in the
// configuration until an operator removes them.
const NeverReap time.Duration = -1

// ErrNotDialable means no gossip address other members can dial could be
// worked out from the options.
var ErrNotDialable = errors.New("gossip address is not one peers can dial")

// Options configure a Membership. cluster.Options documents and validates
// the values; this package trusts them.
type Options struct {
	ID     string
	Host   *rafthost.Host
	Peer   *peer.Client
	Logger *slog.Logger
	// Meta is the NodeMeta announced from the start.
	Meta NodeMeta
	// Channels are the application channels gossip carries, by type byte.
	Channels map[byte]Channel
	// Events, if set, receives memberlist's events after the member table.
	Events memberlist.EventDelegate

	RaftBind, RaftAdvertise     string
	GossipBind, GossipAdvertise string
	Join                        []string
	BootstrapExpect             int
	// NoBootstrap makes a node without raft state wait to be added.
	NoBootstrap bool

	ReconcileInterval, PromoteAfter, ReapTimeout, ReconnectTimeout time.Duration
	MinVoters                                                      int
	// ReconnectInterval and BootstrapSettle: DefaultReconnectInterval and
	// DefaultBootstrapSettle outside tests.
	ReconnectInterval, BootstrapSettle time.Duration

	// GossipKeys, when set, encrypt and authenticate all gossip (the
	// first key is the primary one); members without one of them cannot
	// join or be heard. Empty: plain gossip.
	GossipKeys [][]byte

	GossipLogLevel slog.Leveler
	// GossipConfig, if set, edits the memberlist configuration last (tests).
	GossipConfig func(*memberlist.Config)
}

// Membership is one node's gossip membership.
type Membership struct {
	opts Options
	id   string
	log  *slog.Logger
	host *rafthost.Host
	raft *raft.Raft

	// ml is set once in New; gossipMu orders UpdateNode and Leave against
	// ShutdownGossip (memberlist panics on Leave after Shutdown).
	ml         *memberlist.Memberlist
	gossip     *delegate
	members    *memberTable
	meta       metaState
	gossipAddr string
	keyring    *memberlist.Keyring // nil: plain gossip
	gossipMu   sync.Mutex
	gossipDown bool // memberlist shut down
	gossipLeft bool // memberlist's Leave was called
	// joined is closed once a Join seed answered or another member reached
	// this node.
	joined     chan struct{}
	joinedOnce sync.Once
	// bootWait says why the bootstrap loop waits; empty once the node has
	// raft state (see BootstrapWait).
	bootWait atomic.Pointer[string]
	// triedSeeds are the seeds of the join loop's latest attempt (see
	// UnreachedSeeds).
	triedSeeds atomic.Pointer[[]string]
	recon      reconcileMemory
	metrics    *metrics

	// ctx is cancelled by Cancel; it stops the join, reconnect and
	// bootstrap loops, which bg counts.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

// New starts memberlist with o.Meta. Events arrive from the moment it
// returns; the loops start with Start. ctx bounds resolving the advertised
// gossip host.
func New(ctx context.Context, o Options) (*Membership, error) {
	n := &Membership{
		opts:    o,
		id:      o.ID,
		log:     o.Logger,
		host:    o.Host,
		raft:    o.Host.Raft(),
		members: newMemberTable(o.Logger),
		joined:  make(chan struct{}),
		metrics: newMetrics(),
	}
	n.recon.healthySince = map[raft.ServerID]time.Time{}
	n.recon.missingSince = map[raft.ServerID]time.Time{}
	n.meta.set(func(m *NodeMeta) { *m = o.Meta })
	n.gossip = &delegate{log: o.Logger.With("subsystem", "gossip"), meta: &n.meta, channels: o.Channels}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	ml, err := n.newMemberlist(ctx)
	if err != nil {
		n.cancel()
		return nil, err
	}
	n.ml = ml
	n.gossipAddr = ml.LocalNode().Address()
	return n, nil
}

// Start runs the join and reconnect loop and, on a node that had no raft
// state at Open and did not bootstrap alone, the bootstrap loop.
func (n *Membership) Start() {
	n.bg.Add(1)
	go n.runGossip()
	if !n.host.Existing() && !n.host.Bootstrapped() {
		n.bg.Add(1)
		go n.runBootstrap()
	}
}

// GossipAddr returns the host:port other members use to reach this node's
// gossip port (the real port when GossipBind has port 0).
func (n *Membership) GossipAddr() string { return n.gossipAddr }

// Members returns a copy of every member, sorted by id.
func (n *Membership) Members() []Member { return n.members.snapshot() }

// Member returns the member with the given id.
func (n *Membership) Member(id string) (Member, bool) { return n.members.get(id) }

// LocalMeta returns this node's NodeMeta as announced.
func (n *Membership) LocalMeta() NodeMeta { return n.meta.get() }

// Leave announces a graceful leave: NodeMeta first (peers tell a leave
// from a failure by it), then memberlist's leave message.
func (n *Membership) Leave() {
	if err := n.UpdateMetaWithin(func(m *NodeMeta) { m.Leaving = true }, leaveAnnounceTimeout); err != nil {
		n.log.Warn("leave: the leaving meta was not gossiped in time; peers may see a failure rather than a leave", "err", err)
	}
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if !n.gossipDown {
		n.gossipLeft = true
		if err := n.ml.Leave(gossipUpdateTimeout); err != nil {
			n.log.Warn("leave: leave message not confirmed by any member", "err", err)
		}
	}
}

// WaitInTouch waits until gossip knows another live member, so that what
// this node announces next (its leave) reaches someone. A node restarted
// while its seeds are gone is alone until a member's reconnect loop
// reaches it: a leave announced before that is heard by nobody, and once
// the others do reach it, a node that has left no longer refutes their
// record of it as failed (from a life with a higher incarnation), so they
// never see it leave and the leader never removes it.
func (n *Membership) WaitInTouch(ctx context.Context) error {
	for n.ml.NumMembers() < 2 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return api.ErrShuttingDown
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Cancel stops the join, reconnect and bootstrap loops (Wait waits for
// them) and ends WaitRemoved.
func (n *Membership) Cancel() { n.cancel() }

// ShutdownGossip stops memberlist without a leave message: peers see a
// failure and keep this node in the configuration.
func (n *Membership) ShutdownGossip() error {
	n.gossipMu.Lock()
	defer n.gossipMu.Unlock()
	if n.gossipDown {
		return nil
	}
	n.gossipDown = true
	if err := n.ml.Shutdown(); err != nil {
		return fmt.Errorf("gossip shutdown: %w", err)
	}
	return nil
}

// Wait waits for the loops stopped by Cancel.
func (n *Membership) Wait() { n.bg.Wait() }

// ConcreteIP reports whether host is an IP address other than 0.0.0.0 or ::.
func ConcreteIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsUnspecified()
}

// WaitRemoved polls until this node is no longer in the configuration,
// according to its own log or to the leader.
func (n *Membership) WaitRemoved(ctx context.Context) error {
	for {
		if !n.inConfig(n.host.ConfigServers()) {
			return nil
		}
		if removed, ok := n.removedPerLeader(ctx); ok && removed {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done(): // a concurrent Shutdown began
			return api.ErrShuttingDown
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (n *Membership) inConfig(servers []raft.Server) bool {
	for _, s := range servers {
		if string(s.ID) == n.id {
			return true
		}
	}
	return false
}

// removedPerLeader asks the leader whether its configuration still lists
// this node. ok is false when no leader could be asked. The leader is the
// one this node knows, else the one an alive member names.
func (n *Membership) removedPerLeader(ctx context.Context) (removed, ok bool) {
	var addrs []string
	if _, id := n.raft.LeaderWithID(); id != "" && string(id) != n.id {
		if lm, known := n.members.get(string(id)); known && lm.MetaOK && lm.Meta.QueueAddr != "" {
			addrs = append(addrs, lm.Meta.QueueAddr)
		}
	}
	for _, m := range n.members.snapshot() {
		if m.ID != n.id && m.Status == api.MemberAlive && m.MetaOK && m.Meta.QueueAddr != "" {
			addrs = append(addrs, m.Meta.QueueAddr)
		}
	}
	for _, a := range addrs {
		st, err := n.opts.Peer.Status(ctx, a)
		if err != nil {
			continue
		}
		if st.State != "leader" {
			lm, known := n.members.get(st.LeaderID)
			if st.LeaderID == "" || st.LeaderID == n.id || !known || !lm.MetaOK {
				continue
			}
			if st, err = n.opts.Peer.Status(ctx, lm.Meta.QueueAddr); err != nil || st.State != "leader" {
				continue
			}
		}
		for _, m := range st.Members {
			if m.ID == n.id && m.Suffrage != api.SuffrageNone {
				return false, true
			}
		}
		return true, true
	}
	return false, false
}
