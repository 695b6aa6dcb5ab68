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

// applyOne applies one command at leader time now and returns its result.
func applyOne(f *FSM, now int64, c Command) Result {
	f.mu.RLock()
	idx := f.st.index + 1
	f.mu.RUnlock()
	return f.ApplyEntry(idx, &Entry{Now: now, Commands: []Command{c}})[0]
}

// putAll stores msgs in queue q, one put.
func putAll(t *testing.T, f *FSM, now int64, q string, msgs ...string) []uint64 {
	t.Helper()
	c := Command{Op: OpPut, Queue: q}
	for _, m := range msgs {
		c.Messages = append(c.Messages, []byte(m))
	}
	res := applyOne(f, now, c)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	return res.IDs
}

func datas(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Data))
	}
	return out
}

func TestGet_MaxBytes_StopsBeforeTheCapAndAlwaysHandsOutOne(t *testing.T) {
	f := New()
	putAll(t, f, 1, "q", "aaaa", "bbbb", "cccc", "dddddddddd")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 10, Lease: api.NoLease, MaxBytes: 9})
	if got := datas(res.Messages); !reflect.DeepEqual(got, []string{"aaaa", "bbbb"}) {
		t.Fatalf("got %q, want the two messages that fit 9 bytes", got)
	}
	if st := f.Stats("q"); st.Depth != 2 || st.Gets != 2 {
		t.Fatalf("depth %d gets %d, want 2 and 2: the queue lost exactly what was handed out", st.Depth, st.Gets)
	}
	res = applyOne(f, 3, Command{Op: OpGet, Queue: "q", Max: 10, Lease: api.NoLease, MaxBytes: 5})
	if got := datas(res.Messages); !reflect.DeepEqual(got, []string{"cccc"}) {
		t.Fatalf("got %q, want cccc", got)
	}
	res = applyOne(f, 4, Command{Op: OpGet, Queue: "q", Max: 10, Lease: api.NoLease, MaxBytes: 5})
	if got := datas(res.Messages); !reflect.DeepEqual(got, []string{"dddddddddd"}) {
		t.Fatalf("got %q, want the 10-byte message alone although it exceeds the cap", got)
	}
}

func TestGet_MaxIDBytes_IDsJoinedWithCommasFitTheBudget(t *testing.T) {
	f := New()
	msgs := make([]string, 15)
	for i := range msgs {
		msgs[i] = "m"
	}
	putAll(t, f, 1, "q", msgs...) // ids 1..15
	// "1,2,3,4,5,6,7,8,9" is 17 bytes, ",10" makes 20.
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 100, Lease: api.NoLease, MaxIDBytes: 19})
	if len(res.Messages) != 9 {
		t.Fatalf("%d messages, want 9 whose ids fit 19 bytes", len(res.Messages))
	}
	res = applyOne(f, 3, Command{Op: OpGet, Queue: "q", Max: 100, Lease: api.NoLease, MaxIDBytes: 1})
	if len(res.Messages) != 1 || res.Messages[0].ID != 10 {
		t.Fatalf("got %+v, want id 10 alone: the first message goes whatever the budget", res.Messages)
	}
}

func TestGet_Handover_LeasesAPopUntilConfirmed(t *testing.T) {
	f := New()
	putAll(t, f, 1, "q", "a", "b", "c")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 2, Lease: api.NoLease, Handover: time.Second})
	if !res.Handover || len(res.Messages) != 2 {
		t.Fatalf("result %+v: want two messages under a handover", res)
	}
	st := f.Stats("q")
	if st.Depth != 1 || st.InFlight != 0 || st.Bytes != 1 || st.Gets != 2 {
		t.Fatalf("stats %+v: the stats of a pop, from the take", st)
	}
	ack := applyOne(f, 3, Command{Op: OpHandoverAck, IDs: []uint64{res.Messages[0].ID, res.Messages[1].ID, 99}})
	if ack.Err != nil || ack.Count != 2 {
		t.Fatalf("handover ack %+v: want 2 settled and the unknown id skipped", ack)
	}
	if st := f.Stats("q"); st.InFlight != 0 || st.Bytes != 1 || st.Depth != 1 {
		t.Fatalf("stats after the ack %+v", st)
	}
	// Nothing comes back when the lease would have ended.
	applyOne(f, int64(10*time.Second), Command{Op: OpTick})
	if st := f.Stats("q"); st.Depth != 1 {
		t.Fatalf("depth %d after the lease time, want 1: confirmed messages are gone", st.Depth)
	}
}

