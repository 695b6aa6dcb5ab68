// Package cluster hosts the queue state machine (package fsm) in a
// hashicorp/raft node: raft-boltdb storage, the TCP transport, memberlist
// discovery, bootstrap-expect, the leader's membership reconcile loop, a
// group-commit coalescer for writes, read-index consistent reads, the
// leader's tick proposer, leave and an ordered shutdown. It is the only
// package that touches *raft.Raft and *memberlist.Memberlist. DESIGN.md
// explains the flows and the trade-offs.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/hclogadapter"
	"github.com/quorumq/quorumq/cluster/internal/subscriberset"
	"github.com/quorumq/quorumq/fsm"
)

const (
	// logCacheSize is the number of recent entries kept in memory so that
	// replication and read-index checks rarely touch bolt (Consul, Nomad,
	// Vault and rqlite all use 512).
	logCacheSize = 512
	// snapshotsRetained: one to serve, one to fall back on if the newest is
	// damaged.
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
	// defaultTickInterval is how often the leader checks whether a tick is due.
	defaultTickInterval = time.Second
)

// Node is one raft server hosting an *fsm.FSM.
type Node struct {
	opts  Options
	id    string
	log   *slog.Logger
	fsm   *fsm.FSM
	raft  *raft.Raft
	trans *raft.NetworkTransport
	store *raftboltdb.BoltStore
	// logs is the cached log store raft writes through; caughtUp reads it.
	logs raft.LogStore

	// appliedAtOpen is the FSM's applied index once raft restored the
	// newest snapshot during Open.
	appliedAtOpen uint64

	metrics *nodeMetrics

	// Gossip. ml is set once in Open; gossipMu orders UpdateNode and Leave
	// against Shutdown (memberlist panics on Leave after Shutdown).
	ml      *memberlist.Memberlist
	gossip  *gossipDelegate
	members *memberTable
	subs    *subscriberset.Channel // pubsub subscriber sets
	// subscribers is the exported face of subs.
	subscribers *Subscribers
	meta        metaState
	gossipAddr  string
	gossipMu    sync.Mutex
	gossipDown  bool // memberlist shut down
	gossipLeft  bool // memberlist's Leave was called
	// joined is closed once a Join seed answered or another member reached
	// this node.
	joined     chan struct{}
	joinedOnce sync.Once
	recon      reconcileMemory

	leaving atomic.Bool // Leave has begun

	// intake admits Propose and ConsistentRead calls until Shutdown, which
	// then waits for those inside.
	intake gate
	// raftUsers counts goroutines blocked on raft futures (apply waiters,
	// barriers, VerifyLeader, leadership transfer). Shutdown lets them
	// finish before it stops raft; see awaitRaft.
	raftUsers gate

	proposeCh     chan *proposal
	stopCoalescer chan struct{} // closed by Shutdown once intake is drained
	coalescerDone chan struct{} // closed when the coalescer has exited
	raftDown      chan struct{} // closed once raft has shut down

	// ctx is cancelled when Shutdown begins; it parents every leader term.
	ctx    context.Context
	cancel context.CancelFunc
	// bg counts the goroutines Shutdown waits for: the coalescer, the
	// leadership watcher, barrier and tick loops. None of them blocks on a
	// raft future directly.
	bg sync.WaitGroup

	termMu      sync.Mutex
	term        *leaderTerm   // nil unless this node leads
	termChanged chan struct{} // closed and replaced whenever term changes

	shutdownOnce sync.Once
	shutdownErr  error
}

