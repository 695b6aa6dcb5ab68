package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// These tests replay shared/reference/simplehttp-transcript.md section 3
// (T3.x) against the pubsub port, byte for byte where the reference is, and
// check the documented differences.

// psNow is the fake clock of the pubsub tests: the Date of transcript 3.5.
var psNow = time.Date(2026, 11, 26, 15, 35, 27, 0, time.UTC)

// psEnv is the pubsub handler over a real hub on a real HTTP server.
type psEnv struct {
	t    *testing.T
	hub  *pubsub.Hub
	srv  *httptest.Server
	addr string
}

func newPubsubEnv(t *testing.T, opts ...func(*Options)) *psEnv {
	t.Helper()
	hubOpts := pubsub.DefaultOptions()
	hubOpts.Now = func() time.Time { return psNow }
	hubOpts.Logger = psDiscard()
	hub, err := pubsub.NewHub(hubOpts)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	reg := prometheus.NewRegistry()
	o := DefaultOptions()
	o.Hub, o.Registerer, o.Gatherer, o.Logger = hub, reg, reg, psDiscard()
	for _, f := range opts {
		f(&o)
	}
	h, err := NewPubsubHandler(o)
	if err != nil {
		t.Fatalf("NewPubsubHandler: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(hub.Close) // runs first: hijacked streams are the hub's
	return &psEnv{t: t, hub: hub, srv: srv, addr: srv.Listener.Addr().String()}
}

func psDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// do sends one request; body "" sends none.
func (e *psEnv) do(method, target, body string) resp {
	return roundTrip(e.t, e.srv, method, target, body)
}

// want checks a request's status and exact body.
func (e *psEnv) want(r resp, code int, body string) {
	e.t.Helper()
	wantResp(e.t, r, code, body)
}

func (e *psEnv) mustGet(target, body string) resp {
	e.t.Helper()
	r := e.do(http.MethodGet, target, "")
	e.want(r, http.StatusOK, body)
	return r
}

func (e *psEnv) mustPub(target, body, reply string) {
	e.t.Helper()
	e.want(e.do(http.MethodPost, target, body), http.StatusOK, reply)
}

// rawSub is a subscriber on a raw TCP connection.
type rawSub struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	head string
}

// subscribe sends request on a new connection and reads the response head.
func (e *psEnv) subscribe(request string) *rawSub {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, 10*time.Second)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, request); err != nil {
		e.t.Fatalf("write: %v", err)
	}
	s := &rawSub{t: e.t, conn: conn, br: bufio.NewReader(conn)}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var head strings.Builder
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			e.t.Fatalf("reading head: %v (so far %q)", err, head.String())
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
	}
	s.head = head.String()
	return s
}

// expect reads len(want) bytes and compares them.
func (s *rawSub) expect(want string) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(s.br, got)
	if err != nil || string(got) != want {
		s.t.Fatalf("stream: got %q (%v), want %q", got[:n], err, want)
	}
}

// rawExchange sends a raw request with Connection: close and returns the
// whole response.
func (e *psEnv) rawExchange(request string) string {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.addr, 10*time.Second)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	io.WriteString(conn, request)
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(conn)
	if err != nil {
		e.t.Fatalf("reading: %v", err)
	}
	return string(b)
}

// pollUntil polls cond until it holds or the timeout passes.
func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const (
	headNewline11   = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nTransfer-Encoding: chunked\r\nDate: Thu, 26 Nov 2026 15:35:27 GMT\r\n\r\n"
	headMultipart11 = "HTTP/1.1 200 OK\r\ncontent-type: multipart/x-mixed-replace; boundary=xXPubSubXx\r\nTransfer-Encoding: chunked\r\nDate: Thu, 26 Nov 2026 15:35:27 GMT\r\n\r\n"
	headNewline10   = "HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n"
)

