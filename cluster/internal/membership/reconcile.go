package membership

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/rafthost"
)

const (
	// maxTrailingLogs is how far (in entries) a non-voter's applied index
	// may be behind the leader's last index and still count as caught up
	// (autopilot's MaxTrailingLogs).
	maxTrailingLogs = 250
	// ConfigChangeTimeout bounds the enqueue of one configuration change;
	// the commit is bounded by the leader term's context.
	ConfigChangeTimeout = 10 * time.Second
)

// Reconcile actions, the action label of quorumq_cluster_reconcile_actions_total.
const (
	actionAddNonvoter   = "add_nonvoter"
	actionUpdateAddress = "update_address"
	actionRemoveStale   = "remove_stale"
	actionPromote       = "promote"
	actionRemoveLeft    = "remove_left"
	actionReap          = "reap"
)

// reconcileMemory survives leader terms: when a member was first seen
// healthy (promotion) and when a server was first seen missing (reaping).
// Only one reconcile round runs at a time, but a finishing term's round may
// overlap the next term's, hence the lock.
type reconcileMemory struct {
	mu           sync.Mutex
	healthySince map[raft.ServerID]time.Time
	missingSince map[raft.ServerID]time.Time
}

// RunReconcile is the leader's membership loop. It starts once the term's
// barrier is applied (so the configuration it reads is the committed one)
// and runs on every membership event and every ReconcileInterval until the
// term ends. It is the only place that changes the raft configuration.
func (n *Membership) RunReconcile(t *rafthost.Term) {
	ctx := t.Context()
	select {
	case <-t.BarrierDone():
	case <-ctx.Done():
		return
	}
	tk := time.NewTicker(n.opts.ReconcileInterval)
	defer tk.Stop()
	for {
		changed := n.members.changedCh()
		n.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tk.C:
		}
	}
}

// reconcile makes one pass, in order: add alive members (fixing stale
// addresses first), remove members that left, promote caught-up non-voters,
// reap at most one long-dead server. It stops at the first sign that this
// node no longer leads.
func (n *Membership) reconcile(ctx context.Context) {
	n.metrics.reconcileRounds.Inc()
	if n.raft.State() != raft.Leader {
		return
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		n.log.Warn("reconcile: read configuration", "err", err)
		return
	}
	cfg := cf.Configuration()
	snapshot := n.members.snapshot() // sorted by id
	members := map[string]Member{}
	for _, m := range snapshot {
		members[m.ID] = m
	}
	self := raft.ServerID(n.id)
	now := time.Now()

	// 0. This node may lead from a new address (restarted elsewhere): fix
	// its own entry, or the next leader could not replicate to it.
	if cur, in := findServer(cfg, self); in && cur.Address != n.host.LocalAddr() {
		addr := n.host.LocalAddr()
		if !n.changeConfig(ctx, actionUpdateAddress, self, func() raft.IndexFuture {
			if cur.Suffrage == raft.Voter {
				return n.raft.AddVoter(self, addr, 0, ConfigChangeTimeout)
			}
			return n.raft.AddNonvoter(self, addr, 0, ConfigChangeTimeout)
		}, "old_addr", cur.Address, "addr", addr) {
			return
		}
	}

	// 1. Alive members must be in the configuration at their address.
	for _, m := range snapshot {
		if raft.ServerID(m.ID) == self || m.Status != api.MemberAlive || !m.MetaOK || m.Meta.Leaving || m.Meta.RaftAddr == "" {
			continue
		}
		id, addr := raft.ServerID(m.ID), raft.ServerAddress(m.Meta.RaftAddr)
		cur, in := findServer(cfg, id)
		if in && cur.Address == addr {
			continue
		}
		// Another server holding the address is a former identity of a
		// server on that host:port (a wiped data directory gets a new id),
		// unless it is alive and says so itself.
		for _, s := range cfg.Servers {
			if s.ID == id || s.ID == self || s.Address != addr {
				continue
			}
			if o, ok := members[string(s.ID)]; ok && o.Status == api.MemberAlive && o.MetaOK && raft.ServerAddress(o.Meta.RaftAddr) == addr {
				n.log.Warn("reconcile: two alive members claim one raft address; leaving both alone",
					"addr", addr, "member", id, "other", s.ID)
				continue
			}
			if !n.changeConfig(ctx, actionRemoveStale, s.ID, func() raft.IndexFuture {
				return n.raft.RemoveServer(s.ID, 0, ConfigChangeTimeout)
			}, "addr", addr, "replaced_by", id) {
				return
			}
		}
		var ok bool
		switch {
		case !in:
			ok = n.changeConfig(ctx, actionAddNonvoter, id, func() raft.IndexFuture {
				return n.raft.AddNonvoter(id, addr, 0, ConfigChangeTimeout)
			}, "addr", addr)
		case cur.Suffrage == raft.Voter:
			// Same server, new address: update in place. Removing it first
			// would shrink the quorum and demote it for no reason.
			ok = n.changeConfig(ctx, actionUpdateAddress, id, func() raft.IndexFuture {
				return n.raft.AddVoter(id, addr, 0, ConfigChangeTimeout)
			}, "old_addr", cur.Address, "addr", addr)
		default:
			ok = n.changeConfig(ctx, actionUpdateAddress, id, func() raft.IndexFuture {
				return n.raft.AddNonvoter(id, addr, 0, ConfigChangeTimeout)
			}, "old_addr", cur.Address, "addr", addr)
		}
		if !ok {
			return
		}
	}

	// 2. Members that left (or announced it) go.
	for _, s := range cfg.Servers {
		m, ok := members[string(s.ID)]
		if s.ID == self || !ok || !m.MetaOK || !(m.Status == api.MemberLeft || (m.Status == api.MemberAlive && m.Meta.Leaving)) {
			continue
		}
		if !n.changeConfig(ctx, actionRemoveLeft, s.ID, func() raft.IndexFuture {
			return n.raft.RemoveServer(s.ID, 0, ConfigChangeTimeout)
		}, "status", m.Status) {
			return
		}
	}

	// Re-read: steps 1 and 2 may have changed it.
	cf = n.raft.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	cfg = cf.Configuration()
	if !n.promote(ctx, cfg, members, now) {
		return
	}
	n.reap(ctx, cfg, members, now)
}