// Open starts a raft node over o.DataDir hosting o.FSM. When the directory
// holds no raft state and BootstrapExpect is 1, it bootstraps a
// single-server cluster. Open does not wait for an election or for other
// nodes; ctx bounds only its own start-up (resolving the gossip advertise
// name).
func Open(ctx context.Context, o Options) (*Node, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	f := o.FSM
	if o.RaftAdvertise == "" {
		if host, _, _ := net.SplitHostPort(o.RaftBind); !concreteIP(host) {
			return nil, fmt.Errorf("%w: RaftBind %q is not an address peers can dial; set RaftAdvertise", ErrInvalidOptions, o.RaftBind)
		}
	}
	if err := checkAdvertised(o); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open: data dir: %w", err)
	}
	if err := datadir.CheckNotLeft(o.DataDir); err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	id, err := datadir.ResolveNodeID(o.DataDir, o.NodeID)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	logger := o.Logger.With("component", "cluster", "node_id", id)
	hcl := hclogadapter.New(logger, "raft", o.RaftLogLevel)

	var undo []func()
	fail := func(err error) (*Node, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, fmt.Errorf("open: %w", err)
	}

	store, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(o.DataDir, datadir.RaftDBFile),
		BoltOptions: &bbolt.Options{
			Timeout: boltOpenTimeout,
			// The freelist is rebuilt by a scan on open instead of being
			// written on every commit (raft-patterns §4.3).
			NoFreelistSync: true,
		},
		NoSync: false, // a 200 means fsynced on a quorum: never turn this off
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			err = fmt.Errorf("%w (is another process using %s?)", err, o.DataDir)
		}
		return fail(fmt.Errorf("raft store: %w", err))
	}
	undo = append(undo, func() { store.Close() })
	// After bolt's lock: one process per data directory bumps the epoch.
	subsEpoch, err := datadir.NextSubsEpoch(o.DataDir)
	if err != nil {
		return fail(fmt.Errorf("subscriber-set epoch: %w", err))
	}
	var logStore raft.LogStore = store
	if o.wrapLogStore != nil {
		logStore = o.wrapLogStore(store)
	}
	logs, err := raft.NewLogCache(logCacheSize, logStore)
	if err != nil {
		return fail(err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(o.DataDir, snapshotsRetained, hcl.Named("snapshot"))
	if err != nil {
		return fail(fmt.Errorf("snapshot store: %w", err))
	}
	trans, err := newTransport(o.RaftBind, o.RaftAdvertise, hcl.Named("transport"))
	if err != nil {
		return fail(fmt.Errorf("raft transport on %s: %w", o.RaftBind, err))
	}
	undo = append(undo, func() { trans.Close() })

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
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
		return fail(fmt.Errorf("%w: %v", ErrInvalidOptions, err))
	}

	existing, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fail(fmt.Errorf("inspect raft state: %w", err))
	}
	r, err := raft.NewRaft(conf, &raftFSM{f: f}, logs, store, snaps, trans)
	if err != nil {
		return fail(fmt.Errorf("start raft: %w", err))
	}
	undo = append(undo, func() { r.Shutdown().Error() })
	bootstrapped := false
	if !existing && o.BootstrapExpect == 1 && len(o.Join) == 0 && !o.noBootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: conf.LocalID, Address: trans.LocalAddr(),
		}}}
		if err := r.BootstrapCluster(cfg).Error(); err != nil {
			return fail(fmt.Errorf("bootstrap: %w", err))
		}
		bootstrapped = true
		logger.Info("bootstrapped single-node cluster", "raft_addr", trans.LocalAddr())
	}

	n := &Node{
		opts:          o,
		id:            id,
		log:           logger,
		fsm:           f,
		raft:          r,
		trans:         trans,
		store:         store,
		logs:          logs,
		appliedAtOpen: f.AppliedIndex(),
		metrics:       newNodeMetrics(),
		proposeCh:     make(chan *proposal, proposeQueue),
		stopCoalescer: make(chan struct{}),
		coalescerDone: make(chan struct{}),
		raftDown:      make(chan struct{}),
		termChanged:   make(chan struct{}),
	}
	n.members = newMemberTable(logger)
	n.joined = make(chan struct{})
	n.recon.healthySince = map[raft.ServerID]time.Time{}
	n.recon.missingSince = map[raft.ServerID]time.Time{}
	n.subs = subscriberset.New(subscriberset.Config{
		Self:      id,
		Epoch:     subsEpoch,
		Log:       logger.With("subsystem", "subs"),
		Fetch:     o.Peer.SubscriberSet,
		Announce:  n.announceSubs,
		NextEpoch: func() (uint32, error) { return datadir.NextSubsEpoch(o.DataDir) },
	})
	n.subscribers = &Subscribers{ch: n.subs}
	subsVersion, subsDigest := n.subs.LocalVersion()
	n.meta.set(func(m *nodeMeta) {
		*m = nodeMeta{
			HasState:    existing || bootstrapped,
			Expect:      o.BootstrapExpect,
			SubsVersion: subsVersion,
			SubsDigest:  subsDigest,
			RaftAddr:    string(trans.LocalAddr()),
			QueueAddr:   o.QueueAddr,
			PubsubAddr:  o.PubsubAddr,
		}
	})
	n.gossip = &gossipDelegate{log: logger.With("subsystem", "gossip"), meta: &n.meta, channels: map[byte]gossipChannel{
		subscriberset.ChannelType: n.subs,
	}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	undo = append(undo, n.cancel)
	ml, err := n.newMemberlist(ctx)
	if err != nil {
		return fail(err)
	}
	n.ml = ml
	n.gossipAddr = ml.LocalNode().Address()
	n.subs.Start()

	n.bg.Add(3)
	go n.runCoalescer()
	go n.watchLeadership()
	go n.runGossip()
	if !existing && !bootstrapped {
		n.bg.Add(1)
		go n.runBootstrap()
	}
	logger.Info("raft node started", "raft_addr", trans.LocalAddr(), "gossip_addr", n.gossipAddr,
		"existing_state", existing, "bootstrap_expect", o.BootstrapExpect, "join", o.Join,
		"applied_index", f.AppliedIndex())
	return n, nil
}

