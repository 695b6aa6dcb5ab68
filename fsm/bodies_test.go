package fsm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// diskOptions makes segments and blocks small, so a short log rolls over
// many segments.
func diskOptions(dir string) Options {
	return Options{Dir: dir, SegmentSize: 8 << 10, BlockSize: 1 << 10, CacheBytes: 4 << 10}
}

func mustOpenFSM(t *testing.T, o Options) *FSM {
	t.Helper()
	f, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// workload is a log that puts, leases, acks, nacks with new bodies, pops
// and defers, over two queues, with bodies of many sizes.
func workload(n int) []Entry {
	var log []Entry
	now := int64(time.Second)
	nextID := uint64(1)
	for i := range n {
		now += int64(time.Millisecond)
		e := Entry{Now: now}
		var msgs [][]byte
		for j := range i%5 + 1 {
			msgs = append(msgs, bytes.Repeat([]byte{byte('a' + (i+j)%26)}, (i*37+j*101)%700))
		}
		q := []string{"a", "b"}[i%2]
		e.Commands = append(e.Commands, Command{Op: OpPut, Queue: q, Messages: msgs})
		if i%7 == 3 {
			e.Commands = append(e.Commands, Command{Op: OpPut, Queue: q, Messages: msgs[:1], Delay: 5 * time.Millisecond})
		}
		switch i % 4 {
		case 1:
			e.Commands = append(e.Commands, Command{Op: OpGet, Queue: q, Max: 3, Lease: api.NoLease})
		case 2:
			e.Commands = append(e.Commands, Command{Op: OpGet, Queue: q, Max: 4, Lease: time.Second})
		case 3:
			// Settle what case 2 leased an entry ago: ids are dense, and a
			// miss is a harmless business error.
			e.Commands = append(e.Commands,
				Command{Op: OpAck, IDs: []uint64{nextID}},
				Command{Op: OpNack, IDs: []uint64{nextID + 1}, HasData: true, Data: []byte(fmt.Sprintf("redo %d", i))})
		}
		nextID += uint64(len(msgs))
		log = append(log, e)
	}
	return log
}

func applyAll(t *testing.T, f *FSM, log []Entry, from int) {
	t.Helper()
	for i := from; i < len(log); i++ {
		f.ApplyEntry(uint64(i+1), &log[i])
	}
}

// persistSnapshot does what raft does with a snapshot: encode it into its
// store and keep it.
func persistSnapshot(t *testing.T, f *FSM) []byte {
	t.Helper()
	s, err := f.Snapshot()
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatalf("encode: %v", err)
	}
	s.Keep()
	s.Release()
	return buf.Bytes()
}

func openStored(t *testing.T, f *FSM, stored []byte) io.ReadCloser {
	t.Helper()
	rc, _, err := f.OpenSnapshot(io.NopCloser(bytes.NewReader(stored)))
	if err != nil {
		t.Fatalf("open snapshot: %v", err)
	}
	return rc
}

// reference is the state a memory FSM reaches on the whole log.
func reference(t *testing.T, log []Entry) []byte {
	ref := New()
	applyAll(t, ref, log, 0)
	return mustWriteSnapshot(t, ref)
}

// A node that crashed after a snapshot restarts from it: the body store is
// cut back to the snapshot, the log replays the rest, and the state is the
// one every replica has.
func TestFSM_Disk_CrashAfterSnapshot_RestartsFromItAndTheLog(t *testing.T) {
	log := workload(400)
	want := reference(t, log)
	for _, at := range []int{0, 1, 150, 399} {
		t.Run(fmt.Sprintf("snapshot after %d entries", at), func(t *testing.T) {
			dir := t.TempDir()
			f := mustOpenFSM(t, diskOptions(dir))
			applyAll(t, f, log[:at], 0)
			stored := persistSnapshot(t, f)
			applyAll(t, f, log, at)
			if got := mustWriteSnapshot(t, f); !bytes.Equal(got, want) {
				t.Fatalf("the state on disk differs from the one in memory")
			}
			// Crash: no Close; what was not written out is lost.
			f2 := mustOpenFSM(t, diskOptions(dir))
			if err := f2.Restore(openStored(t, f2, stored)); err != nil {
				t.Fatalf("restore own snapshot: %v", err)
			}
			if f2.AppliedIndex() != uint64(at) {
				t.Fatalf("restored at %d, want %d", f2.AppliedIndex(), at)
			}
			if f2.Restores(RestoredInPlace) != 1 || f2.Restores(RestoredSegments) != 0 {
				t.Fatalf("restores: %d in place, %d with segments; want its own snapshot taken up in place",
					f2.Restores(RestoredInPlace), f2.Restores(RestoredSegments))
			}
			applyAll(t, f2, log, at)
			if got := mustWriteSnapshot(t, f2); !bytes.Equal(got, want) {
				t.Fatalf("restart from the snapshot and the log gave another state")
			}
		})
	}
}

