package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/membership"
	"github.com/quorumq/quorumq/cluster/internal/rafthost"
	"github.com/quorumq/quorumq/cluster/internal/subscriberset"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/certs"
)

// defaultTickInterval is how often the leader checks whether a tick is due.
const defaultTickInterval = time.Second

// Node is one raft server hosting an *fsm.FSM.
type Node struct {
	opts Options
	id   string
	log  *slog.Logger
	fsm  *fsm.FSM
	// lock is held on DataDir from Open until the end of shutdown.
	lock *datadir.DirLock
	// host runs raft; raft is host.Raft(), for reading its state.
	host *rafthost.Host
	raft *raft.Raft

	members *membership.Membership
	subs    *subscriberset.Channel // pubsub subscriber sets
	// subscribers is the exported face of subs.
	subscribers *Subscribers

	leaving atomic.Bool // Leave has begun
	// progress: the members' applied indexes and leader changes.
	progress *progress

	shutdownOnce sync.Once
	shutdownErr  error
	// step names the step of Leave or Shutdown running (ShutdownStep).
	step atomic.Pointer[string]
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
		if host, _, _ := net.SplitHostPort(o.RaftBind); !membership.ConcreteIP(host) {
			return nil, fmt.Errorf("%w: RaftBind %q is not an address peers can dial; set RaftAdvertise", ErrInvalidOptions, o.RaftBind)
		}
	}
	if err := checkAdvertised(o); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("open: data dir: %w", err)
	}
	lock, err := datadir.Lock(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	removeRestoreLeftovers(o.DataDir, o.Logger)
	var undo []func()
	fail := func(err error) (*Node, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, fmt.Errorf("open: %w", err)
	}
	undo = append(undo, func() { lock.Unlock() })

	if err := datadir.CheckNotLeft(o.DataDir); err != nil {
		return fail(err)
	}
	// Refuse the other kind before this start writes anything else.
	logStore, err := datadir.ResolveLogStore(o.DataDir, o.LogStore)
	if err != nil {
		return fail(err)
	}
	if o.TLS != nil && o.NodeID == "" {
		// Peers check every RPC against the certificate's node id.
		o.NodeID = o.TLS.NodeID()
	}
	id, err := datadir.ResolveNodeID(o.DataDir, o.NodeID)
	if err != nil {
		return fail(err)
	}
	logger := o.Logger.With("component", "cluster", "node_id", id)

	raftSinkCollector() // before raft reports anything
	host, err := rafthost.Open(rafthost.Options{
		ID:              id,
		DataDir:         o.DataDir,
		LogStore:        logStore,
		LogPath:         logStore.Path(o.DataDir),
		FSM:             f,
		RaftBind:        o.RaftBind,
		RaftAdvertise:   o.RaftAdvertise,
		Tuning:          o.RaftTuning,
		TLS:             raftTLS(o.TLS),
		TickInterval:    o.tickInterval,
		Now:             o.Now,
		BootstrapSingle: o.BootstrapExpect == 1 && len(o.Join) == 0 && !o.noBootstrap,
		WrapLogStore:    o.wrapLogStore,
		Logger:          logger,
		RaftLogLevel:    o.RaftLogLevel,
	})
	if errors.Is(err, rafthost.ErrInvalidConfig) {
		return fail(fmt.Errorf("%w: %w", ErrInvalidOptions, err))
	}
	if err != nil {
		return fail(err)
	}
	undo = append(undo, host.Abort)
	// Under the data-directory lock: one process bumps the epoch.
	subsEpoch, err := datadir.NextSubsEpoch(o.DataDir)
	if err != nil {
		return fail(fmt.Errorf("subscriber-set epoch: %w", err))
	}
	existing, bootstrapped := host.Existing(), host.Bootstrapped()

	n := &Node{
		opts: o,
		id:   id,
		log:  logger,
		fsm:  f,
		lock: lock,
		host: host,
		raft: host.Raft(),
	}
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
	n.members, err = membership.New(ctx, membership.Options{
		ID:     id,
		Host:   host,
		Peer:   o.Peer,
		Logger: logger,
		Meta: membership.NodeMeta{
			HasState:    existing || bootstrapped,
			Expect:      o.BootstrapExpect,
			SubsVersion: subsVersion,
			SubsDigest:  subsDigest,
			RaftAddr:    string(host.LocalAddr()),
			QueueAddr:   o.QueueAddr,
			PubsubAddr:  o.PubsubAddr,
		},
		Channels:          map[byte]membership.Channel{subscriberset.ChannelType: n.subs},
		Events:            subsEvents{n.subs},
		RaftBind:          o.RaftBind,
		RaftAdvertise:     o.RaftAdvertise,
		GossipBind:        o.GossipBind,
		GossipAdvertise:   o.GossipAdvertise,
		Join:              o.Join,
		BootstrapExpect:   o.BootstrapExpect,
		NoBootstrap:       o.noBootstrap,
		ReconcileInterval: o.ReconcileInterval,
		PromoteAfter:      o.PromoteAfter,
		ReapTimeout:       o.ReapTimeout,
		ReconnectTimeout:  o.ReconnectTimeout,
		MinVoters:         o.MinVoters,
		ReconnectInterval: o.reconnectInterval,
		BootstrapSettle:   o.bootstrapSettle,
		GossipKeys:        o.GossipKeys,
		GossipLogLevel:    o.GossipLogLevel,
		GossipConfig:      o.gossipConfig,
	})
	if errors.Is(err, membership.ErrNotDialable) {
		err = fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if err != nil {
		return fail(err)
	}
	n.subs.Start()
	host.Start(n.members.RunReconcile)
	n.members.Start()
	startProgress(n)
	logger.Info("raft node started", "raft_addr", host.LocalAddr(), "gossip_addr", n.members.GossipAddr(),
		"log_store", logStore, "existing_state", existing, "bootstrap_expect", o.BootstrapExpect, "join", o.Join,
		"applied_index", f.AppliedIndex())
	return n, nil
}

// checkAdvertised reports addresses that cannot go into NodeMeta.
func checkAdvertised(o Options) error {
	if err := membership.CheckAddrs(map[string]string{
		"RaftAdvertise": o.RaftAdvertise, "RaftBind": o.RaftBind,
		"QueueAddr": o.QueueAddr, "PubsubAddr": o.PubsubAddr,
	}); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidOptions, err)
	}
	return nil
}

