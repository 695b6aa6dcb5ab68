package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/membership"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/peer"
)

// Defaults for Options; DefaultOptions applies them. DESIGN.md
// ("Trade-offs and their costs") gives the cost of each; the short reason
// is next to it.
const (
	// DefaultHeartbeatTimeout, DefaultElectionTimeout and
	// DefaultLeaderLeaseTimeout are half of raft's own (1 s / 1 s / 500 ms):
	// a follower notices a dead leader 0.5-1 s after its last heartbeat and
	// pre-vote plus vote take a few milliseconds on a LAN, so failover
	// takes about a second (measured on loopback: DESIGN.md). The cost: a
	// leader that cannot reach a quorum for 250 ms steps down, so an fsync
	// or GC stall of that length on a loaded host turns into a short
	// election; raise the heartbeat timeout on slow disks or networks (unset
	// election and lease timeouts follow it).
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	// DefaultCommitTimeout is how long the leader waits, with no new writes,
	// before telling followers the commit index. Only follower staleness
	// (stale=1 reads, /readyz on followers) depends on it.
	DefaultCommitTimeout = 50 * time.Millisecond
	// DefaultMaxAppendEntries bounds both a replication RPC and one leader
	// fsync group. With entries of up to 256 KiB, 512 of them are never all
	// large at once in practice, and 512 concurrent applies fit in one group.
	DefaultMaxAppendEntries = 512
	// DefaultSnapshotThreshold and DefaultSnapshotInterval: snapshot after
	// 8192 new entries, checked every 20 s.
	DefaultSnapshotThreshold = 8192
	DefaultSnapshotInterval  = 20 * time.Second
	// DefaultTrailingLogs keeps at least ~30 s of history: the coalescer
	// has at most MaxPendingApplies entries in raft, each taking one commit
	// latency, so even with two the entry rate is at most 2 / 1 ms = 2000/s
	// on a LAN with fast disks (~1900/s measured on loopback). A follower that needed a
	// snapshot can then catch up from the log (raft-patterns §4.2).
	DefaultTrailingLogs = 65536
	// DefaultMaxBatchBytes caps a coalesced entry at half of raft's
	// SuggestedMaxDataSize, so heartbeats are never queued behind a huge RPC.
	DefaultMaxBatchBytes = 256 << 10
	// DefaultMaxPendingApplies is the number of entries the coalescer keeps in
	// raft at once. One makes the biggest entries, which is what counts when
	// CPU is scarce (nodes sharing cores); two let the leader write entry k+1
	// while entry k replicates, which wins when a log write takes
	// milliseconds. DESIGN.md has the measurements.
	DefaultMaxPendingApplies = 1
	// DefaultApplyTimeout bounds the enqueue into raft.
	DefaultApplyTimeout = 10 * time.Second

	// DefaultReconcileInterval is how often the leader compares gossip
	// membership with the raft configuration even without a membership
	// event (events are missed across leader changes). A round reads the
	// configuration and asks each non-voter for its progress: cheap for
	// the handful of servers a queue cluster has.
	DefaultReconcileInterval = time.Second
	// DefaultPromoteAfter is how long a non-voter must stay caught up and
	// alive before it becomes a voter (autopilot's stabilization time,
	// shortened for small clusters).
	DefaultPromoteAfter = 5 * time.Second
	// DefaultReapTimeout is how long a voter must be dead before the leader
	// removes it from the configuration (Consul's reconnect timeout). A
	// killed node that comes back within it simply catches up.
	DefaultReapTimeout = 72 * time.Hour
	// DefaultReconnectTimeout is how long a dead member keeps being
	// re-joined in the background (serf's reconnect timeout).
	DefaultReconnectTimeout = 24 * time.Hour
	// DefaultMinVoters is the number of voters reaping never goes below.
	DefaultMinVoters = 3
)

// NeverReap, as Options.ReapTimeout, keeps dead servers in the
// configuration until an operator removes them.
const NeverReap = membership.NeverReap

