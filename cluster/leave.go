package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/cluster/internal/membership"
)

// defaultLeaveWait bounds how long Leave waits to see itself removed from the
// configuration before it shuts down anyway.
const defaultLeaveWait = 15 * time.Second

// leaveRecheck is how often Leave, while it waits to be removed, checks
// whether this node leads again.
const leaveRecheck = time.Second

// handOver, for a leaving node that leads and has other voters, transfers
// leadership, or when that fails removes this node from the configuration
// itself. Failures are logged: the wait that follows bounds the leave.
func (n *Node) handOver(ctx context.Context) {
	if n.raft.State() != raft.Leader || !n.host.HasOtherVoters() {
		return
	}
	if err := n.host.Await(ctx, n.raft.LeadershipTransfer); err != nil {
		n.log.Warn("leave: leadership transfer failed; removing this node as leader", "err", err)
		if err := n.host.Await(ctx, func() raft.Future {
			return n.raft.RemoveServer(raft.ServerID(n.id), 0, membership.ConfigChangeTimeout)
		}); err != nil {
			n.log.Warn("leave: self-removal failed", "err", err)
		}
	} else {
		n.log.Info("leave: leadership transferred")
	}
}

// Leave removes this node from the cluster for good (POST /cluster/leave),
// then shuts it down like Shutdown. In order:
//
//  1. new Propose and ConsistentRead calls fail with api.ErrShuttingDown;
//  2. if this node leads and other voters exist, leadership is transferred
//     (if that fails, the node removes itself from the configuration), and
//     again whenever it leads again while it waits in step 4;
//  3. once gossip knows another live member (at most half the wait of
//     step 4: a node restarted after its seeds left is alone until a
//     member reaches it), NodeMeta announces the leave, then memberlist's
//     leave message goes out, so peers see the member as left and the
//     leader removes it;
//  4. it waits, at most 15 s and within ctx, until the configuration no
//     longer lists this node, asking the leader's /internal/status because a
//     removed follower may never receive the entry that removes it; after
//     that bound it logs a warning and goes on (the leader removes a left
//     member whenever it next reconciles);
//  5. it writes a "left" marker into the data directory, so that Open
//     refuses it from then on (ErrLeft), and shuts down like Shutdown; a
//     shutdown that does not finish cleanly is logged, not returned, since
//     the node has left either way.
//
// It fails with api.ErrLastVoter, changing nothing, when this node is the only
// voter: the cluster would have no one left. It fails with api.ErrShuttingDown
// once Leave or Shutdown has begun.
func (n *Node) Leave(ctx context.Context) error {
	if err := n.Depart(ctx); err != nil {
		return err
	}
	// The node has left whatever the shutdown reports: its caller stops
	// the process, which is all that is left to do.
	if err := n.Shutdown(ctx); err != nil {
		n.log.Warn("leave: the shutdown after leaving did not finish cleanly", "err", err)
	}
	return nil
}

// Depart is Leave without its last step, the shutdown: once it returns
// nil the node is out of the configuration (or has waited its bound for
// that), its data directory is marked left and it takes no requests, but
// raft and gossip still run until the caller calls Shutdown. A process
// leaving the cluster (POST /cluster/leave) departs, answers, stops
// serving HTTP and only then shuts raft down, within its own shutdown
// bound: nobody sees the node as a member whose raft has stopped, and the
// answer never waits on raft's shutdown. Errors are Leave's.
func (n *Node) Depart(ctx context.Context) error {
	if n.host.IntakeClosed() || !n.leaving.CompareAndSwap(false, true) {
		return fmt.Errorf("leave: %w", api.ErrShuttingDown)
	}
	servers := n.host.ConfigServers()
	voters, selfVoter := 0, false
	for _, s := range servers {
		if s.Suffrage == raft.Voter {
			voters++
			selfVoter = selfVoter || string(s.ID) == n.id
		}
	}
	if selfVoter && voters == 1 {
		n.leaving.Store(false)
		return fmt.Errorf("leave: %w: this node is the only voter, so the cluster cannot continue without it", api.ErrLastVoter)
	}
	n.log.Info("leaving the cluster", "voters", voters, "voter", selfVoter)

	// 1. No new requests.
	n.host.CloseIntake()

	// 2. Hand leadership over while this node can still vote.
	n.setStep("leave: hand leadership over")
	n.handOver(ctx)

	// 3. Tell the others, once gossip reaches one of them.
	n.setStep("leave: wait for a gossip peer")
	tctx, tcancel := context.WithTimeout(ctx, n.opts.leaveWait/2)
	if err := n.members.WaitInTouch(tctx); err != nil {
		n.log.Warn("leave: no other member reached by gossip; announcing the leave anyway", "err", err)
	}
	tcancel()
	n.setStep("leave: announce the leave")
	n.members.Leave()

	// 4. Wait until we are out of the configuration. A node that leads
	// again meanwhile (it was paused, or the transfer's target lost the
	// election) hands over again: a leader never removes itself while it
	// reconciles, so the wait would otherwise run to its bound.
	n.setStep("leave: wait to be removed from the configuration")
	wctx, cancel := context.WithTimeout(ctx, n.opts.leaveWait)
	var err error
	for {
		rctx, rcancel := context.WithTimeout(wctx, leaveRecheck)
		err = n.members.WaitRemoved(rctx)
		rcancel()
		if err == nil || wctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if n.raft.State() == raft.Leader {
			n.log.Info("leave: leading again while leaving; handing over again")
			n.handOver(wctx)
		}
	}
	cancel()
	if err != nil {
		n.log.Warn("leave: not confirmed removed from the configuration; shutting down anyway (the leader removes left members when it reconciles)", "err", err)
	} else {
		n.log.Info("leave: removed from the configuration")
	}

	// 5. Make sure this data directory never rejoins: its log is history
	// the cluster no longer counts on (a restart by a supervisor would
	// otherwise be added back by the leader's reconcile loop). Leave
	// then stops.
	n.setStep("leave: mark the data directory left")
	if err := datadir.MarkLeft(n.opts.DataDir, n.id, time.Now()); err != nil {
		n.log.Error("leave: could not mark the data directory as left", "err", err)
	}
	n.setStep("leave: departed, waiting for the shutdown")
	return nil
}
