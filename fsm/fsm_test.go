package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quorumq/quorumq/api"
)

var testQueues = []string{"default", "a", "b.dlq"}

func genCommand(t *rapid.T, m *model) Command {
	q := rapid.SampledFrom(testQueues).Draw(t, "queue")
	switch rapid.IntRange(0, 12).Draw(t, "op") {
	case 0, 1, 2, 3:
		c := Command{Op: OpPut, Queue: q}
		n := rapid.IntRange(0, 3).Draw(t, "n")
		for i := 0; i < n; i++ {
			c.Messages = append(c.Messages, rapid.SliceOfN(rapid.Byte(), 1, 6).Draw(t, "msg"))
		}
		if rapid.IntRange(0, 4).Draw(t, "delayed") == 0 {
			c.Delay = time.Duration(rapid.IntRange(1, 80).Draw(t, "delay")) * time.Millisecond
		}
		if rapid.Bool().Draw(t, "withReqID") {
			c.ReqID = rapid.SampledFrom([]string{"k1", "k2", "k3"}).Draw(t, "reqID")
		}
		c.Limits = Limits{
			MaxDepth: int64(rapid.IntRange(0, 6).Draw(t, "maxDepth")),
			MaxBytes: int64(rapid.SampledFrom([]int{0, 0, 10, 30}).Draw(t, "maxBytes")),
			Policy:   OverflowPolicy(rapid.IntRange(0, 1).Draw(t, "policy")),
		}
		return c
	case 4, 5, 6:
		lease := rapid.SampledFrom([]time.Duration{0, api.NoLease, 10 * time.Millisecond, 50 * time.Millisecond}).Draw(t, "lease")
		c := Command{Op: OpGet, Queue: q, Max: rapid.IntRange(1, 4).Draw(t, "max"), Lease: lease}
		if rapid.Bool().Draw(t, "capped") {
			c.MaxBytes = int64(rapid.SampledFrom([]int{0, 3, 8}).Draw(t, "maxBytes"))
			c.MaxIDBytes = rapid.SampledFrom([]int{0, 1, 3, 5}).Draw(t, "maxIDBytes")
			c.Handover = time.Duration(rapid.SampledFrom([]int{0, 15, 40}).Draw(t, "handover")) * time.Millisecond
		}
		return c
	case 7, 8, 9:
		op := rapid.SampledFrom([]Op{OpAck, OpNack, OpTouch, OpHandoverAck, OpHandoverNack}).Draw(t, "settleOp")
		ids := m.inflightIDs()
		var pick []uint64
		if len(ids) > 0 && rapid.IntRange(0, 5).Draw(t, "hit") > 0 {
			pick = append(pick, rapid.SampledFrom(ids).Draw(t, "id"))
			if rapid.Bool().Draw(t, "second") {
				pick = append(pick, rapid.SampledFrom(ids).Draw(t, "id2"))
			}
		} else {
			pick = []uint64{rapid.Uint64Range(0, 40).Draw(t, "anyID")}
		}
		c := Command{Op: op, IDs: pick}
		if rapid.IntRange(0, 3).Draw(t, "scoped") == 0 {
			c.Queue = q
		}
		switch op {
		case OpNack:
			c.Delay = time.Duration(rapid.SampledFrom([]int{0, 0, 20}).Draw(t, "nackDelay")) * time.Millisecond
			if len(pick) == 1 && rapid.Bool().Draw(t, "replace") {
				c.HasData, c.Data = true, rapid.SliceOfN(rapid.Byte(), 1, 6).Draw(t, "newData")
			}
			c.Reason = rapid.SampledFrom([]string{"", "boom"}).Draw(t, "reason")
		case OpTouch:
			c.Lease = time.Duration(rapid.SampledFrom([]int{0, 30}).Draw(t, "touch")) * time.Millisecond
		}
		return c
	case 10:
		return Command{Op: OpConfigure, Queue: q, Config: QueueConfig{
			DefaultLease: time.Duration(rapid.SampledFrom([]int{0, 25}).Draw(t, "defLease")) * time.Millisecond,
			MaxAttempts:  uint32(rapid.IntRange(0, 3).Draw(t, "maxAttempts")),
			DeadLetter:   rapid.SampledFrom([]string{"", "b.dlq", "default"}).Draw(t, "dlq"),
			Limits:       Limits{MaxDepth: int64(rapid.SampledFrom([]int{0, 0, 4}).Draw(t, "cfgDepth")), Policy: OverflowPolicy(rapid.IntRange(0, 1).Draw(t, "cfgPolicy"))},
		}, ConfigFields: ConfigField(rapid.IntRange(0, 63).Draw(t, "fields"))}
	case 11:
		if rapid.Bool().Draw(t, "purge") {
			return Command{Op: OpPurge, Queue: q, Max: rapid.IntRange(0, 3).Draw(t, "purgeMax")}
		}
		return Command{Op: OpRedrive, Queue: q, To: rapid.SampledFrom([]string{"", "", "a", "default"}).Draw(t, "to"),
			Max: rapid.IntRange(0, 3).Draw(t, "redriveMax"), Skip: rapid.IntRange(0, 2).Draw(t, "skip")}
	default:
		if rapid.Bool().Draw(t, "tick") {
			return Command{Op: OpTick}
		}
		return Command{Op: OpResetStats, Queue: q}
	}
}

