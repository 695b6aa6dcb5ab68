package pstohttp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestForward_MetricsAddrServesTheCounters: with MetricsAddr, Forward
// serves the bridge's counters at /metrics while it runs, per destination
// without its URL, and stops serving when it returns.
func TestForward_MetricsAddrServesTheCounters(t *testing.T) {
	ps := newFakePubsub(t)
	dst := newFakeDest(t, nil)
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{ps.url()}, dst.post())
	cfg.MetricsAddr = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, cfg) }()
	subscribed(t, ps, 1)
	ps.publish("one", "two", "x")
	c := http.Client{Timeout: 5 * time.Second}
	scrape := func() string {
		resp, err := c.Get("http://" + cfg.MetricsAddr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := []string{
		"quorumq_ps_to_http_messages_received_total 3",
		"quorumq_ps_to_http_messages_skipped_total 1",
		"quorumq_ps_to_http_connects_total 1",
		`quorumq_ps_to_http_messages_posted_total{destination="0",method="POST"} 2`,
		`quorumq_ps_to_http_messages_failed_total{destination="0",method="POST"} 0`,
		`quorumq_ps_to_http_buffered_messages{destination="0",method="POST"} 0`,
	}
	var body string
	testwait.For(t, wait, "the counters at /metrics", func() bool {
		body = scrape()
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				return false
			}
		}
		return true
	})
	if strings.Contains(body, dst.post().URL) {
		t.Fatalf("/metrics shows a destination URL:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Forward did not return")
	}
	if _, err := c.Get("http://" + cfg.MetricsAddr + "/metrics"); err == nil {
		t.Fatal("/metrics still served after Forward returned")
	}
}
