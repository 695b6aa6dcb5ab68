package pubsub

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/quorumq/quorumq/internal/testwait"
)

// hubEnv is a hub behind a real HTTP server whose every request subscribes
// to topic "t" (multipart=0 unless the query says multipart=1).
type hubEnv struct {
	t    *testing.T
	hub  *Hub
	srv  *httptest.Server
	addr string
}

// quietOptions are the defaults with a silent logger.
func quietOptions() Options {
	o := DefaultOptions()
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// newHubEnv serves a hub built from quietOptions changed by set (nil: none).
func newHubEnv(t *testing.T, set func(*Options)) *hubEnv {
	t.Helper()
	opts := quietOptions()
	if set != nil {
		set(&opts)
	}
	hub, err := NewHub(opts)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := hub.Subscribe(w, r, SubscribeOptions{Topic: "t", Multipart: r.URL.Query().Get("multipart") == "1"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close) // runs first
	return &hubEnv{t: t, hub: hub, srv: srv, addr: srv.Listener.Addr().String()}
}

// dial opens a raw subscriber connection and sends request. readBuffer > 0
// sets a small receive buffer, as a client that reads slowly has.
func (e *hubEnv) dial(request string, readBuffer int) *net.TCPConn {
	e.t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if readBuffer > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error { return setReceiveBuffer(c, readBuffer) }
	}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	conn := c.(*net.TCPConn)
	e.t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		e.t.Fatalf("write request: %v", err)
	}
	return conn
}

// readHead reads a response head, through the blank line.
func readHead(t *testing.T, conn net.Conn, br *bufio.Reader) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var head strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			return head.String()
		}
	}
}

func readExactly(t *testing.T, conn net.Conn, br *bufio.Reader, n int) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatalf("reading %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

// TestHub_SlowSubscriber_KickedAndPublisherMemoryBounded: a subscriber that
// never reads does not slow the publisher, never holds more than the limit
// plus one message, is kicked once, and finally reads the raw notice and
// EOF.
func TestHub_SlowSubscriber_KickedAndPublisherMemoryBounded(t *testing.T) {
	const (
		limit   = 4 << 20
		msgSize = 1 << 20
		count   = 80
	)
	e := newHubEnv(t, func(o *Options) { o.MaxPendingBytes = limit })
	conn := e.dial("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", 4096)
	testwait.For(t, 10*time.Second, "the subscriber", func() bool { return e.hub.Stats().CurrentConnections == 1 })

	msg := []byte(strings.Repeat("z", msgSize))
	start := time.Now()
	maxPending := int64(0)
	for i := range count {
		if n := e.hub.Publish("t", [][]byte{msg}); n > 1 {
			t.Fatalf("publish %d reached %d subscribers", i, n)
		}
		for _, c := range e.hub.Clients() {
			maxPending = max(maxPending, c.PendingBytes)
		}
	}
	// Loose: 80 publishes only queue (or drop) 80 MiB; a publisher that
	// waited on the socket would block forever here.
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("publishing took %s", d)
	}
	if bound := int64(limit + msgSize + 64); maxPending > bound {
		t.Fatalf("pending bytes reached %d, more than the limit plus one message (%d)", maxPending, bound)
	}
	st := e.hub.Stats()
	if st.KickedClients != 1 {
		t.Fatalf("kicked_clients %d, want 1", st.KickedClients)
	}
	if st.MessagesReceived != count || st.MessagesSent >= count {
		t.Fatalf("messages received %d sent %d: want %d received and fewer sent", st.MessagesReceived, st.MessagesSent, count)
	}
	if cl := e.hub.Clients(); len(cl) == 1 && !cl[0].Kicked {
		t.Fatalf("client not marked kicked: %+v", cl[0])
	}

	// Now the client reads: what the kernel had accepted, then the notice,
	// then EOF.
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading the stream: %v (%d bytes)", err, len(got))
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("stream starts %q", got[:min(len(got), 40)])
	}
	// The notice follows whatever the kernel had accepted, which may end
	// inside a message, as in the reference.
	m := regexp.MustCompile(`ERROR_TOO_SLOW\. kicked for having (\d+) pending bytes\n$`).FindSubmatch(got)
	if m == nil {
		t.Fatalf("stream does not end in the notice: ...%q", got[max(0, len(got)-120):])
	}
	if n, _ := strconv.Atoi(string(m[1])); n > limit || n == 0 {
		t.Fatalf("notice reports %d pending bytes, want (0, %d]", n, limit)
	}
	if len(got) > count*msgSize/2 {
		t.Fatalf("subscriber received %d bytes: its output was not discarded", len(got))
	}
	testwait.For(t, 10*time.Second, "the kicked subscriber to be removed", func() bool { return e.hub.Stats().CurrentConnections == 0 })
	if n := e.hub.Publish("t", [][]byte{[]byte("after")}); n != 0 {
		t.Fatalf("publish after the kick reached %d subscribers", n)
	}
}

