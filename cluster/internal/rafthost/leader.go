package rafthost

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// Term is one continuous period of leadership as seen by the watcher.
type Term struct {
	ctx    context.Context // cancelled when leadership is lost or at shutdown
	cancel context.CancelFunc
	// barrierDone is closed once a barrier dispatched in raftTerm has been
	// applied: from then on the commit index covers every entry committed
	// by earlier leaders, so a read index taken in raftTerm is safe.
	barrierDone chan struct{}
	raftTerm    uint64 // written before barrierDone is closed
}

// Context is cancelled when the term ends: leadership lost, or shutdown.
func (t *Term) Context() context.Context { return t.ctx }

// BarrierDone is closed once the term's barrier is applied: from then on
// the configuration and the FSM include everything earlier leaders
// committed.
func (t *Term) BarrierDone() <-chan struct{} { return t.barrierDone }

// barrierApplied reports whether the term's barrier has been applied.
func (t *Term) barrierApplied() bool {
	select {
	case <-t.barrierDone:
		return true
	default:
		return false
	}
}

// watchLeadership follows raft.LeaderCh. raft overwrites an unread value,
// so the watcher always sees the latest state, and a true that follows a
// true means leadership was lost and regained in between: a new term.
func (h *Host) watchLeadership() {
	defer h.bg.Done()
	for {
		select {
		case <-h.ctx.Done():
			h.setTerm(nil)
			return
		case leader := <-h.raft.LeaderCh():
			if !leader {
				h.log.Info("lost leadership")
				h.setTerm(nil)
				continue
			}
			h.log.Info("gained leadership", "term", h.raft.CurrentTerm())
			t := &Term{barrierDone: make(chan struct{})}
			t.ctx, t.cancel = context.WithCancel(h.ctx)
			h.setTerm(t)
			h.bg.Add(2)
			go h.runBarrier(t)
			go h.runTicker(t)
			if h.onTerm != nil {
				h.bg.Add(1)
				go func() {
					defer h.bg.Done()
					h.onTerm(t)
				}()
			}
		}
	}
}

// setTerm replaces the current leader term, ending the old one.
func (h *Host) setTerm(t *Term) {
	h.termMu.Lock()
	defer h.termMu.Unlock()
	if h.term != nil {
		h.term.cancel()
	}
	h.term = t
	close(h.termChanged)
	h.termChanged = make(chan struct{})
}

func (h *Host) currentTerm() (*Term, <-chan struct{}) {
	h.termMu.Lock()
	defer h.termMu.Unlock()
	return h.term, h.termChanged
}

// runBarrier applies a barrier at the start of a leader term
// (raft-patterns §7): until it is applied, this leader's commit index may
// not yet include entries committed by its predecessor.
func (h *Host) runBarrier(t *Term) {
	defer h.bg.Done()
	backoff := 10 * time.Millisecond
	for t.ctx.Err() == nil {
		before := h.raft.CurrentTerm()
		err := h.Await(t.ctx, func() raft.Future { return h.raft.Barrier(h.opts.ApplyTimeout) })
		if t.ctx.Err() != nil {
			return
		}
		if err == nil && h.raft.CurrentTerm() == before {
			// Only the leader dispatches entries, once per term: with the
			// term unchanged around the barrier, it belongs to this term.
			t.raftTerm = before
			close(t.barrierDone)
			h.log.Debug("leader barrier applied", "term", before)
			return
		}
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrRaftShutdown) {
			return // the watcher ends this term
		}
		if err != nil {
			h.log.Warn("leader barrier failed; retrying", "err", err)
		}
		select {
		case <-time.After(backoff):
			backoff = min(2*backoff, time.Second)
		case <-t.ctx.Done():
		}
	}
}

