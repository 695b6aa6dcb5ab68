package pubsub

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testwait"
)

// stall opens n subscribers of topic "t" that never read, half multipart,
// half newline, all on HTTP/1.1, and waits until they are connected and
// the kernel took their response heads.
func (e *hubEnv) stall(n int) []*net.TCPConn {
	e.t.Helper()
	conns := make([]*net.TCPConn, n)
	for i := range conns {
		conns[i] = e.dial(fmt.Sprintf("GET /sub?multipart=%d HTTP/1.1\r\nHost: x\r\n\r\n", i%2), 4096)
	}
	testwait.For(e.t, 30*time.Second, "the stalled subscribers", func() bool {
		cs := e.hub.Clients()
		return len(cs) == n && !slices.ContainsFunc(cs, func(c Client) bool { return c.PendingBytes > 0 })
	})
	return conns
}

// manyMessages returns n messages of 9 bytes, as a 1 MB /pub of 100,001.
func manyMessages(n int) [][]byte {
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "msg%06d", i)
	}
	return msgs
}

// batchesOf is what one publish of msgs costs the budget when shared by
// subs subscribers half in each of the two HTTP/1.1 modes.
func batchesOf(msgs [][]byte, subs int) int64 {
	_, _, a := batchSize(msgs, modeMultipartChunked, DefaultMaxPendingBytes)
	_, _, b := batchSize(msgs, modeNewlineChunked, DefaultMaxPendingBytes)
	return a + b + int64(subs)*pieceCost
}