// checkAdvertised reports addresses that cannot go into NodeMeta.
func checkAdvertised(o Options) error {
	if err := checkMetaAddrs(map[string]string{
		"RaftAdvertise": o.RaftAdvertise, "RaftBind": o.RaftBind,
		"QueueAddr": o.QueueAddr, "PubsubAddr": o.PubsubAddr,
	}); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return nil
}

// concreteIP reports whether host is an IP address other than 0.0.0.0 or ::.
func concreteIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && !ip.IsUnspecified()
}

// ID returns the node's raft server id.
func (n *Node) ID() string { return n.id }

// IsLeader reports whether this node is the raft leader right now. It can be
// stale by the time the caller acts; Propose and ConsistentRead re-check.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// leaderID returns the id of the leader this node knows, or "".
func (n *Node) leaderID() string {
	_, id := n.raft.LeaderWithID()
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
func (n *Node) Ready() bool {
	if n.intake.isClosed() || n.leaderID() == "" {
		return false
	}
	commit := n.raft.CommitIndex()
	if n.raft.State() == raft.Leader {
		t, _ := n.currentTerm()
		if t == nil || !t.barrierApplied() || t.raftTerm != n.raft.CurrentTerm() {
			return false
		}
	} else if commit == 0 || commit < n.appliedAtOpen {
		return false
	}
	return n.caughtUp(commit)
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
func (n *Node) caughtUp(target uint64) bool {
	applied := n.fsm.AppliedIndex()
	if applied >= target {
		return true
	}
	if target-applied > maxGapScan {
		return false
	}
	var l raft.Log
	for i := applied + 1; i <= target; i++ {
		if err := n.logs.GetLog(i, &l); err != nil {
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

// Status returns the /cluster/status view of this node. Members are the
// union of the raft configuration and the gossip members: suffrage and raft
// address come from the configuration, status (alive, dead, left; unknown
// for a server gossip has never shown this node) and HTTP addresses from
// gossip. A gossip member outside the configuration has suffrage "none"
// and its advertised raft address.
func (n *Node) Status() api.Status {
	st := api.Status{
		NodeID:       n.id,
		State:        strings.ToLower(n.raft.State().String()),
		LeaderID:     n.leaderID(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.fsm.AppliedIndex(),
	}
	gossiped := map[string]member{}
	for _, m := range n.members.snapshot() {
		gossiped[m.ID] = m
	}
	fill := func(m *api.Member, g member, known bool) {
		if known {
			m.Status = g.Status
			if g.MetaOK {
				m.QueueAddr, m.PubsubAddr = g.Meta.QueueAddr, g.Meta.PubsubAddr
			}
		}
		if m.ID == n.id {
			m.QueueAddr, m.PubsubAddr = n.opts.QueueAddr, n.opts.PubsubAddr
			if !known {
				m.Status = api.MemberAlive
			}
		}
	}
	for _, s := range n.configServers() {
		m := api.Member{
			ID:       string(s.ID),
			Status:   api.MemberUnknown,
			Voter:    s.Suffrage == raft.Voter,
			Suffrage: api.SuffrageNonvoter,
			RaftAddr: string(s.Address),
		}
		if m.Voter {
			m.Suffrage = api.SuffrageVoter
		}
		g, known := gossiped[m.ID]
		fill(&m, g, known)
		delete(gossiped, m.ID)
		st.Members = append(st.Members, m)
	}
	for _, g := range gossiped {
		m := api.Member{ID: g.ID, Suffrage: api.SuffrageNone}
		if g.MetaOK {
			m.RaftAddr = g.Meta.RaftAddr
		}
		fill(&m, g, true)
		st.Members = append(st.Members, m)
	}
	slices.SortFunc(st.Members, func(a, b api.Member) int { return strings.Compare(a.ID, b.ID) })
	return st
}

// configServers returns the latest raft configuration (possibly not yet
// committed), or nil if it cannot be read.
func (n *Node) configServers() []raft.Server {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		n.log.Warn("read raft configuration", "err", err)
		return nil
	}
	return cf.Configuration().Servers
}

// Shutdown stops the node: it refuses new Propose and ConsistentRead calls
// (api.ErrShuttingDown), waits for in-flight ones until ctx ends, stops the
// leader loops, transfers leadership if this node leads and other voters
// exist, stops memberlist without a leave message (peers mark the node dead
// and keep it in the configuration), stops the coalescer (commands it has
// not handed to raft fail with api.ErrShuttingDown), waits for the raft
// operations it started to resolve, shuts raft down (callers of entries
// still in raft get api.ErrOutcomeUnknown), then closes the transport and the
// bolt store. It does not remove the node from the cluster: a restart on the
// same data directory rejoins through its Join seeds and catches up. A
// failed leadership transfer is logged, not returned. Every step runs even after ctx ends; the error
// reports what was cut short.
//
// The wait before raft stops matters: raft never answers a future that is
// still in one of its buffers when it shuts down (hashicorp/raft#498). If
// ctx ends first, the goroutines waiting on such futures are abandoned; the
// callers are answered regardless. Later calls wait for the first and
// return its result.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.shutdown(ctx, true) })
	return n.shutdownErr
}

// shutdown is Shutdown; transfer false skips the leadership transfer, so
// that peers see what a crash shows them (tests).
func (n *Node) shutdown(ctx context.Context, transfer bool) error {
	n.log.Info("shutting down")
	var errs []error

	// 1. No new requests; wait for those in flight.
	if err := n.intake.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain in-flight requests: %w", err))
	}
	// 2. Leader watcher, barrier and tick loops stop.
	n.cancel()

	// 3. Hand leadership over while raft still runs.
	if transfer && n.raft.State() == raft.Leader && n.hasOtherVoters() {
		// Best effort: when it fails the others elect a leader after an
		// election timeout, which is all a transfer saves.
		if err := n.awaitRaft(ctx, n.raft.LeadershipTransfer); err != nil {
			n.log.Warn("leadership transfer failed; the cluster will hold an election", "err", err)
		} else {
			n.log.Info("leadership transferred")
		}
	}

	// 4. Gossip stops without a leave message: peers see a failure and keep
	// this node in the configuration, so a restart rejoins as it was.
	n.gossipMu.Lock()
	if !n.gossipDown {
		n.gossipDown = true
		if err := n.ml.Shutdown(); err != nil {
			errs = append(errs, fmt.Errorf("gossip shutdown: %w", err))
		}
	}
	n.gossipMu.Unlock()
	n.subs.Stop()

	// 5. The coalescer fails what it has not handed to raft.
	close(n.stopCoalescer)
	<-n.coalescerDone

	// 6. Let every raft future we wait on resolve while raft still answers.
	if err := n.raftUsers.wait(ctx); err != nil {
		errs = append(errs, fmt.Errorf("wait for raft operations: %w", err))
	}

	// 7. Stop raft. Callers still waiting on an entry get api.ErrOutcomeUnknown.
	if err := n.raft.Shutdown().Error(); err != nil {
		errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
	}
	close(n.raftDown)

	// 8. Our goroutines, the transport, bolt.
	n.bg.Wait()
	if err := n.trans.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close transport: %w", err))
	}
	if err := n.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close raft store: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		n.log.Warn("shutdown finished with errors", "err", err)
		return fmt.Errorf("shutdown: %w", err)
	}
	n.log.Info("shut down")
	return nil
}

func (n *Node) hasOtherVoters() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.id {
			return true
		}
	}
	return false
}
