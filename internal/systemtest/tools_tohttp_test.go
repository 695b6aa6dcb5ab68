package systemtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// endpoint is the HTTP endpoint to_http forwards to: it answers each
// message as its name asks (ok-*: 200; flaky-*: 503 twice, then 200;
// busy-*: 429 once, then 200; bad-*: 400 always) and records every request.
type endpoint struct {
	*httptest.Server
	// holdAfter > 0: once that many messages have had a 2xx, new requests
	// wait for release to be closed (or their client to go).
	holdAfter int
	release   chan struct{}

	mu    sync.Mutex
	seen  map[string]int // requests per message
	okays map[string]int // 2xx answers per message
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{seen: map[string]int{}, okays: map[string]int{}, release: make(chan struct{})}
	e.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		hold := e.holdAfter > 0 && len(e.okays) >= e.holdAfter
		e.mu.Unlock()
		if hold {
			select {
			case <-e.release:
			case <-r.Context().Done():
				return
			}
		}
		b, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "text/plain" {
			http.Error(w, "bad request to the test endpoint", http.StatusInternalServerError)
			return
		}
		msg := string(b)
		e.mu.Lock()
		e.seen[msg]++
		n := e.seen[msg]
		code := http.StatusOK
		switch {
		case strings.HasPrefix(msg, "bad-"):
			code = http.StatusBadRequest
		case strings.HasPrefix(msg, "flaky-") && n <= 2:
			code = http.StatusServiceUnavailable
		case strings.HasPrefix(msg, "busy-") && n <= 1:
			code = http.StatusTooManyRequests
		}
		if code == http.StatusOK {
			e.okays[msg]++
		}
		e.mu.Unlock()
		w.WriteHeader(code)
	}))
	return e
}

// start serves until the test ends.
func (e *endpoint) start(t *testing.T) *endpoint {
	e.Start()
	t.Cleanup(func() {
		select {
		case <-e.release:
		default:
			close(e.release)
		}
		e.Close()
	})
	return e
}

// counts returns copies of the requests and the 2xx answers per message.
func (e *endpoint) counts() (seen, okays map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen, okays = map[string]int{}, map[string]int{}
	for k, v := range e.seen {
		seen[k] = v
	}
	for k, v := range e.okays {
		okays[k] = v
	}
	return seen, okays
}

// startToHTTP starts `quorumq to_http` on the cluster's nodes with args.
func startToHTTP(t *testing.T, c *cluster, name string, args ...string) *testkit.Process {
	t.Helper()
	var addrs []string
	for _, nd := range c.nodes {
		addrs = append(addrs, nd.QueueURL)
	}
	argv := append([]string{"to_http", "--queue-addrs=" + strings.Join(addrs, ","), "--log-level=debug"}, c.toolArgs()...)
	return startToolProcess(t, name, append(argv, args...)...)
}

// queueCounts are the depth, leases and deferred messages of a queue.
type queueCounts struct {
	Depth    int64 `json:"depth"`
	InFlight int64 `json:"in_flight"`
	Deferred int64 `json:"deferred"`
}

// queueCounts reads them from nd's /stats; stale: as nd has applied
// them (stale=1), else the leader's.
func (nd *node) queueCounts(queue string, stale bool) queueCounts {
	nd.t.Helper()
	u := nd.QueueURL + "/stats?format=json&extended=1&queue=" + url.QueryEscape(queue)
	if stale {
		u += "&stale=1"
	}
	body := nd.mustGet(u)
	var qc queueCounts
	if err := json.Unmarshal([]byte(body), &qc); err != nil {
		nd.t.Fatalf("stats of %s: %s: %v", queue, abbrev(body), err)
	}
	return qc
}

// dumpLines are the ready messages of queue, one per line, as nd has them.
func (nd *node) dumpLines(queue string, stale bool) []string {
	nd.t.Helper()
	u := nd.QueueURL + "/dump?queue=" + url.QueryEscape(queue)
	if stale {
		u += "&stale=1"
	}
	body := strings.TrimSuffix(nd.mustGet(u), "\n")
	if body == "" {
		return nil
	}
	return strings.Split(body, "\n")
}

// TestToHTTP_FailingEndpoint_DeliveredRetriedAndDeadLettered: to_http on
// a 3-node cluster forwards every message to an endpoint that fails some
// requests: each message gets a 2xx at least once, a 503 or 429 is
// retried, a 400 is not retried and the message lands on the dead-letter
// queue, as it was put; nothing stays on the queue.
func TestToHTTP_FailingEndpoint_DeliveredRetriedAndDeadLettered(t *testing.T) {
	inModes(t, testToHTTP_FailingEndpoint_DeliveredRetriedAndDeadLettered)
}