// Test_Hub_ManyMessagesToStalledSubscribers_BufferedOnce: a publish of
// 100,001 messages to 300 subscribers that never read hands each of them
// one piece of a batch framed once per mode: the node holds each
// publish's frames once, not once per subscriber, and every byte of it is
// given back when the subscribers leave.
func Test_Hub_ManyMessagesToStalledSubscribers_BufferedOnce(t *testing.T) {
	const subs = 300
	e := newHubEnv(t, func(o *Options) { o.SendBuffer = 4096 })
	conns := e.stall(subs)
	heads := e.hub.Stats().BufferedBytes // nothing pending: the heads are written
	msgs := manyMessages(100_001)
	one := batchesOf(msgs, subs)
	for i := range 3 {
		start := time.Now()
		if n := e.hub.Publish("t", msgs); n != subs {
			t.Fatalf("publish %d reached %d subscribers", i, n)
		}
		t.Logf("publish %d of %d messages to %d stalled subscribers: %v", i, len(msgs), subs, time.Since(start))
	}
	st := e.hub.Stats()
	if st.KickedClients != 0 || st.MessagesSent != 3*subs*uint64(len(msgs)) {
		t.Fatalf("stats %+v", st)
	}
	// Copied per subscriber, the three publishes would be about 3 × 300 ×
	// 4.5 MB; shared, they are three batches per mode.
	if got, want := st.BufferedBytes-heads, 3*one; got > want {
		t.Fatalf("buffered %d bytes for 3 publishes, want at most %d (%d per publish)", got, want, one)
	}
	for _, c := range e.hub.Clients() {
		if c.PendingBytes == 0 {
			t.Fatalf("a stalled subscriber has nothing pending: %+v", c)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	testwait.For(t, 30*time.Second, "every subscriber gone and every byte given back", func() bool {
		st := e.hub.Stats()
		return st.CurrentConnections == 0 && st.BufferedBytes == 0
	})
}

// Test_Hub_KickAtMessageGranularity: when a publish's messages fit only in
// part, the subscriber is kicked (the notice counts the part that fit, as
// if queued one by one) and messages_sent counts that part.
func Test_Hub_KickAtMessageGranularity(t *testing.T) {
	e := newHubEnv(t, func(o *Options) { o.MaxPendingBytes = 1000 })
	conn := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
	testwait.For(t, 10*time.Second, "the stream's start written", func() bool {
		cs := e.hub.Clients()
		return len(cs) == 1 && cs[0].PendingBytes == 0
	})
	msgs := make([][]byte, 100)
	for i := range msgs {
		msgs[i] = []byte(strings.Repeat("k", 98)) // 99 framed bytes
	}
	if n := e.hub.Publish("t", msgs); n != 0 {
		t.Fatalf("publish reached %d subscribers", n)
	}
	if st := e.hub.Stats(); st.KickedClients != 1 || st.MessagesSent != 10 {
		t.Fatalf("stats %+v, want 1 kicked and 10 sent", st)
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(got), "\r\n\r\nERROR_TOO_SLOW. kicked for having 990 pending bytes\n") {
		t.Fatalf("stream %q", got)
	}
	testwait.For(t, 10*time.Second, "the budget given back", func() bool { return e.hub.Stats().BufferedBytes == 0 })
}

// Test_Hub_Budget_KicksTheSubscriberFurthestBehind: when a publish would
// take the node past MaxBufferedBytes, the subscriber holding the oldest
// batch is kicked (logged, counted, sent the notice) and the one that keeps
// up is not; the node never holds more than the bound.
func Test_Hub_Budget_KicksTheSubscriberFurthestBehind(t *testing.T) {
	const limit = 1 << 20
	e := newHubEnv(t, func(o *Options) { o.MaxBufferedBytes, o.SendBuffer = limit, 4096 })
	stalled := e.stall(1)[0]
	reader := e.dial("GET /sub?multipart=0 HTTP/1.1\r\nHost: x\r\n\r\n", 0)
	var read atomic.Int64
	go func() {
		n, _ := io.Copy(io.Discard, reader)
		read.Add(n)
	}()
	testwait.For(t, 10*time.Second, "two subscribers", func() bool { return e.hub.Stats().CurrentConnections == 2 })

	msg := []byte(strings.Repeat("b", 64<<10))
	var peak int64
	for i := 0; e.hub.Stats().KickedClients == 0; i++ {
		if i == 100 {
			t.Fatal("nobody kicked after 100 publishes of 64 KiB into a 1 MiB budget")
		}
		e.hub.Publish("t", [][]byte{msg})
		peak = max(peak, e.hub.Stats().BufferedBytes)
		// The reader keeps up: the next publish waits until the kernel took
		// this one for it, so that only the stalled subscriber falls behind
		// however loaded the machine (it once lagged too under -race).
		testwait.For(t, 10*time.Second, "the reader to take the publish", func() bool {
			cs := e.hub.Clients()
			return len(cs) == 0 || cs[len(cs)-1].PendingBytes == 0 || cs[len(cs)-1].Kicked
		})
	}
	if peak > limit {
		t.Fatalf("buffered %d bytes, over the bound %d", peak, limit)
	}
	var kicked []bool
	for _, c := range e.hub.Clients() {
		kicked = append(kicked, c.Kicked)
	}
	if !slices.Equal(kicked, []bool{true, false}) {
		t.Fatalf("kicked %v, want the stalled subscriber only", kicked)
	}
	stalled.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(stalled)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`ERROR_TOO_SLOW\. kicked for having \d+ pending bytes\n$`).Match(got) {
		t.Fatalf("the kicked stream ends ...%q", got[max(0, len(got)-80):])
	}
	// The one that keeps up still gets every publish.
	if n := e.hub.Publish("t", [][]byte{[]byte("after")}); n != 1 {
		t.Fatalf("publish after the kick reached %d", n)
	}
	if st := e.hub.Stats(); st.BufferOverruns != 0 {
		t.Fatalf("overruns %+v", st)
	}
}

// Test_Hub_Budget_OversizePublishStillDelivered: a publish larger than the
// whole budget, with nobody holding anything to kick, still goes to the
// subscriber (nothing is refused silently) and is counted as an overrun.
func Test_Hub_Budget_OversizePublishStillDelivered(t *testing.T) {
	e := newHubEnv(t, func(o *Options) { o.MaxBufferedBytes = 64 << 10 })
	conn := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
	br := bufio.NewReader(conn)
	readHead(t, conn, br)
	readExactly(t, conn, br, 2)
	testwait.For(t, 10*time.Second, "nothing pending", func() bool {
		cs := e.hub.Clients()
		return len(cs) == 1 && cs[0].PendingBytes == 0
	})
	big := strings.Repeat("o", 256<<10)
	if n := e.hub.Publish("t", [][]byte{[]byte(big)}); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	if got := readExactly(t, conn, br, len(big)+1); got != big+"\n" {
		t.Fatal("stream differs")
	}
	if st := e.hub.Stats(); st.BufferOverruns != 1 || st.KickedClients != 0 {
		t.Fatalf("stats %+v", st)
	}
	testwait.For(t, 10*time.Second, "the budget given back", func() bool { return e.hub.Stats().BufferedBytes < 1<<10 })
}

// Test_Fanout_RecordsHeldInBudget: a publish's record counts once in the
// node's budget while peers have it, however many peers, and is given back
// when they are done; a record that does not fit a peer's queue bytes is
// counted as dropped for that peer, once.
func Test_Fanout_RecordsHeldInBudget(t *testing.T) {
	a, b := newFakePeer(t, "a"), newFakePeer(t, "b")
	release := make(chan struct{})
	a.block, b.block = release, release
	dir := &fakeDir{peers: []Peer{a.peer(), b.peer()}, subs: map[string][]string{"t": {"a", "b"}}}
	f, hub, reg := newTestFanout(t, dir, 10*time.Second, 0)
	f.o.QueueBytes = 150 << 10
	msg := []byte(strings.Repeat("r", 100<<10))
	record := int64(len(AppendDeliveryRecord(nil, [][]byte{msg})))
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Publish(context.Background(), "t", [][]byte{msg}) // in flight to both, blocked
	}()
	testwait.For(t, 10*time.Second, "both deliveries in flight", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		return a.blocked == 1 && b.blocked == 1
	})
	if got := hub.Stats().BufferedBytes; got != record {
		t.Fatalf("buffered %d, want the record once (%d)", got, record)
	}
	// Two more: the first waits in each queue, the second does not fit
	// the queues' bytes and is dropped for each peer at once.
	go f.Publish(context.Background(), "t", [][]byte{msg})
	testwait.For(t, 10*time.Second, "the second publish queued", func() bool { return hub.Stats().BufferedBytes == 2*record })
	if _, err := f.Publish(context.Background(), "t", [][]byte{msg}); err == nil || !strings.Contains(err.Error(), "queue full") {
		t.Fatalf("third publish: %v", err)
	}
	if v := metricValue(t, reg, "quorumq_pubsub_fanout_deliveries_total", map[string]string{"peer": "a", "result": "overflow"}); v != 1 {
		t.Fatalf("overflow deliveries for a: %v", v)
	}
	if st := hub.Stats(); st.RemoteFailures != 2 || st.RemoteDropped != 2 || st.BufferedBytes != 2*record {
		t.Fatalf("stats %+v", st)
	}
	close(release)
	<-done
	testwait.For(t, 10*time.Second, "every record given back", func() bool { return hub.Stats().BufferedBytes == 0 })
}

