package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// stuckLogStore blocks every log write, once armed, until release is
// closed: a leader loop caught in it cannot see raft's shutdown.
type stuckLogStore struct {
	raft.LogStore
	armed   *atomic.Bool
	entered chan struct{} // closed by the first blocked write
	once    *sync.Once
	release chan struct{}
}

func (s stuckLogStore) StoreLogs(ls []*raft.Log) error {
	if s.armed.Load() {
		s.once.Do(func() { close(s.entered) })
		<-s.release
	}
	return s.LogStore.StoreLogs(ls)
}

func (s stuckLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// A node whose raft cannot stop (its leader loop stuck in a log write that
// never returns, as a goroutine stuck on a peer would hold it) still
// returns from Shutdown once ctx ends, with ErrShutdownIncomplete, so that
// its process can exit within its bound; the goroutines' stacks are
// written beside its data, and its data directory stays locked until raft
// lets go.
func TestNode_Shutdown_RaftStuck_ReturnsWhenCtxEnds(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	stuck := stuckLogStore{armed: new(atomic.Bool), entered: make(chan struct{}), once: new(sync.Once), release: make(chan struct{})}
	opts.wrapLogStore = func(s raft.LogStore) raft.LogStore { stuck.LogStore = s; return stuck }
	var released sync.Once
	release := func() { released.Do(func() { close(stuck.release) }) }
	t.Cleanup(release)

	n, err := openWith(opts, fsm.New())
	if err != nil {
		t.Fatal(err)
	}
	mustLead(t, n)
	mustPropose(t, n, putCmd("q", "before"))
	stuck.armed.Store(true)
	go n.Propose(context.Background(), putCmd("q", "stuck"))
	select {
	case <-stuck.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the log write never started")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrShutdownIncomplete) {
			t.Fatalf("Shutdown: %v, want ErrShutdownIncomplete", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown did not return after its context ended")
	}
	// What held raft is on record: the stuck log write is in the stacks.
	if b, err := os.ReadFile(filepath.Join(dir, stuckStacksFile)); err != nil || !strings.Contains(string(b), "stuckLogStore.StoreLogs") {
		t.Fatalf("goroutine stacks: %v; want the stuck log write among them", err)
	}
	if _, err := openWith(opts, fsm.New()); !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("Open while raft still holds the directory: %v, want ErrDataDirInUse", err)
	}

	// Once the write returns, raft stops and the directory is free.
	release()
	opts.wrapLogStore = nil
	var again *Node
	testwait.For(t, 30*time.Second, "the data directory opens again", func() bool {
		again, err = openWith(opts, fsm.New())
		return err == nil
	})
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := again.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}