// Test_Hub_DisconnectRemovesSubscriber: a subscriber that closes leaves
// current_connections and /clients promptly, with no publish needed.
func Test_Hub_DisconnectRemovesSubscriber(t *testing.T) {
	e := newHubEnv(t, nil)
	conn := e.dial("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", 0)
	readHead(t, conn, bufio.NewReader(conn))
	if st := e.hub.Stats(); st.CurrentConnections != 1 || st.TotalConnections != 1 {
		t.Fatalf("stats %+v", st)
	}
	conn.Close()
	testwait.For(t, 10*time.Second, "the subscriber to leave", func() bool {
		return e.hub.Stats().CurrentConnections == 0 && len(e.hub.Clients()) == 0
	})

	if n := e.hub.Publish("t", [][]byte{[]byte("x")}); n != 0 {
		t.Fatalf("publish reached %d subscribers", n)
	}
}

// Test_Hub_PublishOrderAndDelivered: messages arrive in order, <C> counts
// the subscribers sent the last message, and messages_sent counts pairs.
func Test_Hub_PublishOrderAndDelivered(t *testing.T) {
	e := newHubEnv(t, nil)
	var conns []net.Conn
	var readers []*bufio.Reader
	for range 2 {
		c := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
		br := bufio.NewReader(c)
		readHead(t, c, br)
		readExactly(t, c, br, 2) // the leading "\r\n"
		conns, readers = append(conns, c), append(readers, br)
	}
	if n := e.hub.Publish("t", [][]byte{[]byte("a"), []byte("b"), []byte("")}); n != 2 {
		t.Fatalf("delivered %d, want 2", n)
	}
	if n := e.hub.Publish("other", [][]byte{[]byte("x")}); n != 0 {
		t.Fatalf("other topic delivered %d", n)
	}
	for i, c := range conns {
		if got := readExactly(t, c, readers[i], 5); got != "a\nb\n\n" {
			t.Fatalf("subscriber %d got %q", i, got)
		}
	}
	st := e.hub.Stats()
	if st.MessagesReceived != 4 || st.MessagesSent != 6 || st.TotalConnections != 2 {
		t.Fatalf("stats %+v", st)
	}
	before := e.hub.ResetStats()
	if before.MessagesReceived != 4 || before.MessagesSent != 6 {
		t.Fatalf("ResetStats returned %+v", before)
	}
	if st := e.hub.Stats(); st.MessagesReceived != 0 || st.MessagesSent != 0 || st.TotalConnections != 2 || st.CurrentConnections != 2 {
		t.Fatalf("after reset %+v", st)
	}
}

