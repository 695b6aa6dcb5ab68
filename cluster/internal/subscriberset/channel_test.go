package subscriberset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/internal/peer/peertest"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testwait"
)

// Entries survive encode/decode whole or thin; every strict prefix of an
// encoding and every malformed field is an error; a newer format with
// appended fields still decodes.
func TestSubsEntry_EncodeDecode(t *testing.T) {
	entries := []entry{
		{Node: "n1", Version: 1<<32 | 7, Full: true, Topics: map[string]int{"a": 1, "b.c-d_e": 300, "default": 2}},
		{Node: "n2", Version: 5 << 32, Full: true, Topics: map[string]int{}},
		{Node: "n3", Version: math.MaxUint64},
	}
	for _, e := range entries {
		enc := e.encode(nil)
		got, err := decodeEntry(enc)
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if got.Node != e.Node || got.Version != e.Version || got.Full != e.Full || !maps.Equal(got.Topics, e.Topics) {
			t.Fatalf("decoded %+v, want %+v", got, e)
		}
		for i := range len(enc) {
			if _, err := decodeEntry(enc[:i]); err == nil {
				t.Fatalf("%s: prefix of %d/%d bytes decoded", e.Node, i, len(enc))
			}
		}
		// A newer format with a field appended: still readable.
		newer := append(bytes.Clone(enc), 0xAA, 0xBB)
		newer[0] = entryFormat + 1
		if got, err := decodeEntry(newer); err != nil || got.Version != e.Version {
			t.Fatalf("newer format: %+v, %v", got, err)
		}
	}
	// Topics are sorted, so equal sets encode equally.
	a := entry{Node: "n", Version: 1, Full: true, Topics: map[string]int{"x": 1, "y": 2, "z": 3}}
	b := entry{Node: "n", Version: 1, Full: true, Topics: map[string]int{"z": 3, "x": 1, "y": 2}}
	if !bytes.Equal(a.encode(nil), b.encode(nil)) || digest(a.Topics) != digest(b.Topics) {
		t.Fatal("equal sets encode differently")
	}
	if digest(a.Topics) == digest(map[string]int{"x": 1, "y": 2, "z": 4}) {
		t.Fatal("digest ignores counts")
	}

	bad := map[string][]byte{
		"old format":  {0, flagFull, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 0},
		"empty node":  {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
		"zero count":  {1, flagFull, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 't', 0},
		"empty topic": {1, flagFull, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1},
		"duplicate":   {1, flagFull, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 2, 1, 't', 1, 1, 't', 2},
		"huge count":  {1, flagFull, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 't', 1},
	}
	for name, b := range bad {
		if e, err := decodeEntry(b); !errors.Is(err, errBadEntry) {
			t.Errorf("%s: decoded %+v, %v", name, e, err)
		}
	}
}

// Push/pull state: a list of entries; one that does not decode is skipped,
// a broken frame keeps what came before it.
func TestSubsState_EncodeDecode(t *testing.T) {
	in := []entry{
		{Node: "a", Version: 3, Full: true, Topics: map[string]int{"t": 1}},
		{Node: "b", Version: 9},
	}
	got, err := decodeState(encodeState(in))
	if err != nil || len(got) != 2 || got[0].Topics["t"] != 1 || got[1].Full {
		t.Fatalf("got %+v, %v", got, err)
	}
	// Middle entry unreadable: skipped, the others kept.
	s := []byte{3}
	for _, e := range [][]byte{in[0].encode(nil), {0xff}, in[1].encode(nil)} {
		s = append(s, byte(len(e)))
		s = append(s, e...)
	}
	got, err = decodeState(s)
	if err == nil || len(got) != 2 || got[1].Node != "b" {
		t.Fatalf("with a bad entry: %+v, %v", got, err)
	}
	// Truncated frame: what came before survives.
	got, err = decodeState(s[:len(s)-3])
	if err == nil || len(got) != 1 || got[0].Node != "a" {
		t.Fatalf("truncated: %+v, %v", got, err)
	}
}

// testSubsChannel returns a channel for node "self" whose fetches go to
// fetch (nil: none), started and stopped with the test.
func testSubsChannel(t *testing.T, epoch uint32, fetch func(ctx context.Context, addr string) ([]byte, error)) *Channel {
	t.Helper()
	c := New(Config{Self: "self", Epoch: epoch, Log: testlog.New(t), Fetch: fetch})
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

func full(node string, version uint64, topics map[string]int) entry {
	return entry{Node: node, Version: version, Full: true, Topics: topics}
}

// Merging is entry-wise, the higher version wins; this node's own entry
// and entries of nodes that are not alive members are ignored; a member
// declared gone loses its entry and gets it back only as a member again.
func TestSubsChannel_MergeRules(t *testing.T) {
	c := testSubsChannel(t, 1, nil)
	c.MemberAlive("b", "10.0.0.2:8080", 0, true)

	c.merge(full("b", 5, map[string]int{"t": 1}), "broadcast")
	if c.known("b") != 5 {
		t.Fatalf("known %d, want 5", c.known("b"))
	}
	if c.merge(full("b", 4, map[string]int{"old": 1}), "broadcast") || c.merge(full("b", 5, map[string]int{"other": 1}), "push_pull") {
		t.Fatal("an older or equal version was merged")
	}
	if ps := c.PeersWith("t"); len(ps) != 1 || ps[0].ID != "b" || ps[0].PubsubAddr != "10.0.0.2:8080" {
		t.Fatalf("PeersWith(t) = %+v", ps)
	}
	if ps := c.PeersWith("old"); len(ps) != 0 {
		t.Fatalf("PeersWith(old) = %+v", ps)
	}
	if !c.merge(full("b", 6, map[string]int{"u": 2}), "push_pull") || len(c.PeersWith("t")) != 0 || len(c.PeersWith("u")) != 1 {
		t.Fatal("a newer version did not replace the set")
	}
	// Not members: ignored. Our own entry: ignored.
	if c.merge(full("stranger", 1, map[string]int{"t": 1}), "broadcast") || c.known("stranger") != 0 {
		t.Fatal("entry of a non-member merged")
	}
	if c.merge(full("self", math.MaxUint64, map[string]int{"t": 1}), "broadcast") {
		t.Fatal("our own entry was overwritten")
	}
	if v, _ := c.LocalVersion(); v != 1<<32 {
		t.Fatalf("own version %d", v)
	}
	// Gone: dropped, and a late push/pull does not bring it back.
	c.MemberGone("b")
	if len(c.PeersWith("")) != 0 || c.known("b") != 0 {
		t.Fatalf("entry of a dead member kept: %+v", c.PeersWith(""))
	}
	c.MergeRemoteState(encodeState([]entry{full("b", 7, map[string]int{"t": 1})}), false)
	if c.known("b") != 0 {
		t.Fatal("push/pull revived a dead member's entry")
	}
	// Back as a member: its entries are accepted again.
	c.MemberAlive("b", "10.0.0.2:8080", 0, true)
	c.MergeRemoteState(encodeState([]entry{full("b", 7, map[string]int{"t": 1})}), false)
	if c.known("b") != 7 {
		t.Fatalf("known %d after rejoin, want 7", c.known("b"))
	}
	if len(c.PeersWith("")) != 1 || c.PeersWith("")[0].Topics["t"] != 1 {
		t.Fatalf("peers %+v", c.PeersWith(""))
	}
}

// A version learned without its topics (thin broadcast, NodeMeta) is
// fetched once over HTTP, however often it is heard of while the fetch
// runs; a failed fetch is retried a bounded number of times.
func TestSubsChannel_FetchOnce(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	var serve atomic.Value // func() ([]byte, error)
	c := testSubsChannel(t, 1, func(ctx context.Context, addr string) ([]byte, error) {
		calls.Add(1)
		if addr != "10.0.0.2:8080" {
			return nil, fmt.Errorf("fetch from %s", addr)
		}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return serve.Load().(func() ([]byte, error))()
	})
	serve.Store(func() ([]byte, error) {
		e := full("b", 9, map[string]int{"t": 4})
		return e.encode(nil), nil
	})
	c.MemberAlive("b", "10.0.0.2:8080", 0, true)
	thin := entry{Node: "b", Version: 9}
	c.NotifyMsg(thin.encode(nil))
	c.NotifyMsg(thin.encode(nil))
	c.MemberAlive("b", "10.0.0.2:8080", 9, true) // meta: same version
	c.MergeRemoteState(encodeState([]entry{{Node: "b", Version: 8}}), false)
	testwait.For(t, 5*time.Second, "the fetch started", func() bool { return calls.Load() == 1 })
	close(release)
	testwait.For(t, 5*time.Second, "version 9 known", func() bool { return c.known("b") == 9 })
	// Once the fetch loop has stopped, nothing heard so far can fetch again.
	testwait.For(t, 5*time.Second, "the fetch loop stopped", func() bool { return !fetchRunning(c, "b") })
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	if len(c.PeersWith("t")) != 1 {
		t.Fatalf("PeersWith(t) = %+v", c.PeersWith("t"))
	}

	// A failing node: fetchAttempts attempts, then it waits for news.
	serve.Store(func() ([]byte, error) { return nil, errors.New("connection refused") })
	calls.Store(0)
	c.NotifyMsg((&entry{Node: "b", Version: 10}).encode(nil))
	testwait.For(t, 5*time.Second, "the fetch loop gave up", func() bool {
		return calls.Load() == fetchAttempts && !fetchRunning(c, "b")
	})
	if n := calls.Load(); n != fetchAttempts {
		t.Fatalf("%d fetch attempts, want %d", n, fetchAttempts)
	}
	// An answer from another node or an older version does not count.
	serve.Store(func() ([]byte, error) { e := full("c", 11, nil); return e.encode(nil), nil })
	calls.Store(0)
	c.NotifyMsg((&entry{Node: "b", Version: 11}).encode(nil))
	testwait.For(t, 5*time.Second, "attempts made", func() bool { return calls.Load() == fetchAttempts })
	if c.known("b") != 9 {
		t.Fatalf("known %d, want 9", c.known("b"))
	}
}

// Versions increase with every change of the local set and across
// restarts (the epoch is persisted), also when a run uses up its sequence.
func TestSubsChannel_VersionsOrdered(t *testing.T) {
	dir := t.TempDir()
	e1, err := datadir.NextSubsEpoch(dir)
	if err != nil || e1 != 1 {
		t.Fatalf("first epoch %d, %v", e1, err)
	}
	topics := map[string]int{}
	var mu sync.Mutex
	c := New(Config{Self: "self", Epoch: e1, Log: testlog.New(t), NextEpoch: func() (uint32, error) { return datadir.NextSubsEpoch(dir) }})
	c.SetSource(func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(topics) })
	last, _ := c.LocalVersion()
	for i := range 5 {
		mu.Lock()
		topics[fmt.Sprint("t", i)] = i + 1
		mu.Unlock()
		c.flush()
		v, _ := c.LocalVersion()
		if v <= last {
			t.Fatalf("version %d after %d", v, last)
		}
		last = v
	}
	c.flush() // unchanged set: same version
	if v, _ := c.LocalVersion(); v != last {
		t.Fatalf("version moved without a change: %d → %d", last, v)
	}
	// The sequence runs out: a new epoch, still higher.
	c.seq = math.MaxUint32
	mu.Lock()
	topics["more"] = 1
	mu.Unlock()
	c.flush()
	wrapped, _ := c.LocalVersion()
	if wrapped <= last || wrapped != 2<<32 {
		t.Fatalf("version after the sequence ran out: %d (last %d)", wrapped, last)
	}
	// A restart starts above everything the previous runs announced.
	e3, err := datadir.NextSubsEpoch(dir)
	if err != nil || e3 != 3 {
		t.Fatalf("epoch after restart %d, %v", e3, err)
	}
	restarted := New(Config{Self: "self", Epoch: e3})
	if v, _ := restarted.LocalVersion(); v <= wrapped {
		t.Fatalf("restarted at version %d, not above %d", v, wrapped)
	}
}

// A set that fits comfortably in a packet is broadcast whole, a larger one
// thin; push/pull carries entries whole up to maxStateEntry; the
// broadcasts never exceed the packet budget.
func TestSubsChannel_PayloadLimits(t *testing.T) {
	topics := func(n int) map[string]int {
		m := map[string]int{}
		for i := range n {
			m[fmt.Sprintf("topic-%058d", i)] = 1 // 64 bytes
		}
		return m
	}
	cases := []struct {
		name       string
		topics     map[string]int
		wantFullBC bool
		wantFullPP bool
	}{
		{"small", map[string]int{"a": 1, "b": 2}, true, true},
		{"just over a packet share", topics(8), false, true},
		{"over the state limit", topics(maxStateEntry/66 + 1), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{Self: "self", Epoch: 1})
			c.SetSource(func() map[string]int { return tc.topics })
			c.flush()
			// Overhead 4: memberlist's 3 bytes and the channel's type byte.
			msgs := c.Broadcasts(4, 1400)
			if len(msgs) != 1 || len(msgs[0])+4 > 1400 {
				t.Fatalf("broadcasts: %d messages", len(msgs))
			}
			e, err := decodeEntry(msgs[0])
			if err != nil || e.Full != tc.wantFullBC || e.Version != 1<<32|1 {
				t.Fatalf("broadcast %+v (full %v), %v", e.Version, e.Full, err)
			}
			if tc.wantFullBC && !maps.Equal(e.Topics, tc.topics) {
				t.Fatalf("broadcast topics %v", e.Topics)
			}
			if got := c.Broadcasts(4, 20); len(got) != 0 && len(got[0])+4 > 20 {
				t.Fatalf("broadcast over the limit: %d bytes", len(got[0]))
			}
			st, err := decodeState(c.LocalState(false))
			if err != nil || len(st) != 1 || st[0].Full != tc.wantFullPP {
				t.Fatalf("push/pull state: %d entries, %v", len(st), err)
			}
		})
	}
}