// promote makes voters of non-voters that have been healthy for
// PromoteAfter: alive in gossip, on the leader's term, applied index
// non-zero and within maxTrailingLogs of the leader's last index. Progress
// comes from each non-voter's GET /internal/status.
func (n *Membership) promote(ctx context.Context, cfg raft.Configuration, members map[string]Member, now time.Time) bool {
	type check struct {
		server raft.Server
		m      Member
		st     api.Status
		err    error
	}
	var checks []*check
	for _, s := range cfg.Servers {
		if s.Suffrage != raft.Nonvoter || s.ID == raft.ServerID(n.id) {
			continue
		}
		m, ok := members[string(s.ID)]
		if !ok || m.Status != api.MemberAlive || !m.MetaOK || m.Meta.Leaving {
			n.forgetHealthy(s.ID)
			continue
		}
		checks = append(checks, &check{server: s, m: m})
	}
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.st, c.err = n.opts.Peer.Status(ctx, c.m.Meta.QueueAddr)
		}()
	}
	wg.Wait()

	term, last := n.raft.CurrentTerm(), n.raft.LastIndex()
	n.recon.mu.Lock()
	for id := range n.recon.healthySince {
		if s, ok := findServer(cfg, id); !ok || s.Suffrage != raft.Nonvoter {
			delete(n.recon.healthySince, id)
		}
	}
	n.recon.mu.Unlock()
	for _, c := range checks {
		id := c.server.ID
		why := ""
		switch {
		case c.err != nil:
			why = c.err.Error()
		case c.st.NodeID != string(id):
			why = fmt.Sprintf("status answered by %q", c.st.NodeID)
		case c.st.Term != term:
			why = fmt.Sprintf("term %d, leader's is %d", c.st.Term, term)
		case c.st.AppliedIndex == 0:
			why = "empty log"
		case c.st.AppliedIndex+maxTrailingLogs < last:
			why = fmt.Sprintf("applied %d, leader's last index %d", c.st.AppliedIndex, last)
		}
		n.recon.mu.Lock()
		since, seen := n.recon.healthySince[id]
		if why != "" {
			delete(n.recon.healthySince, id)
		} else if !seen {
			n.recon.healthySince[id] = now
		}
		n.recon.mu.Unlock()
		if why != "" {
			n.log.Debug("reconcile: non-voter not ready for promotion", "member", id, "why", why)
			continue
		}
		if !seen || now.Sub(since) < n.opts.PromoteAfter {
			continue
		}
		if !n.changeConfig(ctx, actionPromote, id, func() raft.IndexFuture {
			return n.raft.AddVoter(id, c.server.Address, 0, ConfigChangeTimeout)
		}, "applied_index", c.st.AppliedIndex, "leader_last_index", last, "healthy_for", now.Sub(since).Round(time.Millisecond)) {
			return false
		}
		n.forgetHealthy(id)
	}
	return true
}

