package metricsserver

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/testlog"
)

func start(t *testing.T, ctx context.Context, cs ...prometheus.Collector) *Server {
	t.Helper()
	o := DefaultOptions()
	o.Addr, o.Gatherer, o.Logger = "127.0.0.1:0", NewRegistry(cs...), testlog.New(t)
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestStart_ServesMetricsUntilTheContextEnds: /metrics shows the given
// collectors and the runtime's; other paths are 404; once the context
// ends the port is closed and Wait returns.
func TestStart_ServesMetricsUntilTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tool_things_total", Help: "Things."})
	c.Add(3)
	s := start(t, ctx, c)
	code, body := get(t, "http://"+s.Addr()+"/metrics")
	if code != 200 || !strings.Contains(body, "tool_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	if code, _ := get(t, "http://"+s.Addr()+"/other"); code != http.StatusNotFound {
		t.Fatalf("/other: %d, want 404", code)
	}
	cancel()
	if err := s.Wait(); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		conn.Close()
		t.Fatal("the port still accepts connections after the context ended")
	}
}

// TestStart_EmptyAddressServesNothing: the flag's empty default is off.
func TestStart_EmptyAddressServesNothing(t *testing.T) {
	s, err := Start(context.Background(), DefaultOptions())
	if err != nil || s != nil {
		t.Fatalf("Start: %v, %v", s, err)
	}
	if s.Addr() != "" || s.Wait() != nil {
		t.Fatal("a nil Server has an address or an error")
	}
}

// TestStart_TakenPortIsAnError: a tool fails at start-up, naming the flag.
func TestStart_TakenPortIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := DefaultOptions()
	o.Addr, o.Gatherer = ln.Addr().String(), NewRegistry()
	if _, err := Start(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--metrics-addr") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// TestRegisterFlag_ReadsTheToolsVariable: the flag comes from the
// environment under the tool's prefix, like every other flag.
func TestRegisterFlag_ReadsTheToolsVariable(t *testing.T) {
	t.Setenv("QUORUMQ_T_METRICS_ADDR", "127.0.0.1:9999")
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var addr string
	RegisterFlag(fs, &addr)
	if err := cli.Parse(fs, nil, io.Discard, "QUORUMQ_T_"); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1:9999" {
		t.Fatalf("addr %q", addr)
	}
}
