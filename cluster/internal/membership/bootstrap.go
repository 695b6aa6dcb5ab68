package membership

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
)

const (
	// bootstrapCheckInterval is how often a node without raft state
	// re-evaluates bootstrap when no membership event wakes it.
	bootstrapCheckInterval = 250 * time.Millisecond
	// DefaultBootstrapSettle is how long the set of bootstrap candidates
	// must stay the same before the smallest of them bootstraps: enough
	// for gossip to spread a member that joined at the same moment.
	DefaultBootstrapSettle = time.Second
)

// Outcomes of a bootstrap evaluation; a change of the reason to wait is
// logged.
const (
	waitJoin        = "waiting to reach a gossip seed"
	waitExisting    = "a member has raft state: waiting to be added by its leader"
	waitMismatch    = "members advertise a different bootstrap-expect"
	waitCount       = "waiting for enough members"
	waitSmallest    = "waiting for the member with the smallest id to bootstrap"
	waitSettle      = "waiting for the candidate set to settle"
	waitDisabled    = "bootstrap disabled: waiting to be added"
	bootstrapFailed = "bootstrap failed"
	bootstrapDone   = "bootstrapped"
	hasState        = "raft state present"
)

// bootstrapOutcomes are the outcome labels of
// quorumq_cluster_bootstrap_evaluations_total.
var bootstrapOutcomes = map[string]string{
	waitJoin:        "wait_join",
	waitExisting:    "wait_existing",
	waitMismatch:    "wait_mismatch",
	waitCount:       "wait_count",
	waitSmallest:    "wait_smallest",
	waitSettle:      "wait_settle",
	waitDisabled:    "disabled",
	bootstrapFailed: "failed",
	bootstrapDone:   "bootstrapped",
	hasState:        "has_state",
}

// bootstrapState is the memory of one node's bootstrap loop.
type bootstrapState struct {
	candidates []string  // candidate ids at the previous evaluation
	since      time.Time // when they were first seen
	reason     string    // why the previous evaluation waited
	mismatch   string    // mismatching members last warned about
}

// runBootstrap runs on a node that had no raft state at Open. It
// re-evaluates on every membership event and every
// bootstrapCheckInterval until the node has raft state, bootstrapping the
// cluster if the rules allow this node to (DESIGN.md, "Flows": Membership). Then it
// sets the has-state flag in NodeMeta, so that newcomers know a cluster
// exists, and returns.
func (n *Membership) runBootstrap() {
	defer n.bg.Done()
	tk := time.NewTicker(bootstrapCheckInterval)
	defer tk.Stop()
	var st bootstrapState
	for {
		changed := n.members.changedCh()
		if n.evaluateBootstrap(&st) {
			n.UpdateMeta(func(m *NodeMeta) { m.HasState = true })
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-changed:
		case <-tk.C:
		}
	}
}

// evaluateBootstrap makes one bootstrap decision, counts its outcome and
// reports whether the node now has raft state.
func (n *Membership) evaluateBootstrap(st *bootstrapState) bool {
	done := n.decideBootstrap(st)
	n.metrics.bootstrapEvaluations.WithLabelValues(bootstrapOutcomes[st.reason]).Inc()
	return done
}

// decideBootstrap makes one bootstrap decision and records its outcome in
// st.reason.
func (n *Membership) decideBootstrap(st *bootstrapState) bool {
	if n.raft.LastIndex() > 0 {
		n.bootWait.Store(nil)
		if st.reason != bootstrapDone {
			n.log.Info("raft state present: joined a cluster", "last_index", n.raft.LastIndex())
			st.reason = hasState
		}
		return true
	}
	wait := func(reason string, args ...any) bool {
		if reason != st.reason {
			n.log.Info("bootstrap: "+reason, args...)
		}
		st.reason = reason
		n.setBootWait(reason, args)
		return false
	}
	if n.opts.NoBootstrap {
		return wait(waitDisabled)
	}
	if len(n.opts.Join) > 0 && !n.hasJoined() {
		// With BootstrapExpect 1 the node would otherwise bootstrap alone
		// before it has heard of the cluster it was told to join.
		return wait(waitJoin, "seeds", n.opts.Join)
	}
	expect := n.opts.BootstrapExpect
	var candidates, mismatched []Member
	for _, m := range n.members.snapshot() {
		if m.Status != api.MemberAlive || !m.MetaOK {
			continue
		}
		if m.Meta.HasState && m.ID != n.id {
			return wait(waitExisting, "member", m.ID)
		}
		if m.Meta.Expect != expect {
			mismatched = append(mismatched, m)
			continue
		}
		candidates = append(candidates, m)
	}
	if len(mismatched) > 0 {
		desc := ""
		for _, m := range mismatched {
			desc += m.ID + "=" + strconv.Itoa(m.Meta.Expect) + " "
		}
		if desc != st.mismatch {
			st.mismatch = desc
			n.log.Warn("not bootstrapping: members advertise a different bootstrap-expect; start every server with the same value",
				"bootstrap_expect", expect, "members", desc)
		}
		st.reason = waitMismatch
		n.setBootWait(waitMismatch, []any{"bootstrap_expect", expect, "members", strings.TrimSpace(desc)})
		return false
	}
	st.mismatch = ""
	ids := sortedIDs(candidates)
	if len(ids) < expect {
		return wait(waitCount, "have", len(ids), "expect", expect)
	}
	if ids[0] != n.id {
		return wait(waitSmallest, "bootstrapper", ids[0], "candidates", joinIDs(ids))
	}
	now := time.Now()
	if !slices.Equal(ids, st.candidates) {
		st.candidates, st.since = ids, now
		return wait(waitSettle, "candidates", joinIDs(ids))
	}
	if now.Sub(st.since) < n.opts.BootstrapSettle {
		return wait(waitSettle, "candidates", joinIDs(ids))
	}

	cfg := raft.Configuration{}
	for _, m := range candidates {
		addr := raft.ServerAddress(m.Meta.RaftAddr)
		if m.ID == n.id {
			addr = n.host.LocalAddr()
		}
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: addr})
	}
	slices.SortFunc(cfg.Servers, func(a, b raft.Server) int { return cmp.Compare(a.ID, b.ID) })
	err := n.raft.BootstrapCluster(cfg).Error()
	switch {
	case err == nil:
		n.log.Info("bootstrapped cluster", "voters", joinIDs(ids))
	case errors.Is(err, raft.ErrCantBootstrap):
		n.log.Info("bootstrap skipped: raft state appeared meanwhile")
	default:
		n.log.Warn("bootstrap failed; retrying", "err", err)
		st.reason = bootstrapFailed
		return false
	}
	st.reason = bootstrapDone
	n.bootWait.Store(nil)
	return true
}

// setBootWait records why the bootstrap loop waits, with its details
// ("waiting for enough members (have 1, expect 3)"), for BootstrapWait.
func (n *Membership) setBootWait(reason string, args []any) {
	var details []string
	for i := 0; i+1 < len(args); i += 2 {
		details = append(details, fmt.Sprintf("%v %v", args[i], args[i+1]))
	}
	if len(details) > 0 {
		reason += " (" + strings.Join(details, ", ") + ")"
	}
	n.bootWait.Store(&reason)
}

// BootstrapWait says why a node that has no raft state yet is not in a
// cluster; "" once it is (or never started the bootstrap loop).
func (n *Membership) BootstrapWait() string {
	if p := n.bootWait.Load(); p != nil {
		return *p
	}
	return ""
}
