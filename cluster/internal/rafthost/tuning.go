package rafthost

import (
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// maxEntryBytes is the hard ceiling for MaxBatchBytes: raft's suggested
// maximum entry size.
const maxEntryBytes = raft.SuggestedMaxDataSize

// Tuning is the raft host's knobs: raft's timing, replication batching,
// log compaction and the coalescer. cluster.Options embeds it (as
// cluster.RaftTuning) and cluster.DefaultOptions fills it in.
type Tuning struct {
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
	// SnapshotBytes also takes a snapshot once this many bytes of log
	// entries were applied since the last one, and TrailingBytes lowers
	// TrailingLogs (down to minTrailingLogs) so that the entries kept
	// after a snapshot hold about this many bytes: raft counts entries,
	// and 8192 or 65536 entries of /mput batches are gigabytes of log to
	// keep, map and replay at restart. 0 turns either off.
	SnapshotBytes uint64
	TrailingBytes uint64

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
}

// SetHeartbeatTimeout sets HeartbeatTimeout to d and moves the election
// timeout up to at least d and the leader lease to d/2 (raft's own ratio),
// so that raising the heartbeat timeout alone (slow disks) stays valid.
func (t *Tuning) SetHeartbeatTimeout(d time.Duration) {
	t.HeartbeatTimeout = d
	t.ElectionTimeout = max(t.ElectionTimeout, d)
	t.LeaderLeaseTimeout = d / 2
}

// Validate reports the first value outside the bounds documented on the
// fields. raft.ValidateConfig would catch most of them too, but with
// raft's wording and only after the stores are open.
func (t Tuning) Validate() error {
	switch {
	case t.HeartbeatTimeout < 5*time.Millisecond || t.ElectionTimeout < 5*time.Millisecond || t.LeaderLeaseTimeout < 5*time.Millisecond:
		return fmt.Errorf("raft timeouts must be at least 5ms (heartbeat %v, election %v, lease %v)",
			t.HeartbeatTimeout, t.ElectionTimeout, t.LeaderLeaseTimeout)
	case t.LeaderLeaseTimeout > t.HeartbeatTimeout:
		return fmt.Errorf("LeaderLeaseTimeout %v exceeds HeartbeatTimeout %v", t.LeaderLeaseTimeout, t.HeartbeatTimeout)
	case t.ElectionTimeout < t.HeartbeatTimeout:
		return fmt.Errorf("ElectionTimeout %v is below HeartbeatTimeout %v", t.ElectionTimeout, t.HeartbeatTimeout)
	case t.CommitTimeout < time.Millisecond:
		return fmt.Errorf("CommitTimeout %v is below 1ms", t.CommitTimeout)
	case t.SnapshotInterval < 5*time.Millisecond:
		return fmt.Errorf("SnapshotInterval %v is below 5ms", t.SnapshotInterval)
	case t.ApplyTimeout <= 0:
		return fmt.Errorf("ApplyTimeout %v is not positive", t.ApplyTimeout)
	case t.MaxAppendEntries < 1 || t.MaxAppendEntries > 1024:
		return fmt.Errorf("MaxAppendEntries %d is outside 1..1024", t.MaxAppendEntries)
	case t.SnapshotThreshold == 0:
		return fmt.Errorf("SnapshotThreshold is 0")
	case t.MaxBatchBytes < 1 || t.MaxBatchBytes > maxEntryBytes:
		return fmt.Errorf("MaxBatchBytes %d is outside 1..%d", t.MaxBatchBytes, maxEntryBytes)
	case t.MaxPendingApplies < 1 || t.MaxPendingApplies > t.MaxAppendEntries:
		// More in flight than one leader group can take buys nothing.
		return fmt.Errorf("MaxPendingApplies %d is outside 1..MaxAppendEntries (%d)", t.MaxPendingApplies, t.MaxAppendEntries)
	}
	return nil
}