// Test_Hub_HeadGetsHeadOnly: HEAD /sub gets the stream's head, no body, and
// the connection closes without a subscription.
func Test_Hub_HeadGetsHeadOnly(t *testing.T) {
	e := newHubEnv(t, func(o *Options) { o.Now = func() time.Time { return time.Date(2026, 11, 26, 15, 35, 27, 0, time.UTC) } })
	conn := e.dial("HEAD /sub HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 0)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	want := "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\n" +
		"Date: Thu, 26 Nov 2026 15:35:27 GMT\r\nConnection: close\r\n\r\n"
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if st := e.hub.Stats(); st.TotalConnections != 0 || st.CurrentConnections != 0 {
		t.Fatalf("HEAD subscribed: %+v", st)
	}
}

// Test_Hub_WebSocketReceivesMessages: a WebSocket subscriber gets each
// message as one frame, text or binary by content, and is listed.
func Test_Hub_WebSocketReceivesMessages(t *testing.T) {
	e := newHubEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/sub", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	testwait.For(t, 10*time.Second, "the subscriber", func() bool { return e.hub.Stats().CurrentConnections == 1 })
	if cl := e.hub.Clients(); len(cl) != 1 || !cl[0].WebSocket || cl[0].Topic != "t" {
		t.Fatalf("clients %+v", cl)
	}
	// Client frames are ignored, not fatal.
	if err := c.Write(ctx, websocket.MessageText, []byte("ignored")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 70)
	if n := e.hub.Publish("t", [][]byte{[]byte("hello"), []byte(long), {0xff, 0xfe}}); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	want := []struct {
		typ  websocket.MessageType
		data string
	}{{websocket.MessageText, "hello"}, {websocket.MessageText, long}, {websocket.MessageBinary, "\xff\xfe"}}
	for _, w := range want {
		typ, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != w.typ || string(data) != w.data {
			t.Fatalf("got %v %q, want %v %q", typ, data, w.typ, w.data)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	testwait.For(t, 10*time.Second, "the subscriber to leave", func() bool { return e.hub.Stats().CurrentConnections == 0 })
}

// Test_Hub_WebSocketCrossOriginRefused: a browser page from another origin
// cannot subscribe unless WebSocketOrigins allows it.
func Test_Hub_WebSocketCrossOriginRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		origins []string
		ok      bool
	}{{"refused", nil, false}, {"allowed", []string{"example.com"}, true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHubEnv(t, func(o *Options) { o.WebSocketOrigins = tc.origins })
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, res, err := websocket.Dial(ctx, "ws://"+e.addr+"/sub", &websocket.DialOptions{
				HTTPHeader: http.Header{"Origin": {"http://example.com"}},
			})
			if tc.ok != (err == nil) {
				t.Fatalf("dial: %v", err)
			}
			if err == nil {
				c.CloseNow()
			} else if res == nil || res.StatusCode != http.StatusForbidden {
				t.Fatalf("refusal %v", res)
			}
		})
	}
}

// Test_Hub_WebSocketSlowKicked: a WebSocket subscriber that does not read
// is kicked too, and gets the notice as a text message then close 1008.
func Test_Hub_WebSocketSlowKicked(t *testing.T) {
	const limit = 1 << 20
	e := newHubEnv(t, func(o *Options) { o.MaxPendingBytes = limit })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/sub", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(-1)
	testwait.For(t, 10*time.Second, "the subscriber", func() bool { return e.hub.Stats().CurrentConnections == 1 })
	msg := []byte(strings.Repeat("w", 256<<10))
	for i := 0; e.hub.Stats().KickedClients == 0; i++ {
		if i > 400 {
			t.Fatal("not kicked after 100 MiB")
		}
		e.hub.Publish("t", [][]byte{msg})
		for _, cl := range e.hub.Clients() {
			if cl.PendingBytes > limit+int64(len(msg)) {
				t.Fatalf("pending %d", cl.PendingBytes)
			}
		}
	}
	var last string
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("read ended with %v, want close 1008", err)
			}
			break
		}
		last = string(data)
	}
	if !strings.HasPrefix(last, "ERROR_TOO_SLOW. kicked for having ") {
		t.Fatalf("last message %.80q", last)
	}
	testwait.For(t, 10*time.Second, "the subscriber to leave", func() bool { return e.hub.Stats().CurrentConnections == 0 })
}