// TestFSM_MatchesModel_WithSnapshotsAndReplay drives the FSM and the naive
// model with the same random entries (leader time that may jump back,
// snapshots and restores at random points), comparing every result and
// every queue's stats, then replays the log into two fresh FSMs and expects
// byte-identical snapshots.
func TestFSM_MatchesModel_WithSnapshotsAndReplay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := New()
		m := newModel()
		var log []Entry
		now := int64(1_000_000_000)
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		var pendingSnap *Snapshot
		var pendingWant []byte
		for i := 0; i < steps; i++ {
			now += int64(rapid.IntRange(-5, 40).Draw(t, "dt")) * int64(time.Millisecond)
			if rapid.IntRange(0, 9).Draw(t, "jump") == 0 {
				now += int64(rapid.IntRange(900, 1100).Draw(t, "jumpMs")) * int64(time.Millisecond) // new put-time marks
			}
			e := Entry{Now: now}
			for j := rapid.IntRange(1, 3).Draw(t, "cmds"); j > 0; j-- {
				c := genCommand(t, m)
				if n := len(appendCommand(nil, &c)); n > EncodedSize(&c) {
					t.Fatalf("EncodedSize %d below the real size %d of %+v", EncodedSize(&c), n, c)
				}
				e.Commands = append(e.Commands, c)
			}
			log = append(log, e)
			got := f.ApplyEntry(uint64(len(log)), &e)
			want := m.apply(&e)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("entry %d %+v:\n got  %#v\n want %#v", i, e, got, want)
			}
			for _, q := range testQueues {
				g, w := f.Stats(q), m.stats(q)
				if w.OldestPut != 0 && (g.OldestPut > w.OldestPut || g.OldestPut <= w.OldestPut-int64(PutTimeResolution)) {
					t.Fatalf("entry %d: %q's oldest ready message was put at %d, reported %d", i, q, w.OldestPut, g.OldestPut)
				}
				if g.OldestPut != 0 {
					g.OldestPut = w.OldestPut // within the resolution: checked above
				}
				if g != w {
					t.Fatalf("entry %d: stats of %q:\n got  %+v\n want %+v", i, q, g, w)
				}
				probe := now + int64(rapid.IntRange(0, 60).Draw(t, "probe"))*int64(time.Millisecond)
				gr, gn := f.Pending(q, probe)
				wr, wn := m.pending(q, probe)
				if gr != wr || gn != wn {
					t.Fatalf("entry %d: pending(%q): got %v,%d want %v,%d", i, q, gr, gn, wr, wn)
				}
			}
			// A raft snapshot taken now must persist exactly this state even
			// though Apply keeps going before Persist runs (copy-on-write).
			if pendingSnap != nil && rapid.Bool().Draw(t, "persist") {
				if got := persist(t, pendingSnap); !bytes.Equal(got, pendingWant) {
					t.Fatalf("snapshot persisted after later applies differs from the state it was taken at")
				}
				pendingSnap = nil
			}
			if pendingSnap == nil && rapid.IntRange(0, 6).Draw(t, "takeSnap") == 0 {
				pendingWant = mustWriteSnapshot(t, f)
				var err error
				if pendingSnap, err = f.Snapshot(); err != nil {
					t.Fatalf("snapshot: %v", err)
				}
			}
			if rapid.IntRange(0, 8).Draw(t, "restore") == 0 {
				snap := mustWriteSnapshot(t, f)
				f2 := New()
				if err := f2.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
					t.Fatalf("restore: %v", err)
				}
				if again := mustWriteSnapshot(t, f2); !bytes.Equal(snap, again) {
					t.Fatalf("snapshot -> restore -> snapshot is not byte-identical")
				}
				if f2.AppliedIndex() != f.AppliedIndex() {
					t.Fatalf("restored applied index %d, want %d", f2.AppliedIndex(), f.AppliedIndex())
				}
				f = f2
			}
		}
		final := mustWriteSnapshot(t, f)
		a, b := New(), New()
		for i := range log {
			a.ApplyEntry(uint64(i+1), &log[i])
			b.ApplyEntry(uint64(i+1), &log[i])
		}
		sa, sb := mustWriteSnapshot(t, a), mustWriteSnapshot(t, b)
		if !bytes.Equal(sa, sb) || !bytes.Equal(sa, final) {
			t.Fatalf("replaying the same log gave different snapshots")
		}
		for _, q := range testQueues {
			var got, want [][]byte
			_ = f.Dump(q, func(d []byte) error { got = append(got, d); return nil })
			if mq := m.queues[q]; mq != nil {
				for _, msg := range mq.ready {
					want = append(want, msg.data)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("dump of %q: got %q want %q", q, got, want)
			}
		}
	})
}

