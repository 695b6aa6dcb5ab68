// Package rafthost runs the hashicorp/raft server of a node: raft-boltdb or
// raft-wal storage behind a log cache, file snapshots, the TCP transport, the
// group-commit coalescer behind Propose, read-index ConsistentRead, the
// leadership watcher with its per-term barrier and tick loops, readiness,
// and the raft half of an ordered shutdown. It knows nothing of gossip:
// membership changes the configuration through Raft and Await.
package rafthost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/hclogadapter"
	"github.com/quorumq/quorumq/fsm"
)

const (
	// logCacheSize is the number of recent entries kept in memory so that
	// replication and read-index checks rarely touch the disk (Consul, Nomad,
	// Vault and rqlite all use 512).
	logCacheSize = 512
	// logCacheBytes bounds the same cache in bytes: 64 entries of /mput
	// batches (256 KiB each), all 512 of small puts.
	logCacheBytes = 16 << 20
	// snapshotsRetained: one to serve, one to fall back on if the newest is
	// damaged. The FSM's body store keeps the segments of as many
	// (fsm.Options.RetainSnapshots, default 2).
	snapshotsRetained = 2
	// transportPool and transportTimeout are hraftd's and Consul's values:
	// a few pooled connections per peer, 10 s I/O deadline per RPC.
	transportPool    = 3
	transportTimeout = 10 * time.Second
	// boltOpenTimeout makes a second process on the same DataDir fail fast
	// instead of waiting on bolt's file lock forever.
	boltOpenTimeout = time.Second
	// proposeQueue is the buffer between Propose and the coalescer. Commands
	// wait here while every apply slot is busy; when it is full, Propose
	// blocks (back-pressure) until its context ends.
	proposeQueue = 1024
)

// ErrInvalidConfig means raft refused the configuration built from Options.
var ErrInvalidConfig = errors.New("invalid raft configuration")

// Options configure a Host. cluster.Options documents and validates the
// values; this package trusts them.
type Options struct {
	ID      string
	DataDir string
	// LogStore is the kind of store for the log and stable state, and
	// LogPath where it lives (LogStore.Path).
	LogStore datadir.LogStore
	LogPath  string
	FSM      *fsm.FSM

	RaftBind, RaftAdvertise string
	// TLS, when set, makes the transport mutual TLS.
	TLS *TLS

	Tuning
	// TickInterval is how often the leader checks whether a tick is due.
	TickInterval time.Duration
	// Now stamps entries with leader time.
	Now func() time.Time

	// BootstrapSingle bootstraps a one-voter configuration at Open when the
	// directory holds no raft state.
	BootstrapSingle bool
	// WrapLogStore, if set, wraps the log store (benchmarks model slow
	// disks with it).
	WrapLogStore func(raft.LogStore) raft.LogStore

	Logger       *slog.Logger
	RaftLogLevel slog.Leveler
}

// Host is one running raft server.
type Host struct {
	opts  Options
	log   *slog.Logger
	fsm   *fsm.FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store logStore
	// snaps is raft's snapshot store, whose snapshots open whole.
	snaps raft.SnapshotStore
	// logs is the cached log store raft writes through; caughtUp reads it.
	logs raft.LogStore

	existing     bool // raft state was on disk at Open
	bootstrapped bool // Open bootstrapped a one-voter configuration
	// appliedAtOpen is the FSM's applied index once raft restored the
	// newest snapshot during Open.
	appliedAtOpen uint64

	metrics *metrics

	// intake admits Propose and ConsistentRead calls until shutdown, which
	// then waits for those inside.
	intake gate
	// raftUsers counts goroutines blocked on raft futures (apply waiters,
	// barriers, VerifyLeader, configuration changes, leadership transfer).
	// Shutdown lets them finish before it stops raft; see Await.
	raftUsers gate

	proposeCh     chan *proposal
	stopCoalescer chan struct{} // closed by StopRaft once intake is drained
	coalescerDone chan struct{} // closed when the coalescer has exited
	raftDown      chan struct{} // closed once raft has shut down

	// ctx is cancelled by StopTerms; it parents every leader term.
	ctx    context.Context
	cancel context.CancelFunc
	// onTerm runs, in its own goroutine, for every leader term.
	onTerm func(*Term)
	// bg counts the goroutines Close waits for: the coalescer, the
	// leadership watcher, and each term's barrier, tick and onTerm loops.
	// None of them blocks on a raft future directly.
	bg sync.WaitGroup

	termMu      sync.Mutex
	term        *Term         // nil unless this node leads
	termChanged chan struct{} // closed and replaced whenever term changes
}

