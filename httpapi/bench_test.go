package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/fsm"
)

// BenchmarkPutHandler measures one POST /put through the handler (no
// network) into the fsm-backed fake: parsing, body read, command, apply.
func BenchmarkPutHandler(b *testing.B) {
	reg := prometheus.NewRegistry()
	h, err := NewQueueHandler(benchOptions(newFSMQueue(time.Now), reg))
	if err != nil {
		b.Fatal(err)
	}
	body := strings.Repeat("m", 200)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/put?queue=bench", strings.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d %q", rec.Code, rec.Body)
		}
	}
}

// BenchmarkGetHandler measures put+get pairs, and the empty-poll fast path.
func BenchmarkGetHandler(b *testing.B) {
	reg := prometheus.NewRegistry()
	h, err := NewQueueHandler(benchOptions(newFSMQueue(time.Now), reg))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("put+get", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/put?data=hello", nil))
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/get", nil))
			if rec.Body.String() != "hello" {
				b.Fatalf("got %q", rec.Body)
			}
		}
	})
	b.Run("empty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/get?queue=empty", nil))
		}
	})
}

// benchOptions are the default options over q, with a one-node cluster
// and metrics on reg.
func benchOptions(q Queue, reg *prometheus.Registry) Options {
	o := DefaultOptions()
	o.Queue, o.Cluster, o.Registerer, o.Gatherer = q, &fakeCluster{}, reg, reg
	return o
}

// nullQueue answers every proposal at once without a state machine, so that
// BenchmarkQueueHandler measures the handler alone: routing, parsing, the
// body, building the command, the reply and the metrics.
type nullQueue struct{ fsmQueue }

func (q *nullQueue) Propose(_ context.Context, cmd fsm.Command) (fsm.Result, error) {
	switch cmd.Op {
	case fsm.OpPut:
		return fsm.Result{IDs: make([]uint64, len(cmd.Messages))}, nil
	}
	return fsm.Result{}, nil
}

// benchWriter is a reusable http.ResponseWriter that keeps nothing.
type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header  { return w.h }
func (w *benchWriter) WriteHeader(code int) { w.code = code }
func (w *benchWriter) Write(b []byte) (int, error) {
	w.n += len(b)
	return len(b), nil
}
func (w *benchWriter) reset() {
	clear(w.h)
	w.code, w.n = 0, 0
}

// rewindBody is a request body that can be replayed without allocating.
type rewindBody struct{ bytes.Reader }

func (*rewindBody) Close() error { return nil }

// BenchmarkQueueHandler measures the queue handler's own cost per request
// (no network, no net/http server, a Queue that answers at once), as the
// leader pays it for every request: compare with benchstat across changes
// to parsing, replies and metrics. put-fsm adds the state machine apply.
func BenchmarkQueueHandler(b *testing.B) {
	msg := bytes.Repeat([]byte("x"), 100)
	mput := bytes.TrimSuffix(bytes.Repeat(append(append([]byte{}, msg...), '\n'), 100), []byte{'\n'})
	cases := []struct {
		name   string
		method string
		target string
		body   []byte
		fsm    bool
	}{
		{"put", http.MethodPost, "/put", msg, false},
		{"put-query", http.MethodGet, "/put?queue=bench&data=" + string(msg), nil, false},
		{"mput100", http.MethodPost, "/mput", mput, false},
		{"get-empty", http.MethodGet, "/get?queue=empty", nil, false},
		{"put-fsm", http.MethodPost, "/put?queue=bench", msg, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			var q Queue = &nullQueue{fsmQueue{FSM: fsm.New(), now: time.Now}}
			if c.fsm {
				q = newFSMQueue(time.Now)
			}
			h, err := NewQueueHandler(benchOptions(q, reg))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(c.method, c.target, nil)
			body := &rewindBody{}
			w := &benchWriter{h: http.Header{}}
			b.ReportAllocs()
			b.SetBytes(int64(max(len(c.body), 1)))
			for b.Loop() {
				body.Reset(c.body)
				req.Body = body
				req.ContentLength = int64(len(c.body))
				w.reset()
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}