// mlNode is one in-process memberlist with the subscriber-set channel and
// an HTTP server answering GET /internal/subs, as the pubsub port does.
type mlNode struct {
	name   string
	ch     *Channel
	meta   *testDelegate
	ml     *memberlist.Memberlist
	srv    *httptest.Server
	mu     sync.Mutex
	topics map[string]int
	stop   func()
}

func (n *mlNode) set(topics map[string]int) {
	n.mu.Lock()
	n.topics = topics
	n.mu.Unlock()
	n.ch.Changed()
}

func startMLNode(t *testing.T, name string, epoch uint32, fetch bool, join ...string) *mlNode {
	t.Helper()
	n := &mlNode{name: name}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != api.PathSubs {
			http.NotFound(w, r)
			return
		}
		w.Write(n.ch.LocalBytes())
	}))
	cfg := Config{Self: name, Epoch: epoch, Log: testlog.New(t),
		Announce: func(v uint64, _ [8]byte) {
			n.meta.setMeta(v, n.srv.Listener.Addr().String())
			n.ml.UpdateNode(time.Second)
		}}
	if fetch {
		cfg.Fetch = peertest.Client(t).SubscriberSet
	}
	n.ch = New(cfg)
	n.meta = &testDelegate{ch: n.ch}
	n.ch.SetSource(func() map[string]int { n.mu.Lock(); defer n.mu.Unlock(); return maps.Clone(n.topics) })
	v, _ := n.ch.LocalVersion()
	n.meta.setMeta(v, n.srv.Listener.Addr().String())
	c := memberlist.DefaultLANConfig()
	c.Name = name
	c.BindAddr, c.BindPort = "127.0.0.1", 0
	c.AdvertiseAddr, c.AdvertisePort = "127.0.0.1", 0
	// cluster's timings, with a faster push/pull.
	c.ProbeInterval, c.ProbeTimeout = 500*time.Millisecond, 250*time.Millisecond
	c.GossipInterval = 100 * time.Millisecond
	c.PushPullInterval = time.Second
	c.DeadNodeReclaimTime = time.Second
	c.TCPTimeout = 3 * time.Second
	c.Delegate = n.meta
	c.Events = testEvents{n.ch}
	c.Logger = log.New(io.Discard, "", 0)
	ml, err := memberlist.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	n.ml = ml
	n.ch.Start()
	if len(join) > 0 {
		if _, err := ml.Join(join); err != nil {
			t.Fatalf("join: %v", err)
		}
	}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			ml.Shutdown()
			n.ch.Stop()
			n.srv.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

