package systemtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// The abuse probes of issue 16's limits: a forward to a frozen leader,
// slow bodies, a flood of puts, connections past the cap. Each is guarded
// by the canary: 100 messages put before the probe all come out in order
// after it.

// TestAbuseLimits_FrozenLeader_ForwardAnswers503WithinTimeout stops the
// leader with SIGSTOP (its kernel still accepts connections and takes
// request bytes; nothing answers) and sends a request to a follower that
// has a kept-alive connection to it: the request is answered 503 with
// Retry-After within --forward-timeout plus 1 s. A write that reached
// the frozen leader's socket is OUTCOME_UNKNOWN, a read NO_LEADER. One
// leader is frozen per probe, since the others elect a new one.
func TestAbuseLimits_FrozenLeader_ForwardAnswers503WithinTimeout(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		const forwardTimeout = 3 * time.Second
		c := mustStartCluster(t, 3, withMode(t, m), withServeArgs("--forward-timeout="+forwardTimeout.String()))
		c.waitForLeader()
		first := c.followers()[0]
		canary := first.mustPutCanary("frozen-leader")

		for _, p := range []struct {
			method, path string
			body         []byte
			code         string
		}{
			{http.MethodPost, "/put?queue=frozen", []byte("x"), "OUTCOME_UNKNOWN"},
			{http.MethodGet, "/stats?queue=frozen", nil, "NO_LEADER"},
		} {
			leader, f := freezeLeader(t, c)
			// A client that waits longer than the node should: what is
			// measured is the node's answer, not the client's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			start := time.Now()
			res, err := f.do(ctx, p.method, f.QueueURL+p.path, p.body)
			took := time.Since(start)
			cancel()
			if err := leader.Resume(); err != nil {
				t.Fatal(err)
			}
			if err != nil {
				t.Fatalf("%s %s via %s with %s frozen: %v after %v", p.method, p.path, f.ID, leader.ID, err, took)
			}
			t.Logf("%s %s via %s with the leader %s frozen: %d %s after %v (forward timeout %v): %s",
				p.method, p.path, f.ID, leader.ID, res.code, res.header.Get(api.HeaderErrorCode), took.Round(time.Millisecond), forwardTimeout, strings.TrimSpace(res.body))
			if res.code != http.StatusServiceUnavailable || res.header.Get("Retry-After") == "" || res.header.Get(api.HeaderErrorCode) != p.code {
				t.Fatalf("%s %s: %d %q Retry-After %q, want 503 %s with Retry-After", p.method, p.path, res.code, res.header.Get(api.HeaderErrorCode), res.header.Get("Retry-After"), p.code)
			}
			// The bound of the issue: the forward timeout plus 1 s.
			if took > forwardTimeout+time.Second {
				t.Fatalf("%s %s answered after %v, want within %v", p.method, p.path, took, forwardTimeout+time.Second)
			}
		}
		c.waitForLeader()
		canary.mustComeOutInOrder(first)
	})
}

// freezeLeader stops the leader with SIGSTOP and returns it with a
// follower that still names it as its leader. On a busy machine the
// leadership can move between finding the leader and freezing it; the
// probe would then ask a node that leads itself, so it starts again.
func freezeLeader(t *testing.T, c *cluster) (leader, f *node) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		leader = c.waitForLeader()
		f = c.followers()[0]
		// A forwarded request leaves f a kept-alive connection to the
		// leader, which the probe then uses: with TLS a new one would
		// wait in the handshake and, never sent, be retried on the next
		// leader.
		f.mustGet(f.QueueURL + "/stats?queue=frozen")
		if err := leader.Pause(); err != nil {
			t.Fatal(err)
		}
		st, err := f.status()
		if err == nil && st.State == api.StateFollower && st.LeaderID == leader.ID {
			return leader, f
		}
		if err := leader.Resume(); err != nil {
			t.Fatal(err)
		}
		if attempt == 5 {
			t.Fatalf("the leadership kept moving: %s's view after freezing %s: %+v (%v)", f.ID, leader.ID, st, err)
		}
		t.Logf("the leadership moved before %s was frozen (%s's view: %+v, %v); again", leader.ID, f.ID, st, err)
	}
}

