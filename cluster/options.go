package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/membership"
	"github.com/quorumq/quorumq/cluster/internal/rafthost"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/certs"
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
	// DefaultSnapshotBytes and DefaultTrailingBytes bound the log in bytes
	// as well: a snapshot after 256 MiB of entries, and about 256 MiB of
	// entries kept after it. A snapshot costs the index of the queues,
	// not their bodies, so taking one that often is cheap.
	DefaultSnapshotBytes = 256 << 20
	DefaultTrailingBytes = 256 << 20
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
	// DefaultProgressInterval: each node asks each other member for its
	// status this often, one small request per member, enough for a lag
	// alert that waits a minute.
	DefaultProgressInterval = 2 * time.Second
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

// LogStore is the kind of store raft keeps its log and stable state (term,
// vote) in: LogStoreBoltDB or LogStoreWAL, or LogStoreAuto for the kind the
// data directory holds. Its text form (auto, boltdb, wal) is the
// --raft-log-store value.
type LogStore = datadir.LogStore

const (
	// LogStoreBoltDB is raft-boltdb, in DataDir/raft.db: what LogStoreAuto
	// gives a new data directory. Each entry costs about two fdatasyncs and
	// five page writes (bolt's copy-on-write B+tree and meta page).
	LogStoreBoltDB = datadir.LogStoreBoltDB
	// LogStoreWAL is raft-wal, in DataDir/raft-wal/: one write and one
	// fsync per entry; on three nodes 1.4-1.7x the puts of raft-boltdb and
	// 0.5-0.6x its commit latency, but v0.4.0 has a crash bug (DESIGN.md).
	LogStoreWAL = datadir.LogStoreWAL
	// LogStoreAuto opens the kind the data directory holds, and
	// LogStoreBoltDB in a directory without a raft log.
	LogStoreAuto = datadir.LogStoreAuto
	// DefaultLogStore is LogStoreAuto.
	DefaultLogStore = LogStoreAuto
)

// NeverReap, as Options.ReapTimeout, keeps dead servers in the
// configuration until an operator removes them.
const NeverReap = membership.NeverReap

// maxBootstrapExpect bounds BootstrapExpect: raft clusters of more than a
// handful of voters only slow commits down, and a typo (30 for 3) should fail
// at start-up rather than wait forever.
const maxBootstrapExpect = 15