func mustWriteSnapshot(t interface{ Fatalf(string, ...any) }, f *FSM) []byte {
	var buf bytes.Buffer
	if err := f.WriteSnapshot(&buf); err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	return buf.Bytes()
}

// persist encodes s as raft would, restores it into a new FSM and returns
// that FSM's whole state (WriteSnapshot).
func persist(t interface{ Fatalf(string, ...any) }, s *Snapshot) []byte {
	var buf bytes.Buffer
	if err := s.Encode(&buf); err != nil {
		t.Fatalf("persist: %v", err)
	}
	s.Release()
	f := New()
	if err := f.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatalf("restore the persisted snapshot: %v", err)
	}
	return mustWriteSnapshot(t, f)
}

// TestCodec_RoundTrip checks every op survives encode/decode unchanged.
func TestCodec_RoundTrip(t *testing.T) {
	e := Entry{Now: -42, Commands: []Command{
		{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("a"), {0, 1, 2}}, Delay: time.Second, ReqID: "r", Limits: Limits{MaxDepth: 3, MaxBytes: 9, Policy: OverflowEvictOldest}},
		{Op: OpGet, Queue: "q", Max: 7, Lease: api.NoLease},
		{Op: OpAck, IDs: []uint64{1, 1 << 40}},
		{Op: OpNack, Queue: "q", IDs: []uint64{3}, Delay: time.Millisecond, HasData: true, Data: []byte{}, Reason: "x"},
		{Op: OpTouch, IDs: []uint64{4}, Lease: time.Minute},
		{Op: OpConfigure, Queue: "q", Config: QueueConfig{DefaultLease: time.Second, MaxAttempts: 5, DeadLetter: "d", Limits: Limits{MaxDepth: 1}}, ConfigFields: ConfigMaxAttempts | ConfigMaxDepth},
		{Op: OpResetStats, Queue: "q"},
		{Op: OpTick},
	}}
	got, err := DecodeEntry(EncodeEntry(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", got, e)
	}
}

