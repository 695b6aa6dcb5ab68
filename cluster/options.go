package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
)

// Defaults for Options. DESIGN.md ("Decisions and trade-offs") gives the cost
// of each; the short reason is next to it.
const (
	// DefaultHeartbeatTimeout and DefaultElectionTimeout are raft's own 1 s.
	// Loopback and LAN round trips are far below that, but a laptop running a
	// docker-compose cluster sees fsync and GC stalls of hundreds of
	// milliseconds; shorter timeouts turn those into needless elections.
	// Failover therefore takes about 1-2 s plus one election.
	DefaultHeartbeatTimeout = 1 * time.Second
	DefaultElectionTimeout  = 1 * time.Second
	// DefaultLeaderLeaseTimeout is how long a leader keeps leading without
	// hearing from a quorum: half the heartbeat timeout, raft's default.
	DefaultLeaderLeaseTimeout = 500 * time.Millisecond
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
	// latency, so the entry rate is at most 2 / 1 ms = 2000/s on a LAN with
	// fast disks (~1900/s measured on loopback). A follower that needed a
	// snapshot can then catch up from the log (raft-patterns §4.2).
	DefaultTrailingLogs = 65536
	// DefaultMaxBatchBytes caps a coalesced entry at half of raft's
	// SuggestedMaxDataSize, so heartbeats are never queued behind a huge RPC.
	DefaultMaxBatchBytes = 256 << 10
	// DefaultMaxPendingApplies is the number of entries the coalescer keeps in
	// raft at once. Two lets the leader write entry k+1 while entry k is
	// being replicated; more only splits the same commands into more,
	// smaller entries (BenchmarkPropose_PendingApplies, DESIGN.md).
	DefaultMaxPendingApplies = 2
	// DefaultApplyTimeout bounds the enqueue into raft.
	DefaultApplyTimeout = 10 * time.Second
)

// maxEntryBytes is the hard ceiling for MaxBatchBytes: raft's suggested
// maximum entry size.
const maxEntryBytes = raft.SuggestedMaxDataSize

// Options configure a Node. The zero value of every field except DataDir and
// RaftBind selects a default.
type Options struct {
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
	// RaftAdvertise is the host:port peers dial. Empty: the bound address,
	// which must then be a concrete IP (not 0.0.0.0).
	RaftAdvertise string
	// QueueAddr and PubsubAddr are this node's advertised HTTP addresses,
	// reported in Status.
	QueueAddr, PubsubAddr string
	// BootstrapExpect is the number of servers to wait for before the first
	// election. 1 (the default) bootstraps a single-node cluster when the
	// data directory has no raft state. Values above 1 need memberlist
	// discovery, which is not implemented yet: Open rejects them.
	BootstrapExpect int

	// Raft timing; defaults are the Default* constants.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// MaxAppendEntries bounds entries per replication RPC and per leader
	// fsync group (raft allows at most 1024). Default 512.
	MaxAppendEntries int
	// SnapshotThreshold, SnapshotInterval and TrailingLogs control log
	// compaction. Defaults 8192, 20 s and 65536.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64

	// MaxBatchBytes caps the encoded size of one coalesced log entry (at
	// most 512 KiB; default 256 KiB). A single larger command travels alone.
	MaxBatchBytes int
	// MaxPendingApplies is how many coalesced entries may wait in raft at
	// once (default 2). While all are busy, new commands accumulate into
	// the next entry.
	MaxPendingApplies int
	// ApplyTimeout bounds the enqueue of an entry into raft (default 10 s).
	// It does not bound the commit; Propose's context does that.
	ApplyTimeout time.Duration

	// Now stamps fsm.Entry.Now on the leader, and nothing else. Default time.Now.
	Now func() time.Time
	// Logger receives this package's logs and raft's. Default slog.Default().
	Logger *slog.Logger
	// RaftLogLevel is the minimum level of raft's own messages. Default WARN:
	// raft logs every heartbeat hiccup at INFO.
	RaftLogLevel slog.Leveler

	// Test hooks. tickInterval overrides defaultTickInterval; noBootstrap
	// starts a server that waits to be added to an existing cluster;
	// wrapLogStore wraps the bolt log store (benchmarks model slow disks).
	tickInterval time.Duration
	noBootstrap  bool
	wrapLogStore func(raft.LogStore) raft.LogStore
}

// withDefaults validates o and returns a copy with every default filled in.
// Every problem is reported as an error wrapping ErrInvalidOptions.
func (o Options) withDefaults() (Options, error) {
	bad := func(format string, args ...any) (Options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...)
	}
	if o.DataDir == "" {
		return bad("DataDir is required")
	}
	if o.NodeID != "" && !validNodeID(o.NodeID) {
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
	switch {
	case o.BootstrapExpect == 0:
		o.BootstrapExpect = 1
	case o.BootstrapExpect < 0:
		return bad("BootstrapExpect %d is negative", o.BootstrapExpect)
	case o.BootstrapExpect > 1:
		return bad("BootstrapExpect %d: multi-node bootstrap needs memberlist discovery, which is not implemented yet", o.BootstrapExpect)
	}

	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"HeartbeatTimeout", &o.HeartbeatTimeout, DefaultHeartbeatTimeout},
		{"ElectionTimeout", &o.ElectionTimeout, DefaultElectionTimeout},
		{"LeaderLeaseTimeout", &o.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout},
		{"CommitTimeout", &o.CommitTimeout, DefaultCommitTimeout},
		{"SnapshotInterval", &o.SnapshotInterval, DefaultSnapshotInterval},
		{"ApplyTimeout", &o.ApplyTimeout, DefaultApplyTimeout},
	}
	for _, d := range durations {
		switch {
		case *d.v < 0:
			return bad("%s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
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
	if o.SnapshotInterval < 5*time.Millisecond {
		return bad("SnapshotInterval %v is below 5ms", o.SnapshotInterval)
	}

	switch {
	case o.MaxAppendEntries < 0 || o.MaxAppendEntries > 1024:
		return bad("MaxAppendEntries %d is outside 1..1024", o.MaxAppendEntries)
	case o.MaxAppendEntries == 0:
		o.MaxAppendEntries = DefaultMaxAppendEntries
	}
	if o.SnapshotThreshold == 0 {
		o.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if o.TrailingLogs == 0 {
		o.TrailingLogs = DefaultTrailingLogs
	}
	switch {
	case o.MaxBatchBytes < 0 || o.MaxBatchBytes > maxEntryBytes:
		return bad("MaxBatchBytes %d is outside 1..%d", o.MaxBatchBytes, maxEntryBytes)
	case o.MaxBatchBytes == 0:
		o.MaxBatchBytes = DefaultMaxBatchBytes
	}
	switch {
	case o.MaxPendingApplies < 0 || o.MaxPendingApplies > o.MaxAppendEntries:
		// More in flight than one leader group can take buys nothing.
		return bad("MaxPendingApplies %d is outside 1..MaxAppendEntries (%d)", o.MaxPendingApplies, o.MaxAppendEntries)
	case o.MaxPendingApplies == 0:
		o.MaxPendingApplies = min(DefaultMaxPendingApplies, o.MaxAppendEntries)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RaftLogLevel == nil {
		o.RaftLogLevel = slog.LevelWarn
	}
	return o, nil
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

// validNodeID reports whether id is 1-128 characters of [A-Za-z0-9._-]: safe
// in file names, URLs, metric labels and memberlist node names.
func validNodeID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
