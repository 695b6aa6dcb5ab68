package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistogram_QuantilesWithinPrecision(t *testing.T) {
	var h Histogram
	for i := 1; i <= 100000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}} {
		got := h.Quantile(c.q)
		if diff := float64(got-c.want) / float64(c.want); diff > 0.01 || diff < -0.01 {
			t.Errorf("q%.3f = %v, want %v ±1%%", c.q, got, c.want)
		}
	}
	if h.Max() != 100*time.Millisecond || h.Min() != time.Microsecond || h.Count() != 100000 {
		t.Errorf("max %v min %v count %d", h.Max(), h.Min(), h.Count())
	}
	if m := h.Mean(); m < 50*time.Millisecond || m > 50*time.Millisecond+time.Microsecond {
		t.Errorf("mean %v", m)
	}
	var a, b Histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	a.Merge(&b)
	if a.Count() != 2 || a.Max() != 3*time.Millisecond || a.Min() != time.Millisecond {
		t.Errorf("merged: %d %v %v", a.Count(), a.Min(), a.Max())
	}
	for _, v := range []int64{0, 1, 255, 256, 257, 1 << 20, 1<<62 + 12345} {
		i := bucketOf(v)
		got := bucketValue(i)
		if v > 1000 && (float64(got-v)/float64(v) > 0.01 || float64(v-got)/float64(v) > 0.01) {
			t.Errorf("bucket value of %d is %d", v, got)
		}
		if v <= 255 && got != v {
			t.Errorf("exact region: %d -> %d", v, got)
		}
	}
}

func TestHistogram_RecordDoesNotAllocate(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Record(1234 * time.Microsecond) }); n != 0 {
		t.Fatalf("%v allocations per Record", n)
	}
}

// TestHTTPConn_Framing: Content-Length, chunked and empty bodies, headers the
// modes read, and reconnecting after Connection: close.
func TestHTTPConn_Framing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/len":
			w.Header().Set("X-Message-Id", "42")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("X-Message-Ids", "1,2,3")
			w.WriteHeader(200)
			for i := 0; i < 3; i++ {
				io.WriteString(w, strings.Repeat("c", 5000))
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/empty":
		case "/fail":
			http.Error(w, "queue is full", 507)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c := newHTTPConn(addr, 5*time.Second, nil)
	defer c.Close()
	var res response
	get := func(path string) {
		t.Helper()
		if err := c.do(buildRequest("GET", addr, path, nil, nil), &res); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	get("/len")
	if res.status != 200 || string(res.body) != "hello" || string(res.msgID) != "42" || res.close {
		t.Fatalf("/len: %+v", res)
	}
	get("/chunked")
	if res.status != 200 || res.bodyLen != 15000 || string(res.msgIDs) != "1,2,3" || countIDs(res.msgIDs) != 3 {
		t.Fatalf("/chunked: status %d len %d ids %q", res.status, res.bodyLen, res.msgIDs)
	}
	get("/close")
	if !res.close || string(res.body) != "bye" || c.c != nil {
		t.Fatalf("/close: %+v", res)
	}
	get("/empty")
	if res.status != 200 || res.bodyLen != 0 {
		t.Fatalf("/empty: %+v", res)
	}
	get("/fail")
	if res.status != 507 || !strings.Contains(statusError(&res).Error(), "queue is full") {
		t.Fatalf("/fail: %+v", res)
	}
}

// TestHTTPConn_ExchangeDoesNotAllocate against a server that answers every
// request with canned bytes (net/http's own server would allocate).
func TestHTTPConn_ExchangeDoesNotAllocate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	canned := []byte("HTTP/1.1 200 OK\r\nX-Message-Id: 7\r\nContent-Length: 5\r\n\r\nhello")
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			// One request per read is enough for this client.
			if bytes.HasSuffix(buf[:n], []byte("\r\n\r\n")) {
				c.Write(canned)
			}
		}
	}()
	addr := ln.Addr().String()
	c := newHTTPConn(addr, 5*time.Second, nil)
	defer c.Close()
	req := buildRequest("GET", addr, "/get", nil, nil)
	var res response
	if err := c.do(req, &res); err != nil || string(res.body) != "hello" {
		t.Fatalf("%v %+v", err, res)
	}
	if n := testing.AllocsPerRun(200, func() { c.do(req, &res) }); n != 0 {
		t.Errorf("%v allocations per exchange", n)
	}
}

// fakeNode is enough of a quorumq queue port for the modes.
type fakeNode struct {
	mu     sync.Mutex
	queue  []string
	nextID int
	leased map[string]bool
	acks   int
	srv    *httptest.Server
}