// Test_Pubsub_SpecFramingExamples checks the three examples of spec 3.3
// byte for byte, response head included (the Date comes from the fake
// clock).
func Test_Pubsub_SpecFramingExamples(t *testing.T) {
	tests := []struct {
		name, request string
		msgs          []string
		head, stream  string
	}{
		{"multipart=0 HTTP/1.1", "GET /sub?multipart=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", []string{"hello", "a"},
			headNewline11, "2\r\n\r\n\r\n6\r\nhello\n\r\n2\r\na\n\r\n"},
		{"default multipart HTTP/1.1", "GET /sub HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", []string{"hello"},
			headMultipart11, "e\r\n--xXPubSubXx\r\n\r\n3d\r\ncontent-type: */*\r\ncontent-length: 5\r\n\r\nhello\r\n--xXPubSubXx\r\n\r\n"},
		{"multipart=0 HTTP/1.0", "GET /sub?multipart=0 HTTP/1.0\r\n\r\n", []string{"hello", "a"},
			headNewline10, "\r\nhello\na\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newPubsubEnv(t)
			s := e.subscribe(tc.request)
			if s.head != tc.head {
				t.Fatalf("head %q, want %q", s.head, tc.head)
			}
			for _, m := range tc.msgs {
				e.mustPub("/pub", m, "Published 1 messages to 1 clients.\n")
			}
			s.expect(tc.stream)
		})
	}
}

