package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkPutHandler measures one POST /put through the handler (no
// network) into the fsm-backed fake: parsing, body read, command, apply.
func BenchmarkPutHandler(b *testing.B) {
	reg := prometheus.NewRegistry()
	h, err := NewQueueHandler(Options{
		Queue: newFSMQueue(time.Now), Cluster: &fakeCluster{}, Registerer: reg, Gatherer: reg,
	})
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
	h, err := NewQueueHandler(Options{
		Queue: newFSMQueue(time.Now), Cluster: &fakeCluster{}, Registerer: reg, Gatherer: reg,
	})
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