func TestGet_HandoverWithAQueueLease_LeasesAsUsual(t *testing.T) {
	f := New()
	applyOne(f, 1, Command{Op: OpConfigure, Queue: "q", Config: QueueConfig{DefaultLease: time.Minute}})
	putAll(t, f, 1, "q", "a")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 1, Handover: time.Second})
	if res.Handover {
		t.Fatalf("a get that leases is not a handover")
	}
	if ack := applyOne(f, 3, Command{Op: OpAck, IDs: []uint64{res.Messages[0].ID}}); ack.Err != nil {
		t.Fatalf("ack of an ordinary lease: %v", ack.Err)
	}
}

func TestHandoverNack_ReturnsToTheHeadInOrderUncounted(t *testing.T) {
	f := New()
	applyOne(f, 1, Command{Op: OpConfigure, Queue: "q", Config: QueueConfig{MaxAttempts: 1}})
	putAll(t, f, 1, "q", "a", "b", "c")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 2, Lease: api.NoLease, Handover: time.Minute})
	back := applyOne(f, 3, Command{Op: OpHandoverNack, IDs: []uint64{res.Messages[0].ID, res.Messages[1].ID}})
	if back.Count != 2 {
		t.Fatalf("handover nack %+v, want 2 given back", back)
	}
	again := applyOne(f, 4, Command{Op: OpGet, Queue: "q", Max: 3, Lease: api.NoLease})
	if got := datas(again.Messages); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("after the give-back got %q, want a b c in order", got)
	}
	if a := again.Messages[0].Attempts; a != 1 || again.Messages[0].LastError != "" {
		t.Fatalf("attempts %d last error %q: a give-back is not a delivery", a, again.Messages[0].LastError)
	}
	if st := f.Stats("q"); st.Dead != 0 {
		t.Fatalf("dead %d with max_attempts 1: a give-back must not dead-letter", st.Dead)
	}
}

func TestHandover_LeaseEnds_BackAtTheHeadCountedNeverDeadLettered(t *testing.T) {
	f := New()
	applyOne(f, 1, Command{Op: OpConfigure, Queue: "q", Config: QueueConfig{MaxAttempts: 1, DeadLetter: "dlq"}})
	putAll(t, f, 1, "q", "a", "b")
	applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 1, Lease: api.NoLease, Handover: time.Second})
	applyOne(f, 2+int64(time.Second), Command{Op: OpTick})
	if st := f.Stats("q"); st.Depth != 2 || st.Bytes != 2 || st.InFlight != 0 || st.Dead != 0 {
		t.Fatalf("stats %+v: want the message back, nothing dead", st)
	}
	res := applyOne(f, 3+int64(time.Second), Command{Op: OpGet, Queue: "q", Max: 1, Lease: api.NoLease})
	m := res.Messages[0]
	if string(m.Data) != "a" || m.Attempts != 2 || m.LastError != HandoverExpired {
		t.Fatalf("got %+v: want a again, attempt 2, %q", m, HandoverExpired)
	}
	// A late confirmation finds nothing to settle.
	if late := applyOne(f, 4+int64(time.Second), Command{Op: OpHandoverAck, IDs: []uint64{m.ID}}); late.Err != nil || late.Count != 0 {
		t.Fatalf("late handover ack %+v: want nothing settled and no error", late)
	}
}

func TestHandover_ClientAckNackTouch_NotInFlight(t *testing.T) {
	f := New()
	putAll(t, f, 1, "q", "a")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 1, Lease: api.NoLease, Handover: time.Minute})
	id := res.Messages[0].ID
	for _, op := range []Op{OpAck, OpNack, OpTouch} {
		r := applyOne(f, 3, Command{Op: op, IDs: []uint64{id}, Lease: time.Second})
		if !errors.Is(r.Err, api.ErrNotInFlight) {
			t.Fatalf("%s of a handover: %v, want not in flight (a popped message)", op, r.Err)
		}
	}
	// And the reverse: handover ops leave ordinary leases alone.
	putAll(t, f, 4, "q", "b")
	leased := applyOne(f, 5, Command{Op: OpGet, Queue: "q", Max: 1, Lease: time.Minute})
	if r := applyOne(f, 6, Command{Op: OpHandoverAck, IDs: []uint64{leased.Messages[0].ID}}); r.Count != 0 {
		t.Fatalf("handover ack settled an ordinary lease")
	}
}