// A follower gets the leader's snapshot with its segments and ends with
// the same state, in its own store.
func TestFSM_Disk_SnapshotSentToAnotherNode_CarriesItsSegments(t *testing.T) {
	log := workload(300)
	want := reference(t, log)
	leader := mustOpenFSM(t, diskOptions(t.TempDir()))
	applyAll(t, leader, log[:200], 0)
	stored := persistSnapshot(t, leader)
	applyAll(t, leader, log, 200) // the leader goes on; segments it still needs stay

	for _, mode := range []string{"disk", "memory"} {
		t.Run(mode, func(t *testing.T) {
			var follower *FSM
			if mode == "disk" {
				follower = mustOpenFSM(t, diskOptions(t.TempDir()))
				applyAll(t, follower, workload(50), 0) // a stale state of its own
			} else {
				follower = New()
			}
			if err := follower.Restore(openStored(t, leader, stored)); err != nil {
				t.Fatalf("restore the leader's snapshot: %v", err)
			}
			if follower.Restores(RestoredSegments) != 1 {
				t.Fatalf("the leader's snapshot was not taken up with its segments")
			}
			applyAll(t, follower, log, 200)
			if got := mustWriteSnapshot(t, follower); !bytes.Equal(got, want) {
				t.Fatalf("the follower's state differs from the leader's")
			}
		})
	}
}

// A snapshot without its segments cannot be taken up by another store, and
// the attempt changes nothing.
func TestFSM_Disk_ForeignSnapshotWithoutSegments_RefusedAndStateKept(t *testing.T) {
	log := workload(100)
	a := mustOpenFSM(t, diskOptions(t.TempDir()))
	applyAll(t, a, log, 0)
	stored := persistSnapshot(t, a)
	b := mustOpenFSM(t, diskOptions(t.TempDir()))
	applyAll(t, b, log[:40], 0)
	before := mustWriteSnapshot(t, b)
	if err := b.Restore(io.NopCloser(bytes.NewReader(stored))); err == nil {
		t.Fatalf("a snapshot of another store was taken up without its segments")
	}
	cut := openStored(t, a, stored)
	data, _ := io.ReadAll(cut)
	if err := b.Restore(io.NopCloser(bytes.NewReader(data[:len(data)-10]))); err == nil {
		t.Fatalf("a snapshot with its segments cut short was taken up")
	}
	if after := mustWriteSnapshot(t, b); !bytes.Equal(before, after) {
		t.Fatalf("a refused snapshot changed the state")
	}
	applyAll(t, b, log, 40)
	if got, want := mustWriteSnapshot(t, b), reference(t, log); !bytes.Equal(got, want) {
		t.Fatalf("after refused snapshots the state went another way")
	}
}

// Without a snapshot (a node whose log was never compacted), segment files
// left in the directory are stale and go before the first body is written.
func TestFSM_Disk_NoSnapshot_StaleSegmentsDropped(t *testing.T) {
	dir := t.TempDir()
	log := workload(120)
	f := mustOpenFSM(t, diskOptions(dir))
	applyAll(t, f, workload(80), 0)
	f.Close()
	f2 := mustOpenFSM(t, diskOptions(dir))
	applyAll(t, f2, log, 0)
	if got, want := mustWriteSnapshot(t, f2), reference(t, log); !bytes.Equal(got, want) {
		t.Fatalf("replay over stale segments gave another state")
	}
	// The segments on disk are the replay's own: nothing before it.
	files, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	var size int64
	for _, p := range files {
		fi, _ := os.Stat(p)
		size += fi.Size()
	}
	if st := f2.bodies.Stats(); size > st.Bytes+int64(diskOptions(dir).SegmentSize) {
		t.Fatalf("%d bytes of segment files for a store of %d", size, st.Bytes)
	}
}

