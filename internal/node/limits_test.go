package node

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/testwait"
)

// servePortForTest serves h like a node's port: capped at max, with the
// body timeout, and the header and idle timeouts of ConnLimits.
func servePortForTest(t *testing.T, h http.Handler, max int, body time.Duration) (addr string, m *connMetrics) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m = newConnMetrics(prometheus.NewRegistry())
	srv := &http.Server{
		Handler:           withBodyTimeout(h, body, m.bodyTimeouts.WithLabelValues("queue")),
		ReadHeaderTimeout: DefaultHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
	}
	go srv.Serve(newCapListener(ln, "queue", max, nil, m, slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), m
}

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// rawRequest sends one request on c and reads the answer's status line,
// headers and body.
func rawRequest(t *testing.T, c net.Conn, req string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestCapListener_OverTheCap_503AndClosedThenServedAgain checks the cap of
// open connections: with two held open, a third is answered a short 503
// with Retry-After and closed, and counted; once one of the two closes,
// a new connection is served.
func TestCapListener_OverTheCap_503AndClosedThenServedAgain(t *testing.T) {
	addr, m := servePortForTest(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), 2, time.Minute)
	const get = "GET /stats HTTP/1.1\r\nHost: q\r\n\r\n"
	a, b := dial(t, addr), dial(t, addr)
	for _, c := range []net.Conn{a, b} {
		if res := rawRequest(t, c, get); res.StatusCode != 200 {
			t.Fatalf("under the cap: %d", res.StatusCode)
		}
	}

	over := dial(t, addr)
	res := rawRequest(t, over, get)
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || res.Header.Get("X-Error-Code") != "UNAVAILABLE" ||
		string(body) != "too many connections: this port has its limit of 2 open (--max-conns); retry\n" {
		t.Fatalf("over the cap: %d %v %q", res.StatusCode, res.Header, body)
	}
	if n, err := over.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the refused connection is still open: %d %v", n, err)
	}
	if got := value(m.refused.WithLabelValues("queue")); got != 1 {
		t.Fatalf("refused count %v, want 1", got)
	}
	if got := value(m.open.WithLabelValues("queue")); got != 2 {
		t.Fatalf("open connections %v, want 2", got)
	}

	a.Close()
	testwait.For(t, 10*time.Second, "the closed connection to give its place back", func() bool {
		return value(m.open.WithLabelValues("queue")) == 1
	})
	if res := rawRequest(t, dial(t, addr), get); res.StatusCode != 200 {
		t.Fatalf("after a connection closed: %d", res.StatusCode)
	}
}

// TestBodyTimeout_SlowBody_400AndClosed checks that a body sent too
// slowly is cut: the handler's read fails, the client gets its answer,
// the connection is closed and the timeout counted.
func TestBodyTimeout_SlowBody_400AndClosed(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	})
	addr, m := servePortForTest(t, h, 10, 300*time.Millisecond)
	c := dial(t, addr)
	start := time.Now()
	res := rawRequest(t, c, "POST /put HTTP/1.1\r\nHost: q\r\nContent-Length: 10\r\n\r\nab")
	if res.StatusCode != 400 {
		t.Fatalf("slow body: %d", res.StatusCode)
	}
	io.ReadAll(res.Body)
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("the connection of a slow body is still open: %d %v", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("cut after %v, want about 300ms", took)
	}
	if got := value(m.bodyTimeouts.WithLabelValues("queue")); got != 1 {
		t.Fatalf("body timeouts %v, want 1", got)
	}
}

// TestBodyTimeout_BodyRead_LongHandlerKeepsItsContext checks that the
// deadline is lifted once the body is read: a handler that then works
// (or long-polls) longer than the body timeout is not cancelled, which
// http.Server.ReadTimeout would do through net/http's background read.
func TestBodyTimeout_BodyRead_LongHandlerKeepsItsContext(t *testing.T) {
	const d = 200 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusServiceUnavailable)
		case <-time.After(4 * d): // the long-poll's own wait
			io.WriteString(w, "waited")
		}
	})
	addr, _ := servePortForTest(t, h, 10, d)
	for _, req := range []string{
		"POST /get?wait=1s HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\n\r\nab",
		"GET /get?wait=1s HTTP/1.1\r\nHost: q\r\n\r\n",
	} {
		res := rawRequest(t, dial(t, addr), req)
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != "waited" {
			t.Fatalf("%q: %d %q, want the whole wait", strings.Fields(req)[0], res.StatusCode, body)
		}
	}
}

