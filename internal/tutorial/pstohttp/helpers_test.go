package pstohttp

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testwait"
)

// fakePubsub serves /sub like pubsub's newline mode over HTTP/1.1: the
// "\r\n" preamble, then "m\n" per message, one chunk each, never the final
// chunk. stop closes the listener and every stream mid-way; start listens
// again on the same address.
type fakePubsub struct {
	t     *testing.T
	mu    sync.Mutex
	addr  string
	srv   *http.Server
	subs  map[chan string]bool
	total int
}

func newFakePubsub(t *testing.T) *fakePubsub {
	t.Helper()
	f := &fakePubsub{t: t, subs: map[chan string]bool{}}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fakePubsub) start() {
	f.t.Helper()
	addr := f.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	testwait.For(f.t, 10*time.Second, "listening on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})

	srv := &http.Server{Handler: http.HandlerFunc(f.serve)}
	f.mu.Lock()
	f.addr, f.srv = ln.Addr().String(), srv
	f.mu.Unlock()
	go srv.Serve(ln)
}

func (f *fakePubsub) stop() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	testwait.For(f.t, 10*time.Second, "subscribers gone", func() bool { return f.subscribers() == 0 })
}

func (f *fakePubsub) url() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "http://" + f.addr + "/sub?multipart=0"
}

func (f *fakePubsub) serve(w http.ResponseWriter, r *http.Request) {
	ch := make(chan string, 1000)
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "\r\n")
	w.(http.Flusher).Flush()
	f.mu.Lock()
	f.subs[ch] = true
	f.total++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.subs, ch)
		f.mu.Unlock()
	}()
	for {
		select {
		case m := <-ch:
			io.WriteString(w, m+"\n")
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// publish sends msgs to every subscriber and returns how many there were.
func (f *fakePubsub) publish(msgs ...string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		for _, m := range msgs {
			ch <- m
		}
	}
	return len(f.subs)
}

func (f *fakePubsub) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakePubsub) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// destReq is one request a fake destination received.
type destReq struct {
	method, uri, msg string
	contentLength    int64
	contentType      string
	status           int
}

// fakeDest records requests. The message is data= of a GET, the body of a
// POST. status decides each answer from the request number n (from 1);
// nil: 200. A status of 0 closes the connection without an answer.
type fakeDest struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []destReq
	status func(n int, msg string) int
}

func newFakeDest(t *testing.T, status func(n int, msg string) int) *fakeDest {
	t.Helper()
	d := &fakeDest{status: status}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		msg := string(body)
		if r.Method == http.MethodGet {
			msg = r.URL.Query().Get("data")
		}
		d.mu.Lock()
		n := len(d.reqs) + 1
		d.mu.Unlock()
		code := http.StatusOK
		if d.status != nil {
			code = d.status(n, msg)
		}
		d.mu.Lock()
		d.reqs = append(d.reqs, destReq{method: r.Method, uri: r.RequestURI, msg: msg, contentLength: r.ContentLength, contentType: r.Header.Get("Content-Type"), status: code})
		d.mu.Unlock()
		if code == 0 {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(d.Close)
	return d
}

func (d *fakeDest) requests() []destReq {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]destReq(nil), d.reqs...)
}

// accepted returns the messages answered with a 2xx, in order.
func (d *fakeDest) accepted() []string {
	var out []string
	for _, r := range d.requests() {
		if r.status/100 == 2 {
			out = append(out, r.msg)
		}
	}
	return out
}

func (d *fakeDest) get() Destination {
	return Destination{Method: http.MethodGet, URL: d.URL + "/put?data=%s"}
}
func (d *fakeDest) post() Destination {
	return Destination{Method: http.MethodPost, URL: d.URL + "/pub"}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testConfig is DefaultConfig with fast backoffs, no periodic stats, the
// first source first, and logs in logs.
func testConfig(t *testing.T, logs *syncBuffer, sources []string, dests ...Destination) Config {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge logs:\n%s", logs.String())
		}
	})
	cfg := DefaultConfig()
	cfg.Sources = sources
	cfg.Destinations = dests
	cfg.StatsInterval = 0
	cfg.ReconnectBackoff = client.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	cfg.RetryBackoff = client.Backoff{Min: 5 * time.Millisecond, Max: 20 * time.Millisecond}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Rand = func(int) int { return 0 }
	return cfg
}

// running is a bridge started by start.
type running struct {
	b      *Bridge
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{b: b, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return")
		}
	})
	return r
}

// waitStats polls the bridge's counters until cond holds.
func (r *running) waitStats(t *testing.T, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := r.b.Stats()
		if cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

func joined(s []string) string { return strings.Join(s, "|") }
