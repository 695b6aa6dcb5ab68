package fsm

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// TestUsage_RandomCommands_EqualsSumOfQueues drives the FSM with the
// model test's random commands (every op, restores in between) and checks
// after each entry that the node-wide usage, kept up to date as messages
// come and go, equals what the queues' own counters add up to.
func TestUsage_RandomCommands_EqualsSumOfQueues(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := New()
		m := newModel()
		now := int64(1_000_000_000)
		for i := range rapid.IntRange(1, 60).Draw(t, "steps") {
			now += int64(rapid.IntRange(0, 40).Draw(t, "dt")) * int64(time.Millisecond)
			e := Entry{Now: now}
			for j := rapid.IntRange(1, 3).Draw(t, "cmds"); j > 0; j-- {
				e.Commands = append(e.Commands, genCommand(t, m))
			}
			f.ApplyEntry(uint64(i+1), &e)
			m.apply(&e)
			if got, want := f.Usage(), sumOfQueues(f); got != want {
				t.Fatalf("entry %d %+v: usage %+v, the queues hold %+v", i, e, got, want)
			}
			if rapid.IntRange(0, 8).Draw(t, "restore") == 0 {
				f2 := New()
				if err := f2.Restore(io.NopCloser(bytes.NewReader(mustWriteSnapshot(t, f)))); err != nil {
					t.Fatalf("restore: %v", err)
				}
				if got, want := f2.Usage(), f.Usage(); got != want {
					t.Fatalf("entry %d: usage after restore %+v, before %+v", i, got, want)
				}
				f = f2
			}
		}
	})
}

func sumOfQueues(f *FSM) Usage {
	var u Usage
	for _, q := range f.Queues() {
		st := f.Stats(q)
		u.Messages += st.Depth + st.InFlight + st.Deferred
		u.Bytes += st.Bytes
	}
	return u
}

// TestUsage_Cost_AddsOverheadPerMessage checks the budget's unit.
func TestUsage_Cost_AddsOverheadPerMessage(t *testing.T) {
	if got := (Usage{Messages: 3, Bytes: 100}).Cost(); got != 100+3*MessageOverhead {
		t.Fatalf("cost %d, want %d", got, 100+3*MessageOverhead)
	}
}

// memoryModeOverhead bounds what a message costs the heap beyond its body
// in an FSM that keeps bodies in memory (New): its 32-byte item, its
// record's header in a block, and the blocks' slack.
const memoryModeOverhead = 64

// TestMessageOverhead_Measured measures what a stored message costs the
// heap beyond its body in an FSM that keeps bodies in memory (tools and
// tests; nodes keep them on disk, TestFSM_Disk_MemoryPerMessage): it
// applies puts of n small messages, as /mput entries of 256 KiB carry
// them, and compares the live heap after a collection with the bodies'
// bytes. QUORUMQ_OVERHEAD_MESSAGES sets n (default 200000).
//
//	QUORUMQ_OVERHEAD_MESSAGES=2000000 go test -run TestMessageOverhead_Measured -v ./fsm
func TestMessageOverhead_Measured(t *testing.T) {
	n := 200000
	if v := os.Getenv("QUORUMQ_OVERHEAD_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("QUORUMQ_OVERHEAD_MESSAGES=%q: want a positive integer", v)
		}
	}
	for _, size := range []int{1, 16, 100} {
		t.Run(fmt.Sprintf("body=%dB", size), func(t *testing.T) {
			if size < 16 && raceDetector {
				t.Skip("the race detector turns off the tiny allocator, which packs bodies under 16 bytes together; measure without -race")
			}
			f := New()
			before := liveHeap()
			const perEntry = 20000
			body := bytes.Repeat([]byte("x"), size)
			index := uint64(0)
			for put := 0; put < n; put += perEntry {
				c := Command{Op: OpPut, Queue: "overhead"}
				for range min(perEntry, n-put) {
					c.Messages = append(c.Messages, body)
				}
				index++
				f.ApplyEntry(index, &Entry{Now: 1, Commands: []Command{c}})
			}
			after := liveHeap()
			u := f.Usage()
			if u.Messages != int64(n) || u.Bytes != int64(n*size) {
				t.Fatalf("usage %+v after %d puts of %d bytes", u, n, size)
			}
			perMsg := float64(after-before)/float64(n) - float64(size)
			t.Logf("%d messages of %d bytes: live heap +%.1f MiB, %.1f bytes per message beyond the body",
				n, size, float64(after-before)/(1<<20), perMsg)
			if perMsg > memoryModeOverhead {
				t.Errorf("a message costs %.1f bytes beyond its body, more than %d", perMsg, memoryModeOverhead)
			}
			runtime.KeepAlive(f)
		})
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
