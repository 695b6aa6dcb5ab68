package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// benchParallelism multiplies GOMAXPROCS into the number of proposing
// goroutines. An HTTP server has one goroutine per request, so a handful
// per CPU would understate the concurrency the coalescer sees.
const benchParallelism = 32

// BenchmarkPropose_Parallel measures single-message puts from many
// goroutines through one node on the real disk (fsync on): ops/s, and how
// many log entries each command cost (entries/op; 1/entries/op is the mean
// batch size).
func BenchmarkPropose_Parallel(b *testing.B) {
	leader := openBenchCluster(b, 1, 0, 0)
	benchPropose(b, leader)
}

// BenchmarkPropose_PendingApplies compares MaxPendingApplies values on one
// node and on an in-process three-node cluster over loopback TCP, with the
// real disk and with 2 ms added to every log write (a laptop or container
// volume). It is how the default was chosen; see DESIGN.md.
func BenchmarkPropose_PendingApplies(b *testing.B) {
	for _, c := range []struct {
		nodes int
		delay time.Duration
	}{{1, 0}, {3, 0}, {3, 2 * time.Millisecond}} {
		for _, p := range []int{1, 2, 4, 8, 16} {
			name := fmt.Sprintf("nodes=%d/extra_fsync=%v/pending=%d", c.nodes, c.delay, p)
			b.Run(name, func(b *testing.B) {
				benchPropose(b, openBenchCluster(b, c.nodes, p, c.delay))
			})
		}
	}
}

func benchPropose(b *testing.B, n *Node) {
	body := make([]byte, 100)
	entriesBefore := uint64(metricValue(b, n, "quorumq_raft_commands_per_entry", nil))
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			res, err := n.Propose(ctx, fsm.Command{Op: fsm.OpPut, Queue: "bench", Messages: [][]byte{body}})
			if err != nil || res.Err != nil {
				b.Errorf("propose: %v %v", err, res.Err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	entries := uint64(metricValue(b, n, "quorumq_raft_commands_per_entry", nil)) - entriesBefore
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(float64(entries)/float64(b.N), "entries/op")
}

// openBenchCluster starts size nodes on loopback and returns the leader
// once every follower has caught up. Raft timings are production defaults
// except shorter heartbeat and election timeouts, which shorten the wait
// for the first election but are still long enough not to flap on a
// saturated two-CPU machine.
func openBenchCluster(b *testing.B, size, pending int, extraFsync time.Duration) *Node {
	b.Helper()
	open := func(bootstrap bool) *Node {
		opts := testOptions(b, b.TempDir())
		opts.HeartbeatTimeout = 250 * time.Millisecond
		opts.ElectionTimeout = 250 * time.Millisecond
		opts.LeaderLeaseTimeout = 125 * time.Millisecond
		opts.CommitTimeout = DefaultCommitTimeout
		opts.MaxPendingApplies = pending
		opts.noBootstrap = !bootstrap
		if extraFsync > 0 {
			opts.wrapLogStore = func(s raft.LogStore) raft.LogStore { return slowLogStore{s, extraFsync} }
		}
		return mustOpen(b, opts, fsm.New())
	}
	leader := open(true)
	mustLead(b, leader)
	for range size - 1 {
		f := open(false)
		addr := f.host.LocalAddr()
		if err := leader.raft.AddVoter(raft.ServerID(f.ID()), addr, 0, 10*time.Second).Error(); err != nil {
			b.Fatalf("add voter: %v", err)
		}
		testwait.For(b, 10*time.Second, "follower ready", f.Ready)
	}
	// Cleanups run last-in first-out: stop the leader before its followers,
	// so its leadership transfer has someone to transfer to.
	b.Cleanup(func() { leader.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.ConsistentRead(ctx); err != nil {
		b.Fatal(err)
	}
	return leader
}

// slowLogStore adds a fixed delay to every log write, standing in for a
// slower fsync.
type slowLogStore struct {
	raft.LogStore
	delay time.Duration
}

func (s slowLogStore) StoreLog(l *raft.Log) error {
	time.Sleep(s.delay)
	return s.LogStore.StoreLog(l)
}

func (s slowLogStore) StoreLogs(ls []*raft.Log) error {
	time.Sleep(s.delay)
	return s.LogStore.StoreLogs(ls)
}