// maxBootstrapExpect bounds BootstrapExpect: raft clusters of more than a
// handful of voters only slow commits down, and a typo (30 for 3) should fail
// at start-up rather than wait forever.
const maxBootstrapExpect = 15

// maxEntryBytes is the hard ceiling for MaxBatchBytes: raft's suggested
// maximum entry size.
const maxEntryBytes = raft.SuggestedMaxDataSize

// Options configure a Node. Start from DefaultOptions, which fills in
// every default, and set DataDir, RaftBind, FSM, Peer and what else
// differs; Open only validates.
type Options struct {
	// FSM is the state machine the node hosts. It must be empty (fsm.New()):
	// raft rebuilds it from the newest snapshot and the log. Required.
	FSM *fsm.FSM
	// Peer asks other nodes for their status (promotion, leave) and their
	// subscriber sets. Required.
	Peer *peer.Client
	// NodeID is the raft server id. Empty: the id persisted in
	// DataDir/node-id, or on first start "<hostname>-<6 random hex>". The id
	// is persisted on first start; if a different id is already persisted,
	// Open fails with ErrNodeIDMismatch.
	NodeID string
	// DataDir holds raft.db (log and stable store), snapshots/ and node-id.
	DataDir string
	// RaftBind is the host:port the raft TCP transport listens on. Port 0
	// picks a free port; the listener's real address is then advertised.
	RaftBind string
	// RaftAdvertise is the host:port peers dial. The host may be a name (a
	// compose service): peers store and dial the name, so a node that comes
	// back with a new IP stays reachable. Port 0: the bound port. Empty: the
	// bound address, which must then be a concrete IP (not 0.0.0.0).
	RaftAdvertise string
	// QueueAddr and PubsubAddr are this node's advertised HTTP addresses,
	// gossiped to the other nodes (in NodeMeta) and reported in Status. The
	// leader reads a non-voter's progress from GET
	// http://QueueAddr/internal/status before it promotes it, so QueueAddr
	// must serve that endpoint for the node to become a voter.
	QueueAddr, PubsubAddr string
	// BootstrapExpect is the number of servers to wait for before the first
	// election (1..15). It only matters on a node without raft state.
	//
	// 1 without Join bootstraps a single-node cluster at Open. 1 with Join
	// bootstraps only after a seed was reached and gossip shows no member
	// with raft state (otherwise the node waits to be added). N > 1 waits
	// until gossip shows N alive members that advertise the same value and
	// none has raft state; then only the one with the smallest id
	// bootstraps, with all of them as voters (DESIGN.md, "Flows": Membership).
	BootstrapExpect int

	// GossipBind is the host:port memberlist listens on, TCP and UDP. Port
	// 0 picks a free port. Empty: RaftBind's host with port 0, which suits
	// a node that others do not need to find (it joins them).
	GossipBind string
	// GossipAdvertise is the host:port other members use to reach the
	// gossip port. A host name is resolved once at Open (memberlist
	// advertises an IP). Empty: GossipBind when its host is a concrete IP,
	// else RaftAdvertise's host; with port 0 the bound port.
	GossipAdvertise string
	// Join lists gossip addresses (host:port) of existing members. Open does
	// not wait for them: they are joined in the background, with
	// exponential backoff and jitter, until one answers, and re-joined
	// later whenever the cluster looks smaller than expected. This node's
	// own address may be in the list; it is skipped.
	Join []string
	// ReconcileInterval is how often the leader reconciles gossip
	// membership with the raft configuration without a membership event
	// (at least 10 ms).
	ReconcileInterval time.Duration
	// PromoteAfter is how long a non-voter must stay alive and caught up
	// (applied index within 250 entries of the leader's last index, on the
	// leader's term) before the leader makes it a voter.
	PromoteAfter time.Duration
	// ReapTimeout is how long a server must be dead (or never seen in
	// gossip) before the leader removes it from the configuration, one per
	// round and only while MinVoters voters remain; NeverReap disables
	// reaping.
	ReapTimeout time.Duration
	// ReconnectTimeout is how long dead members keep being re-joined in the
	// background, so the halves of a healed partition merge again.
	ReconnectTimeout time.Duration
	// MinVoters is the number of voters reaping never goes below (at
	// least 1).
	MinVoters int

	// Raft timing: each at least 5 ms (CommitTimeout 1 ms), the lease at
	// most the heartbeat timeout, the election timeout at least the
	// heartbeat timeout. SetHeartbeatTimeout moves the other two along.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries bounds entries per replication RPC and per leader
	// fsync group (1..1024, raft's limit).
	MaxAppendEntries int
	// SnapshotThreshold, SnapshotInterval and TrailingLogs control log
	// compaction (threshold and interval must be positive).
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// MaxBatchBytes caps the encoded size of one coalesced log entry
	// (1..512 KiB). A single larger command travels alone.
	MaxBatchBytes int
	// MaxPendingApplies is how many coalesced entries may wait in raft at
	// once (1..MaxAppendEntries; 2 suits disks whose fsync takes
	// milliseconds). While all are busy, new commands accumulate into the
	// next entry.
	MaxPendingApplies int
	// ApplyTimeout bounds the enqueue of an entry into raft. It does not
	// bound the commit; Propose's context does that.
	ApplyTimeout time.Duration

	// Now stamps fsm.Entry.Now on the leader, and nothing else. Required.
	Now func() time.Time
	// Logger receives this package's logs and raft's. Required.
	Logger *slog.Logger
	// RaftLogLevel and GossipLogLevel are the minimum levels of raft's and
	// memberlist's own messages. Required.
	RaftLogLevel   slog.Leveler
	GossipLogLevel slog.Leveler

	// Test hooks, set by DefaultOptions to defaultTickInterval,
	// membership.DefaultReconnectInterval, membership.DefaultBootstrapSettle
	// and defaultLeaveWait.
	// noBootstrap starts a server that waits to be added to an existing
	// cluster; wrapLogStore wraps the bolt log store (benchmarks model slow
	// disks); gossipConfig edits the memberlist configuration last.
	tickInterval      time.Duration
	noBootstrap       bool
	wrapLogStore      func(raft.LogStore) raft.LogStore
	reconnectInterval time.Duration
	bootstrapSettle   time.Duration
	leaveWait         time.Duration
	gossipConfig      func(*memberlist.Config)
}

