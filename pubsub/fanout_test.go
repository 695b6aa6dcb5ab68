package pubsub

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/peer/peertest"
	"github.com/quorumq/quorumq/internal/testwait"
)

// Delivery records keep any bytes, in order; malformed bodies are errors.
func Test_Wire_DeliveryRecords(t *testing.T) {
	recs := [][][]byte{
		{[]byte("a"), []byte(""), []byte("with\nnewline\r\n"), {0, 1, 2, 0xff}},
		{[]byte("")},
		{bytes.Repeat([]byte("x"), 70000)},
	}
	var body []byte
	for _, r := range recs {
		body = AppendDeliveryRecord(body, r)
	}
	got, err := DecodeDelivery(body)
	if err != nil || len(got) != len(recs) {
		t.Fatalf("decoded %d records, %v", len(got), err)
	}
	for i := range recs {
		if !slices.EqualFunc(got[i], recs[i], bytes.Equal) {
			t.Fatalf("record %d: %q, want %q", i, got[i], recs[i])
		}
	}
	// Any cut inside the first record is an error.
	for i := range len(AppendDeliveryRecord(nil, recs[0])) {
		if r, err := DecodeDelivery(body[:i]); err == nil {
			t.Fatalf("prefix of %d bytes decoded: %q", i, r)
		}
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"no messages":    {0},
		"count too high": {0xff, 0xff, 0x03, 1, 'a'},
		"truncated":      {1, 5, 'a', 'b'},
	} {
		if _, err := DecodeDelivery(b); !errors.Is(err, errBadDelivery) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// /internal/clients' JSON keeps every field but the node.
func Test_Wire_Clients(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	in := []Client{
		{ID: 3, RemoteAddr: "10.0.0.1:5000", ConnectedAt: at, PendingBytes: 12, Topic: "t", Kicked: true, Node: "ignored"},
		{ID: 4, RemoteAddr: "[::1]:5001", ConnectedAt: at, Topic: "u", WebSocket: true},
	}
	got, err := DecodeClients(EncodeClients(in))
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v, %v", got, err)
	}
	in[0].Node = ""
	for i := range in {
		if !got[i].ConnectedAt.Equal(in[i].ConnectedAt) {
			t.Fatalf("time %v", got[i].ConnectedAt)
		}
		got[i].ConnectedAt = in[i].ConnectedAt
		if got[i] != in[i] {
			t.Fatalf("client %d: %+v, want %+v", i, got[i], in[i])
		}
	}
	if got, err := DecodeClients(EncodeClients(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty: %+v, %v", got, err)
	}
}

// fakePeer is another node's pubsub port as the fan-out sees it: it
// decodes deliveries, records them and answers a count per record.
type fakePeer struct {
	id  string
	srv *httptest.Server

	mu       sync.Mutex
	requests int
	got      []string // "topic:msg"
	clients  []Client
	count    int           // answered per record
	block    chan struct{} // non-nil: deliveries wait for it to close
	blocked  int           // deliveries that reached block
	hops     []string
	within   []string // api.HeaderDeliverWithin of each delivery
}

func newFakePeer(t *testing.T, id string) *fakePeer {
	p := &fakePeer{id: id, count: 1}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == api.PathClients {
			p.mu.Lock()
			cs := p.clients
			p.mu.Unlock()
			w.Write(EncodeClients(cs))
			return
		}
		p.mu.Lock()
		block := p.block
		if block != nil {
			p.blocked++
		}
		p.mu.Unlock()
		if block != nil {
			<-block
			return
		}
		body, _ := io.ReadAll(r.Body)
		recs, err := DecodeDelivery(body)
		if err != nil || r.URL.Path != api.PathDeliver || r.Method != http.MethodPost {
			http.Error(w, fmt.Sprint(r.Method, r.URL.Path, err), http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.requests++
		p.hops = append(p.hops, r.Header.Get(api.HeaderHop)+"/"+r.Header.Get(api.HeaderFrom))
		p.within = append(p.within, r.Header.Get(api.HeaderDeliverWithin))
		for _, rec := range recs {
			for _, m := range rec {
				p.got = append(p.got, r.URL.Query().Get("topic")+":"+string(m))
			}
			fmt.Fprintln(w, p.count)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakePeer) peer() Peer { return Peer{ID: p.id, Addr: p.srv.Listener.Addr().String()} }

func (p *fakePeer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// fakeDir is a Directory with a fixed answer.
type fakeDir struct {
	mu    sync.Mutex
	peers []Peer
	subs  map[string][]string // topic → peer ids
}

func (d *fakeDir) SubscriberPeers(topic string) []Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Peer
	for _, p := range d.peers {
		if slices.Contains(d.subs[topic], p.ID) {
			out = append(out, p)
		}
	}
	return out
}

func (d *fakeDir) Peers() []Peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.peers)
}

func newTestFanout(t *testing.T, dir Directory, timeout time.Duration, queueLen int) (*Fanout, *Hub, *prometheus.Registry) {
	t.Helper()
	hub, err := NewHub(quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	o := DefaultFanoutOptions()
	o.Self, o.Hub, o.Directory, o.Peer, o.Registerer = "me", hub, dir, peertest.Client(t), reg
	o.Timeout, o.Logger = timeout, slog.New(slog.DiscardHandler)
	if queueLen > 0 {
		o.QueueLen = queueLen
	}
	f, err := NewFanout(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f, hub, reg
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// A publish goes once to each node with subscribers of the topic, marked
// as a hop, and the reply adds up the counts they answer; other nodes and
// this node itself are not asked.
func Test_Fanout_DeliversToSubscriberNodes(t *testing.T) {
	a, b, c := newFakePeer(t, "a"), newFakePeer(t, "b"), newFakePeer(t, "c")
	b.count = 3
	dir := &fakeDir{
		peers: []Peer{a.peer(), b.peer(), c.peer(), {ID: "me", Addr: "127.0.0.1:1"}},
		subs:  map[string][]string{"t": {"a", "b", "me"}},
	}
	f, hub, reg := newTestFanout(t, dir, time.Second, 0)
	n, err := f.Publish(context.Background(), "t", [][]byte{[]byte("x"), []byte("y\rz")})
	if n != 4 || err != nil {
		t.Fatalf("Publish = %d, %v; want 4", n, err)
	}
	for _, p := range []*fakePeer{a, b} {
		if got := p.received(); !slices.Equal(got, []string{"t:x", "t:y\rz"}) {
			t.Fatalf("%s got %q", p.id, got)
		}
		if p.hops[0] != "1/me" {
			t.Fatalf("%s headers %q", p.id, p.hops)
		}
	}
	if got := c.received(); len(got) != 0 {
		t.Fatalf("c got %q", got)
	}
	if n, err := f.Publish(context.Background(), "nobody", [][]byte{[]byte("x")}); n != 0 || err != nil {
		t.Fatalf("Publish to nobody = %d, %v", n, err)
	}
	if st := hub.Stats(); st.RemoteFailures != 0 {
		t.Fatalf("failures %+v", st)
	}
	if v := metricValue(t, reg, "quorumq_pubsub_fanout_messages_total", map[string]string{"peer": "b", "result": "ok"}); v != 2 {
		t.Fatalf("messages ok for b: %v", v)
	}
}

// A peer that never answers holds a publish no longer than the timeout;
// each undelivered publish is counted, later ones as well (they wait
// behind the stuck one and expire), and the other peers are unaffected.
func Test_Fanout_StuckPeerIsBounded(t *testing.T) {
	good, stuck := newFakePeer(t, "good"), newFakePeer(t, "stuck")
	release := make(chan struct{})
	stuck.block = release
	t.Cleanup(func() { close(release) })
	dir := &fakeDir{peers: []Peer{good.peer(), stuck.peer()}, subs: map[string][]string{"t": {"good", "stuck"}}}
	const timeout = 300 * time.Millisecond
	f, hub, reg := newTestFanout(t, dir, timeout, 0)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			n, err := f.Publish(context.Background(), "t", [][]byte{[]byte(strconv.Itoa(i)), []byte("second")})
			if d := time.Since(start); d > timeout+2*time.Second {
				t.Errorf("publish %d took %v", i, d)
			}
			if n != 1 || err == nil || !strings.Contains(err.Error(), "node stuck") {
				t.Errorf("publish %d = %d, %v", i, n, err)
			}
		}()
	}
	wg.Wait()
	testwait.For(t, 10*time.Second, "every failure counted", func() bool {
		st := hub.Stats()
		return st.RemoteFailures == 5 && st.RemoteDropped == 10
	})

	failed := metricValue(t, reg, "quorumq_pubsub_fanout_deliveries_total", map[string]string{"peer": "stuck", "result": "error"}) +
		metricValue(t, reg, "quorumq_pubsub_fanout_deliveries_total", map[string]string{"peer": "stuck", "result": "expired"})
	if failed != 5 {
		t.Fatalf("stuck deliveries counted %v, want 5", failed)
	}
	if got := len(good.received()); got != 10 {
		t.Fatalf("good peer got %d messages", got)
	}
}

// Publishes waiting for a peer go out in the order they were made; those
// of one topic waiting together share a request; a full queue and a
// deadline passed in the queue count as failures and are never sent.
func Test_Fanout_PeerQueueOrderBatchingOverflow(t *testing.T) {
	p := newFakePeer(t, "p")
	gate := make(chan struct{})
	p.block = gate
	dir := &fakeDir{peers: []Peer{p.peer()}}
	f, hub, reg := newTestFanout(t, dir, 5*time.Second, 6)
	enqueue := func(topic, msg string, deadline time.Time) (*delivery, error) {
		d := &delivery{topic: topic, record: AppendDeliveryRecord(nil, [][]byte{[]byte(msg)}), msgs: 1, deadline: deadline, result: make(chan deliveryResult, 1)}
		return d, f.enqueue(p.peer(), d)
	}
	later := time.Now().Add(10 * time.Second)
	// The first delivery is taken by the sender and blocks in its request.
	first, _ := enqueue("t", "0", time.Now().Add(300*time.Millisecond))
	testwait.For(t, 5*time.Second, "the sender to block in its request", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.blocked == 1
	})

	var ds []*delivery
	for i, topic := range []string{"t", "t", "u", "t", "t"} {
		d, err := enqueue(topic, strconv.Itoa(i+1), later)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	expiry := time.Now().Add(time.Millisecond)
	expired, _ := enqueue("t", "expired", expiry)
	if _, err := enqueue("t", "overflow", later); err == nil {
		t.Fatal("a full queue accepted a delivery")
	}
	testwait.For(t, 5*time.Second, `"expired" past its deadline`, func() bool { return time.Now().After(expiry) })
	p.mu.Lock()
	p.block = nil
	p.mu.Unlock()
	close(gate)
	if r := <-first.result; r.err == nil {
		t.Fatal("blocked delivery succeeded")
	}
	for i, d := range ds {
		if r := <-d.result; r.err != nil || r.delivered != 1 {
			t.Fatalf("delivery %d: %+v", i+1, r)
		}
	}
	if r := <-expired.result; !errors.Is(r.err, errExpired) {
		t.Fatalf("expired delivery: %+v", r)
	}
	if got := p.received(); !slices.Equal(got, []string{"t:1", "t:2", "u:3", "t:4", "t:5"}) {
		t.Fatalf("peer got %q", got)
	}
	p.mu.Lock()
	requests := p.requests
	p.mu.Unlock()
	if requests != 3 { // [1 2] [3] [4 5]
		t.Fatalf("%d requests, want 3", requests)
	}
	if st := hub.Stats(); st.RemoteFailures != 3 { // blocked, expired, overflow
		t.Fatalf("failures %+v", st)
	}
	for _, result := range []string{"overflow", "expired"} {
		if v := metricValue(t, reg, "quorumq_pubsub_fanout_deliveries_total", map[string]string{"peer": "p", "result": result}); v != 1 {
			t.Fatalf("%s deliveries: %v", result, v)
		}
	}
}

// Clients lists this node's subscribers first, then each answering
// peer's by id, with Node set; a peer that does not answer is left out.
func Test_Fanout_Clients(t *testing.T) {
	a, b, dead := newFakePeer(t, "a"), newFakePeer(t, "b"), newFakePeer(t, "dead")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.clients = []Client{{ID: 1, RemoteAddr: "1.1.1.1:1", ConnectedAt: at, Topic: "t"}, {ID: 2, RemoteAddr: "1.1.1.1:2", ConnectedAt: at}}
	b.clients = []Client{{ID: 7, RemoteAddr: "2.2.2.2:7", ConnectedAt: at}}
	dead.srv.Close()
	dir := &fakeDir{peers: []Peer{a.peer(), b.peer(), dead.peer()}}
	f, hub, _ := newTestFanout(t, dir, time.Second, 0)

	// One local subscriber.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hub.Subscribe(w, r, SubscribeOptions{Topic: "t"})
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close)
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	bufio.NewReader(resp.Body).ReadByte()

	cs, err := f.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, c.Node+"/"+c.RemoteAddr)
	}
	want := []string{"me/" + cs[0].RemoteAddr, "a/1.1.1.1:1", "a/1.1.1.1:2", "b/2.2.2.2:7"}
	if !slices.Equal(got, want) {
		t.Fatalf("clients %q, want %q", got, want)
	}
}

// Close fails what is queued and aborts what is in flight; Publish then
// reaches nobody.
func Test_Fanout_Close(t *testing.T) {
	p := newFakePeer(t, "p")
	release := make(chan struct{})
	p.block = release
	t.Cleanup(func() { close(release) })
	dir := &fakeDir{peers: []Peer{p.peer()}, subs: map[string][]string{"t": {"p"}}}
	f, _, _ := newTestFanout(t, dir, 10*time.Second, 0)
	done := make(chan error, 1)
	go func() {
		_, err := f.Publish(context.Background(), "t", [][]byte{[]byte("x")})
		done <- err
	}()
	testwait.For(t, 10*time.Second, "the delivery in flight", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.blocked == 1
	})
	start := time.Now()
	f.Close()
	if err := <-done; err == nil {
		t.Fatal("publish in flight succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := f.Publish(context.Background(), "t", [][]byte{[]byte("x")}); !errors.Is(err, ErrFanoutClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}

// Deliver counts remote messages apart from local publishes; TopicCounts
// and OnChange follow subscribes and disconnects.
func Test_Hub_DeliverTopicCountsOnChange(t *testing.T) {
	var changes atomic.Int32
	e := newHubEnv(t, func(o *Options) { o.OnChange = func() { changes.Add(1) } })
	c1 := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
	c2 := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
	testwait.For(t, 10*time.Second, "two subscribers", func() bool {
		return e.hub.TopicCounts()["t"] == 2 && changes.Load() == 2
	})

	if n := e.hub.Deliver("t", [][]byte{[]byte("a"), []byte("b")}); n != 2 {
		t.Fatalf("Deliver reached %d", n)
	}
	e.hub.Publish("t", [][]byte{[]byte("c")})
	if st := e.hub.Stats(); st.RemoteReceived != 2 || st.MessagesReceived != 1 || st.MessagesSent != 6 {
		t.Fatalf("stats %+v", st)
	}
	c1.Close()
	testwait.For(t, 10*time.Second, "one subscriber", func() bool {
		return e.hub.TopicCounts()["t"] == 1 && changes.Load() == 3
	})

	c2.Close()
	testwait.For(t, 10*time.Second, "none", func() bool {
		return len(e.hub.TopicCounts()) == 0 && changes.Load() == 4
	})

}

// The queue is bounded in bytes too; a publish larger than the bound still
// goes to an empty queue.
func Test_Fanout_QueueBytes(t *testing.T) {
	p := newFakePeer(t, "p")
	release := make(chan struct{})
	p.block = release
	t.Cleanup(func() { close(release) })
	hub, _ := NewHub(quietOptions())
	o := DefaultFanoutOptions()
	o.Hub, o.Directory, o.Peer, o.Logger = hub, &fakeDir{}, peertest.Client(t), slog.New(slog.DiscardHandler)
	o.Timeout, o.QueueBytes = 5*time.Second, 100
	f, err := NewFanout(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	enqueue := func(size int) error {
		d := &delivery{topic: "t", record: make([]byte, size), msgs: 1, deadline: time.Now().Add(5 * time.Second), result: make(chan deliveryResult, 1)}
		return f.enqueue(p.peer(), d)
	}
	if err := enqueue(10); err != nil { // taken by the sender, which blocks
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the sender to take it", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		q := f.peers["p"]
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.items) == 0
	})

	if err := enqueue(150); err != nil {
		t.Fatalf("a large publish into an empty queue: %v", err)
	}
	if err := enqueue(1); err == nil {
		t.Fatal("a full queue (in bytes) accepted a publish")
	}
	if st := hub.Stats(); st.RemoteFailures != 1 {
		t.Fatalf("failures %+v", st)
	}
}