// Open opens the stores and the transport and starts raft, which restores
// the newest snapshot into the FSM. Nothing else runs until Start. On a
// later failure of its caller, Abort undoes Open.
func Open(o Options) (*Host, error) {
	hcl := hclogadapter.New(o.Logger, "raft", o.RaftLogLevel)
	var undo []func()
	fail := func(err error) (*Host, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}

	store, err := openLogStore(o.LogStore, o.LogPath, hcl)
	if err != nil {
		return fail(fmt.Errorf("raft %s store: %w", o.LogStore, err))
	}
	undo = append(undo, func() { store.Close() })
	var inner raft.LogStore = store
	if o.WrapLogStore != nil {
		inner = o.WrapLogStore(store)
		if isMonotonic(store) && !isMonotonic(inner) {
			inner = monotonic{inner}
		}
	}
	logs := newLogCache(inner, logCacheSize, logCacheBytes)
	files, err := raft.NewFileSnapshotStoreWithLogger(o.DataDir, snapshotsRetained, hcl.Named("snapshot"))
	if err != nil {
		return fail(fmt.Errorf("snapshot store: %w", err))
	}
	snaps := snapshotStore{files, o.FSM}
	trans, err := newTransport(o.RaftBind, o.RaftAdvertise, o.TLS, hcl.Named("transport"))
	if err != nil {
		return fail(fmt.Errorf("raft transport on %s: %w", o.RaftBind, err))
	}
	undo = append(undo, func() { trans.Close() })

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(o.ID)
	conf.HeartbeatTimeout = o.HeartbeatTimeout
	conf.ElectionTimeout = o.ElectionTimeout
	conf.LeaderLeaseTimeout = o.LeaderLeaseTimeout
	conf.CommitTimeout = o.CommitTimeout
	conf.MaxAppendEntries = o.MaxAppendEntries
	conf.BatchApplyCh = true      // callers never wait for the leader loop; fuller fsync groups
	conf.ShutdownOnRemove = false // a removed node stays up and can be re-added
	conf.SnapshotThreshold = o.SnapshotThreshold
	conf.SnapshotInterval = o.SnapshotInterval
	conf.TrailingLogs = o.TrailingLogs
	conf.Logger = hcl
	if err := raft.ValidateConfig(conf); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrInvalidConfig, err))
	}

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fail(fmt.Errorf("inspect raft state: %w", err))
	}
	r, err := raft.NewRaft(conf, &raftFSM{f: o.FSM}, logs, store, snaps, guardedTransport{trans, pipelineStall})
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	undo = append(undo, func() { r.Shutdown().Error() })
	bootstrapped := false
	if !existing && o.BootstrapSingle {
		cfg := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: conf.LocalID, Address: trans.LocalAddr(),
		}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			return fail(fmt.Errorf("bootstrap: %w", err))
		}
		bootstrapped = true
		o.Logger.Info("bootstrapped single-node cluster", "raft_addr", trans.LocalAddr())
	}

	h := &Host{
		opts:          o,
		log:           o.Logger,
		fsm:           o.FSM,
		raft:          r,
		trans:         trans,
		store:         store,
		snaps:         snaps,
		logs:          logs,
		existing:      existing,
		bootstrapped:  bootstrapped,
		appliedAtOpen: o.FSM.AppliedIndex(),
		metrics:       newMetrics(),
		proposeCh:     make(chan *proposal, proposeQueue),
		stopCoalescer: make(chan struct{}),
		coalescerDone: make(chan struct{}),
		raftDown:      make(chan struct{}),
		termChanged:   make(chan struct{}),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Abort undoes Open when the caller fails before Start.
func (h *Host) Abort() {
	h.cancel()
	h.raft.Shutdown().Error()
	h.trans.Close()
	h.store.Close()
}

// Start runs the coalescer and the leadership watcher. onTerm, if not nil,
// runs in its own goroutine for every leader term and must return once the
// term's context ends.
func (h *Host) Start(onTerm func(*Term)) {
	h.onTerm = onTerm
	h.bg.Add(3)
	go h.runCoalescer()
	go h.watchLeadership()
	go h.runCompaction()
}

// Snapshots is raft's snapshot store: a snapshot it opens is whole (it
// brings the body segments it refers to), as a follower is sent it.
func (h *Host) Snapshots() raft.SnapshotStore { return h.snaps }

// Raft is the raft server, for configuration changes and reads of its
// state. Calls that return a future go through Await.
func (h *Host) Raft() *raft.Raft { return h.raft }

// LocalAddr is the raft address this node advertises.
func (h *Host) LocalAddr() raft.ServerAddress { return h.trans.LocalAddr() }

// Existing reports whether the data directory held raft state at Open;
// Bootstrapped whether Open bootstrapped a one-voter configuration.
func (h *Host) Existing() bool     { return h.existing }
func (h *Host) Bootstrapped() bool { return h.bootstrapped }

// IsLeader reports whether this node is the raft leader right now.
func (h *Host) IsLeader() bool { return h.raft.State() == raft.Leader }

// LeaderID returns the id of the leader this node knows, or "".
func (h *Host) LeaderID() string {
	_, id := h.raft.LeaderWithID()
	return string(id)
}

// Ready reports whether the node can serve: not shutting down, a leader is
// known, and the FSM has applied everything up to the commit index this node
// has seen (rqlite's readiness rule). raft starts every process with a
// commit index of 0 and learns the real one only when it commits as leader
// or hears from one, so "the commit index seen" must first be learned: a
// leader needs this term's barrier applied, a follower a commit index at
// least as high as what the snapshot restored at Open. A restarted node is
// therefore not ready until it has replayed its log tail.
func (h *Host) Ready() bool {
	if h.intake.isClosed() || h.LeaderID() == "" {
		return false
	}
	commit := h.raft.CommitIndex()
	if h.raft.State() == raft.Leader {
		t, _ := h.currentTerm()
		if t == nil || !t.barrierApplied() || t.raftTerm != h.raft.CurrentTerm() {
			return false
		}
	} else if commit == 0 || commit < h.appliedAtOpen {
		return false
	}
	return h.caughtUp(commit)
}

// maxGapScan bounds how many log entries caughtUp inspects; a larger gap
// means the FSM really is behind.
const maxGapScan = 64

// caughtUp reports whether the FSM state reflects every entry up to target.
// The FSM's applied index alone cannot say so: raft never hands no-op and
// barrier entries to the FSM, so after an election or a Barrier the commit
// index sits above the last index the FSM saw, for good. Entries between the
// two that the FSM never receives do not change its state, so they count as
// applied.
func (h *Host) caughtUp(target uint64) bool {
	applied := h.fsm.AppliedIndex()
	if applied >= target {
		return true
	}
	if target-applied > maxGapScan {
		return false
	}
	var l raft.Log
	for i := applied + 1; i <= target; i++ {
		if err := h.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				// Compacted: a snapshot covered it, and raft restores a
				// snapshot into the FSM before it deletes the entries.
				continue
			}
			return false
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

// ConfigServers returns the latest raft configuration (possibly not yet
// committed), or nil if it cannot be read.
func (h *Host) ConfigServers() []raft.Server {
	cf := h.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		h.log.Warn("read raft configuration", "err", err)
		return nil
	}
	return cf.Configuration().Servers
}

// HasOtherVoters reports whether the configuration has a voter besides
// this node.
func (h *Host) HasOtherVoters() bool {
	cf := h.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != h.opts.ID {
			return true
		}
	}
	return false
}