// TestAbuseLimits_SlowBodies_ClosedByTimeoutOthersServed opens 500
// connections that each send a request body one byte a second, against a
// node with --body-read-timeout=2s: meanwhile other clients are served,
// every slow connection is answered and closed by the timeout, nothing of
// theirs is stored, and the node's open files come back to where they
// were.
func TestAbuseLimits_SlowBodies_ClosedByTimeoutOthersServed(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		const (
			slow        = 500
			bodyTimeout = 2 * time.Second
			// closedWithin is generous: 500 connections are opened one
			// after the other on a small, busy machine.
			closedWithin = bodyTimeout + 30*time.Second
		)
		nd := mustStartNode(t, m, "--body-read-timeout="+bodyTimeout.String())
		canary := nd.mustPutCanary("slow-bodies")
		fdsBefore := openFiles(t, nd)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		type outcome struct {
			status string // the answer's status line, "" if none
			took   time.Duration
			err    error
		}
		outcomes := make(chan outcome, slow)
		var opened sync.WaitGroup
		opened.Add(slow)
		for i := range slow {
			go func() {
				start := time.Now()
				conn, err := nd.rawConn()
				opened.Done()
				if err != nil {
					outcomes <- outcome{err: fmt.Errorf("connection %d: %w", i, err)}
					return
				}
				defer conn.Close()
				status, err := slowBody(ctx, conn, nd.token, 1000)
				outcomes <- outcome{status: status, took: time.Since(start), err: err}
			}()
		}
		opened.Wait()
		peak := openFiles(t, nd)

		// Other clients are served while the slow ones hold their
		// connections.
		for i := range 20 {
			msg := fmt.Sprintf("meanwhile-%02d", i)
			nd.mustPut(nd.QueueURL+"/put?queue=meanwhile", msg)
			if got := nd.mustGet(nd.QueueURL + "/get?queue=meanwhile"); got != msg {
				t.Fatalf("meanwhile: got %q, want %q", got, msg)
			}
		}

		var worst time.Duration
		answered := 0
		for range slow {
			o := <-outcomes
			if o.err != nil {
				t.Fatal(o.err)
			}
			worst = max(worst, o.took)
			if strings.Contains(o.status, " 400 ") {
				answered++
			}
		}
		t.Logf("%d slow-body connections: all closed by the node, the last after %v (body timeout %v); %d answered 400 first; the node's open files %d before, %d with them open",
			slow, worst.Round(time.Millisecond), bodyTimeout, answered, fdsBefore, peak)
		if worst > closedWithin {
			t.Fatalf("a slow-body connection stayed open %v", worst)
		}
		if answered == 0 {
			t.Fatal("no slow-body connection was answered before it was closed")
		}
		eventually(t, readyTimeout, "the node's open files back to where they were", func() error {
			if n := openFiles(t, nd); n > fdsBefore+20 {
				return fmt.Errorf("%d open files, %d before", n, fdsBefore)
			}
			return nil
		})
		if got := nd.metric(`quorumq_http_body_read_timeouts_total{port="queue"}`); got < slow {
			t.Fatalf("body read timeouts counted: %v, want at least %d", got, slow)
		}
		if st := nd.mustGet(nd.QueueURL + "/stats?queue=slow"); !strings.Contains(st, "\ndepth:0\n") {
			t.Fatalf("slow bodies stored something: %q", st)
		}
		canary.mustComeOutInOrder(nd)
	})
}

