package rafthost

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// stuckPipeline is raft's pipeline in its deadlock: a send never gets
// through until the pipeline is closed.
type stuckPipeline struct {
	once   sync.Once
	closed chan struct{}
}

func (p *stuckPipeline) AppendEntries(*raft.AppendEntriesRequest, *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	<-p.closed
	return nil, raft.ErrPipelineShutdown
}

func (p *stuckPipeline) Consumer() <-chan raft.AppendFuture { return nil }

func (p *stuckPipeline) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// A pipelined send that cannot be handed on is given up: the pipeline is
// closed, the send fails, and raft falls back to single AppendEntries
// instead of waiting forever (and raft.Shutdown with it).
func TestGuardedPipeline_StuckSend_ClosesPipelineAndFails(t *testing.T) {
	inner := &stuckPipeline{closed: make(chan struct{})}
	p := guardedPipeline{AppendPipeline: inner, stall: 20 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		_, err := p.AppendEntries(&raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, raft.ErrPipelineShutdown) {
			t.Fatalf("AppendEntries: %v, want ErrPipelineShutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stuck pipelined send was never given up")
	}
}

// The guarded transport still pipelines, and a send that goes through
// leaves its pipeline open.
func TestGuardedTransport_PipelinesBetweenTwoTransports(t *testing.T) {
	leader, follower := mustTransport(t, nil), mustTransport(t, nil)
	go func() {
		for rpc := range follower.Consumer() {
			if _, ok := rpc.Command.(*raft.AppendEntriesRequest); ok {
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			}
		}
	}()
	g := guardedTransport{leader, time.Hour}
	p, err := g.AppendEntriesPipeline("follower", follower.LocalAddr())
	if err != nil {
		t.Fatalf("AppendEntriesPipeline: %v", err)
	}
	defer p.Close()
	for i := 0; i < 3; i++ {
		if _, err := p.AppendEntries(&raft.AppendEntriesRequest{}, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		select {
		case f := <-p.Consumer():
			if err := f.Error(); err != nil || !f.Response().Success {
				t.Fatalf("answer %d: %v %+v", i, err, f.Response())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no answer to send %d", i)
		}
	}
}