// RaftTuning is the raft host's knobs, embedded in Options: HeartbeatTimeout,
// ElectionTimeout, LeaderLeaseTimeout, CommitTimeout, MaxAppendEntries,
// SnapshotThreshold, SnapshotInterval, TrailingLogs, MaxBatchBytes,
// MaxPendingApplies and ApplyTimeout, with SetHeartbeatTimeout.
type RaftTuning = rafthost.Tuning

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
	// DataDir holds the raft log store (raft.db or raft-wal/), snapshots/,
	// node-id and the record of the log store's kind.
	DataDir string
	// LogStore is the kind of raft log store in DataDir, or LogStoreAuto.
	// A data directory keeps the kind it was created with: Open refuses the
	// other kind with ErrLogStoreMismatch rather than start an empty log
	// beside the old one.
	LogStore LogStore
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

	// TLS, when set, makes the raft transport mutual TLS: a peer must
	// present a certificate of the cluster CA, and each RPC must name the
	// node of that certificate. nil: plain TCP. Peer is expected to use
	// the same material for its calls.
	TLS *certs.Material
	// GossipKeys, when set, encrypt and authenticate gossip (memberlist's
	// keyring; the first key is the primary one, certs.LoadGossipKeys):
	// a process without one of them cannot join. Node.SetGossipKeys
	// rotates them. Empty: plain gossip.
	GossipKeys [][]byte

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
	// ProgressInterval is how often the node asks the other members for
	// their applied index (/cluster/status applied_index and lag,
	// quorumq_replication_lag_entries); DefaultProgressInterval. 0: never
	// (their lag is -1).
	ProgressInterval time.Duration
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

	// RaftTuning is raft's timing, batching and log compaction and the
	// coalescer (HeartbeatTimeout, ..., MaxPendingApplies, ApplyTimeout):
	// see rafthost.Tuning for each field's meaning and bounds.
	RaftTuning

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
	// cluster; wrapLogStore wraps the raft log store (benchmarks model slow
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
//   - LogStore DefaultLogStore (auto: the data directory's kind,
//     raft-boltdb for a new one).
//   - Raft timing: HeartbeatTimeout DefaultHeartbeatTimeout (500 ms),
//     ElectionTimeout DefaultElectionTimeout (500 ms), LeaderLeaseTimeout
//     DefaultLeaderLeaseTimeout (250 ms), CommitTimeout
//     DefaultCommitTimeout (50 ms).
//   - MaxAppendEntries DefaultMaxAppendEntries (512).
//   - Compaction: SnapshotThreshold DefaultSnapshotThreshold (8192),
//     SnapshotInterval DefaultSnapshotInterval (20 s), TrailingLogs
//     DefaultTrailingLogs (65536), SnapshotBytes DefaultSnapshotBytes and
//     TrailingBytes DefaultTrailingBytes (256 MiB each).
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
		BootstrapExpect:   1,
		LogStore:          DefaultLogStore,
		ReconcileInterval: DefaultReconcileInterval,
		ProgressInterval:  DefaultProgressInterval,
		PromoteAfter:      DefaultPromoteAfter,
		ReapTimeout:       DefaultReapTimeout,
		ReconnectTimeout:  DefaultReconnectTimeout,
		MinVoters:         DefaultMinVoters,
		RaftTuning: RaftTuning{
			HeartbeatTimeout:   DefaultHeartbeatTimeout,
			ElectionTimeout:    DefaultElectionTimeout,
			LeaderLeaseTimeout: DefaultLeaderLeaseTimeout,
			CommitTimeout:      DefaultCommitTimeout,
			MaxAppendEntries:   DefaultMaxAppendEntries,
			SnapshotThreshold:  DefaultSnapshotThreshold,
			SnapshotInterval:   DefaultSnapshotInterval,
			TrailingLogs:       DefaultTrailingLogs,
			SnapshotBytes:      DefaultSnapshotBytes,
			TrailingBytes:      DefaultTrailingBytes,
			MaxBatchBytes:      DefaultMaxBatchBytes,
			MaxPendingApplies:  DefaultMaxPendingApplies,
			ApplyTimeout:       DefaultApplyTimeout,
		},
		Now:               time.Now,
		Logger:            slog.Default(),
		RaftLogLevel:      slog.LevelWarn,
		GossipLogLevel:    slog.LevelWarn,
		tickInterval:      defaultTickInterval,
		reconnectInterval: membership.DefaultReconnectInterval,
		bootstrapSettle:   membership.DefaultBootstrapSettle,
		leaveWait:         defaultLeaveWait,
	}
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
	if o.NodeID != "" && !api.ValidNodeID(o.NodeID) {
		return bad("NodeID %q: use 1-128 characters from [A-Za-z0-9._-]", o.NodeID)
	}
	if o.TLS != nil && o.NodeID != "" && o.NodeID != o.TLS.NodeID() {
		return bad("NodeID %q: the TLS certificate is node %q's", o.NodeID, o.TLS.NodeID())
	}
	if err := checkHostPort(o.RaftBind); err != nil {
		return bad("RaftBind %q: %v", o.RaftBind, err)
	}
	if o.RaftAdvertise != "" {
		if err := checkHostPort(o.RaftAdvertise); err != nil {
			return bad("RaftAdvertise %q: %v", o.RaftAdvertise, err)
		}
	}
	if !o.LogStore.Valid() {
		return bad("LogStore %v: want auto, boltdb or wal", o.LogStore)
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
	if o.ReconcileInterval < 10*time.Millisecond {
		return bad("ReconcileInterval %v is below 10ms", o.ReconcileInterval)
	}
	if err := o.RaftTuning.Validate(); err != nil {
		return bad("%v", err)
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