// TestAbuseLimits_PutFlood_507BeforeOutOfMemory floods a node that has
// a small budget of queued bytes with /mput from several writers, after
// one /mput of 5 MB of 1-byte records (2.6 million messages): the node
// answers 507 QUEUE_FULL naming the budget long before its memory grows
// by more than a small multiple of the budget, every record acknowledged
// is there in order, and once readers drain, puts are taken again.
func TestAbuseLimits_PutFlood_507BeforeOutOfMemory(t *testing.T) {
	const (
		budget   = 16 << 20
		writers  = 4
		records  = 2000 // per /mput
		maxRSSUp = 512 << 20
		// recordSize is the length of "w0-0000-0000".
		recordSize = 12
	)
	nd := mustStartNode(t, open, "--max-queued-bytes=16MiB")
	canary := nd.mustPutCanary("put-flood")
	rssBefore := rss(t, nd)

	// The request that used to add 140-240 MB on every node.
	tiny := []byte(strings.Repeat("a\n", (5<<20)/2))
	code, body, err := nd.post(context.Background(), nd.QueueURL+"/mput?queue=flood-tiny", tiny)
	if err != nil || code != api.StatusQueueFull {
		t.Fatalf("/mput of %d 1-byte records: %d %q %v, want 507", len(tiny)/2, code, body, err)
	}
	t.Logf("/mput of %d 1-byte records: 507 %s", len(tiny)/2, strings.TrimSpace(body))

	var (
		mu    sync.Mutex
		acked = make([][]string, writers) // per writer, in order
		full  string                      // a 507's body
	)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			refusals := 0
			for batch := 0; refusals < 3; batch++ {
				recs := make([]string, records)
				for i := range recs {
					recs[i] = fmt.Sprintf("w%d-%04d-%04d", w, batch, i)
				}
				res, err := nd.do(context.Background(), http.MethodPost, nd.QueueURL+"/mput?queue=flood", []byte(strings.Join(recs, "\n")))
				switch {
				case err != nil:
					t.Errorf("writer %d: %v", w, err)
					return
				case res.code == http.StatusOK:
					mu.Lock()
					acked[w] = append(acked[w], recs...)
					mu.Unlock()
				case res.code == api.StatusQueueFull && res.header.Get(api.HeaderErrorCode) == "QUEUE_FULL":
					refusals++
					mu.Lock()
					full = res.body
					mu.Unlock()
				default:
					t.Errorf("writer %d: %d %s %q", w, res.code, res.header.Get(api.HeaderErrorCode), res.body)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	rssFull := rss(t, nd)
	total := 0
	for _, a := range acked {
		total += len(a)
	}
	t.Logf("flood of /mput (%d records of %d bytes each) to a budget of %s: %d records acknowledged, then 507: %s",
		records, recordSize, api.FormatBytes(budget), total, strings.TrimSpace(full))
	t.Logf("node RSS %s before, %s at the budget (+%s)", api.FormatBytes(rssBefore), api.FormatBytes(rssFull), api.FormatBytes(rssFull-rssBefore))
	for _, want := range []string{"node is full", "budget of 16.0 MiB", "--max-queued-bytes"} {
		if !strings.Contains(full, want) {
			t.Fatalf("507 body %q does not say %q", full, want)
		}
	}
	if rssFull-rssBefore > maxRSSUp {
		t.Fatalf("RSS grew by %s under a budget of %s", api.FormatBytes(rssFull-rssBefore), api.FormatBytes(budget))
	}
	// The budget is spent by what was acknowledged, not by much less.
	if cost := int64(total) * (recordSize + 1 + fsm.MessageOverhead); cost < budget/2 {
		t.Fatalf("only %d records (%s) acknowledged before 507", total, api.FormatBytes(cost))
	}

	// Nothing acknowledged is lost: every record, each writer's in order.
	dump := dumpItems(nd.mustGet(nd.QueueURL + "/dump?queue=flood"))
	if len(dump) != total {
		t.Fatalf("/dump has %d records, %d were acknowledged", len(dump), total)
	}
	next := make([]int, writers)
	for _, rec := range dump {
		w, err := strconv.Atoi(strings.TrimPrefix(rec[:2], "w"))
		if err != nil || w >= writers || next[w] >= len(acked[w]) || acked[w][next[w]] != rec {
			t.Fatalf("record %q out of order or never acknowledged", rec)
		}
		next[w]++
	}

	// Readers drain; puts are taken again.
	for range 20 {
		nd.mustGet(nd.QueueURL + "/mget?queue=flood&items=1000")
	}
	nd.mustPut(nd.QueueURL+"/put?queue=flood", "after the drain")
	canary.mustComeOutInOrder(nd)
}

// TestAbuseLimits_ConnectionCap_503PastItServedAfter opens connections
// to a node with --max-conns=40 until one is refused: it is answered a
// short 503 with Retry-After and closed at once (not left in the kernel's
// backlog), counted; once the connections close the node serves again.
func TestAbuseLimits_ConnectionCap_503PastItServedAfter(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		const maxConns = 40
		nd := mustStartNode(t, m, "--max-conns="+strconv.Itoa(maxConns))
		canary := nd.mustPutCanary("connection-cap")

		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		var refusal string
		for len(held) <= maxConns && refusal == "" {
			conn, err := nd.rawConn()
			if err != nil {
				// Over TLS the refusal comes after the handshake; a plain
				// refusal may already show in the dial.
				t.Fatalf("connection %d: %v", len(held)+1, err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: q\r\n\r\n")
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("connection %d: %v", len(held)+1, err)
			}
			b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
			if res.StatusCode == http.StatusServiceUnavailable {
				refusal = fmt.Sprintf("%d %s Retry-After %s: %s", res.StatusCode, res.Header.Get(api.HeaderErrorCode), res.Header.Get("Retry-After"), b)
				if res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "--max-conns") {
					t.Fatalf("refusal %q", refusal)
				}
				if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil {
					t.Fatalf("the refused connection stays open: %d %v", n, err)
				}
				conn.Close()
				break
			}
			held = append(held, conn)
		}
		if refusal == "" {
			t.Fatalf("%d connections open and none refused", len(held))
		}
		t.Logf("connection %d refused (the test client's own pooled connections count too): %s", len(held)+1, strings.TrimSpace(refusal))
		for _, c := range held {
			c.Close()
		}
		held = nil
		eventually(t, readyTimeout, "the refused connection counted", func() error {
			if got := nd.metric(`quorumq_http_connections_refused_total{port="queue"}`); got < 1 {
				return fmt.Errorf("refused %v", got)
			}
			return nil
		})
		canary.mustComeOutInOrder(nd)
	})
}