// runTicker proposes fsm.OpTick while this term lasts, when a lease deadline
// or a deferred release is due, at most once per TickInterval. Expiry itself
// is lazy in the FSM; the tick only makes /stats and followers converge
// without client traffic. Nothing due, nothing proposed.
func (h *Host) runTicker(t *Term) {
	defer h.bg.Done()
	select {
	case <-t.barrierDone: // NextDue then reflects everything committed so far
	case <-t.ctx.Done():
		return
	}
	tk := time.NewTicker(h.opts.TickInterval)
	defer tk.Stop()
	for {
		select {
		case <-tk.C:
		case <-t.ctx.Done():
			return
		}
		h.metrics.tickChecks.Inc()
		due := h.fsm.NextDue()
		// The FSM clock is max(entry times), so compare with that as well as
		// ours: after a failover to a node whose clock is behind, items may
		// already be due in FSM time.
		now := max(h.opts.Now().UnixNano(), h.fsm.Now())
		if due == 0 || due > now {
			continue
		}
		// Waiting for the result keeps ticks from piling up behind a slow commit.
		ctx, cancel := context.WithTimeout(t.ctx, h.opts.ApplyTimeout)
		_, err := h.Propose(ctx, fsm.Command{Op: fsm.OpTick})
		cancel()
		if err != nil && t.ctx.Err() == nil && !errors.Is(err, api.ErrNotLeader) && !errors.Is(err, api.ErrShuttingDown) {
			h.log.Warn("tick failed", "err", err)
		}
	}
}

// ConsistentRead makes the local FSM safe for a linearizable read: once it
// returns nil, the FSM reflects every write acknowledged before the call
// began. It implements the read index of raft-patterns §7: wait for this
// term's barrier, capture the commit index, confirm leadership with a
// quorum (VerifyLeader), then wait until the FSM has applied up to the
// captured index. It writes nothing to the log.
//
// Errors: api.ErrNotLeader (read elsewhere; safe to retry), api.ErrShuttingDown, or
// ctx.Err() wrapped.
func (h *Host) ConsistentRead(ctx context.Context) error {
	if !h.intake.enter() {
		return fmt.Errorf("consistent read: %w", api.ErrShuttingDown)
	}
	defer h.intake.leave()

	t, err := h.waitTerm(ctx)
	if err != nil {
		return err
	}
	select {
	case <-t.barrierDone:
	case <-t.ctx.Done():
		return fmt.Errorf("consistent read: %w", api.ErrNotLeader)
	case <-ctx.Done():
		return fmt.Errorf("consistent read: waiting for leader barrier: %w", ctx.Err())
	}

	term := h.raft.CurrentTerm()
	if term != t.raftTerm || h.raft.State() != raft.Leader {
		return fmt.Errorf("consistent read: %w", api.ErrNotLeader)
	}
	index := h.raft.CommitIndex()
	if err := h.Await(ctx, h.raft.VerifyLeader); err != nil {
		switch {
		case errors.Is(err, raft.ErrRaftShutdown):
			return fmt.Errorf("consistent read: %w", api.ErrShuttingDown)
		case ctx.Err() != nil:
			return fmt.Errorf("consistent read: verify leader: %w", ctx.Err())
		default:
			return fmt.Errorf("consistent read: %w (%w)", api.ErrNotLeader, err)
		}
	}
	// Same term before and after: we led continuously from the capture of
	// the index to the quorum check.
	if h.raft.CurrentTerm() != term {
		return fmt.Errorf("consistent read: %w", api.ErrNotLeader)
	}
	return h.waitApplied(ctx, index)
}

// waitTerm returns the current leader term, waiting briefly when raft
// already reports leadership but the watcher has not caught up.
func (h *Host) waitTerm(ctx context.Context) (*Term, error) {
	for {
		t, changed := h.currentTerm()
		if t != nil {
			return t, nil
		}
		if h.raft.State() != raft.Leader {
			return nil, fmt.Errorf("consistent read: %w", api.ErrNotLeader)
		}
		select {
		case <-changed:
		case <-time.After(50 * time.Millisecond): // leadership may have come and gone unobserved
		case <-ctx.Done():
			return nil, fmt.Errorf("consistent read: %w", ctx.Err())
		}
	}
}

// waitApplied polls until the FSM reflects index. It is usually true at
// once on the leader, so the poll starts short and backs off.
func (h *Host) waitApplied(ctx context.Context, index uint64) error {
	wait := 200 * time.Microsecond
	for !h.caughtUp(index) {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			wait = min(2*wait, 10*time.Millisecond)
		case <-h.ctx.Done():
			timer.Stop()
			return fmt.Errorf("consistent read: %w", api.ErrShuttingDown)
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("consistent read: waiting for apply of index %d: %w", index, ctx.Err())
		}
	}
	return nil
}