func (n *mlNode) addr() string { return n.ml.LocalNode().Address() }

// topicsOf returns what n knows of id's set ("-" when nothing).
func topicsOf(n *mlNode, id string) string {
	for _, p := range n.ch.PeersWith("") {
		if p.ID == id {
			if p.Version == 0 {
				return "-"
			}
			var parts []string
			for _, t := range slices.Sorted(maps.Keys(p.Topics)) {
				parts = append(parts, fmt.Sprintf("%s=%d", t, p.Topics[t]))
			}
			return strings.Join(parts, ",")
		}
	}
	return "-"
}

// Three real memberlists: sets spread by broadcast (small), by thin
// broadcast plus one HTTP fetch (large), and by push/pull to a node that
// joins later and cannot fetch; a crashed node's set disappears from the
// others; restarted under the same name (a new epoch) its new set wins.
func TestSubsChannel_Memberlists(t *testing.T) {
	a := startMLNode(t, "a", 1, true)
	b := startMLNode(t, "b", 1, true, a.addr())
	c := startMLNode(t, "c", 1, true, a.addr())
	nodes := []*mlNode{a, b, c}
	testwait.For(t, 10*time.Second, "three members", func() bool {
		return a.ml.NumMembers() == 3 && b.ml.NumMembers() == 3 && c.ml.NumMembers() == 3
	})

	a.set(map[string]int{"news": 2})
	b.set(map[string]int{"news": 1, "sport": 3})
	// c has announced its empty set (the version of its start).
	want := map[string]string{"a": "news=2", "b": "news=1,sport=3", "c": ""}
	converge := func(what string, nodes []*mlNode, want map[string]string) {
		t.Helper()
		testwait.For(t, 10*time.Second, what, func() bool {
			for _, n := range nodes {
				for id, w := range want {
					if id != n.name && topicsOf(n, id) != w {
						return false
					}
				}
			}
			return true
		})

	}
	converge("small sets by broadcast", nodes, want)

	// A set too large for a packet: thin broadcast, then one fetch.
	big := map[string]int{}
	for i := range 40 {
		big[fmt.Sprintf("big-topic-%03d", i)] = 1
	}
	c.set(big)
	testwait.For(t, 10*time.Second, "c's large set everywhere", func() bool {
		return len(a.ch.PeersWith("big-topic-039")) == 1 && len(b.ch.PeersWith("big-topic-000")) == 1
	})

	for _, n := range []*mlNode{a, b} {
		if got := counterValue(t, n.ch.metrics.fetches.WithLabelValues("ok")); got < 1 {
			t.Fatalf("%s fetched %v times", n.name, got)
		}
	}

	// A late joiner that cannot fetch learns every set by push/pull.
	d := startMLNode(t, "d", 1, false, c.addr())
	testwait.For(t, 10*time.Second, "d knows a, b and c", func() bool {
		return topicsOf(d, "a") == "news=2" && topicsOf(d, "b") == "news=1,sport=3" && len(d.ch.PeersWith("big-topic-007")) == 1
	})

	// b crashes: its set disappears from the others within seconds.
	b.stop()
	start := time.Now()
	testwait.For(t, 15*time.Second, "b's set dropped", func() bool {
		for _, n := range []*mlNode{a, c, d} {
			if len(n.ch.PeersWith("sport")) != 0 {
				return false
			}
		}
		return true
	})

	t.Logf("b's set dropped %v after it stopped", time.Since(start).Round(10*time.Millisecond))

	// b comes back (new epoch) with another set: it replaces nothing
	// stale, it is simply known again.
	b2 := startMLNode(t, "b", 2, true, a.addr())
	b2.set(map[string]int{"weather": 1})
	converge("restarted b's set", []*mlNode{a, c, d}, map[string]string{"b": "weather=1"})
	if v := a.ch.known("b"); v>>32 != 2 {
		t.Fatalf("a knows b at version %x, want epoch 2", v)
	}
}