// Test_Pubsub_Transcript3 replays T3.1–T3.8 in order: the same replies and
// streams, with our counter semantics and prompt disconnects.
func Test_Pubsub_Transcript3(t *testing.T) {
	e := newPubsubEnv(t)
	// T3.1 /stats text and JSON (ours is valid JSON).
	e.mustGet("/stats", "Active connections: 0\nTotal connections: 0\nMessages received: 0\nMessages sent: 0\nKicked clients: 0\n")
	e.mustGet("/stats?format=json", `{"current_connections": 0,"total_connections": 0,"messages_received": 0,"messages_sent": 0,"kicked_clients": 0}`+"\n")
	// T3.2
	e.mustGet("/clients", "no /sub connections\n")
	// T3.3, T3.3b: data= is ignored; GET and an empty body publish one
	// empty message.
	e.mustPub("/pub", "hello", "Published 1 messages to 0 clients.\n")
	e.mustGet("/pub?data=x", "Published 1 messages to 0 clients.\n")
	e.mustPub("/pub", "", "Published 1 messages to 0 clients.\n")
	// T3.4: the reference says Total connections: 3 here (a quirk we fix).
	e.mustGet("/stats", "Active connections: 0\nTotal connections: 0\nMessages received: 3\nMessages sent: 0\nKicked clients: 0\n")

	// T3.5 three subscribers.
	subs := []*rawSub{
		e.subscribe("GET /sub?multipart=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
		e.subscribe("GET /sub HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
		e.subscribe("GET /sub?multipart=0 HTTP/1.0\r\n\r\n"),
	}
	var clients strings.Builder
	for _, s := range subs {
		clients.WriteString(s.conn.LocalAddr().String() + " connected at 2026-11-26 15:35:27. output buffer size:0 state:7\n")
	}
	// The writer gives back the head's bytes just after the kernel took them.
	pollUntil(t, "/clients to show three idle subscribers", 10*time.Second, func() bool {
		return e.do(http.MethodGet, "/clients", "").body == clients.String()
	})
	e.mustPub("/pub", "hello", "Published 1 messages to 3 clients.\n")
	e.mustPub("/pub", "a\nb", "Published 2 messages to 3 clients.\n")
	e.mustPub("/pub", "c\nd\n", "Published 3 messages to 3 clients.\n")
	e.mustGet("/pub?data=x", "Published 1 messages to 3 clients.\n")
	e.mustPub("/pub", "with\r\ncrlf", "Published 2 messages to 3 clients.\n")

	if subs[0].head != headNewline11 || subs[1].head != headMultipart11 || subs[2].head != headNewline10 {
		t.Fatalf("heads %q %q %q", subs[0].head, subs[1].head, subs[2].head)
	}
	subs[0].expect("2\r\n\r\n\r\n6\r\nhello\n\r\n2\r\na\n\r\n2\r\nb\n\r\n2\r\nc\n\r\n2\r\nd\n\r\n1\r\n\n\r\n1\r\n\n\r\n6\r\nwith\r\n\r\n5\r\ncrlf\n\r\n")
	subs[1].expect("e\r\n--xXPubSubXx\r\n\r\n3d\r\ncontent-type: */*\r\ncontent-length: 5\r\n\r\nhello\r\n--xXPubSubXx\r\n\r\n" +
		"39\r\ncontent-type: */*\r\ncontent-length: 1\r\n\r\na\r\n--xXPubSubXx\r\n\r\n" +
		"39\r\ncontent-type: */*\r\ncontent-length: 1\r\n\r\nb\r\n--xXPubSubXx\r\n\r\n" +
		"39\r\ncontent-type: */*\r\ncontent-length: 1\r\n\r\nc\r\n--xXPubSubXx\r\n\r\n" +
		"39\r\ncontent-type: */*\r\ncontent-length: 1\r\n\r\nd\r\n--xXPubSubXx\r\n\r\n" +
		"38\r\ncontent-type: */*\r\ncontent-length: 0\r\n\r\n\r\n--xXPubSubXx\r\n\r\n" +
		"38\r\ncontent-type: */*\r\ncontent-length: 0\r\n\r\n\r\n--xXPubSubXx\r\n\r\n" +
		"3d\r\ncontent-type: */*\r\ncontent-length: 5\r\n\r\nwith\r\r\n--xXPubSubXx\r\n\r\n" +
		"3c\r\ncontent-type: */*\r\ncontent-length: 4\r\n\r\ncrlf\r\n--xXPubSubXx\r\n\r\n")
	subs[2].expect("\r\nhello\na\nb\nc\nd\n\n\nwith\r\ncrlf\n")

	// T3.6: the reference says Total connections: 15 (subscribes plus
	// messages); messages received and sent are the same.
	e.mustGet("/stats", "Active connections: 3\nTotal connections: 3\nMessages received: 12\nMessages sent: 27\nKicked clients: 0\n")
	// The reference notices gone subscribers only at the second publish
	// after they left; here they leave at once.
	for _, s := range subs {
		s.conn.Close()
	}
	pollUntil(t, "the subscribers to leave", 10*time.Second, func() bool { return e.hub.Stats().CurrentConnections == 0 })
	e.mustPub("/pub", "x1", "Published 1 messages to 0 clients.\n")
	e.mustGet("/clients", "no /sub connections\n")

	// T3.7 reset (any value): the reply shows the values before it.
	r := e.mustGet("/stats?reset=1", "Active connections: 0\nTotal connections: 3\nMessages received: 13\nMessages sent: 27\nKicked clients: 0\n")
	if got := r.header.Get("X-Pubsub-Messages-Received"); got != "13" {
		t.Fatalf("X-PUBSUB-MESSAGES-RECEIVED %q, want the value before the reset", got)
	}
	e.mustGet("/stats?format=json", `{"current_connections": 0,"total_connections": 3,"messages_received": 0,"messages_sent": 0,"kicked_clients": 0}`+"\n")

	// T3.8 /clients is exact; unknown paths 404 with an empty body.
	e.want(e.do(http.MethodGet, "/clients?x=1", ""), http.StatusNotFound, "")
	e.want(e.do(http.MethodGet, "/nothere", ""), http.StatusNotFound, "")
}

// fakeHub is a PubsubHub with function fields.
type fakeHub struct {
	mu        sync.Mutex
	published [][]string // one entry per Publish call
	topics    []string
	delivered int
	clients   []pubsub.Client
}

func (h *fakeHub) Publish(topic string, msgs [][]byte) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ms []string
	for _, m := range msgs {
		ms = append(ms, string(m))
	}
	h.published = append(h.published, ms)
	h.topics = append(h.topics, topic)
	return h.delivered
}

func (h *fakeHub) Subscribe(http.ResponseWriter, *http.Request, pubsub.SubscribeOptions) error {
	return pubsub.ErrClosed
}
func (h *fakeHub) Stats() pubsub.Stats      { return pubsub.Stats{} }
func (h *fakeHub) ResetStats() pubsub.Stats { return pubsub.Stats{} }
func (h *fakeHub) Clients() []pubsub.Client { return h.clients }

func (h *fakeHub) last() (string, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.topics[len(h.topics)-1], h.published[len(h.published)-1]
}

// Test_Pubsub_PubSplitsBody checks spec 3.2: only a POST body carries data,
// split on "\n" into count+1 messages with nothing trimmed.
func Test_Pubsub_PubSplitsBody(t *testing.T) {
	tests := []struct {
		name, method, target, body string
		msgs                       []string
		reply                      string
	}{
		{"GET has no body: one empty message", "GET", "/pub?data=x", "", []string{""}, "Published 1 messages to 2 clients.\n"},
		{"empty POST body", "POST", "/pub", "", []string{""}, "Published 1 messages to 2 clients.\n"},
		{"one message", "POST", "/pub", "hello", []string{"hello"}, "Published 1 messages to 2 clients.\n"},
		{"two messages", "POST", "/pub", "a\nb", []string{"a", "b"}, "Published 2 messages to 2 clients.\n"},
		{"trailing newline adds an empty message", "POST", "/pub", "c\nd\n", []string{"c", "d", ""}, "Published 3 messages to 2 clients.\n"},
		{"CR is kept", "POST", "/pub", "with\r\ncrlf", []string{"with\r", "crlf"}, "Published 2 messages to 2 clients.\n"},
		{"spaces are kept", "POST", "/pub", " x \n\n", []string{" x ", "", ""}, "Published 3 messages to 2 clients.\n"},
		{"form body is literal", "POST", "/pub?data=q", "data=y", []string{"data=y"}, "Published 1 messages to 2 clients.\n"},
		{"glob route", "POST", "/publish", "z", []string{"z"}, "Published 1 messages to 2 clients.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hub := &fakeHub{delivered: 2}
			e := newPubsubEnv(t, func(o *Options) { o.Hub = hub })
			e.want(e.do(tc.method, tc.target, tc.body), http.StatusOK, tc.reply)
			topic, msgs := hub.last()
			if topic != api.DefaultTopic || !slices.Equal(msgs, tc.msgs) {
				t.Fatalf("published %q to %q, want %q to %q", msgs, topic, tc.msgs, api.DefaultTopic)
			}
		})
	}
}