// Shutdown, in the order cluster.Node calls the steps.

// IntakeClosed reports whether Propose and ConsistentRead are refused.
func (h *Host) IntakeClosed() bool { return h.intake.isClosed() }

// CloseIntake refuses new Propose and ConsistentRead calls
// (api.ErrShuttingDown) without waiting for those inside.
func (h *Host) CloseIntake() { h.intake.close() }

// DrainIntake refuses new calls and waits until those inside have
// returned or ctx ends.
func (h *Host) DrainIntake(ctx context.Context) error { return h.intake.wait(ctx) }

// StopTerms ends the current leader term and every later one: the barrier,
// tick and onTerm loops stop.
func (h *Host) StopTerms() { h.cancel() }

// TransferLeadership hands leadership to another voter if this node leads
// and one exists. Best effort: when it fails the others elect a leader
// after an election timeout, which is all a transfer saves.
func (h *Host) TransferLeadership(ctx context.Context) {
	if h.raft.State() != raft.Leader || !h.HasOtherVoters() {
		return
	}
	if err := h.Await(ctx, h.raft.LeadershipTransfer); err != nil {
		h.log.Warn("leadership transfer failed; the cluster will hold an election", "err", err)
	} else {
		h.log.Info("leadership transferred")
	}
}

// StopRaft stops the coalescer (commands it has not handed to raft fail
// with api.ErrShuttingDown), waits until ctx ends for the raft futures
// being waited on, then shuts raft down (callers of entries still in raft
// get api.ErrOutcomeUnknown). The wait matters: raft never answers a future
// that is still in one of its buffers when it shuts down
// (hashicorp/raft#498).
func (h *Host) StopRaft(ctx context.Context) []error {
	var errs []error
	close(h.stopCoalescer)
	<-h.coalescerDone
	if err := h.raftUsers.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("wait for raft operations: %w", err))
	}
	if err := h.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	close(h.raftDown)
	return errs
}