func TestGet_InvalidCaps_ChangeNothing(t *testing.T) {
	f := New()
	putAll(t, f, 1, "q", "a")
	for _, c := range []Command{
		{Op: OpGet, Queue: "q", Max: 1, MaxBytes: -1},
		{Op: OpGet, Queue: "q", Max: 1, MaxIDBytes: -1},
		{Op: OpGet, Queue: "q", Max: 1, Handover: -time.Second},
		{Op: OpHandoverAck},
	} {
		if r := applyOne(f, 2, c); !errors.Is(r.Err, api.ErrInvalidCommand) {
			t.Fatalf("%+v: err %v, want invalid command", c, r.Err)
		}
	}
	if st := f.Stats("q"); st.Depth != 1 || st.Gets != 0 {
		t.Fatalf("stats %+v after refused commands", st)
	}
}

func TestSnapshot_HandoverLease_SurvivesRestore(t *testing.T) {
	f := New()
	putAll(t, f, 1, "q", "a", "b")
	res := applyOne(f, 2, Command{Op: OpGet, Queue: "q", Max: 1, Lease: api.NoLease, Handover: time.Minute})
	applyOne(f, 3, Command{Op: OpGet, Queue: "q", Max: 1, Lease: time.Minute})
	f2 := New()
	if err := f2.Restore(io.NopCloser(bytes.NewReader(mustWriteSnapshot(t, f)))); err != nil {
		t.Fatal(err)
	}
	if r := applyOne(f2, 4, Command{Op: OpHandoverNack, IDs: []uint64{res.Messages[0].ID, res.Messages[0].ID + 1}}); r.Count != 1 {
		t.Fatalf("after a restore the handover nack settled %d, want 1 (the handover, not the lease)", r.Count)
	}
}

func TestCodec_CappedGetAndHandoverOps_RoundTripAsVersion2(t *testing.T) {
	e := Entry{Now: 7, Commands: []Command{
		{Op: OpGet, Queue: "q", Max: 1000, Lease: api.NoLease, MaxBytes: 4 << 20, MaxIDBytes: 8 << 10, Handover: 30 * time.Second},
		{Op: OpHandoverAck, IDs: []uint64{1, 2, 1 << 50}},
		{Op: OpHandoverNack, Queue: "q", IDs: []uint64{9}},
	}}
	data := EncodeEntry(nil, &e)
	if data[0] != 2 {
		t.Fatalf("version byte %d, want 2 for an entry with new commands", data[0])
	}
	got, err := DecodeEntry(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip:\n got  %+v\n want %+v", got, e)
	}
	plain := EncodeEntry(nil, &Entry{Now: 7, Commands: []Command{{Op: OpGet, Queue: "q", Max: 3}}})
	if plain[0] != 1 || plain[3] != byte(OpGet) {
		t.Fatalf("a get without caps encodes as % x, want version 1 and op 2 as before", plain)
	}
}

// TestCodec_Version1Entries_StillDecode pins the bytes the first release
// wrote for a get and an ack: logs written by it must keep their meaning.
func TestCodec_Version1Entries_StillDecode(t *testing.T) {
	old := []byte{
		1,               // version 1
		0x0e,            // now 7 (zigzag varint)
		2,               // two commands
		2, 1, 'q', 5, 1, // get: queue "q", max 5, lease -1 (api.NoLease as zigzag)
		3, 0, 2, 4, 0x80, 0x01, // ack: no queue, ids 4 and 128
	}
	got, err := DecodeEntry(old)
	if err != nil {
		t.Fatal(err)
	}
	want := Entry{Now: 7, Commands: []Command{
		{Op: OpGet, Queue: "q", Max: 5, Lease: -1},
		{Op: OpAck, IDs: []uint64{4, 128}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("old entry decodes as %+v, want %+v", got, want)
	}
	if newer := append([]byte{Version + 1}, old[1:]...); !isNewer(newer) {
		t.Fatalf("an entry of version %d must be refused as newer", Version+1)
	}
}

func isNewer(b []byte) bool {
	_, err := DecodeEntry(b)
	return errors.Is(err, ErrNewerVersion)
}
