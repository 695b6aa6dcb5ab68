package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testkit"
)

// subscribe opens a newline-mode subscription on nd's pubsub port.
func subscribe(t *testing.T, nd *node) *client.Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := client.Subscribe(ctx, nd.PubsubURL+"/sub?multipart=0", nd.subscribeOptions())
	if err != nil {
		cancel()
		t.Fatalf("subscribe on %s: %v", nd.ID, err)
	}
	t.Cleanup(func() { cancel(); st.Close() })
	return st
}

// publish posts body to nd's /pub and returns the reply.
func publish(t *testing.T, nd *node, body string) string {
	t.Helper()
	res, err := nd.do(context.Background(), http.MethodPost, nd.PubsubURL+"/pub", []byte(body))
	if err != nil || res.code != http.StatusOK {
		t.Fatalf("publish on %s: %v %d %q", nd.ID, err, res.code, res.body)
	}
	return res.body
}

// clientLines returns the non-empty lines of nd's /clients, or nil when
// there are no subscribers.
func clientLines(nd *node) []string {
	code, body := nd.get(nd.PubsubURL + "/clients")
	if code != http.StatusOK || strings.HasPrefix(body, "no /sub connections") {
		return nil
	}
	return strings.Split(strings.TrimSpace(body), "\n")
}

// waitFanout publishes the one-byte probe "p" on nd until the reply counts
// want subscribers: subscriber sets travel by gossip, so a subscriber that
// connected a moment ago may not be known to other nodes yet. Subscribers
// see the probes (receive skips them; ps_to_http drops lines under 3 bytes).
func waitFanout(t *testing.T, nd *node, want int) {
	t.Helper()
	reply := fmt.Sprintf("Published 1 messages to %d clients.\n", want)
	eventually(t, 15*time.Second, fmt.Sprintf("%s fans out to %d subscribers", nd.ID, want), func() error {
		if got := publish(t, nd, "p"); got != reply {
			return fmt.Errorf("reply %q", got)
		}
		return nil
	})
}

// receive reads the next message of st other than the probe "p" within a
// deadline.
func receive(t *testing.T, st *client.Stream, want string) time.Time {
	t.Helper()
	type next struct {
		msg []byte
		err error
	}
	ch := make(chan next, 1)
	go func() {
		for {
			m, err := st.Next()
			if err != nil || string(m) != "p" {
				ch <- next{m, err}
				return
			}
		}
	}()
	select {
	case n := <-ch:
		if n.err != nil || string(n.msg) != want {
			t.Fatalf("received %q (%v), want %q", n.msg, n.err, want)
		}
		return time.Now()
	case <-time.After(10 * time.Second):
		t.Fatalf("no message within 10s, want %q", want)
	}
	return time.Time{}
}

// TestPubsub_ThreeNodes_FanOutSurvivesPausesAndKills: subscribers on two
// nodes receive a publish made on the third and the reply counts both; a
// paused (SIGSTOP) subscriber node never holds a publish up for long; a
// killed subscriber node leaves the other nodes' subscriber sets within
// seconds.
func TestPubsub_ThreeNodes_FanOutSurvivesPausesAndKills(t *testing.T) {
	inModes(t, testPubsub_ThreeNodes_FanOutSurvivesPausesAndKills)
}