// DefaultOptions returns Options with every default filled in. DataDir,
// RaftBind, FSM and Peer have none and must be set.
//
//   - BootstrapExpect 1: a node without raft state and without Join
//     bootstraps a single-server cluster.
//   - Raft timing: HeartbeatTimeout DefaultHeartbeatTimeout (500 ms),
//     ElectionTimeout DefaultElectionTimeout (500 ms), LeaderLeaseTimeout
//     DefaultLeaderLeaseTimeout (250 ms), CommitTimeout
//     DefaultCommitTimeout (50 ms).
//   - MaxAppendEntries DefaultMaxAppendEntries (512).
//   - Compaction: SnapshotThreshold DefaultSnapshotThreshold (8192),
//     SnapshotInterval DefaultSnapshotInterval (20 s), TrailingLogs
//     DefaultTrailingLogs (65536).
//   - Coalescer: MaxBatchBytes DefaultMaxBatchBytes (256 KiB),
//     MaxPendingApplies DefaultMaxPendingApplies (1), ApplyTimeout
//     DefaultApplyTimeout (10 s).
//   - Membership: ReconcileInterval DefaultReconcileInterval (1 s),
//     PromoteAfter DefaultPromoteAfter (5 s), ReapTimeout
//     DefaultReapTimeout (72 h), ReconnectTimeout DefaultReconnectTimeout
//     (24 h), MinVoters DefaultMinVoters (3).
//   - Now time.Now; Logger slog.Default(); RaftLogLevel and
//     GossipLogLevel WARN, because raft logs every heartbeat hiccup at
//     INFO and memberlist every join and probe at DEBUG or INFO.
func DefaultOptions() Options {
	return Options{
		BootstrapExpect:    1,
		ReconcileInterval:  DefaultReconcileInterval,
		PromoteAfter:       DefaultPromoteAfter,
		ReapTimeout:        DefaultReapTimeout,
		ReconnectTimeout:   DefaultReconnectTimeout,
		MinVoters:          DefaultMinVoters,
		HeartbeatTimeout:   DefaultHeartbeatTimeout,
		ElectionTimeout:    DefaultElectionTimeout,
		LeaderLeaseTimeout: DefaultLeaderLeaseTimeout,
		CommitTimeout:      DefaultCommitTimeout,
		MaxAppendEntries:   DefaultMaxAppendEntries,
		SnapshotThreshold:  DefaultSnapshotThreshold,
		SnapshotInterval:   DefaultSnapshotInterval,
		TrailingLogs:       DefaultTrailingLogs,
		MaxBatchBytes:      DefaultMaxBatchBytes,
		MaxPendingApplies:  DefaultMaxPendingApplies,
		ApplyTimeout:       DefaultApplyTimeout,
		Now:                time.Now,
		Logger:             slog.Default(),
		RaftLogLevel:       slog.LevelWarn,
		GossipLogLevel:     slog.LevelWarn,
		tickInterval:       defaultTickInterval,
		reconnectInterval:  membership.DefaultReconnectInterval,
		bootstrapSettle:    membership.DefaultBootstrapSettle,
		leaveWait:          defaultLeaveWait,
	}
}