func testToHTTP_FailingEndpoint_DeliveredRetriedAndDeadLettered(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	ep := newEndpoint(t).start(t)
	var msgs []string
	for i := range 30 {
		msgs = append(msgs, fmt.Sprintf("ok-%02d", i))
	}
	for i := range 8 {
		msgs = append(msgs, fmt.Sprintf("flaky-%02d", i), fmt.Sprintf("busy-%02d", i))
	}
	var bad []string
	for i := range 5 {
		bad = append(bad, fmt.Sprintf("bad-%02d", i))
	}
	c.nodes[1].mustPut(c.nodes[1].QueueURL+"/mput?queue=out", strings.Join(append(append([]string{}, msgs...), bad...), "\n"))

	metrics := testkit.Loopback(testport.Reserve(t))
	startToHTTP(t, c, "to_http", "--metrics-addr="+metrics, "--queue=out", "--url="+ep.URL+"/hook", "--content-type=text/plain",
		"--dead-letter=out.dead", "--max-attempts=5", "--requeue-delay=50ms", "--backoff-step=0", "--concurrency=4")

	testwait.For(t, 60*time.Second, "every message answered 2xx and the bad ones dead-lettered", func() bool {
		_, okays := ep.counts()
		for _, m := range msgs {
			if okays[m] == 0 {
				return false
			}
		}
		return len(c.nodes[0].dumpLines("out.dead", false)) == len(bad)
	})
	seen, _ := ep.counts()
	for _, m := range bad {
		if seen[m] != 1 {
			t.Errorf("%s: %d requests, want 1 (a 400 is not retried)", m, seen[m])
		}
	}
	for _, m := range msgs {
		switch {
		case strings.HasPrefix(m, "flaky-") && seen[m] < 3, strings.HasPrefix(m, "busy-") && seen[m] < 2:
			t.Errorf("%s: %d requests; a 503 or 429 must be retried", m, seen[m])
		}
	}
	dead := c.nodes[0].dumpLines("out.dead", false)
	slices.Sort(dead)
	if !slices.Equal(dead, bad) {
		t.Errorf("dead-letter queue holds %q, want %q (as they were put)", dead, bad)
	}
	testwait.For(t, 30*time.Second, "the queue empty, no lease left", func() bool {
		qc := c.nodes[0].queueCounts("out", false)
		return qc == queueCounts{}
	})
	page := c.mustGet("http://" + metrics + "/metrics")
	for _, want := range []string{`quorumq_to_http_messages_total{outcome="dead_lettered",queue="out"} 5`, `quorumq_reader_processed_total{queue="out"}`} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestToHTTP_KilledMidRun_RestartedLosesNothing: a to_http killed with
// SIGKILL while it forwards, then started again, delivers every message
// at least once: what the dead one had leased comes back when its leases
// end.
func TestToHTTP_KilledMidRun_RestartedLosesNothing(t *testing.T) {
	c := mustStartCluster(t, 3)
	ep := newEndpoint(t)
	ep.holdAfter = 100
	ep.start(t)
	var msgs []string
	for i := range 300 {
		msgs = append(msgs, fmt.Sprintf("ok-%03d", i))
	}
	c.nodes[0].mustPut(c.nodes[0].QueueURL+"/mput?queue=jobs", strings.Join(msgs, "\n"))
	args := []string{"--queue=jobs", "--url=" + ep.URL + "/hook", "--content-type=text/plain", "--lease=2s", "--concurrency=8", "--backoff-step=0"}

	first := startToHTTP(t, c, "to_http-1", args...)
	testwait.For(t, 60*time.Second, "a third of the messages delivered", func() bool {
		_, okays := ep.counts()
		return len(okays) >= ep.holdAfter
	})
	// The endpoint now holds the requests in flight: the forwarder dies
	// with messages leased and unanswered.
	first.Kill()
	_, okays := ep.counts()
	t.Logf("killed after %d of %d messages", len(okays), len(msgs))
	close(ep.release)

	startToHTTP(t, c, "to_http-2", args...)
	testwait.For(t, 90*time.Second, "every message delivered after the restart", func() bool {
		_, okays := ep.counts()
		for _, m := range msgs {
			if okays[m] == 0 {
				return false
			}
		}
		return true
	})
	testwait.For(t, 30*time.Second, "the queue empty, no lease left", func() bool {
		return c.nodes[2].queueCounts("jobs", false) == queueCounts{}
	})
}