// Close waits for the host's goroutines, then closes the transport and
// the log store.
func (h *Host) Close() []error {
	var errs []error
	h.bg.Wait()
	if err := h.trans.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close transport: %w", err))
	}
	if err := h.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft %s store: %w", h.opts.LogStore, err))
	}
	return errs
}

// Compaction by bytes (Tuning.SnapshotBytes, TrailingBytes).
const (
	compactionCheck = time.Second
	// pageOutEvery: a restart replays the log since the last snapshot
	// (up to SnapshotBytes) through bolt's map at over 100 MiB/s, so the
	// map is paged out four times a second.
	pageOutEvery = 250 * time.Millisecond
	// minTrailingLogs is the fewest entries TrailingBytes keeps.
	minTrailingLogs = 1024
	// trailingSample is the fewest entries applied in a check for their
	// average size to move TrailingLogs.
	trailingSample = 64
)

// runCompaction takes a snapshot once SnapshotBytes of entries were applied
// since the last one, keeps raft's TrailingLogs at about TrailingBytes of
// entries of the size applied lately (at most the configured count), and
// compacts the FSM's sparse body segments (compactBodies).
func (h *Host) runCompaction() {
	defer h.bg.Done()
	o := h.opts
	tick := time.NewTicker(pageOutEvery)
	defer tick.Stop()
	lastCheck := time.Now()
	lastBytes, lastEntries := h.fsm.AppliedLog()
	trailing := o.TrailingLogs
	var sparse map[uint32]int64
	lastLook := time.Now()
	mapped := h.mappedLog()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-tick.C:
		}
		if mapped != "" {
			if _, err := pageOutMapped(mapped); err != nil {
				h.log.Warn("could not let the raft log's mapped pages go; RSS will count them", "err", err)
				mapped = ""
			}
		}
		if time.Since(lastCheck) < compactionCheck {
			continue
		}
		lastCheck = time.Now()
		if time.Since(lastLook) >= compactEvery {
			sparse, lastLook = h.compactBodies(sparse), time.Now()
		}
		bytes, entries := h.fsm.AppliedLog()
		if o.TrailingBytes > 0 && entries-lastEntries >= trailingSample {
			avg := max((bytes-lastBytes)/(entries-lastEntries), 1)
			want := min(max(o.TrailingBytes/avg, minTrailingLogs), o.TrailingLogs)
			if want*10 < trailing*9 || want*10 > trailing*11 {
				cfg := h.raft.ReloadableConfig()
				cfg.TrailingLogs = want
				if err := h.raft.ReloadConfig(cfg); err != nil {
					h.log.Warn("could not set raft's trailing logs", "trailing_logs", want, "err", err)
				} else {
					h.log.Debug("trailing logs follow the entry size", "trailing_logs", want, "avg_entry_bytes", avg)
					trailing = want
				}
			}
			lastBytes, lastEntries = bytes, entries
		}
		if o.SnapshotBytes > 0 && h.fsm.BytesSinceSnapshot() >= o.SnapshotBytes {
			err := h.Await(h.ctx, func() raft.Future { return h.raft.Snapshot() })
			if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) && h.ctx.Err() == nil {
				h.log.Warn("snapshot by bytes applied failed", "err", err)
			}
		}
	}
}

// mappedLog is the file of a log store that reads through a memory map
// (raft-boltdb), absolute as /proc/self/maps names it; "" for raft-wal,
// which reads with pread. runCompaction pages its map out four times a
// second (pageOutMapped): the pages bolt touched while writing would otherwise
// stay resident in this process for good.
func (h *Host) mappedLog() string {
	if h.opts.LogStore == datadir.LogStoreWAL {
		return ""
	}
	p, err := filepath.Abs(h.opts.LogPath)
	if err == nil {
		p, err = filepath.EvalSymlinks(p)
	}
	if err != nil {
		return ""
	}
	return p
}

// compactEvery is how often the host looks for sparse body segments; one
// whose stored bodies did not change in that time is compacted.
const compactEvery = time.Minute

// compactBodies moves the bodies out of segments that stayed sparse, with
// the same bodies, since the last look (fsm.Compact): a segment still
// being consumed goes by itself. prev is the last look's answer.
func (h *Host) compactBodies(prev map[uint32]int64) map[uint32]int64 {
	cur := h.fsm.SparseSegments(fsm.DefaultCompactBelow)
	stale := map[uint32]bool{}
	for seq, n := range cur {
		if prev[seq] == n {
			stale[seq] = true
		}
	}
	if len(stale) > 0 {
		start := time.Now()
		moved, err := h.fsm.Compact(stale)
		if err != nil {
			h.log.Error("compacting body segments", "segments", len(stale), "moved", moved, "err", err)
		} else {
			h.log.Info("compacted body segments", "segments", len(stale), "moved", moved, "took", time.Since(start))
		}
	}
	return cur
}