// Test_Fanout_ListedMeansReached: a peer whose /internal/clients answer
// lists a subscriber of a topic gets the publishes of that topic at once,
// before its gossiped set says so; kicked subscribers and peers no longer
// alive do not count.
func Test_Fanout_ListedMeansReached(t *testing.T) {
	b, gone := newFakePeer(t, "b"), newFakePeer(t, "gone")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.clients = []Client{{ID: 1, RemoteAddr: "1.1.1.1:1", ConnectedAt: at, Topic: "t"}, {ID: 2, RemoteAddr: "1.1.1.1:2", ConnectedAt: at, Topic: "k", Kicked: true}}
	gone.clients = []Client{{ID: 3, RemoteAddr: "1.1.1.1:3", ConnectedAt: at, Topic: "t"}}
	dir := &fakeDir{peers: []Peer{b.peer(), gone.peer()}} // the gossip knows no subscriber
	f, _, _ := newTestFanout(t, dir, time.Second, 0)

	if n, err := f.Publish(context.Background(), "t", [][]byte{[]byte("before")}); n != 0 || err != nil {
		t.Fatalf("publish before the listing: %d, %v", n, err)
	}
	cs, err := f.Clients(context.Background())
	if err != nil || len(cs) != 3 {
		t.Fatalf("clients %+v, %v", cs, err)
	}
	dir.mu.Lock()
	dir.peers = []Peer{b.peer()} // "gone" left the cluster since
	dir.mu.Unlock()
	for i := range 3 {
		msg := fmt.Sprintf("listed-%d", i)
		if n, err := f.Publish(context.Background(), "t", [][]byte{[]byte(msg)}); n != 1 || err != nil {
			t.Fatalf("publish %d after the listing: %d, %v", i, n, err)
		}
	}
	if n, _ := f.Publish(context.Background(), "k", [][]byte{[]byte("kicked")}); n != 0 {
		t.Fatalf("a kicked subscriber's topic was routed: %d", n)
	}
	if got := b.received(); !slices.Equal(got, []string{"t:listed-0", "t:listed-1", "t:listed-2"}) {
		t.Fatalf("b got %q", got)
	}
	if got := gone.received(); len(got) != 0 {
		t.Fatalf("a peer no longer alive got %q", got)
	}
	// A later answer without the subscriber forgets the topic.
	b.mu.Lock()
	b.clients = nil
	b.mu.Unlock()
	f.Clients(context.Background())
	if n, _ := f.Publish(context.Background(), "t", [][]byte{[]byte("after")}); n != 0 || len(b.received()) != 3 {
		t.Fatalf("publish after the subscriber left: %d, %q", n, b.received())
	}
}