// SetHeartbeatTimeout sets HeartbeatTimeout to d and moves the election
// timeout up to at least d and the leader lease to d/2 (raft's own ratio),
// so that raising the heartbeat timeout alone (slow disks) stays valid.
func (o *Options) SetHeartbeatTimeout(d time.Duration) {
	o.HeartbeatTimeout = d
	o.ElectionTimeout = max(o.ElectionTimeout, d)
	o.LeaderLeaseTimeout = d / 2
}

// validate reports every problem with o as an error wrapping
// ErrInvalidOptions.
func (o Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if o.FSM == nil {
		return bad("FSM is required")
	}
	if o.Peer == nil {
		return bad("Peer is required")
	}
	if o.DataDir == "" {
		return bad("DataDir is required")
	}
	if o.NodeID != "" && !datadir.ValidNodeID(o.NodeID) {
		return bad("NodeID %q: use 1-128 characters from [A-Za-z0-9._-]", o.NodeID)
	}
	if err := checkHostPort(o.RaftBind); err != nil {
		return bad("RaftBind %q: %v", o.RaftBind, err)
	}
	if o.RaftAdvertise != "" {
		if err := checkHostPort(o.RaftAdvertise); err != nil {
			return bad("RaftAdvertise %q: %v", o.RaftAdvertise, err)
		}
	}
	if o.BootstrapExpect < 1 || o.BootstrapExpect > maxBootstrapExpect {
		return bad("BootstrapExpect %d is outside 1..%d", o.BootstrapExpect, maxBootstrapExpect)
	}
	if o.GossipBind != "" {
		if err := checkHostPort(o.GossipBind); err != nil {
			return bad("GossipBind %q: %v", o.GossipBind, err)
		}
		if h, _, _ := net.SplitHostPort(o.GossipBind); h != "" && net.ParseIP(h) == nil {
			return bad("GossipBind %q: the host must be an IP address", o.GossipBind)
		}
	}
	if o.GossipAdvertise != "" {
		if err := checkHostPort(o.GossipAdvertise); err != nil {
			return bad("GossipAdvertise %q: %v", o.GossipAdvertise, err)
		}
	}
	for _, j := range o.Join {
		if err := checkHostPort(j); err != nil {
			return bad("Join address %q: %v", j, err)
		}
	}
	if o.MinVoters < 1 {
		return bad("MinVoters %d is below 1", o.MinVoters)
	}
	if o.ReapTimeout != NeverReap && o.ReapTimeout <= 0 {
		return bad("ReapTimeout %v is not positive (use NeverReap to disable reaping)", o.ReapTimeout)
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"HeartbeatTimeout", o.HeartbeatTimeout},
		{"ElectionTimeout", o.ElectionTimeout},
		{"LeaderLeaseTimeout", o.LeaderLeaseTimeout},
		{"CommitTimeout", o.CommitTimeout},
		{"SnapshotInterval", o.SnapshotInterval},
		{"ApplyTimeout", o.ApplyTimeout},
		{"ReconcileInterval", o.ReconcileInterval},
		{"PromoteAfter", o.PromoteAfter},
		{"ReconnectTimeout", o.ReconnectTimeout},
		{"tickInterval", o.tickInterval},
		{"reconnectInterval", o.reconnectInterval},
		{"bootstrapSettle", o.bootstrapSettle},
		{"leaveWait", o.leaveWait},
	}
	for _, d := range durations {
		if d.v <= 0 {
			return bad("%s %v is not positive", d.name, d.v)
		}
	}
	// raft.ValidateConfig would catch these too, but with raft's wording and
	// only after the stores are open.
	if o.HeartbeatTimeout < 5*time.Millisecond || o.ElectionTimeout < 5*time.Millisecond || o.LeaderLeaseTimeout < 5*time.Millisecond {
		return bad("raft timeouts must be at least 5ms")
	}
	if o.LeaderLeaseTimeout > o.HeartbeatTimeout {
		return bad("LeaderLeaseTimeout %v exceeds HeartbeatTimeout %v", o.LeaderLeaseTimeout, o.HeartbeatTimeout)
	}
	if o.ElectionTimeout < o.HeartbeatTimeout {
		return bad("ElectionTimeout %v is below HeartbeatTimeout %v", o.ElectionTimeout, o.HeartbeatTimeout)
	}
	if o.CommitTimeout < time.Millisecond {
		return bad("CommitTimeout %v is below 1ms", o.CommitTimeout)
	}
	if o.ReconcileInterval < 10*time.Millisecond {
		return bad("ReconcileInterval %v is below 10ms", o.ReconcileInterval)
	}
	if o.SnapshotInterval < 5*time.Millisecond {
		return bad("SnapshotInterval %v is below 5ms", o.SnapshotInterval)
	}
	if o.MaxAppendEntries < 1 || o.MaxAppendEntries > 1024 {
		return bad("MaxAppendEntries %d is outside 1..1024", o.MaxAppendEntries)
	}
	if o.SnapshotThreshold == 0 {
		return bad("SnapshotThreshold is 0")
	}
	if o.MaxBatchBytes < 1 || o.MaxBatchBytes > maxEntryBytes {
		return bad("MaxBatchBytes %d is outside 1..%d", o.MaxBatchBytes, maxEntryBytes)
	}
	if o.MaxPendingApplies < 1 || o.MaxPendingApplies > o.MaxAppendEntries {
		// More in flight than one leader group can take buys nothing.
		return bad("MaxPendingApplies %d is outside 1..MaxAppendEntries (%d)", o.MaxPendingApplies, o.MaxAppendEntries)
	}
	switch {
	case o.Now == nil:
		return bad("Now is required")
	case o.Logger == nil:
		return bad("Logger is required")
	case o.RaftLogLevel == nil || o.GossipLogLevel == nil:
		return bad("RaftLogLevel and GossipLogLevel are required")
	}
	return nil
}

func checkHostPort(s string) error {
	if s == "" {
		return fmt.Errorf("required")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}