// Test_Pubsub_StatsHeadersAndJSON checks the X-PUBSUB-* headers as the
// reference spells them, that format=json is valid JSON with the
// reference's keys in order, and the reset rules.
func Test_Pubsub_StatsHeadersAndJSON(t *testing.T) {
	e := newPubsubEnv(t)
	s := e.subscribe("GET /sub HTTP/1.1\r\nHost: x\r\n\r\n")
	e.mustPub("/pub", "a\nb", "Published 2 messages to 1 clients.\n")
	s.expect("e\r\n--xXPubSubXx\r\n\r\n")

	raw := e.rawExchange("GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	for _, line := range []string{
		"HTTP/1.1 200 OK\r\n",
		"\r\nX-PUBSUB-TOTAL-CONNECTIONS: 1\r\n",
		"\r\nX-PUBSUB-ACTIVE-CONNECTIONS: 1\r\n",
		"\r\nX-PUBSUB-MESSAGES-RECEIVED: 2\r\n",
		"\r\nX-PUBSUB-MESSAGES-SENT: 2\r\n",
		"\r\nX-PUBSUB-KICKED-CLIENTS: 0\r\n",
		"\r\nContent-Type: text/html; charset=ISO-8859-1\r\n",
		"\r\n\r\nActive connections: 1\nTotal connections: 1\nMessages received: 2\nMessages sent: 2\nKicked clients: 0\n",
	} {
		if !strings.Contains(raw, line) {
			t.Fatalf("/stats response lacks %q:\n%s", line, raw)
		}
	}

	r := e.mustGet("/stats?format=json", `{"current_connections": 1,"total_connections": 1,"messages_received": 2,"messages_sent": 2,"kicked_clients": 0}`+"\n")
	var v map[string]int
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("format=json is not valid JSON: %v", err)
	}
	if len(v) != 5 || v["messages_sent"] != 2 {
		t.Fatalf("decoded %v", v)
	}
	if r.header.Get("X-Pubsub-Active-Connections") != "1" {
		t.Fatalf("JSON reply headers %v", r.header)
	}
	// format is exact: JSON only for "json".
	e.mustGet("/stats?format=JSON", "Active connections: 1\nTotal connections: 1\nMessages received: 2\nMessages sent: 2\nKicked clients: 0\n")

	// A reset= with an empty value resets; a bare "reset" stops query
	// parsing (libevent), so it does not.
	e.mustGet("/stats?reset", "Active connections: 1\nTotal connections: 1\nMessages received: 2\nMessages sent: 2\nKicked clients: 0\n")
	e.mustGet("/stats?format=json&reset=", `{"current_connections": 1,"total_connections": 1,"messages_received": 2,"messages_sent": 2,"kicked_clients": 0}`+"\n")
	e.mustGet("/stats", "Active connections: 1\nTotal connections: 1\nMessages received: 0\nMessages sent: 0\nKicked clients: 0\n")

	// HEAD reads; a HEAD that would reset is refused.
	if r := e.do(http.MethodHead, "/stats", ""); r.code != http.StatusOK {
		t.Fatalf("HEAD /stats: %d", r.code)
	}
	r = e.do(http.MethodHead, "/stats?reset=1", "")
	if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("HEAD /stats?reset=1: %d Allow %q", r.code, r.header.Get("Allow"))
	}
}

