package node_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/testwait"
	"github.com/quorumq/quorumq/pubsub"
)

// These tests run whole nodes in process (server.Start: raft, memberlist,
// hubs, HTTP ports) on loopback and exercise the cluster half of pubsub:
// gossiped subscriber sets, the fan-out over /internal/deliver, the
// cluster-wide /clients and route mode.

// clusterConfigs returns the configs of n nodes that join each other,
// with a short fan-out timeout.
func clusterConfigs(t *testing.T, n int) []node.Config {
	cfgs := nodetest.ClusterConfigs(t, n)
	for i := range cfgs {
		cfgs[i].Fanout.Timeout = 500 * time.Millisecond
	}
	return cfgs
}

// mustStart starts a node and stops it when the test ends (once).
func mustStart(t *testing.T, cfg node.Config) (*node.Server, func()) {
	t.Helper()
	s, err := node.Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.Cluster.NodeID, err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown %s: %v", cfg.Cluster.NodeID, err)
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// call sends one request to addr and returns the status and body.
func call(t *testing.T, method, addr, target, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, addr, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func mustCall(t *testing.T, method, addr, target, body, want string) {
	t.Helper()
	if code, got := call(t, method, addr, target, body); code != http.StatusOK || got != want {
		t.Fatalf("%s %s: %d %q, want 200 %q", method, target, code, got, want)
	}
}

// lineSub is a multipart=0 subscriber over HTTP/1.0: one message per line.
type lineSub struct {
	conn  net.Conn
	lines chan string
}

func subscribe(t *testing.T, addr, topic string) *lineSub {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /sub?multipart=0&topic=%s HTTP/1.0\r\n\r\n", topic)
	br := bufio.NewReader(conn)
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if l == "\r\n" {
			break // end of the head
		}
	}
	if l, err := br.ReadString('\n'); err != nil || l != "\r\n" {
		t.Fatalf("stream start %q, %v", l, err)
	}
	s := &lineSub{conn: conn, lines: make(chan string, 1024)}
	go func() {
		defer close(s.lines)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			s.lines <- strings.TrimSuffix(l, "\n")
		}
	}()
	return s
}

func (s *lineSub) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got, ok := <-s.lines:
			if !ok {
				t.Fatalf("stream ended, want %q", w)
			}
			if got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message, want %q", w)
		}
	}
}

func (s *lineSub) expectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-s.lines:
		t.Fatalf("unexpected message %q", got)
	case <-time.After(d):
	}
}

// subscriberIDs returns the nodes s's gossip says have subscribers of topic.
func subscriberIDs(s *node.Server, topic string) []string {
	var ids []string
	for _, p := range s.Node().Subscribers().WithTopic(topic) {
		ids = append(ids, p.ID)
	}
	return ids
}

func statsLine(t *testing.T, addr, name string) string {
	t.Helper()
	_, body := call(t, http.MethodGet, addr, "/stats", "")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	t.Fatalf("/stats has no %q line:\n%s", name, body)
	return ""
}