// Test_Hub_CloseDisconnectsEveryone: Close ends every stream, even one
// whose client does not read, and refuses new subscribers.
func Test_Hub_CloseDisconnectsEveryone(t *testing.T) {
	e := newHubEnv(t, nil)
	reading := e.dial("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", 0)
	stuck := e.dial("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", 4096)
	testwait.For(t, 10*time.Second, "two subscribers", func() bool { return e.hub.Stats().CurrentConnections == 2 })
	big := []byte(strings.Repeat("s", 1<<20))
	for range 8 {
		e.hub.Publish("t", [][]byte{big})
	}
	done := make(chan struct{})
	go func() { e.hub.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return")
	}
	if st := e.hub.Stats(); st.CurrentConnections != 0 {
		t.Fatalf("after Close: %+v", st)
	}
	for _, c := range []net.Conn{reading, stuck} {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
			t.Fatalf("stream did not end: %v", err)
		}
	}
	res, err := http.Get(e.srv.URL + "/sub")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("subscribe after Close: %d", res.StatusCode)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "reset")
}

// Test_Hub_Options checks defaults and validation.
func Test_Hub_Options(t *testing.T) {
	if _, err := NewHub(DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if o := DefaultOptions(); o.MaxPendingBytes != 50<<20 || o.WriteTimeout != 50*time.Second ||
		o.MaxBufferedBytes != 256<<20 || o.SendBuffer != 32<<10 {
		t.Fatalf("defaults %+v", o)
	}
	if _, err := NewHub(Options{MaxPendingBytes: -1, SendBuffer: -1}); err == nil ||
		!strings.Contains(err.Error(), "MaxPendingBytes") || !strings.Contains(err.Error(), "WriteTimeout") ||
		!strings.Contains(err.Error(), "Logger") || !strings.Contains(err.Error(), "MaxBufferedBytes") ||
		!strings.Contains(err.Error(), "SendBuffer") {
		t.Fatalf("validation: %v", err)
	}
}

// Test_Hub_TinyMessagesCostTheirBytes: many tiny messages to a
// subscriber that is not reading cost about their framed bytes in the
// node's accounting, not an entry each, and arrive intact.
func Test_Hub_TinyMessagesCostTheirBytes(t *testing.T) {
	e := newHubEnv(t, nil)
	conn := e.dial("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n", 4096)
	testwait.For(t, 10*time.Second, "the subscriber", func() bool { return e.hub.Stats().CurrentConnections == 1 })
	const count = 200000
	msgs := make([][]byte, count)
	for i := range msgs {
		msgs[i] = []byte{}
	}
	if n := e.hub.Publish("t", msgs); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	// Each message is 6 framed bytes and an 8-byte offset.
	if got, limit := e.hub.Stats().BufferedBytes, int64(count*(6+8)+4096); got > limit {
		t.Fatalf("%d bytes buffered for %d tiny messages, want at most %d", got, count, limit)
	}
	br := bufio.NewReader(conn)
	readHead(t, conn, br)
	want := "2\r\n\r\n\r\n" + strings.Repeat("1\r\n\n\r\n", count)
	if got := readExactly(t, conn, br, len(want)); got != want {
		t.Fatal("stream differs")
	}
}

// Test_Hub_OversizeMessageToIdleSubscriber: one message larger than the
// limit still reaches a subscriber with nothing pending; the next one,
// while it is still pending, kicks.
func Test_Hub_OversizeMessageToIdleSubscriber(t *testing.T) {
	e := newHubEnv(t, func(o *Options) { o.MaxPendingBytes = 1 << 10 })
	conn := e.dial("GET /sub HTTP/1.0\r\n\r\n", 0)
	br := bufio.NewReader(conn)
	readHead(t, conn, br)
	readExactly(t, conn, br, 2)
	testwait.For(t, 10*time.Second, "nothing pending", func() bool {
		cl := e.hub.Clients()
		return len(cl) == 1 && cl[0].PendingBytes == 0
	})

	big := strings.Repeat("b", 4<<10)
	if n := e.hub.Publish("t", [][]byte{[]byte(big)}); n != 1 {
		t.Fatalf("delivered %d", n)
	}
	if got := readExactly(t, conn, br, len(big)+1); got != big+"\n" {
		t.Fatal("stream differs")
	}
	if st := e.hub.Stats(); st.KickedClients != 0 {
		t.Fatalf("kicked: %+v", st)
	}
}
