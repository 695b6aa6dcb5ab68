package fsm

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

const sec = int64(time.Second)

// deadLettered sets up queues a and b whose messages die after one
// nack into dlq, and returns the ids of a1, b1, a2 in dlq (in that
// order) at leader time 10s.
func deadLettered(t *testing.T, f *FSM) []uint64 {
	t.Helper()
	depth := f.Stats("dlq").Depth
	for _, q := range []string{"a", "b"} {
		if r := applyOne(f, sec, Command{Op: OpConfigure, Queue: q, Config: QueueConfig{MaxAttempts: 1, DeadLetter: "dlq"}}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	a := putAll(t, f, 2*sec, "a", "a1", "a2")
	b := putAll(t, f, 3*sec, "b", "b1")
	for _, step := range []struct {
		q  string
		id uint64
	}{{"a", a[0]}, {"b", b[0]}, {"a", a[1]}} {
		res := applyOne(f, 4*sec, Command{Op: OpGet, Queue: step.q, Max: 1, Lease: time.Minute})
		if len(res.Messages) != 1 || res.Messages[0].ID != step.id {
			t.Fatalf("get %s: %+v, want id %d", step.q, res, step.id)
		}
		if r := applyOne(f, 4*sec, Command{Op: OpNack, IDs: []uint64{step.id}, Reason: "bad " + step.q}); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if st := f.Stats("dlq"); st.Depth != depth+3 {
		t.Fatalf("dlq depth %d, want %d", st.Depth, depth+3)
	}
	return []uint64{a[0], b[0], a[1]}
}

func readyData(t *testing.T, f *FSM, q string) []string {
	t.Helper()
	out := []string{}
	if err := f.Dump(q, func(d []byte) error { out = append(out, string(d)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRedrive_ToOrigin_MovesInOrderWithAttemptsReset(t *testing.T) {
	f := New()
	ids := deadLettered(t, f)
	usage := f.Usage()
	res := applyOne(f, 10*sec, Command{Op: OpRedrive, Queue: "dlq"})
	if res.Err != nil || res.Count != 3 || res.Left != 0 || res.Stayed != 0 {
		t.Fatalf("redrive: %+v, want 3 moved, none left", res)
	}
	if got := readyData(t, f, "a"); !reflect.DeepEqual(got, []string{"a1", "a2"}) {
		t.Fatalf("a holds %q, want a1 a2 in order", got)
	}
	if got := readyData(t, f, "b"); !reflect.DeepEqual(got, []string{"b1"}) {
		t.Fatalf("b holds %q", got)
	}
	if f.Usage() != usage {
		t.Fatalf("usage %+v after a redrive, want %+v (only index entries move)", f.Usage(), usage)
	}
	if st := f.Stats("dlq"); st.Bytes != 0 || st.Depth != 0 {
		t.Fatalf("dlq after redrive: %+v", st)
	}
	if st := f.Stats("a"); st.Bytes != 4 || st.Depth != 2 || st.Dead != 2 {
		t.Fatalf("a after redrive: %+v, want 4 bytes, depth 2, dead still 2", st)
	}
	got := applyOne(f, 11*sec, Command{Op: OpGet, Queue: "a", Max: 2, Lease: time.Minute})
	for i, m := range got.Messages {
		if m.ID != []uint64{ids[0], ids[2]}[i] || m.Attempts != 1 || m.LastError != "" {
			t.Fatalf("redriven message %+v: want its id, attempt 1 and no last error", m)
		}
	}
	// A fresh start: one more nack kills it again, back in the dlq.
	applyOne(f, 12*sec, Command{Op: OpNack, IDs: []uint64{ids[0]}})
	if st := f.Stats("dlq"); st.Depth != 1 {
		t.Fatalf("dlq depth %d after the redriven message died again, want 1", st.Depth)
	}
}

func TestRedrive_To_MovesEveryMessageThereAndMaxBounds(t *testing.T) {
	f := New()
	deadLettered(t, f)
	res := applyOne(f, 10*sec, Command{Op: OpRedrive, Queue: "dlq", To: "retry", Max: 2})
	if res.Count != 2 || res.Left != 1 {
		t.Fatalf("redrive max 2: %+v", res)
	}
	if got := readyData(t, f, "retry"); !reflect.DeepEqual(got, []string{"a1", "b1"}) {
		t.Fatalf("retry holds %q, want a1 b1", got)
	}
	if got := readyData(t, f, "dlq"); !reflect.DeepEqual(got, []string{"a2"}) {
		t.Fatalf("dlq holds %q, want a2", got)
	}
	if st := f.Stats("retry"); st.Puts != 2 || st.Bytes != 4 {
		t.Fatalf("retry stats %+v", st)
	}
}

func TestRedrive_MessagesWithoutOrigin_StayInOrder(t *testing.T) {
	f := New()
	putAll(t, f, sec, "dlq", "own1")
	deadLettered(t, f) // a1 b1 a2 behind own1
	putAll(t, f, 5*sec, "dlq", "own2")
	res := applyOne(f, 10*sec, Command{Op: OpRedrive, Queue: "dlq"})
	if res.Count != 3 || res.Stayed != 2 || res.Left != 2 {
		t.Fatalf("redrive: %+v, want 3 moved, 2 stayed, 2 left", res)
	}
	if got := readyData(t, f, "dlq"); !reflect.DeepEqual(got, []string{"own1", "own2"}) {
		t.Fatalf("dlq holds %q, want own1 own2", got)
	}
	// Skip past what stayed: nothing left to look at.
	if res := applyOne(f, 10*sec, Command{Op: OpRedrive, Queue: "dlq", Skip: 2}); res.Count != 0 || res.Stayed != 0 {
		t.Fatalf("redrive skipping the stayers: %+v", res)
	}
}

func TestRedrive_LooksAtMostABatch(t *testing.T) {
	f := New()
	msgs := make([]string, MaxAdminBatch+5)
	for i := range msgs {
		msgs[i] = "x"
	}
	putAll(t, f, sec, "dlq", msgs...)
	putAll(t, f, sec, "dlq", "last")
	res := applyOne(f, sec, Command{Op: OpRedrive, Queue: "dlq"})
	if res.Count != 0 || res.Stayed != MaxAdminBatch {
		t.Fatalf("first redrive: %+v, want a batch looked at", res)
	}
	res = applyOne(f, sec, Command{Op: OpRedrive, Queue: "dlq", Skip: res.Stayed, To: "q"})
	if res.Count != 6 || res.Left != MaxAdminBatch {
		t.Fatalf("redrive from the skip: %+v, want the last six moved", res)
	}
}

func TestPurgeAndRedrive_InvalidCommands_ChangeNothing(t *testing.T) {
	f := New()
	putAll(t, f, sec, "q", "a")
	before := mustWriteSnapshot(t, f)
	for _, c := range []Command{
		{Op: OpPurge, Queue: "q", Max: -1},
		{Op: OpRedrive, Queue: "q", Max: -1},
		{Op: OpRedrive, Queue: "q", Skip: -1},
		{Op: OpRedrive, Queue: "q", To: "q"},
		{Op: OpRedrive, Queue: "q", To: "bad name"},
		{Op: OpPurge, Queue: "bad name"},
	} {
		if r := applyOne(f, sec, c); r.Err == nil {
			t.Fatalf("%+v: no error", c)
		}
	}
	// Index moved on; compare the queues only.
	after := mustWriteSnapshot(t, f)
	if len(before) != len(after) {
		t.Fatalf("refused commands changed the state")
	}
	if r := applyOne(f, sec, Command{Op: OpPurge, Queue: "never"}); r.Err != nil || r.Count != 0 || f.Stats("never").Exists {
		t.Fatalf("purge of an unknown queue: %+v; it must not create it", r)
	}
}

func TestPurge_RemovesReadyAndDeferred_LeasesStay(t *testing.T) {
	f := New()
	putAll(t, f, sec, "q", "leased", "r2", "r3")
	applyOne(f, sec, Command{Op: OpPut, Queue: "q", Messages: [][]byte{[]byte("later")}, Delay: time.Hour})
	got := applyOne(f, sec, Command{Op: OpGet, Queue: "q", Max: 1, Lease: time.Minute})
	leased := got.Messages[0].ID
	cases := []struct {
		max        int
		count      int
		left       int
		depth      int64
		deferred   int64
		bytes      int64
		usageCount int64
	}{
		{max: 1, count: 1, left: 2, depth: 1, deferred: 1, bytes: 13, usageCount: 3},
		{max: 0, count: 2, left: 0, depth: 0, deferred: 0, bytes: 6, usageCount: 1},
		{max: 0, count: 0, left: 0, depth: 0, deferred: 0, bytes: 6, usageCount: 1},
	}
	for i, c := range cases {
		res := applyOne(f, 2*sec, Command{Op: OpPurge, Queue: "q", Max: c.max})
		st := f.Stats("q")
		if res.Count != c.count || res.Left != c.left || st.Depth != c.depth || st.Deferred != c.deferred ||
			st.Bytes != c.bytes || f.Usage().Messages != c.usageCount || st.InFlight != 1 {
			t.Fatalf("purge %d (max %d): %+v, stats %+v, usage %+v", i, c.max, res, st, f.Usage())
		}
	}
	// The lease is untouched: it can still be nacked back.
	if r := applyOne(f, 3*sec, Command{Op: OpNack, IDs: []uint64{leased}}); r.Err != nil || f.Stats("q").Depth != 1 {
		t.Fatalf("nack of the leased message after a purge: %+v", r)
	}
	if got := readyData(t, f, "q"); !reflect.DeepEqual(got, []string{"leased"}) {
		t.Fatalf("ready after the nack: %q", got)
	}
}

func TestCounters_AcksNacksExpiredRedelivered(t *testing.T) {
	f := New()
	ids := putAll(t, f, sec, "q", "a", "b", "c")
	applyOne(f, sec, Command{Op: OpGet, Queue: "q", Max: 3, Lease: time.Second})
	applyOne(f, sec, Command{Op: OpAck, IDs: ids[:1]})
	applyOne(f, sec, Command{Op: OpNack, IDs: ids[1:2]})
	applyOne(f, 3*sec, Command{Op: OpTick}) // c's lease ran out
	applyOne(f, 3*sec, Command{Op: OpGet, Queue: "q", Max: 2, Lease: api.NoLease})
	applyOne(f, 3*sec, Command{Op: OpResetStats, Queue: "q"})
	st := f.Stats("q")
	if st.Acks != 1 || st.Nacks != 1 || st.Expired != 1 || st.Redelivered != 2 {
		t.Fatalf("counters %+v, want 1 ack, 1 nack, 1 expired, 2 redelivered (reset leaves them)", st)
	}
}

func TestOldestPut_KnownToASecondAcrossQueues(t *testing.T) {
	f := New()
	deadLettered(t, f) // a1 a2 put at 2s, b1 at 3s
	if got := f.Stats("dlq").OldestPut; got != 2*sec {
		t.Fatalf("dlq's oldest put %d, want a1's put time 2s", got)
	}
	putAll(t, f, 20*sec+500, "q", "x")
	putAll(t, f, 20*sec+int64(900*time.Millisecond), "q", "y")
	putAll(t, f, 21*sec+int64(100*time.Millisecond), "q", "z")
	for _, want := range []int64{20*sec + 500, 20*sec + 500, 21*sec + int64(100*time.Millisecond), 0} {
		if got := f.Stats("q").OldestPut; got != want {
			t.Fatalf("oldest put %d, want %d", got, want)
		}
		applyOne(f, 30*sec, Command{Op: OpGet, Queue: "q", Max: 1, Lease: api.NoLease})
	}
	if n := len(f.st.marks); n != 2 {
		t.Fatalf("%d marks left, want 2 (the dlq's messages put at 2s and 3s)", n)
	}
	applyOne(f, 30*sec, Command{Op: OpPurge, Queue: "dlq"})
	if n := len(f.st.marks); n != 0 {
		t.Fatalf("%d marks left with no message stored", n)
	}
}

func TestOldestPut_MarksStayBounded(t *testing.T) {
	f := New()
	for i := range maxMarks + 10 {
		putAll(t, f, int64(i)*sec, "q", "m")
	}
	if n := len(f.st.marks); n != maxMarks {
		t.Fatalf("%d marks, want the bound %d", n, maxMarks)
	}
	if got := f.Stats("q").OldestPut; got != 0 {
		// The first message was put at time 0.
		t.Fatalf("oldest put %d, want 0", got)
	}
}

func TestSnapshot_CountersAndPutTimes_SurviveRestoreAndRestart(t *testing.T) {
	dir := t.TempDir()
	f := mustOpenFSM(t, diskOptions(dir))
	deadLettered(t, f)
	applyOne(f, 10*sec, Command{Op: OpRedrive, Queue: "dlq", Max: 1})
	applyOne(f, 10*sec, Command{Op: OpGet, Queue: "a", Max: 1, Lease: time.Minute})
	applyOne(f, 10*sec, Command{Op: OpAck, IDs: []uint64{1}})
	want := f.AllStats()
	stored := persistSnapshot(t, f)
	inline := mustWriteSnapshot(t, f)
	check := func(name string, g *FSM) {
		t.Helper()
		if got := g.AllStats(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: stats\n got  %+v\n want %+v", name, got, want)
		}
		if again := mustWriteSnapshot(t, g); !bytes.Equal(again, inline) {
			t.Fatalf("%s: snapshot -> restore -> snapshot differs", name)
		}
	}
	mem := New()
	if err := mem.Restore(io.NopCloser(bytes.NewReader(inline))); err != nil {
		t.Fatal(err)
	}
	check("inline restore", mem)
	// Restart: no Close, its own snapshot taken up in place.
	f2 := mustOpenFSM(t, diskOptions(dir))
	if err := f2.Restore(openStored(t, f2, stored)); err != nil {
		t.Fatal(err)
	}
	check("restart", f2)
	other := mustOpenFSM(t, diskOptions(t.TempDir()))
	if err := other.Restore(openStored(t, f, stored)); err != nil {
		t.Fatal(err)
	}
	check("sent to another node", other)
}

func TestSnapshot_OlderVersions_StillRead(t *testing.T) {
	f := New()
	deadLettered(t, f)
	applyOne(f, 10*sec, Command{Op: OpGet, Queue: "dlq", Max: 1, Lease: time.Minute})
	for _, v := range []struct {
		version byte
		inline  bool
	}{{snapInline, true}, {snapRefs, false}} {
		fr, err := f.st.freeze()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		err = fr.writeVersion(&buf, v.inline, v.version)
		fr.pin.Release()
		if err != nil {
			t.Fatal(err)
		}
		if buf.Bytes()[len(snapMagic)] != v.version {
			t.Fatalf("wrote version %d", buf.Bytes()[len(snapMagic)])
		}
		g := New()
		if err := g.Restore(io.NopCloser(&buf)); err != nil {
			t.Fatalf("version %d: %v", v.version, err)
		}
		for _, q := range []string{"a", "b", "dlq"} {
			got, want := g.Stats(q), f.Stats(q)
			want.Acks, want.Nacks, want.Expired, want.Redelivered, want.OldestPut = 0, 0, 0, 0, 0
			if got != want {
				t.Fatalf("version %d, queue %s:\n got  %+v\n want %+v (no counters, no put times)", v.version, q, got, want)
			}
		}
		if got := readyData(t, g, "dlq"); !reflect.DeepEqual(got, []string{"b1", "a2"}) {
			t.Fatalf("version %d: dlq holds %q", v.version, got)
		}
	}
}

func TestCodec_PurgeAndRedrive_RoundTripAsVersion3(t *testing.T) {
	e := Entry{Now: 9, Commands: []Command{
		{Op: OpPurge, Queue: "q", Max: 77},
		{Op: OpRedrive, Queue: "q.dlq", To: "q", Max: 5, Skip: 1 << 20},
		{Op: OpHandoverAck, IDs: []uint64{1}},
	}}
	data := EncodeEntry(nil, &e)
	if data[0] != 3 {
		t.Fatalf("version byte %d, want 3", data[0])
	}
	got, err := DecodeEntry(data)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, %v\n want %+v", got, err, e)
	}
	if v := EncodeEntry(nil, &Entry{Commands: []Command{{Op: OpHandoverAck, IDs: []uint64{1}}}})[0]; v != 2 {
		t.Fatalf("an entry of version 2 commands is written as version %d", v)
	}
	if _, err := DecodeEntry(append([]byte{4}, data[1:]...)); !errors.Is(err, ErrNewerVersion) {
		t.Fatalf("version 4 entry: %v, want ErrNewerVersion", err)
	}
}

func TestDumpPage_OffsetAfterLimitAndInfo(t *testing.T) {
	f := New()
	ids := deadLettered(t, f)
	own := putAll(t, f, 5*sec, "dlq", "own")
	all := []DumpMessage{
		{ID: ids[0], Attempts: 1, Data: []byte("a1"), DeadFrom: "a", LastError: "bad a"},
		{ID: ids[1], Attempts: 1, Data: []byte("b1"), DeadFrom: "b", LastError: "bad b"},
		{ID: ids[2], Attempts: 1, Data: []byte("a2"), DeadFrom: "a", LastError: "bad a"},
		{ID: own[0], Data: []byte("own")},
	}
	for _, c := range []struct {
		name string
		o    DumpOptions
		want []DumpMessage
	}{
		{"all", DumpOptions{Limit: 10}, all},
		{"limit", DumpOptions{Limit: 2}, all[:2]},
		{"offset", DumpOptions{Offset: 1, Limit: 2}, all[1:3]},
		{"offset past the end", DumpOptions{Offset: 9, Limit: 2}, []DumpMessage{}},
		{"after", DumpOptions{After: ids[0], HasAfter: true, Limit: 10}, all[1:]},
		{"after the newest", DumpOptions{After: ids[1], HasAfter: true, Limit: 10}, all[3:]},
		{"after and offset", DumpOptions{After: ids[0], HasAfter: true, Offset: 1, Limit: 1}, all[2:3]},
		{"no limit", DumpOptions{Offset: 1}, all[1:]},
	} {
		page, err := f.DumpPage("dlq", c.o)
		if err != nil || page.Total != 4 || !reflect.DeepEqual(page.Messages, c.want) {
			t.Fatalf("%s: %+v, %v\n want %+v", c.name, page, err, c.want)
		}
	}
	if page, err := f.DumpPage("nope", DumpOptions{Limit: 5}); err != nil || page.Total != 0 || len(page.Messages) != 0 {
		t.Fatalf("page of an unknown queue: %+v, %v", page, err)
	}
}

// Redriven and purged bodies are accounted once in the body store: once
// every message is gone, every sealed segment file goes too.
func TestPurgeAndRedrive_Disk_SegmentsGoWithTheirMessages(t *testing.T) {
	dir := t.TempDir()
	f := mustOpenFSM(t, diskOptions(dir))
	applyOne(f, sec, Command{Op: OpConfigure, Queue: "a", Config: QueueConfig{MaxAttempts: 1, DeadLetter: "dlq"}})
	body := bytes.Repeat([]byte{'x'}, 300)
	for range 100 {
		applyOne(f, sec, Command{Op: OpPut, Queue: "a", Messages: [][]byte{body}})
		applyOne(f, sec, Command{Op: OpPut, Queue: "b", Messages: [][]byte{body}, Delay: time.Hour})
	}
	got := applyOne(f, sec, Command{Op: OpGet, Queue: "a", Max: 100, Lease: time.Minute})
	for _, m := range got.Messages {
		applyOne(f, sec, Command{Op: OpNack, IDs: []uint64{m.ID}})
	}
	if r := applyOne(f, sec, Command{Op: OpRedrive, Queue: "dlq"}); r.Count != 100 {
		t.Fatalf("redrive: %+v", r)
	}
	if r := applyOne(f, sec, Command{Op: OpGet, Queue: "a", Max: 100, Lease: api.NoLease}); len(r.Messages) != 100 {
		t.Fatalf("pop after the redrive: %d messages", len(r.Messages))
	}
	if r := applyOne(f, sec, Command{Op: OpPurge, Queue: "b"}); r.Count != 100 {
		t.Fatalf("purge: %+v", r)
	}
	if u := f.Usage(); u != (Usage{}) {
		t.Fatalf("usage %+v with nothing stored", u)
	}
	if n := f.BodyStats().Segments; n > 1 {
		t.Fatalf("%d segments left with nothing stored, want at most the one being written", n)
	}
}
