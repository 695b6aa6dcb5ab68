package rafthost

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testwait"
)

// openSingle opens and starts a one-voter host with short raft timeouts
// and waits until it leads.
func openSingle(t *testing.T) *Host {
	t.Helper()
	dir := t.TempDir()
	h, err := Open(Options{
		ID: "n1", DataDir: dir, LogPath: filepath.Join(dir, "raft.db"), FSM: fsm.New(),
		RaftBind: "127.0.0.1:0",
		Tuning: Tuning{
			HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
			LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
			MaxAppendEntries: 512, SnapshotThreshold: 8192, SnapshotInterval: 20 * time.Second, TrailingLogs: 65536,
			MaxBatchBytes: 256 << 10, MaxPendingApplies: 1, ApplyTimeout: 10 * time.Second,
		},
		TickInterval: time.Second, Now: time.Now, BootstrapSingle: true,
		Logger: testlog.New(t), RaftLogLevel: slog.LevelWarn,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Start(nil)
	testwait.For(t, 10*time.Second, "host leads and is ready", func() bool { return h.IsLeader() && h.Ready() })
	return h
}

// shutdown runs the host's part of cluster.Node's shutdown order.
func shutdown(ctx context.Context, h *Host) error {
	errs := []error{h.DrainIntake(ctx)}
	h.StopTerms()
	h.TransferLeadership(ctx)
	errs = append(errs, h.StopRaft(ctx)...)
	errs = append(errs, h.Close()...)
	return errors.Join(errs...)
}

// Shutting down right after an election, while the leader's barrier may
// still sit in raft's apply buffer, neither hangs nor fails: raft never
// answers a future it still buffers at shutdown (hashicorp/raft#498), so
// the host lets such futures resolve before it stops raft.
func TestHost_ShutdownRightAfterElection_LeavesNoRaftWaiter(t *testing.T) {
	for i := range 15 {
		h := openSingle(t)
		if i%2 == 1 {
			go h.Propose(context.Background(), fsm.Command{Op: fsm.OpPut, Queue: "q", Messages: [][]byte{[]byte("x")}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := shutdown(ctx, h)
		cancel()
		if err != nil {
			t.Fatalf("round %d: shutdown: %v", i, err)
		}
		h.raftUsers.mu.Lock()
		left := h.raftUsers.n
		h.raftUsers.mu.Unlock()
		if left != 0 {
			t.Fatalf("round %d: %d raft operations still waiting after shutdown", i, left)
		}
	}
}