// The index is what stays in memory: a message costs its item, not its
// body, and the read cache is bounded.
func TestFSM_Disk_MemoryPerMessage(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector changes allocation sizes")
	}
	const n = 200000
	f := mustOpenFSM(t, Options{Dir: t.TempDir(), CacheBytes: 4 << 20})
	body := bytes.Repeat([]byte("x"), 100)
	before := liveHeap()
	for put := 0; put < n; put += 20000 {
		c := Command{Op: OpPut, Queue: "q"}
		for range 20000 {
			c.Messages = append(c.Messages, body)
		}
		f.ApplyEntry(uint64(put/20000+1), &Entry{Now: 1, Commands: []Command{c}})
	}
	after := liveHeap()
	perMsg := (float64(after) - float64(before) - float64(f.bodies.Stats().CachedBytes)) / n
	t.Logf("%d messages of 100 bytes on disk: live heap +%.1f MiB (cache %.1f MiB), %.1f bytes per message",
		n, float64(after-before)/(1<<20), float64(f.bodies.Stats().CachedBytes)/(1<<20), perMsg)
	if perMsg > IndexBytesPerMessage {
		t.Errorf("a message costs %.1f bytes of memory, more than IndexBytesPerMessage (%d)", perMsg, IndexBytesPerMessage)
	}
}

// Long-lived messages among many consumed ones keep their segments
// sparse; Compact moves their bodies so the segments go, and changes
// nothing else: the state is the same, every body reads back, and a
// restart from a snapshot taken after it takes the moved bodies up.
func TestFSM_Disk_Compact_MovesLongLivedBodiesAndSegmentsGo(t *testing.T) {
	dir := t.TempDir()
	f := mustOpenFSM(t, diskOptions(dir))
	var log []Entry
	now := int64(time.Second)
	for i := range 300 {
		now += int64(time.Millisecond)
		e := Entry{Now: now, Commands: []Command{
			{Op: OpPut, Queue: "churn", Messages: [][]byte{bytes.Repeat([]byte{'c'}, 400)}},
			{Op: OpGet, Queue: "churn", Max: 1, Lease: api.NoLease},
		}}
		if i%25 == 0 {
			body := []byte(fmt.Sprintf("keep %d", i))
			e.Commands = append(e.Commands,
				Command{Op: OpPut, Queue: "keep", Messages: [][]byte{body}},
				Command{Op: OpPut, Queue: "later", Messages: [][]byte{body}, Delay: time.Hour})
		}
		if i == 100 {
			e.Commands = append(e.Commands, Command{Op: OpGet, Queue: "keep", Max: 1, Lease: time.Hour})
		}
		log = append(log, e)
	}
	applyAll(t, f, log, 0)
	before := mustWriteSnapshot(t, f)
	files := func() int {
		m, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		return len(m)
	}
	filesBefore := files()
	sparse := f.SparseSegments(DefaultCompactBelow)
	if len(sparse) < 5 {
		t.Fatalf("%d sparse segments of %d", len(sparse), filesBefore)
	}
	segs := map[uint32]bool{}
	for seq := range sparse {
		segs[seq] = true
	}
	moved, err := f.Compact(segs)
	if err != nil {
		t.Fatal(err)
	}
	if moved != 12+12 { // every kept, deferred and leased message
		t.Fatalf("moved %d bodies, want 24", moved)
	}
	if n := files(); n > filesBefore-len(segs)+1 {
		t.Fatalf("%d segment files after compacting %d of %d", n, len(segs), filesBefore)
	}
	if got := mustWriteSnapshot(t, f); !bytes.Equal(got, before) {
		t.Fatalf("compaction changed the state")
	}
	stored := persistSnapshot(t, f)
	f2 := mustOpenFSM(t, diskOptions(dir))
	if err := f2.Restore(openStored(t, f2, stored)); err != nil {
		t.Fatalf("restart after compaction: %v", err)
	}
	if got := mustWriteSnapshot(t, f2); !bytes.Equal(got, before) {
		t.Fatalf("the state restored after compaction differs")
	}
	res := f2.ApplyEntry(uint64(len(log)+1), &Entry{Now: now, Commands: []Command{{Op: OpGet, Queue: "keep", Max: 100, Lease: api.NoLease}}})
	if n := len(res[0].Messages); n != 11 {
		t.Fatalf("got %d kept messages, want 11", n)
	}
}