// fetchRunning reports whether a fetch loop runs for member id. Once none
// runs, only news of a newer version starts another.
func fetchRunning(c *Channel, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[id]
	return p != nil && p.fetching
}

// testDelegate carries one channel over memberlist, unframed, and a
// NodeMeta of "version pubsub-address" (cluster's real delegate frames
// channels and encodes a NodeMeta of its own).
type testDelegate struct {
	ch   *Channel
	mu   sync.Mutex
	meta []byte
}

func (d *testDelegate) setMeta(version uint64, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.meta = fmt.Appendf(nil, "%d %s", version, addr)
}

func (d *testDelegate) NodeMeta(int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}

func (d *testDelegate) NotifyMsg(b []byte) { d.ch.NotifyMsg(b) }
func (d *testDelegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.ch.Broadcasts(overhead, limit)
}
func (d *testDelegate) LocalState(join bool) []byte          { return d.ch.LocalState(join) }
func (d *testDelegate) MergeRemoteState(b []byte, join bool) { d.ch.MergeRemoteState(b, join) }

// testEvents passes memberlist's events to the channel.
type testEvents struct{ ch *Channel }

func (e testEvents) NotifyJoin(n *memberlist.Node)   { e.alive(n) }
func (e testEvents) NotifyUpdate(n *memberlist.Node) { e.alive(n) }
func (e testEvents) NotifyLeave(n *memberlist.Node)  { e.ch.MemberGone(n.Name) }

func (e testEvents) alive(n *memberlist.Node) {
	var v uint64
	var addr string
	_, err := fmt.Sscanf(string(n.Meta), "%d %s", &v, &addr)
	e.ch.MemberAlive(n.Name, addr, v, err == nil)
}

func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