// Test_Pubsub_Clients checks both /clients forms, the exact route, and the
// node suffix of a cluster-wide listing.
func Test_Pubsub_Clients(t *testing.T) {
	e := newPubsubEnv(t)
	e.mustGet("/clients", "no /sub connections\n")
	s := e.subscribe("GET /sub?topic=t1 HTTP/1.1\r\nHost: x\r\n\r\n")
	want := s.conn.LocalAddr().String() + " connected at 2026-11-26 15:35:27. output buffer size:0 state:7\n"
	pollUntil(t, "the subscriber in /clients", 10*time.Second, func() bool {
		return e.do(http.MethodGet, "/clients", "").body == want
	})
	for _, target := range []string{"/clients?x=1", "/clients?", "/clientsx", "/clients/"} {
		e.want(e.do(http.MethodGet, target, ""), http.StatusNotFound, "")
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	hook := newPubsubEnv(t, func(o *Options) {
		o.Clients = func(context.Context) ([]pubsub.Client, error) {
			return []pubsub.Client{
				{RemoteAddr: "10.0.0.1:1234", ConnectedAt: at, PendingBytes: 57, Node: "n1"},
				{RemoteAddr: "10.0.0.2:5678", ConnectedAt: at, Node: "n2"},
			}, nil
		}
	})
	hook.mustGet("/clients", "10.0.0.1:1234 connected at 2026-01-02 02:04:05. output buffer size:57 state:7 node:n1\n"+
		"10.0.0.2:5678 connected at 2026-01-02 02:04:05. output buffer size:0 state:7 node:n2\n")
}

// Test_Pubsub_TopicsAreIsolated: topic= keeps streams apart, the default
// topic is its own, and invalid names are 400s.
func Test_Pubsub_TopicsAreIsolated(t *testing.T) {
	e := newPubsubEnv(t)
	a := e.subscribe("GET /sub?multipart=0&topic=a HTTP/1.0\r\n\r\n")
	def := e.subscribe("GET /sub?multipart=0 HTTP/1.0\r\n\r\n")
	explicitDefault := e.subscribe("GET /sub?topic=default&multipart=0 HTTP/1.0\r\n\r\n")
	e.mustPub("/pub?topic=a", "for-a", "Published 1 messages to 1 clients.\n")
	e.mustPub("/pub", "for-default", "Published 1 messages to 2 clients.\n")
	e.mustPub("/pub?topic=b", "for-b", "Published 1 messages to 0 clients.\n")
	a.expect("\r\nfor-a\n")
	def.expect("\r\nfor-default\n")
	explicitDefault.expect("\r\nfor-default\n")
	if st := e.hub.Stats(); st.MessagesSent != 3 || st.MessagesReceived != 3 {
		t.Fatalf("stats %+v", st)
	}

	for _, target := range []string{"/pub?topic=", "/pub?topic=a/b", "/sub?topic=a%20b", "/sub?topic=" + strings.Repeat("x", 65)} {
		r := e.do(http.MethodGet, target, "")
		if r.code != http.StatusBadRequest || r.header.Get(api.HeaderErrorCode) != "INVALID_TOPIC_NAME" ||
			!strings.HasPrefix(r.body, "invalid topic name ") || !strings.HasSuffix(r.body, "\n") {
			t.Fatalf("%s: %d %q %v", target, r.code, r.body, r.header)
		}
	}
}

// Test_Pubsub_RoutesAndMethods checks the glob routes, the admin routes
// and the method rules.
func Test_Pubsub_RoutesAndMethods(t *testing.T) {
	e := newPubsubEnv(t, func(o *Options) { o.Cluster = &fakeCluster{} })
	e.mustGet("/healthz", "ok\n")
	e.want(e.do(http.MethodGet, "/metricsx", ""), http.StatusNotFound, "")
	e.mustGet("/statsanything", "Active connections: 0\nTotal connections: 0\nMessages received: 0\nMessages sent: 0\nKicked clients: 0\n")

	// T3.9: /subscribe is /sub; multipart=2 is multipart, multipart=abc is 0.
	s := e.subscribe("GET /subscribe?multipart=2 HTTP/1.1\r\nHost: x\r\n\r\n")
	if s.head != headMultipart11 {
		t.Fatalf("head %q", s.head)
	}
	n := e.subscribe("GET /sub?multipart=abc HTTP/1.1\r\nHost: x\r\n\r\n")
	if n.head != headNewline11 {
		t.Fatalf("head %q", n.head)
	}
	x70 := strings.Repeat("x", 70)
	e.mustPub("/pub", x70, "Published 1 messages to 2 clients.\n")
	s.expect("e\r\n--xXPubSubXx\r\n\r\n7f\r\ncontent-type: */*\r\ncontent-length: 70\r\n\r\n" + x70 + "\r\n--xXPubSubXx\r\n\r\n")
	n.expect("2\r\n\r\n\r\n47\r\n" + x70 + "\n\r\n")

	// Connection: close is echoed.
	c := e.subscribe("GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if !strings.HasSuffix(c.head, "\r\nConnection: close\r\n\r\n") {
		t.Fatalf("head %q", c.head)
	}

	// HEAD /pub would publish: refused. Other methods: 405.
	r := e.do(http.MethodHead, "/pub", "")
	if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST" {
		t.Fatalf("HEAD /pub: %d Allow %q", r.code, r.header.Get("Allow"))
	}
	r = e.do(http.MethodPut, "/sub", "x")
	if r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, POST, HEAD" || r.header.Get(api.HeaderErrorCode) != "METHOD_NOT_ALLOWED" {
		t.Fatalf("PUT /sub: %d %v", r.code, r.header)
	}
	if st := e.hub.Stats(); st.MessagesReceived != 1 || st.TotalConnections != 3 {
		t.Fatalf("stats %+v", st)
	}

	// Without a Cluster, admin paths are 404.
	bare := newPubsubEnv(t)
	bare.want(bare.do(http.MethodGet, "/healthz", ""), http.StatusNotFound, "")
}