// Test_Fanout_DeliveryCarriesItsTime: each delivery tells the receiver how
// long it may still deliver: less than the publish's timeout, by the
// margin kept for the answer.
func Test_Fanout_DeliveryCarriesItsTime(t *testing.T) {
	p := newFakePeer(t, "p")
	dir := &fakeDir{peers: []Peer{p.peer()}, subs: map[string][]string{"t": {"p"}}}
	f, hub, _ := newTestFanout(t, dir, time.Second, 0)
	if n, err := f.Publish(context.Background(), "t", [][]byte{[]byte("x")}); n != 1 || err != nil {
		t.Fatalf("publish: %d, %v", n, err)
	}
	p.mu.Lock()
	within := slices.Clone(p.within)
	p.mu.Unlock()
	var ms int
	if len(within) != 1 {
		t.Fatalf("%s headers %q", api.HeaderDeliverWithin, within)
	}
	if _, err := fmt.Sscan(within[0], &ms); err != nil || ms <= 0 || ms > 750 {
		t.Fatalf("%s: %q, want (0, 750] ms (1 s less the 250 ms margin)", api.HeaderDeliverWithin, within[0])
	}
	if st := hub.Stats(); st.RemoteSent != 1 {
		t.Fatalf("remote sent %+v", st)
	}
}

// Test_Hub_AmplifiedBody_FramedOnlyAsFarAsAnyoneCanTake: a body of many
// empty messages, which multipart framing makes some 60 times larger, is
// framed only as far as a subscriber with nothing pending could take it:
// the node holds about MaxPendingBytes per mode for it, not the whole
// amplified body, and each subscriber gets what fits and is kicked where
// the reference would kick it.
func Test_Hub_AmplifiedBody_FramedOnlyAsFarAsAnyoneCanTake(t *testing.T) {
	const limit = 64 << 10
	e := newHubEnv(t, func(o *Options) { o.MaxPendingBytes, o.SendBuffer = limit, 4096 })
	e.stall(2) // one newline, one multipart, nothing pending
	msgs := make([][]byte, 100_000)
	for i := range msgs {
		msgs[i] = []byte{}
	}
	var framed int
	for _, m := range []mode{modeNewlineChunked, modeMultipartChunked} {
		count, dataLen, base := batchSize(msgs, m, limit)
		if dataLen > limit || base > limit+8*int64(count)+batchOverhead || count == len(msgs) {
			t.Fatalf("mode %d: %d messages framed in %d bytes (budget %d) for a limit of %d", m, count, dataLen, base, limit)
		}
		framed += count
	}
	if n := e.hub.Publish("t", msgs); n != 0 {
		t.Fatalf("the whole body reached %d subscribers", n)
	}
	if st := e.hub.Stats(); st.KickedClients != 2 || st.MessagesSent != uint64(framed) {
		t.Fatalf("stats %+v: want both kicked after the %d messages that fit", st, framed)
	}
	testwait.For(t, 10*time.Second, "the budget given back", func() bool { return e.hub.Stats().BufferedBytes == 0 })
}