func testPubsub_ThreeNodes_FanOutSurvivesPausesAndKills(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	s1, s2 := subscribe(t, n1), subscribe(t, n2)
	eventually(t, 15*time.Second, "node3 sees both subscribers", func() error {
		if got := clientLines(n3); len(got) != 2 {
			return fmt.Errorf("/clients on node3: %q", got)
		}
		return nil
	})
	for _, line := range clientLines(n3) {
		if !strings.Contains(line, " connected at ") || !strings.Contains(line, " node:node") {
			t.Fatalf("/clients line %q is not in the reference format with a node suffix", line)
		}
	}
	waitFanout(t, n3, 2)

	sent := time.Now()
	if got := publish(t, n3, "hello"); got != "Published 1 messages to 2 clients.\n" {
		t.Fatalf("reply %q", got)
	}
	r1, r2 := receive(t, s1, "hello"), receive(t, s2, "hello")
	t.Logf("publish on node3 to receive: node1 %v, node2 %v (the /pub reply waits for the other nodes)",
		r1.Sub(sent).Round(time.Microsecond), r2.Sub(sent).Round(time.Microsecond))

	// node2 paused: publishing goes on, bounded by the fan-out timeout.
	if err := n2.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := true
	defer func() {
		if paused {
			n2.Resume()
		}
	}()
	var worst time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		publish(t, n3, fmt.Sprintf("while-paused-%d", i))
		worst = max(worst, time.Since(start))
		receive(t, s1, fmt.Sprintf("while-paused-%d", i))
	}
	t.Logf("worst publish latency with node2 paused: %v (fan-out timeout 1s)", worst.Round(time.Millisecond))
	if worst > 3*time.Second {
		t.Fatalf("a publish took %v while a peer was paused", worst)
	}
	if err := n2.Resume(); err != nil {
		t.Fatal(err)
	}
	paused = false
	code, stats := n3.get(n3.PubsubURL + "/stats")
	if code != http.StatusOK || strings.Contains(stats, "Remote failures: 0\n") {
		t.Fatalf("node3 /stats does not count the failed deliveries: %q", stats)
	}

	// Back from the pause, node2 is fanned out to again.
	waitFanout(t, n3, 2)

	// node2 killed: its subscriber disappears from node3's view.
	killed := time.Now()
	n2.kill9()
	// While node3's gossiped view still has node2's subscriber, each publish
	// tries node2 and counts a remote failure; once node2 is dropped from
	// the sets, publishes stop trying.
	eventually(t, 20*time.Second, "node3 drops node2's subscriber set", func() error {
		before := remoteFailures(t, n3)
		publish(t, n3, "p")
		if after := remoteFailures(t, n3); after > before {
			return fmt.Errorf("a publish still tried node2 (remote failures %d -> %d)", before, after)
		}
		return nil
	})
	if got := clientLines(n3); len(got) != 1 || !strings.HasSuffix(got[0], " node:node1") {
		t.Fatalf("/clients on node3 after node2 was killed: %q", got)
	}
	t.Logf("node2's subscriber left node3's view %v after kill -9", time.Since(killed).Round(time.Millisecond))
	if got := publish(t, n3, "after-kill"); got != "Published 1 messages to 1 clients.\n" {
		t.Fatalf("reply after the kill %q", got)
	}
	receive(t, s1, "after-kill")
}

// remoteFailures reads "Remote failures: N" from nd's pubsub /stats.
func remoteFailures(t *testing.T, nd *node) int {
	t.Helper()
	_, body := nd.get(nd.PubsubURL + "/stats")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "Remote failures: "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no Remote failures line in %q", body)
	return 0
}

// startPsToHTTP runs `quorumq ps_to_http` until the test ends.
func startPsToHTTP(t *testing.T, args ...string) *testkit.Process {
	t.Helper()
	p := testkit.NewProcess(testkit.ProcessConfig{
		Name:    "ps_to_http",
		Argv:    append([]string{mustBinary(t), "ps_to_http"}, args...),
		LogPath: filepath.Join(t.TempDir(), "ps_to_http.log"),
	})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- ps_to_http log ----\n%s", p.LogTail(1<<20))
		}
	})
	return p
}

// subscribedAt reports whether nd's own pubsub port has a subscriber.
func subscribedAt(nd *node) bool {
	for _, line := range clientLines(nd) {
		if strings.HasSuffix(line, " node:"+nd.ID) {
			return true
		}
	}
	return false
}

// TestPsToHTTP_EveryMessageReachesTheQueue_AcrossRestarts: the tutorial's
// chain across three nodes (publish on node1, ps_to_http subscribed on
// node2, /put to node3) moves every message into the queue exactly once,
// while the destination node restarts and while the source node restarts
// (ps_to_http fails over to another source). Messages are published only
// while the bridge is subscribed, and the source is killed only once the
// bridge has read them: pubsub keeps nothing for absent subscribers, nor
// what a killed node had not yet written to them, by design.
func TestPsToHTTP_EveryMessageReachesTheQueue_AcrossRestarts(t *testing.T) {
	inModes(t, testPsToHTTP_EveryMessageReachesTheQueue_AcrossRestarts)
}