// Test_Pubsub_HeadSubIsNotASubscriber: HEAD /sub answers the head and
// closes, unlike the reference, which leaves a ghost subscriber behind
// ps_to_http's probe (T4.7).
func Test_Pubsub_HeadSubIsNotASubscriber(t *testing.T) {
	e := newPubsubEnv(t)
	got := e.rawExchange("HEAD /sub?multipart=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
	if want := strings.TrimSuffix(headNewline11, "\r\n") + "Connection: close\r\n\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if st := e.hub.Stats(); st.TotalConnections != 0 {
		t.Fatalf("HEAD subscribed: %+v", st)
	}
}

// fakeFanout is a Fanout with a function field.
type fakeFanout func(ctx context.Context, topic string, msgs [][]byte) (int, error)

func (f fakeFanout) Publish(ctx context.Context, topic string, msgs [][]byte) (int, error) {
	return f(ctx, topic, msgs)
}

// Test_Pubsub_FanoutCountsRemoteSubscribers: <C> is local plus remote
// subscribers; a failing node does not fail the publish.
func Test_Pubsub_FanoutCountsRemoteSubscribers(t *testing.T) {
	var (
		mu        sync.Mutex
		remote    int
		remoteErr error
		gotTopic  string
		gotMsgs   []string
		deadline  bool
	)
	set := func(n int, err error) {
		mu.Lock()
		defer mu.Unlock()
		remote, remoteErr = n, err
	}
	e := newPubsubEnv(t, func(o *Options) {
		o.Fanout = fakeFanout(func(ctx context.Context, topic string, msgs [][]byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			_, deadline = ctx.Deadline()
			gotTopic, gotMsgs = topic, nil
			for _, m := range msgs {
				gotMsgs = append(gotMsgs, string(m))
			}
			return remote, remoteErr
		})
	})
	e.subscribe("GET /sub?topic=t HTTP/1.1\r\nHost: x\r\n\r\n")
	set(4, nil)
	e.mustPub("/pub?topic=t", "a\nb", "Published 2 messages to 5 clients.\n")
	mu.Lock()
	if gotTopic != "t" || !slices.Equal(gotMsgs, []string{"a", "b"}) || !deadline {
		t.Fatalf("fanout got %q %q (deadline %v)", gotTopic, gotMsgs, deadline)
	}
	mu.Unlock()
	set(1, errors.New("node n3 unreachable"))
	e.mustPub("/pub?topic=t", "c", "Published 1 messages to 2 clients.\n")
	set(0, nil)
	e.mustPub("/pub?topic=other", "d", "Published 1 messages to 0 clients.\n")
}