func newFakeNode(t *testing.T) *fakeNode {
	f := newFakeNodeServed(func(h http.Handler) *httptest.Server { return httptest.NewServer(h) })
	t.Cleanup(f.srv.Close)
	return f
}

// newFakeNodeServed is a fakeNode served by serve (over TLS behind a token
// gate, say).
func newFakeNodeServed(serve func(http.Handler) *httptest.Server) *fakeNode {
	f := &fakeNode{leased: map[string]bool{}}
	f.srv = serve(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeNode) addr() string {
	_, hostPort, _ := strings.Cut(f.srv.URL, "://")
	return hostPort
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/cluster/status":
		fmt.Fprintf(w, `{"node_id":"n1","leader_id":"n1","members":[{"id":"n1","status":"alive","queue_addr":%q,"pubsub_addr":%q}]}`, f.addr(), f.addr())
	case "/put":
		f.queue = append(f.queue, string(body))
	case "/mput":
		f.queue = append(f.queue, strings.Split(string(body), "\n")...)
	case "/get", "/mget":
		n := 1
		if r.URL.Path == "/mget" {
			fmt.Sscan(r.URL.Query().Get("items"), &n)
		}
		var ids []string
		var out []string
		for ; n > 0 && len(f.queue) > 0; n-- {
			f.nextID++
			id := fmt.Sprint(f.nextID)
			ids = append(ids, id)
			out = append(out, f.queue[0])
			f.queue = f.queue[1:]
			if r.URL.Query().Get("lease") != "" {
				f.leased[id] = true
			}
		}
		if len(ids) > 0 {
			if r.URL.Path == "/get" {
				w.Header().Set("X-Message-Id", ids[0])
			} else {
				w.Header().Set("X-Message-Ids", strings.Join(ids, ","))
			}
		}
		io.WriteString(w, strings.Join(out, "\n"))
	case "/ack":
		for _, id := range strings.Split(r.URL.Query().Get("id"), ",") {
			if !f.leased[id] {
				http.Error(w, "not in flight", 409)
				return
			}
			delete(f.leased, id)
			f.acks++
		}
	default:
		http.NotFound(w, r)
	}
}

func TestRunQuorumq_Modes(t *testing.T) {
	f := newFakeNode(t)
	run := func(mode string, batch int, count int64, prefill int) *Report {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Mode, cfg.Targets, cfg.Size, cfg.Batch, cfg.Prefill = mode, []string{f.srv.URL}, 10, batch, prefill
		cfg.Concurrency, cfg.Count, cfg.Duration, cfg.Warmup = 4, count, 0, 0
		rep, err := RunQuorumq(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if rep.Errors != 0 || rep.Ops != uint64(count) {
			t.Fatalf("%s: ops %d errors %d (%s)", mode, rep.Ops, rep.Errors, rep.FirstError)
		}
		return rep
	}
	if r := run(ModePut, 1, 100, 0); r.Msgs != 100 || r.Latency.P50 <= 0 {
		t.Fatalf("put: %+v", r.Result)
	}
	if r := run(ModeMPut, 10, 20, 0); r.Msgs != 200 {
		t.Fatalf("mput: %+v", r.Result)
	}
	if len(f.queue) != 300 || len(f.queue[0]) != 10 {
		t.Fatalf("queue holds %d", len(f.queue))
	}
	if r := run(ModeGet, 1, 50, 0); r.Msgs != 50 {
		t.Fatalf("get: %+v", r.Result)
	}
	if r := run(ModeMGet, 10, 5, 0); r.Msgs != 50 {
		t.Fatalf("mget: %+v", r.Result)
	}
	if r := run(ModeLease, 5, 10, 0); r.Msgs != 50 || f.acks != 50 || len(f.leased) != 0 {
		t.Fatalf("lease: %+v acks %d", r.Result, f.acks)
	}
	if r := run(ModeLease, 1, 10, 100); r.Msgs != 10 || f.acks != 60 {
		t.Fatalf("lease single: %+v acks %d", r.Result, f.acks)
	}
	var sb strings.Builder
	run(ModePut, 1, 10, 0).WriteText(&sb)
	if !strings.Contains(sb.String(), "p99.9") {
		t.Fatalf("report: %s", sb.String())
	}
}

func TestRun_RateAndDuration(t *testing.T) {
	f := newFakeNode(t)
	start := time.Now()
	cfg := DefaultConfig()
	cfg.Targets = []string{f.addr()}
	cfg.RunConfig = RunConfig{Concurrency: 2, Duration: 500 * time.Millisecond, Rate: 200}
	rep, err := RunQuorumq(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v", el)
	}
	if rep.Ops < 50 || rep.Ops > 150 {
		t.Fatalf("offered 200/s for 0.5s, did %d", rep.Ops)
	}
}