// Test_Pubsub_Cluster: a publish on one node reaches the subscribers of
// the two others, once, in order, and the reply counts them; /clients on
// any node lists every subscriber with its node; a peer that does not
// answer (standing in for a SIGSTOPped process) delays a publish no more
// than the fan-out timeout and the loss is counted; a node that stops
// disappears from the others' subscriber sets within seconds.
func Test_Pubsub_Cluster(t *testing.T) {
	cfgs := clusterConfigs(t, 3)
	// n3's deliveries can be made to hang: the handler neither reads nor
	// answers until released, like a stopped process.
	var (
		blockMu sync.Mutex
		blocked bool
		release = make(chan struct{})
	)
	node.WrapPubsub(&cfgs[2], func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			blockMu.Lock()
			b := blocked
			blockMu.Unlock()
			if b && r.URL.Path == api.PathDeliver {
				<-release
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	n1, _ := mustStart(t, cfgs[0])
	n2, stop2 := mustStart(t, cfgs[1])
	n3, _ := mustStart(t, cfgs[2])
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the servers stop (cleanups run last first)
	nodes := []*node.Server{n1, n2, n3}
	testwait.For(t, 20*time.Second, "every node sees the two others", func() bool {
		for _, n := range nodes {
			if len(n.Node().Subscribers().Peers()) != 2 {
				return false
			}
		}
		return true
	})

	// Subscribers on n1 and n2; publish on n3.
	s1 := subscribe(t, n1.PubsubAddr, "t")
	s2 := subscribe(t, n2.PubsubAddr, "t")
	other := subscribe(t, n2.PubsubAddr, "other")
	testwait.For(t, 10*time.Second, "n3 knows t's subscribers on n1 and n2", func() bool {
		return slices.Equal(subscriberIDs(n3, "t"), []string{"n1", "n2"})
	})

	mustCall(t, http.MethodPost, n3.PubsubAddr, "/pub?topic=t", "hello\nwith\rcr and ünïcödé\n", "Published 3 messages to 2 clients.\n")
	s1.expect(t, "hello", "with\rcr and ünïcödé", "")
	s2.expect(t, "hello", "with\rcr and ünïcödé", "")
	other.expectNothing(t, 200*time.Millisecond)
	s1.expectNothing(t, 200*time.Millisecond) // exactly once
	// A topic nobody follows: no remote node is asked.
	mustCall(t, http.MethodPost, n3.PubsubAddr, "/pub?topic=nobody", "x", "Published 1 messages to 0 clients.\n")

	// Publishes of one node reach a peer in order.
	var want []string
	for i := range 50 {
		m := fmt.Sprint("m", i)
		want = append(want, m)
		mustCall(t, http.MethodPost, n3.PubsubAddr, "/pub?topic=t", m, "Published 1 messages to 2 clients.\n")
	}
	s1.expect(t, want...)
	s2.expect(t, want...)

	// Receivers count remote messages apart from their own publishes.
	if got := statsLine(t, n1.PubsubAddr, "Remote messages received"); got != "53" {
		t.Fatalf("n1 remote messages received %s, want 53", got)
	}
	if got := statsLine(t, n1.PubsubAddr, "Messages received"); got != "0" {
		t.Fatalf("n1 messages received %s, want 0", got)
	}

	// /clients on any node lists every subscriber, local ones first, then
	// by node id, each with its node.
	clientNodes := func(addr string) []string {
		code, body := call(t, http.MethodGet, addr, "/clients", "")
		if code != http.StatusOK {
			t.Fatalf("/clients: %d %q", code, body)
		}
		var out []string
		for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
			if !strings.Contains(l, " connected at ") || !strings.Contains(l, ". output buffer size:") || !strings.Contains(l, " state:7 node:") {
				t.Fatalf("/clients line %q", l)
			}
			out = append(out, l[strings.LastIndex(l, " node:")+6:])
		}
		return out
	}
	if got := clientNodes(n3.PubsubAddr); !slices.Equal(got, []string{"n1", "n2", "n2"}) {
		t.Fatalf("/clients on n3: nodes %v", got)
	}
	if got := clientNodes(n2.PubsubAddr); !slices.Equal(got, []string{"n2", "n2", "n1"}) {
		t.Fatalf("/clients on n2: nodes %v", got)
	}
	if code, body := call(t, http.MethodGet, n1.PubsubAddr, "/clients", ""); !strings.HasPrefix(body, s1.conn.LocalAddr().String()+" connected at ") || code != 200 {
		t.Fatalf("/clients on n1 does not start with its own subscriber: %q", body)
	}

	// n3 gets a subscriber, then stops answering deliveries.
	s3 := subscribe(t, n3.PubsubAddr, "t")
	testwait.For(t, 10*time.Second, "n1 knows t's subscribers on n2 and n3", func() bool {
		return slices.Equal(subscriberIDs(n1, "t"), []string{"n2", "n3"})
	})

	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", "before", "Published 1 messages to 3 clients.\n")
	s3.expect(t, "before")
	s2.expect(t, "before")
	blockMu.Lock()
	blocked = true
	blockMu.Unlock()
	for i := range 3 {
		start := time.Now()
		mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", fmt.Sprint("stuck", i), "Published 1 messages to 2 clients.\n")
		// Generous bound: the timeout is 500 ms.
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("publish with a stuck peer took %v", d)
		}
		s2.expect(t, fmt.Sprint("stuck", i))
	}
	s1.expect(t, "before", "stuck0", "stuck1", "stuck2")
	s2.expectNothing(t, 100*time.Millisecond)
	testwait.For(t, 10*time.Second, "the failures counted", func() bool {
		return statsLine(t, n1.PubsubAddr, "Remote failures") == "3" && statsLine(t, n1.PubsubAddr, "Remote messages dropped") == "3"
	})

	_, metrics := call(t, http.MethodGet, n1.PubsubAddr, "/metrics", "")
	for _, m := range []string{
		`quorumq_pubsub_fanout_deliveries_total{peer="n3",result="error"}`,
		`quorumq_pubsub_fanout_deliveries_total{peer="n2",result="ok"}`,
		"quorumq_pubsub_remote_failures_total 3",
		"quorumq_pubsub_remote_dropped_messages_total 3",
		"quorumq_pubsub_subscriber_sets_known 2",
	} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("/metrics lacks %s", m)
		}
	}
	unblock()
	blockMu.Lock()
	blocked = false
	blockMu.Unlock()
	s3.expectNothing(t, 300*time.Millisecond) // failed deliveries are not sent later
	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", "after", "Published 1 messages to 3 clients.\n")
	s3.expect(t, "after")
	s1.expect(t, "after")
	s2.expect(t, "after")

	// n2 stops: the others drop its subscribers within seconds.
	stop2()
	start := time.Now()
	testwait.For(t, 15*time.Second, "n2 gone from n1's and n3's sets", func() bool {
		return slices.Equal(subscriberIDs(n1, "t"), []string{"n3"}) && slices.Equal(subscriberIDs(n3, "t"), []string{"n1"})
	})

	t.Logf("n2's subscribers dropped %v after it stopped", time.Since(start).Round(10*time.Millisecond))
	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", "last", "Published 1 messages to 2 clients.\n")
	s3.expect(t, "last")
	if got := clientNodes(n3.PubsubAddr); !slices.Equal(got, []string{"n3", "n1"}) {
		t.Fatalf("/clients on n3 after n2 stopped: %v", got)
	}
}