// TestCodec_Corrupt_ReturnsError checks that truncated or garbage entries fail
// cleanly (no panic, no huge allocation) and newer versions are recognised.
func TestCodec_Corrupt_ReturnsError(t *testing.T) {
	full := EncodeEntry(nil, &Entry{Now: 5, Commands: []Command{{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("hello")}}}})
	for i := 0; i < len(full); i++ {
		if _, err := DecodeEntry(full[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: err %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := DecodeEntry([]byte{Version + 1, 0, 0}); !errors.Is(err, ErrNewerVersion) {
		t.Fatalf("newer version: err %v", err)
	}
	if _, err := DecodeEntry([]byte{Version, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("huge count: err %v", err)
	}
}

// FuzzDecodeEntry: arbitrary bytes never panic the decoder.
func FuzzDecodeEntry(f *testing.F) {
	f.Add(EncodeEntry(nil, &Entry{Now: 1, Commands: []Command{{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("x")}}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEntry(b)
		if err == nil {
			// What decodes must survive a re-encoding unchanged (varints
			// may be written longer than needed, so compare values).
			again, err := DecodeEntry(EncodeEntry(nil, &e))
			if err != nil || !reflect.DeepEqual(again, e) {
				t.Fatalf("re-encoding changed the entry: %v", err)
			}
		}
	})
}

// TestSnapshot_Truncated_FailsRestore: a cut-off snapshot is refused and the
// previous state stays in place.
func TestSnapshot_Truncated_FailsRestore(t *testing.T) {
	f := New()
	f.ApplyEntry(1, &Entry{Now: 1, Commands: []Command{{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("a"), []byte("b")}}}})
	snap := mustWriteSnapshot(t, f)
	for _, n := range []int{0, 3, len(snap) / 2, len(snap) - 1} {
		g := New()
		g.ApplyEntry(1, &Entry{Now: 1, Commands: []Command{{Op: OpPut, Queue: "keep", Messages: [][]byte{[]byte("z")}}}})
		if err := g.Restore(io.NopCloser(bytes.NewReader(snap[:n]))); err == nil {
			t.Fatalf("restore of %d/%d bytes succeeded", n, len(snap))
		}
		if g.Stats("keep").Depth != 1 {
			t.Fatalf("failed restore changed the state")
		}
	}
}

// TestDeque_PushPopAcrossChunksWithViews exercises chunk boundaries at both
// ends while views taken along the way stay unchanged.
func TestDeque_PushPopAcrossChunksWithViews(t *testing.T) {
	var d deque[int]
	var ref []int
	type saved struct {
		v    dequeView[int]
		want []int
	}
	var views []saved
	next := 0
	for step := 0; step < 5000; step++ {
		switch op := (step * 7919) % 11; {
		case op < 5:
			d.PushBack(next)
			ref = append(ref, next)
			next++
		case op < 7:
			d.PushFront(-next)
			ref = append([]int{-next}, ref...)
			next++
		case op < 10 && len(ref) > 0:
			if got := d.PopFront(); got != ref[0] {
				t.Fatalf("step %d: pop %d want %d", step, got, ref[0])
			}
			ref = ref[1:]
		default:
			views = append(views, saved{v: d.View(), want: append([]int(nil), ref...)})
		}
		if d.Len() != len(ref) {
			t.Fatalf("len %d want %d", d.Len(), len(ref))
		}
	}
	for i, s := range views {
		var got []int
		s.v.Each(func(x int) bool { got = append(got, x); return true })
		if !reflect.DeepEqual(got, s.want) && !(len(got) == 0 && len(s.want) == 0) {
			t.Fatalf("view %d changed after later writes", i)
		}
	}
}

// TestState_LeaderClockBackwards_DoesNotExpireEarly: a lease taken at leader
// time T with length L is still in flight for any later entry stamped below
// T+L, even when the next leader's clock is behind.
func TestState_LeaderClockBackwards_DoesNotExpireEarly(t *testing.T) {
	f := New()
	ms := int64(time.Millisecond)
	f.ApplyEntry(1, &Entry{Now: 1000 * ms, Commands: []Command{{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("m")}}}})
	r := f.ApplyEntry(2, &Entry{Now: 1000 * ms, Commands: []Command{{Op: OpGet, Queue: "q", Max: 1, Lease: 100 * time.Millisecond}}})
	id := r[0].Messages[0].ID
	// New leader, clock 10 s behind: time stays at 1000 ms, lease still held.
	f.ApplyEntry(3, &Entry{Now: -9000 * ms, Commands: []Command{{Op: OpTick}}})
	if s := f.Stats("q"); s.InFlight != 1 {
		t.Fatalf("lease expired early: %+v", s)
	}
	if r := f.ApplyEntry(4, &Entry{Now: 1099 * ms, Commands: []Command{{Op: OpTouch, IDs: []uint64{id}, Lease: time.Second}}}); r[0].Err != nil {
		t.Fatalf("touch within the lease: %v", r[0].Err)
	}
	if r := f.ApplyEntry(5, &Entry{Now: 3000 * ms, Commands: []Command{{Op: OpAck, IDs: []uint64{id}}}}); !errors.Is(r[0].Err, api.ErrNotInFlight) {
		t.Fatalf("ack after expiry: %v", r[0].Err)
	}
	if s := f.Stats("q"); s.Depth != 1 || s.InFlight != 0 {
		t.Fatalf("expired message not ready again: %+v", s)
	}
}

// TestState_DeadLetter_AfterMaxAttempts_KeepsReason checks the dead-letter
// path end to end: attempts, the nack reason, and the counters.
func TestState_DeadLetter_AfterMaxAttempts_KeepsReason(t *testing.T) {
	f := New()
	at := int64(0)
	apply := func(cmds ...Command) []Result {
		at += int64(time.Millisecond)
		return f.ApplyEntry(f.AppliedIndex()+1, &Entry{Now: at, Commands: cmds})
	}
	apply(Command{Op: OpConfigure, Queue: "work", Config: QueueConfig{MaxAttempts: 2, DeadLetter: "work.dead"}})
	apply(Command{Op: OpPut, Queue: "work", Messages: [][]byte{[]byte("poison")}})
	for attempt := 1; attempt <= 2; attempt++ {
		r := apply(Command{Op: OpGet, Queue: "work", Max: 1, Lease: time.Minute})
		m := r[0].Messages[0]
		if m.Attempts != uint32(attempt) {
			t.Fatalf("attempt %d: got attempts %d", attempt, m.Attempts)
		}
		apply(Command{Op: OpNack, IDs: []uint64{m.ID}, Reason: fmt.Sprintf("failed %d", attempt)})
	}
	if s := f.Stats("work"); s.Dead != 1 || s.Depth != 0 || s.Bytes != 0 {
		t.Fatalf("work stats %+v", s)
	}
	r := apply(Command{Op: OpGet, Queue: "work.dead", Max: 1, Lease: api.NoLease})
	if len(r[0].Messages) != 1 {
		t.Fatalf("dead-letter queue empty")
	}
	if m := r[0].Messages[0]; string(m.Data) != "poison" || m.Attempts != 3 || m.LastError != "failed 2" {
		t.Fatalf("dead letter %+v", m)
	}
}

func BenchmarkApply_PutGet(b *testing.B) {
	f := New()
	msg := bytes.Repeat([]byte("x"), 100)
	put := Entry{Commands: make([]Command, 64)}
	for i := range put.Commands {
		put.Commands[i] = Command{Op: OpPut, Queue: "default", Messages: [][]byte{msg}}
	}
	get := Entry{Commands: []Command{{Op: OpGet, Queue: "default", Max: 64}}}
	putData, getData := EncodeEntry(nil, &put), EncodeEntry(nil, &get)
	b.ReportAllocs()
	b.ResetTimer()
	idx := uint64(0)
	for i := 0; i < b.N; i++ {
		idx++
		f.Apply([]Committed{{Index: idx, Command: true, Data: putData}})
		idx++
		f.Apply([]Committed{{Index: idx, Command: true, Data: getData}})
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "msgs/s")
}