// rawConn opens a connection to the node's queue port, over TLS when it
// is secured.
func (n *node) rawConn() (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if n.tls == nil {
		return d.Dial("tcp", n.QueueAddr)
	}
	return tls.DialWithDialer(d, "tcp", n.QueueAddr, n.tls)
}

// slowBody sends a /put whose body of size bytes comes one byte a second
// until the node closes the connection (or ctx ends), and returns the
// answer's status line if one came first.
func slowBody(ctx context.Context, conn net.Conn, token string, size int) (string, error) {
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := fmt.Fprintf(conn, "POST /put?queue=slow HTTP/1.1\r\nHost: q\r\n%sContent-Length: %d\r\n\r\nx", auth, size); err != nil {
		return "", err
	}
	// The node's answer and close are read while bytes keep coming.
	read := make(chan string, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(5 * time.Minute))
		status, _ := bufio.NewReader(conn).ReadString('\n')
		io.Copy(io.Discard, conn)
		read <- status
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case status := <-read:
			return strings.TrimSpace(status), nil
		case <-ctx.Done():
			return "", ctx.Err()
		case <-tick.C:
			// A write error means the node closed the connection; the
			// reader reports what it got.
			conn.Write([]byte("x"))
		}
	}
}

// openFiles counts the node process's open file descriptors.
func openFiles(t *testing.T, nd *node) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", nd.PID()))
	if err != nil {
		t.Fatalf("open files of %s: %v", nd.Name(), err)
	}
	return len(ents)
}

// rss is the node process's resident memory, in bytes.
func rss(t *testing.T, nd *node) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", nd.PID()))
	if err != nil {
		t.Fatalf("status of %s: %v", nd.Name(), err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in the status of %s", nd.Name())
	return 0
}