// Test_Pubsub_RouteMode: with --route=t:q on every node, each message
// published on t is enqueued into q once (by the node it was published
// on, not by the nodes it was delivered to) before the reply; a failed
// enqueue answers 503 (413 for a message the queue cannot take) and
// publishes nothing.
func Test_Pubsub_RouteMode(t *testing.T) {
	cfgs := clusterConfigs(t, 2)
	for i := range cfgs {
		cfgs[i].Router.Routes = []pubsub.Route{{Topic: "t", Queue: "q"}}
		cfgs[i].HTTP.MaxMsgSize = 64
		cfgs[i].HTTP.Limits.MaxDepth = 4
	}
	n1, _ := mustStart(t, cfgs[0])
	n2, _ := mustStart(t, cfgs[1])
	testwait.For(t, 30*time.Second, "both nodes ready", func() bool {
		for _, n := range []*node.Server{n1, n2} {
			if code, _ := call(t, http.MethodGet, n.QueueAddr, "/readyz", ""); code != http.StatusOK {
				return false
			}
		}
		return true
	})

	sub := subscribe(t, n2.PubsubAddr, "t")
	testwait.For(t, 10*time.Second, "n1 knows n2's subscriber", func() bool {
		return slices.Equal(subscriberIDs(n1, "t"), []string{"n2"})
	})

	get := func() string {
		t.Helper()
		code, body := call(t, http.MethodGet, n1.QueueAddr, "/get?queue=q", "")
		if code != http.StatusOK {
			t.Fatalf("/get: %d %q", code, body)
		}
		return body
	}

	// Empty messages are published but not enqueued.
	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", "a\n\nb", "Published 3 messages to 1 clients.\n")
	sub.expect(t, "a", "", "b")
	mustCall(t, http.MethodPost, n2.PubsubAddr, "/pub?topic=t", "c", "Published 1 messages to 1 clients.\n")
	sub.expect(t, "c")
	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=unrouted", "u", "Published 1 messages to 0 clients.\n")
	for _, want := range []string{"a", "b", "c", ""} {
		if got := get(); got != want {
			t.Fatalf("/get %q, want %q", got, want)
		}
	}

	// Too large for the queue: 413, nothing published.
	big := strings.Repeat("x", 100)
	if code, body := call(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", big); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "nothing was published") {
		t.Fatalf("large routed message: %d %q", code, body)
	}
	// The queue is full (MaxDepth 4, reject): 503, nothing published.
	mustCall(t, http.MethodPost, n1.PubsubAddr, "/pub?topic=t", "1\n2\n3\n4", "Published 4 messages to 1 clients.\n")
	sub.expect(t, "1", "2", "3", "4")
	req, _ := http.NewRequest(http.MethodPost, "http://"+n1.PubsubAddr+"/pub?topic=t", strings.NewReader("5"))
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Error-Code") != "ROUTE_FAILED" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("publish into a full queue: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	sub.expectNothing(t, 300*time.Millisecond)
	_, metrics := call(t, http.MethodGet, n1.PubsubAddr, "/metrics", "")
	if !strings.Contains(metrics, `quorumq_pubsub_routed_messages_total{queue="q",result="ok",topic="t"} 6`) {
		t.Fatalf("routed metrics:\n%s", grepLines(metrics, "routed"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