// ID returns the node's raft server id.
func (n *Node) ID() string { return n.id }

// IsLeader reports whether this node is the raft leader right now. It can be
// stale by the time the caller acts; Propose and ConsistentRead re-check.
func (n *Node) IsLeader() bool { return n.host.IsLeader() }

// leaderID returns the id of the leader this node knows, or "".
func (n *Node) leaderID() string { return n.host.LeaderID() }

// Ready reports whether the node can serve: not shutting down, a leader is
// known, and the FSM has applied everything up to the commit index this
// node has seen (rqlite's readiness rule; a restarted node is not ready
// until it has replayed its log tail).
func (n *Node) Ready() bool { return n.host.Ready() }

// Propose replicates cmd and returns its result once it is committed on a
// quorum and applied to the local FSM. Commands of concurrent calls are
// coalesced into one log entry.
//
// Errors, compared with errors.Is:
//   - api.ErrNotLeader: this node does not lead, or raft refused the entry before
//     writing it (it stepped down, a leadership transfer is running, the
//     enqueue timed out). Nothing was written; retrying elsewhere is safe.
//   - api.ErrShuttingDown: Shutdown has begun and the command was not handed to raft.
//   - api.ErrOutcomeUnknown: the entry was handed to raft, then leadership was
//     lost, raft shut down, or ctx ended: it may still commit. When ctx ended
//     the error also wraps ctx.Err().
//   - ctx.Err() alone: ctx ended before the coalescer took the command, so
//     it was never proposed.
//
// Business outcomes (queue full, not in flight, ...) are in Result.Err.
func (n *Node) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	return n.host.Propose(ctx, cmd)
}

// ProposeGroup is Propose for several commands at once, committed
// together in as few entries as fit: the result and error of each command
// at its index.
func (n *Node) ProposeGroup(ctx context.Context, cmds []fsm.Command) ([]fsm.Result, []error) {
	return n.host.ProposeGroup(ctx, cmds)
}

