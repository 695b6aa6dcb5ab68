package rafthost

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// gate counts work in progress and, once closed, admits no more. Unlike a
// sync.WaitGroup it may be entered concurrently with a wait, because entry
// after close is refused rather than racing the waiter.
type gate struct {
	mu     sync.Mutex
	n      int
	closed bool
	idle   chan struct{} // closed when n drops to 0 after close
}

// enter admits one unit of work; on true the caller must call leave.
func (g *gate) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.n++
	return true
}

func (g *gate) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

func (g *gate) isClosed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closed
}

// close refuses new work from now on.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// wait closes the gate and waits until the work inside has left or ctx ends.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	g.closed = true
	if g.n == 0 {
		g.mu.Unlock()
		return nil
	}
	if g.idle == nil {
		g.idle = make(chan struct{})
	}
	idle := g.idle
	g.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Await calls into raft and waits for the future it returns, honouring
// ctx. The goroutine that waits on the future is counted in h.raftUsers, so
// StopRaft can let it finish while raft still runs: a future still buffered
// inside raft when raft shuts down is never answered (hashicorp/raft#498;
// Apply, Barrier, VerifyLeader and LeadershipTransfer all use buffered
// channels). Once raftUsers is closed, Await makes no call and returns
// raft.ErrRaftShutdown.
func (h *Host) Await(ctx context.Context, call func() raft.Future) error {
	if !h.raftUsers.enter() {
		return raft.ErrRaftShutdown
	}
	f := call()
	ch := make(chan error, 1)
	go func() {
		defer h.raftUsers.leave()
		ch <- f.Error()
	}()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