// TestBodyTimeout_Hijacked_NoDeadlineLeft checks what /sub relies on: a
// connection taken over after its body was sent keeps no read deadline.
func TestBodyTimeout_Hijacked_NoDeadlineLeft(t *testing.T) {
	const d = 200 * time.Millisecond
	got := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			got <- err
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n")
		// The subscriber reads to notice the client going away: nothing
		// may end that read but the client.
		_, err = conn.Read(make([]byte, 1))
		got <- err
	})
	addr, _ := servePortForTest(t, h, 10, d)
	c := dial(t, addr)
	io.WriteString(c, "POST /sub HTTP/1.1\r\nHost: q\r\nContent-Length: 2\r\n\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*d)
	defer cancel()
	select {
	case err := <-got:
		t.Fatalf("the hijacked connection's read ended without the client: %v", err)
	case <-ctx.Done():
	}
	c.Close()
	if err := <-got; err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the client closed: %v, want the end of the connection", err)
	}
}

// TestRegisterFlags_LimitsAndBudget checks the flags of this part: sizes
// with units, an explicit unlimited, and refusals of 0 and of an idle
// timeout the other nodes' pools would outlive.
func TestRegisterFlags_LimitsAndBudget(t *testing.T) {
	c, err := parseServeFlags(t, []string{"--max-queued-bytes=64MiB", "--max-conns=50", "--body-read-timeout=2s", "--idle-timeout=5m", "--header-read-timeout=3s"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxQueuedBytes != 64<<20 || c.Conn != (ConnLimits{HeaderTimeout: 3 * time.Second, BodyTimeout: 2 * time.Second, IdleTimeout: 5 * time.Minute, MaxConns: 50}) {
		t.Fatalf("budget %d, limits %+v", c.HTTP.MaxQueuedBytes, c.Conn)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// By default the budgets come from the data directory's disk and the
	// memory budget when the node starts.
	if c, _ := parseServeFlags(t, nil, nil); c.HTTP.MaxQueuedBytes != 0 || c.HTTP.MaxQueuedMessages != 0 || c.Conn.MaxConns <= 0 {
		t.Fatalf("defaults: budgets %d and %d messages (want 0: derived at start), max conns %d", c.HTTP.MaxQueuedBytes, c.HTTP.MaxQueuedMessages, c.Conn.MaxConns)
	} else {
		c.Cluster.DataDir, c.MemoryBudget = t.TempDir(), 1<<30
		c.resolveBudgets()
		if c.HTTP.MaxQueuedBytes <= 0 || c.HTTP.MaxQueuedMessages != (1<<30)/2/fsm.IndexBytesPerMessage {
			t.Fatalf("derived budgets: %d bytes, %d messages", c.HTTP.MaxQueuedBytes, c.HTTP.MaxQueuedMessages)
		}
	}
	for _, args := range [][]string{{"--max-queued-bytes=0"}, {"--max-queued-bytes=-5"}, {"--max-queued-bytes=lots"}} {
		if _, err := parseServeFlags(t, args, nil); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	// Last: the variable stays set for the rest of the test.
	if c, err := parseServeFlags(t, nil, map[string]string{"QUORUMQ_MAX_QUEUED_BYTES": "unlimited"}); err != nil || c.HTTP.MaxQueuedBytes != httpapi.Unlimited {
		t.Fatalf("unlimited from the environment: %d %v", c.HTTP.MaxQueuedBytes, err)
	}
	for _, args := range [][]string{{"--idle-timeout=30s"}, {"--max-conns=0"}, {"--body-read-timeout=0s"}} {
		c, err := parseServeFlags(t, args, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: Validate = %v, want ErrInvalid", args, err)
		}
	}
}

// TestBodyTimeout_ShutdownCutsATricklingBody: a client sending its body
// a byte at a time, far within the body timeout, does not hold a shutdown:
// when the requests' context ends, its read is cut and the connection
// closed.
func TestBodyTimeout_ShutdownCutsATricklingBody(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newConnMetrics(prometheus.NewRegistry())
	base, stop := context.WithCancel(context.Background())
	defer stop()
	read := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		read <- err
	})
	srv := &http.Server{
		Handler:     withBodyTimeout(h, time.Hour, m.bodyTimeouts.WithLabelValues("queue")),
		BaseContext: func(net.Listener) context.Context { return base },
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	c := dial(t, ln.Addr().String())
	if _, err := io.WriteString(c, "POST /put HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-read:
		t.Fatalf("body read ended before the shutdown: %v", err)
	default:
	}
	stop()
	select {
	case err := <-read:
		if err == nil {
			t.Fatal("a cut body read returned no error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body read was not cut within 10 s of the shutdown")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
}