func testPsToHTTP_EveryMessageReachesTheQueue_AcrossRestarts(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	startPsToHTTP(t, append([]string{
		"--pubsub-url=" + n2.PubsubURL + "/sub?multipart=0",
		"--pubsub-url=" + n1.PubsubURL + "/sub?multipart=0",
		"--destination-get-url=" + n3.QueueURL + "/put?queue=chain&data=%s",
		"--idempotent-put", "--stats-interval=1s"}, c.toolArgs()...)...)
	eventually(t, 15*time.Second, "ps_to_http subscribed", func() error {
		if len(clientLines(n1)) == 0 {
			return fmt.Errorf("no subscriber yet")
		}
		return nil
	})
	// The bridge picks its first source at random; tell which.
	source := n2
	if subscribedAt(n1) {
		source = n1
	}
	other := n1
	if source == n1 {
		other = n2
	}
	publisher := other // alive in every phase below
	waitFanout(t, publisher, 1)
	t.Logf("ps_to_http reads from %s (%s), fails over to %s (%s); destination %s", source.ID, source.PubsubAddr, other.ID, other.PubsubAddr, n3.ID)
	var want []string
	var phases []string
	replies := map[string]string{} // phase -> its /pub reply
	pub := func(phase string, n int) {
		var batch []string
		for i := 0; i < n; i++ {
			batch = append(batch, fmt.Sprintf("%s-%03d", phase, i))
		}
		replies[phase] = strings.TrimSpace(publish(t, publisher, strings.Join(batch, "\n")))
		phases = append(phases, phase)
		want = append(want, batch...)
	}
	phase := func(m string) string { return m[:strings.LastIndex(m, "-")] }
	// missing counts the messages published so far that got lacks and
	// names them phase by phase, with each publish's reply.
	missing := func(got []string) (int, string) {
		have := map[string]bool{}
		for _, m := range got {
			have[m] = true
		}
		n, lack := 0, map[string]int{}
		for _, m := range want {
			if !have[m] {
				n++
				lack[phase(m)]++
			}
		}
		var out []string
		for _, ph := range phases {
			if lack[ph] > 0 {
				out = append(out, fmt.Sprintf("%s lacks %d (publish: %q)", ph, lack[ph], replies[ph]))
			}
		}
		return n, strings.Join(out, "; ")
	}
	// waitQueued waits until the queue, read through nd, holds every
	// message published so far, and returns its contents.
	waitQueued := func(nd *node, what string) []string {
		var got []string
		eventually(t, 60*time.Second, what, func() error {
			code, body := nd.get(nd.QueueURL + "/dump?queue=chain")
			if code != http.StatusOK {
				return fmt.Errorf("/dump on %s: %d %s", nd.ID, code, strings.TrimSpace(body))
			}
			got = dumpItems(body)
			if n, which := missing(got); n > 0 {
				return fmt.Errorf("%d of %d messages missing: %s", n, len(want), which)
			}
			return nil
		})
		return got
	}
	pub("steady", 50)

	// The destination node restarts; the bridge retries until it is back.
	n3.kill9()
	pub("destination-down", 50)
	n3.restart()
	pub("destination-back", 50)

	// The source node restarts; the bridge fails over to the other source.
	// Not before the bridge has read what was published so far: a /pub
	// is answered once the messages are queued for the subscribers (here
	// on the source node, by the fan-out), not once they were written to
	// their connections, so a kill -9 right after the publish loses what
	// the source still holds for the bridge. Pubsub keeps nothing across
	// a crash, and the bridge can forward only what its source delivered;
	// the messages in the queue show that it got them.
	waitQueued(publisher, "the bridge forwarded every message before the source restart")
	source.kill9()
	eventually(t, 30*time.Second, "ps_to_http subscribed to "+other.ID, func() error {
		if !subscribedAt(other) {
			return fmt.Errorf("/clients on %s: %q", other.ID, clientLines(other))
		}
		return nil
	})
	waitFanout(t, publisher, 1)
	pub("source-failed-over", 50)
	source.restart()
	pub("source-back", 50)

	got := waitQueued(c.waitForLeader(), "every message in the queue")
	seen := map[string]int{}
	for _, m := range got {
		seen[m]++
	}
	for _, m := range want {
		if seen[m] != 1 {
			t.Fatalf("%q stored %d times", m, seen[m])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("queue holds %d messages, %d were published", len(got), len(want))
	}
	// Within each phase, messages keep their order.
	pos := map[string]int{}
	for i, m := range got {
		pos[m] = i
	}
	for i := 1; i < len(want); i++ {
		if phase(want[i]) == phase(want[i-1]) && pos[want[i]] < pos[want[i-1]] {
			t.Fatalf("%q stored before %q", want[i], want[i-1])
		}
	}
	t.Logf("%d messages moved exactly once through ps_to_http across a destination and a source restart", len(got))
}