// ConsistentRead makes the local FSM safe for a linearizable read: once it
// returns nil, the FSM reflects every write acknowledged before the call
// began (a read index; it writes nothing to the log).
//
// Errors: api.ErrNotLeader (read elsewhere; safe to retry), api.ErrShuttingDown, or
// ctx.Err() wrapped.
func (n *Node) ConsistentRead(ctx context.Context) error { return n.host.ConsistentRead(ctx) }

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
	gossiped := map[string]membership.Member{}
	for _, m := range n.members.Members() {
		gossiped[m.ID] = m
	}
	fill := func(m *api.Member, g membership.Member, known bool) {
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
	for _, s := range n.host.ConfigServers() {
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
	st.UnreachedSeeds = n.members.UnreachedSeeds()
	st.Bootstrap = n.members.BootstrapWait()
	n.progress.fill(&st)
	return st
}

// Shutdown stops the node: it refuses new Propose and ConsistentRead calls
// (api.ErrShuttingDown), waits for in-flight ones until ctx ends, stops the
// leader loops, transfers leadership if this node leads and other voters
// exist, stops memberlist without a leave message (peers mark the node dead
// and keep it in the configuration), stops the coalescer (commands it has
// not handed to raft fail with api.ErrShuttingDown), waits for the raft
// operations it started to resolve, shuts raft down (callers of entries
// still in raft get api.ErrOutcomeUnknown), then closes the transport and the
// log store and releases the data directory. It does not remove the node
// from the cluster: a restart on the same data directory rejoins through
// its Join seeds and catches up. A
// failed leadership transfer is logged, not returned. Every step runs even after ctx ends; the error
// reports what was cut short. Shutdown itself returns once ctx ends: when a step has not finished by
// then (raft with a goroutine stuck on a peer, memberlist), the error is ErrShutdownIncomplete
// naming the step (ShutdownStep), the rest stops in the background and the data directory stays
// locked until the process exits.
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
//
// Every step runs aside and is waited for until ctx ends, not only raft's:
// memberlist's shutdown, the loops' ends and raft's each wait on goroutines
// that a peer or a lock can hold, and a node whose shutdown cannot finish
// must still return within its bound so that its process can exit. The
// step running is in ShutdownStep, for whoever has to say what hung.
func (n *Node) shutdown(ctx context.Context, transfer bool) error {
	n.log.Info("shutting down")
	stopped := make(chan []error, 1)
	go func() { stopped <- n.shutdownSteps(ctx, transfer) }()
	var errs []error
	select {
	case errs = <-stopped:
	case <-ctx.Done():
		step := n.ShutdownStep()
		// The data directory stays locked: raft may still write to it.
		// Only this process's exit releases it. What holds the step is
		// kept for whoever reads the log: every goroutine's stack, in a
		// file.
		stacks := filepath.Join(n.opts.DataDir, stuckStacksFile)
		if err := writeStacks(stacks); err != nil {
			stacks = "not written: " + err.Error()
		}
		n.log.Error("shutdown did not finish in time; giving up on it, the data directory stays locked until the process exits",
			"step", step, "err", ctx.Err(), "goroutine_stacks", stacks)
		errs = append(errs, fmt.Errorf("%w: %s did not finish: %w", ErrShutdownIncomplete, step, ctx.Err()))
	}
	n.setStep("done")
	if err := errors.Join(errs...); err != nil {
		n.log.Warn("shutdown finished with errors", "err", err)
		return fmt.Errorf("shutdown: %w", err)
	}
	n.log.Info("shut down")
	return nil
}

// shutdownSteps is the body of shutdown, each step named in ShutdownStep
// while it runs. Every step runs even after ctx ends.
func (n *Node) shutdownSteps(ctx context.Context, transfer bool) []error {
	var errs []error

	// 1. No new requests; wait for those in flight.
	n.setStep("drain in-flight requests")
	if err := n.host.DrainIntake(ctx); err != nil {
		errs = append(errs, fmt.Errorf("drain in-flight requests: %w", err))
	}
	// 2. Leader loops (barrier, tick, reconcile) and gossip loops stop.
	n.setStep("stop leader and gossip loops")
	n.host.StopTerms()
	n.members.Cancel()
	n.progress.stopProgress()

	// 3. Hand leadership over while raft still runs.
	if transfer {
		n.setStep("leadership transfer")
		n.host.TransferLeadership(ctx)
	}

	// 4. Gossip stops without a leave message: peers see a failure and keep
	// this node in the configuration, so a restart rejoins as it was.
	n.setStep("memberlist shutdown")
	if err := n.members.ShutdownGossip(); err != nil {
		errs = append(errs, err)
	}
	n.setStep("subscriber-set loops")
	n.subs.Stop()

	// 5-7. The coalescer, the raft futures being waited on, raft itself
	// (raft.Shutdown waits for every raft goroutine, and those on peers).
	n.setStep("raft shutdown")
	errs = append(errs, n.host.StopRaft(ctx)...)
	// 8. Our goroutines, the host's, the transport, the log store, and
	// last the data directory, so a restart finds every file closed.
	n.setStep("gossip loops")
	n.members.Wait()
	n.setStep("close transport and log store")
	errs = append(errs, n.host.Close()...)
	n.setStep("unlock data directory")
	if err := n.lock.Unlock(); err != nil {
		errs = append(errs, fmt.Errorf("unlock data dir: %w", err))
	}
	return errs
}

// setStep records the shutdown step now running.
func (n *Node) setStep(step string) { n.step.Store(&step) }

// ShutdownStep names the step of Shutdown (or of Leave) running now: ""
// before either began, "done" once Shutdown returned. A process that has
// to give up on its shutdown logs it: it is what hung.
func (n *Node) ShutdownStep() string {
	if p := n.step.Load(); p != nil {
		return *p
	}
	return ""
}

// stuckStacksFile, in the data directory, holds every goroutine's stack of
// a shutdown that raft did not let finish.
const stuckStacksFile = "shutdown-stacks.txt"

// writeStacks writes every goroutine's stack to path.
func writeStacks(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// raftTLS is the raft transport's mutual TLS from m (nil: plain TCP).
func raftTLS(m *certs.Material) *rafthost.TLS {
	if m == nil {
		return nil
	}
	return &rafthost.TLS{Server: m.MutualConfig(), Client: m.ClientConfig(), PeerID: certs.PeerNodeID}
}

// SetGossipKeys replaces the gossip keys (the first the primary) on a
// node started with keys, for a rotation without a restart.
func (n *Node) SetGossipKeys(keys [][]byte) error { return n.members.SetGossipKeys(keys) }
