package rafthost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testwait"
)

// openSingle opens and starts a one-voter host with short raft timeouts
// and waits until it leads.
func openSingle(t *testing.T, tune ...func(*Tuning)) *Host {
	t.Helper()
	dir := t.TempDir()
	tuning := Tuning{
		HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		MaxAppendEntries: 512, SnapshotThreshold: 8192, SnapshotInterval: 20 * time.Second, TrailingLogs: 65536,
		MaxBatchBytes: 256 << 10, MaxPendingApplies: 1, ApplyTimeout: 10 * time.Second,
	}
	for _, f := range tune {
		f(&tuning)
	}
	h, err := Open(Options{
		ID: "n1", DataDir: dir, LogPath: filepath.Join(dir, "raft.db"), FSM: fsm.New(),
		RaftBind:     "127.0.0.1:0",
		Tuning:       tuning,
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

// A group's commands go into one entry, in order, each with its own
// result (a business error stays with its command); a group larger than
// an entry's bound is cut into entries that fit; groups and single
// proposals coalesced together are each answered with their own results.
func TestHost_ProposeGroup_OneEntryEachCommandItsResult(t *testing.T) {
	h := openSingle(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown(ctx, h)
	})
	ctx := context.Background()
	put := func(data string) fsm.Command {
		return fsm.Command{Op: fsm.OpPut, Queue: "q", Messages: [][]byte{[]byte(data)}}
	}
	if res, errs := h.ProposeGroup(ctx, nil); len(res) != 0 || len(errs) != 0 {
		t.Fatalf("empty group: %v, %v; want nothing", res, errs)
	}

	before := h.raft.LastIndex()
	res, errs := h.ProposeGroup(ctx, []fsm.Command{put("a"), {Op: fsm.OpAck, Queue: "q", IDs: []uint64{99}}, put("b")})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := h.raft.LastIndex() - before; got != 1 {
		t.Fatalf("the group took %d log entries, want 1", got)
	}
	if len(res) != 3 || len(res[0].IDs) != 1 || res[1].Err == nil || len(res[2].IDs) != 1 || res[2].IDs[0] != res[0].IDs[0]+1 {
		t.Fatalf("results %+v: want an id, an ack error, the next id", res)
	}

	// Groups and single proposals at once, coalesced into shared entries.
	const groups, size = 20, 5
	done := make(chan error, 2*groups)
	for g := range groups {
		go func() {
			cmds := make([]fsm.Command, size)
			for i := range cmds {
				cmds[i] = put(fmt.Sprintf("g%d-%d", g, i))
			}
			res, gerrs := h.ProposeGroup(ctx, cmds)
			switch err := errors.Join(gerrs...); {
			case err != nil:
				done <- err
			case len(res) != size:
				done <- fmt.Errorf("group %d: %d results", g, len(res))
			default:
				for i := 1; i < size; i++ {
					if res[i].IDs[0] != res[0].IDs[0]+uint64(i) {
						done <- fmt.Errorf("group %d: ids %v not consecutive", g, res)
						return
					}
				}
				done <- nil
			}
		}()
		go func() {
			res, err := h.Propose(ctx, put(fmt.Sprintf("s%d", g)))
			if err == nil && len(res.IDs) != 1 {
				err = fmt.Errorf("single %d: ids %v", g, res.IDs)
			}
			done <- err
		}()
	}
	for range 2 * groups {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if st := h.opts.FSM.Stats("q"); st.Depth != 2+groups*size+groups {
		t.Fatalf("depth %d, want %d", st.Depth, 2+groups*size+groups)
	}

	// 40 messages of 16 KiB do not fit one entry of MaxBatchBytes (256 KiB).
	big := make([]fsm.Command, 40)
	for i := range big {
		big[i] = fsm.Command{Op: fsm.OpPut, Queue: "big", Messages: [][]byte{make([]byte, 16<<10)}}
	}
	before = h.raft.LastIndex()
	res, errs = h.ProposeGroup(ctx, big)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := h.raft.LastIndex() - before; got < 3 {
		t.Fatalf("640 KiB went into %d entries, want 3 or more", got)
	}
	ids := map[uint64]bool{}
	for _, r := range res {
		if len(r.IDs) != 1 || ids[r.IDs[0]] {
			t.Fatalf("results %+v: want one distinct id each", res)
		}
		ids[r.IDs[0]] = true
	}
	if st := h.opts.FSM.Stats("big"); st.Depth != int64(len(big)) {
		t.Fatalf("depth %d, want %d", st.Depth, len(big))
	}
}

// Entries of /mput batches fill the log by bytes long before raft's
// entry counts act: the host snapshots after SnapshotBytes and lowers
// TrailingLogs so that what stays after a snapshot is about TrailingBytes.
func TestHost_CompactionByBytes_SnapshotsAndTrailsLargeEntries(t *testing.T) {
	h := openSingle(t, func(tu *Tuning) { tu.SnapshotBytes, tu.TrailingBytes = 4<<20, 2<<20 })
	defer shutdown(context.Background(), h)
	body := make([]byte, 200)
	for range 200 { // 200 entries of ~200 KB: 40 MB of log
		c := fsm.Command{Op: fsm.OpPut, Queue: "q"}
		for range 1000 {
			c.Messages = append(c.Messages, body)
		}
		if _, err := h.Propose(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	testwait.For(t, 20*time.Second, "a snapshot taken by bytes and trailing logs lowered", func() bool {
		return h.raft.Stats()["last_snapshot_index"] != "0" && h.raft.ReloadableConfig().TrailingLogs == minTrailingLogs
	})
	if since := h.fsm.BytesSinceSnapshot(); since > 40<<20 {
		t.Fatalf("%d bytes applied since the last snapshot", since)
	}
}

// A sparse body segment is compacted only once it held the same messages
// at two looks: one still being consumed is left to empty by itself.
func TestHost_CompactBodies_OnlySegmentsNobodyConsumes(t *testing.T) {
	h := openSingle(t)
	defer shutdown(context.Background(), h)
	ctx := context.Background()
	body := make([]byte, 400)
	for i := range 6000 { // 2.5 MB through 1 MiB segments in memory
		cmds := []fsm.Command{{Op: fsm.OpPut, Queue: "churn", Messages: [][]byte{body}}, {Op: fsm.OpGet, Queue: "churn", Max: 1, Lease: api.NoLease}}
		if i%500 == 0 {
			cmds = append(cmds, fsm.Command{Op: fsm.OpPut, Queue: "keep", Messages: [][]byte{body}})
		}
		for _, c := range cmds {
			if _, err := h.Propose(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	first := h.compactBodies(nil)
	if len(first) == 0 {
		t.Fatalf("no sparse segment after the churn")
	}
	if again := h.fsm.SparseSegments(fsm.DefaultCompactBelow); len(again) != len(first) {
		t.Fatalf("the first look compacted: %v, then %v", first, again)
	}
	h.compactBodies(first)
	if left := h.fsm.SparseSegments(fsm.DefaultCompactBelow); len(left) != 0 {
		t.Fatalf("sparse segments left after compaction: %v", left)
	}
	if st := h.fsm.Stats("keep"); st.Depth != 12 {
		t.Fatalf("keep holds %d messages, want 12", st.Depth)
	}
}
