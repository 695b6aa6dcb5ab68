package membership

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testlog"
)

// fakeChannel is a Channel that records what it is given.
type fakeChannel struct {
	mu     sync.Mutex
	msgs   [][]byte
	merged [][]byte
	state  []byte
	queued [][]byte
}

func (c *fakeChannel) NotifyMsg(m []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, bytes.Clone(m))
}

func (c *fakeChannel) Broadcasts(overhead, limit int) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for len(c.queued) > 0 && overhead+len(c.queued[0]) <= limit {
		limit -= overhead + len(c.queued[0])
		out = append(out, c.queued[0])
		c.queued = c.queued[1:]
	}
	return out
}

func (c *fakeChannel) LocalState(bool) []byte { return c.state }

func (c *fakeChannel) MergeRemoteState(b []byte, _ bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.merged = append(c.merged, bytes.Clone(b))
}

// Every message and broadcast carries its channel's type byte, and
// push/pull state is framed per channel: each channel sees only its own
// bytes, unknown channels are skipped, and broadcasts respect the packet
// budget.
func TestGossipDelegate_ChannelFraming(t *testing.T) {
	a, b := &fakeChannel{state: []byte("state-a")}, &fakeChannel{state: []byte("state-b")}
	send := &delegate{log: testlog.New(t), meta: &metaState{}, channels: map[byte]Channel{1: a, 7: b}}

	// The receiver only knows channel 7.
	rb := &fakeChannel{}
	recv := &delegate{log: testlog.New(t), meta: &metaState{}, channels: map[byte]Channel{7: rb}}
	recv.MergeRemoteState(send.LocalState(true), true)
	if len(rb.merged) != 1 || string(rb.merged[0]) != "state-b" {
		t.Fatalf("channel 7 merged %q, want [state-b]", rb.merged)
	}
	recv.MergeRemoteState([]byte{stateFormat, 7, 200}, false) // truncated frame: ignored
	recv.MergeRemoteState([]byte{99, 7, 1, 'x'}, false)       // unknown format: ignored
	if len(rb.merged) != 1 {
		t.Fatalf("bad state was merged: %q", rb.merged)
	}

	recv.NotifyMsg([]byte{7, 'h', 'i'})
	recv.NotifyMsg([]byte{1, 'n', 'o'}) // unknown channel
	recv.NotifyMsg(nil)
	if len(rb.msgs) != 1 || string(rb.msgs[0]) != "hi" {
		t.Fatalf("channel 7 got %q, want [hi]", rb.msgs)
	}

	a.queued = [][]byte{[]byte("aaaa"), []byte("bbbb")}
	b.queued = [][]byte{[]byte("cccc")}
	// Budget for two messages of 4 bytes + type byte + 2 overhead.
	got := send.GetBroadcasts(2, 14)
	want := [][]byte{[]byte("\x01aaaa"), []byte("\x01bbbb")}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("broadcasts %q, want %q", got, want)
	}
	if got := send.GetBroadcasts(2, 14); len(got) != 1 || string(got[0]) != "\x07cccc" {
		t.Fatalf("second broadcasts %q", got)
	}
}

// The member table tells a graceful leave (the member announced it in its
// meta first) from a failure, and keeps both after memberlist forgets them.
func TestMemberTable_LeftVersusDead(t *testing.T) {
	tbl := newMemberTable(testlog.New(t))
	meta := func(leaving bool) []byte {
		m := NodeMeta{Expect: 3, RaftAddr: "10.0.0.1:8300", QueueAddr: "10.0.0.1:8081", Leaving: leaving}
		return m.Encode(nil)
	}
	ev := eventDelegate{t: tbl}
	ev.NotifyJoin(&memberlist.Node{Name: "a", Meta: meta(false)})
	ev.NotifyJoin(&memberlist.Node{Name: "b", Meta: meta(false)})
	ev.NotifyJoin(&memberlist.Node{Name: "junk", Meta: []byte{1, 2}})
	ch := tbl.changedCh()
	ev.NotifyUpdate(&memberlist.Node{Name: "b", Meta: meta(true)})
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("update did not signal a change")
	}
	ev.NotifyLeave(&memberlist.Node{Name: "a", Meta: meta(false)})
	ev.NotifyLeave(&memberlist.Node{Name: "b", Meta: meta(true)})

	got := map[string]Member{}
	for _, m := range tbl.snapshot() {
		got[m.ID] = m
	}
	if got["a"].Status != api.MemberDead || got["b"].Status != api.MemberLeft || got["junk"].MetaOK {
		t.Fatalf("table = %+v", got)
	}
	counts := memberStatusCounts(tbl.snapshot())
	if counts[api.MemberDead] != 1 || counts[api.MemberLeft] != 1 || counts[api.MemberAlive] != 1 || counts[api.MemberSuspect] != 0 {
		t.Fatalf("counts = %v", counts)
	}
	// A member that comes back is alive again.
	ev.NotifyJoin(&memberlist.Node{Name: "a", Meta: meta(false)})
	if m, _ := tbl.get("a"); m.Status != api.MemberAlive {
		t.Fatalf("a after rejoin: %+v", m)
	}
}