func (n *Membership) forgetHealthy(id raft.ServerID) {
	n.recon.mu.Lock()
	defer n.recon.mu.Unlock()
	delete(n.recon.healthySince, id)
}

// reap removes at most one server that has been dead (or never seen in
// gossip) for ReapTimeout. A voter is removed only if MinVoters voters
// remain; this node is never removed.
func (n *Membership) reap(ctx context.Context, cfg raft.Configuration, members map[string]Member, now time.Time) {
	voters := 0
	for _, s := range cfg.Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	n.recon.mu.Lock()
	for id := range n.recon.missingSince {
		if _, ok := findServer(cfg, id); !ok {
			delete(n.recon.missingSince, id)
		}
	}
	var victim *raft.Server
	var deadFor time.Duration
	for _, s := range cfg.Servers {
		if s.ID == raft.ServerID(n.id) {
			continue
		}
		m, known := members[string(s.ID)]
		if known && m.Status != api.MemberDead {
			delete(n.recon.missingSince, s.ID)
			continue
		}
		since, ok := n.recon.missingSince[s.ID]
		if !ok {
			since = now
			n.recon.missingSince[s.ID] = now
		}
		if known && m.Since.Before(since) {
			since = m.Since
		}
		if victim != nil || n.opts.ReapTimeout == NeverReap || now.Sub(since) < n.opts.ReapTimeout {
			continue
		}
		if s.Suffrage == raft.Voter && voters-1 < n.opts.MinVoters {
			n.log.Debug("reconcile: not reaping dead voter: too few voters would remain",
				"member", s.ID, "voters", voters, "min_voters", n.opts.MinVoters)
			continue
		}
		victim, deadFor = &s, now.Sub(since)
	}
	n.recon.mu.Unlock()
	if victim == nil {
		return
	}
	id := victim.ID
	if n.changeConfig(ctx, actionReap, id, func() raft.IndexFuture {
		return n.raft.RemoveServer(id, 0, ConfigChangeTimeout)
	}, "dead_for", deadFor.Round(time.Second), "voter", victim.Suffrage == raft.Voter) {
		n.recon.mu.Lock()
		delete(n.recon.missingSince, id)
		n.recon.mu.Unlock()
	}
}

// changeConfig runs one configuration change and waits for it. It returns
// false when the round should stop (leadership lost, shutting down).
func (n *Membership) changeConfig(ctx context.Context, action string, id raft.ServerID, call func() raft.IndexFuture, args ...any) bool {
	err := n.host.Await(ctx, func() raft.Future { return call() })
	result := "ok"
	if err != nil {
		result = "error"
	}
	n.metrics.reconcileActions.WithLabelValues(action, result).Inc()
	args = append([]any{"action", action, "member", id}, args...)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			n.log.Info("reconcile: stopped, no longer leading", append(args, "err", err)...)
			return false
		}
		n.log.Warn("reconcile: configuration change failed", append(args, "err", err)...)
		return true
	}
	n.log.Info("reconcile: configuration changed", args...)
	return true
}

func findServer(cfg raft.Configuration, id raft.ServerID) (raft.Server, bool) {
	for _, s := range cfg.Servers {
		if s.ID == id {
			return s, true
		}
	}
	return raft.Server{}, false
}