// Test_Pubsub_Errors: a closed hub answers 503, an oversize body 413, and
// NewPubsubHandler validates its options.
func Test_Pubsub_Errors(t *testing.T) {
	e := newPubsubEnv(t, func(o *Options) { o.MaxBodySize = 10 })
	e.mustPub("/pub", "0123456789", "Published 1 messages to 0 clients.\n")
	r := e.do(http.MethodPost, "/pub", "0123456789a")
	if r.code != http.StatusRequestEntityTooLarge || r.header.Get(api.HeaderErrorCode) != "TOO_LARGE" {
		t.Fatalf("oversize body: %d %q", r.code, r.body)
	}
	e.hub.Close()
	r = e.do(http.MethodGet, "/sub", "")
	if r.code != http.StatusServiceUnavailable || r.header.Get(api.HeaderErrorCode) != "SHUTTING_DOWN" ||
		r.header.Get("Retry-After") != "1" || r.body != "this node is shutting down; retry\n" {
		t.Fatalf("subscribe to a closed hub: %d %q %v", r.code, r.body, r.header)
	}

	if _, err := NewPubsubHandler(DefaultOptions()); err == nil || !strings.Contains(err.Error(), "Hub is required") {
		t.Fatalf("missing hub: %v", err)
	}
	bad := DefaultOptions()
	bad.Hub, bad.MaxBodySize, bad.FanoutTimeout = &fakeHub{}, -1, -1
	if _, err := NewPubsubHandler(bad); err == nil ||
		!strings.Contains(err.Error(), "MaxBodySize") || !strings.Contains(err.Error(), "FanoutTimeout") {
		t.Fatalf("negative limits: %v", err)
	}
}

// Test_Pubsub_WebSocketSubscribe: an Upgrade request on /sub becomes a
// WebSocket subscriber of its topic.
func Test_Pubsub_WebSocketSubscribe(t *testing.T) {
	e := newPubsubEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/sub?topic=ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.CloseNow()
	pollUntil(t, "the subscriber", 10*time.Second, func() bool { return e.hub.Stats().CurrentConnections == 1 })
	e.mustPub("/pub?topic=ws", "one\ntwo", "Published 2 messages to 1 clients.\n")
	for _, want := range []string{"one", "two"} {
		typ, data, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText || string(data) != want {
			t.Fatalf("read %v %q %v, want text %q", typ, data, err, want)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
	pollUntil(t, "the subscriber to leave", 10*time.Second, func() bool { return e.hub.Stats().CurrentConnections == 0 })
}
