package systemtest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The abuse probes of destructive reads (issue 16): a /mget that asks for
// everything is answered with at most the caps and takes exactly what it
// answers, and a read whose client is gone before its answer gives its
// messages back. Both run through the leader and through a follower, on
// an open and a secured cluster.

// readsHandoverLease is the nodes' --handover-lease: short, so that a
// handover nobody could confirm (a relay cut before the follower learned
// its ids) comes back within the test's patience.
const readsHandoverLease = 3 * time.Second

func TestAbuseReads_HugeMgetAndClientsGone_CappedAndNothingLost(t *testing.T) {
	inModes(t, func(t *testing.T, m mode) {
		c := mustStartCluster(t, 3, withMode(t, m), withServeArgs("--handover-lease="+readsHandoverLease.String()))
		leader := c.waitForLeader()
		follower := c.followers()[0]
		canary := follower.mustPutCanary("reads")

		t.Run("huge mget", func(t *testing.T) {
			const n = 200000
			mustFill(leader, "big", n, 0)
			for _, via := range []*node{follower, leader} {
				for _, format := range []string{"", "&format=json"} {
					probeHugeMget(t, via, "big", format)
				}
			}
			// Large messages: the byte cap (--max-get-bytes, 4 MiB) binds first.
			mustFill(leader, "fat", 60, 200<<10)
			for _, via := range []*node{follower, leader} {
				if got := probeHugeMget(t, via, "fat", ""); got != 20 {
					t.Fatalf("via %s: %d messages of 200 KiB, want the 20 that fit 4 MiB", via.ID, got)
				}
			}
			// The follower confirmed what it relayed, through the leader
			// (node to node, the cluster's certificates when secured).
			eventually(t, 30*time.Second, follower.ID+" to confirm the 2020 messages it relayed", func() error {
				if got := follower.metric(`quorumq_handover_messages_total{result="confirmed"}`); got != 2020 {
					return fmt.Errorf("confirmed %v", got)
				}
				return nil
			})
		})
		t.Run("client gone", func(t *testing.T) {
			const n = 500
			mustFill(leader, "cut", n, 0)
			// An answer written into the connection before the client's
			// reset reached the node counts as delivered (README, "Bounded,
			// lossless pops"): on a loaded machine this test's own close
			// can come that late. Such answers are counted as confirmed.
			confirmed := func() int {
				const sample = `quorumq_handover_messages_total{result="confirmed"}`
				return int(leader.metric(sample) + follower.metric(sample))
			}
			before := confirmed()
			for _, via := range []*node{leader, follower} {
				for range 10 {
					sendAndHangUp(t, via, "/mget?queue=cut&items=200")
					sendAndHangUp(t, via, "/get?queue=cut")
				}
			}
			// Given back at once, or by the handover lease when the relay
			// was cut before the follower learned what was taken.
			var delivered int
			eventually(t, 3*readsHandoverLease+30*time.Second, "every message of cut ready again or delivered", func() error {
				delivered = confirmed() - before
				if st := mustStats(leader, "cut"); int(st.Depth)+delivered != n {
					return fmt.Errorf("depth %d and %d delivered, want %d together", st.Depth, delivered, n)
				}
				return nil
			})
			if delivered > 0 {
				t.Logf("%s: %d messages were written to clients before their hang-up reached the node: delivered", m.name, delivered)
			}
			// Whether a request that is hung up at once takes anything
			// before its node sees the client gone is a race; it is logged.
			t.Logf("%s: %d messages were taken by requests whose clients had gone, and came back", m.name, mustStats(leader, "cut").Gets)

			// A client that stops reading, then hangs up once its read has
			// taken the messages: the answer (4 MiB, more than the
			// sockets' buffers hold) cannot be written, and the messages
			// come back. This one always takes.
			const fat = 20
			mustFill(leader, "cutfat", fat, 200<<10)
			for _, via := range []*node{leader, follower} {
				conn := sendAndStall(t, via, "/mget?queue=cutfat&items=20")
				eventually(t, 30*time.Second, "the stalled read via "+via.ID+" to take the messages", func() error {
					if st := mustStats(leader, "cutfat"); st.Depth != 0 {
						return fmt.Errorf("depth %d", st.Depth)
					}
					return nil
				})
				conn.Close() // with unread data: a reset
				eventually(t, 3*readsHandoverLease+30*time.Second, "the messages of the stalled read via "+via.ID+" back", func() error {
					if st := mustStats(leader, "cutfat"); st.Depth != fat {
						return fmt.Errorf("depth %d, want %d", st.Depth, fat)
					}
					return nil
				})
			}

			// A relayed read whose client left while the follower was
			// forwarding it may still take messages after the depth was
			// whole, and give them back when it finds nobody to write to:
			// read until every message came out, each exactly once.
			mustReadBackOnce(t, follower, "cut", n, 0, delivered)
			mustReadBackOnce(t, follower, "cutfat", fat, 200<<10, 0)
		})
		canary.mustComeOutInOrder(follower)
	})
}

// mustReadBackOnce reads queue through nd until its n messages (of size,
// see fillMessage) all came out but the delivered ones, which answers
// took before (see "client gone"), and fails on one read twice or on more
// missing than were delivered.
func mustReadBackOnce(t *testing.T, nd *node, queue string, n, size, delivered int) {
	t.Helper()
	seen := make(map[string]bool, n)
	eventually(t, 3*readsHandoverLease+30*time.Second, "every message of "+queue+" read back", func() error {
		got := nd.mustGet(nd.QueueURL + "/mget?queue=" + queue + "&items=1000&format=json")
		var ans struct {
			Messages []struct{ Data string } `json:"messages"`
		}
		if err := json.Unmarshal([]byte(got), &ans); err != nil {
			t.Fatalf("mget answer %s: %v", abbrev(got), err)
		}
		for _, msg := range ans.Messages {
			if seen[msg.Data] {
				t.Fatalf("%q read back twice", abbrev(msg.Data))
			}
			seen[msg.Data] = true
		}
		if len(seen) < n-delivered {
			return fmt.Errorf("%d of %d read back (%d delivered before)", len(seen), n, delivered)
		}
		return nil
	})
	missing := 0
	for i := range n {
		if !seen[fillMessage(queue, i, size)] {
			missing++
		}
	}
	if missing != delivered || len(seen) != n-delivered {
		t.Fatalf("%d messages read back, %d never: want %d and the %d delivered before", len(seen), missing, n-delivered, delivered)
	}
}

// probeHugeMget sends /mget?items=99999999 through nd and checks that the
// answer holds at most the item cap, its ids header stays within 8 KiB,
// and the queue's depth dropped by exactly the number of messages in it,
// which it returns.
func probeHugeMget(t *testing.T, nd *node, queue, format string) int {
	t.Helper()
	before := mustStats(nd, queue).Depth
	start := time.Now()
	res := nd.mustGetStatus(nd.QueueURL + "/mget?queue=" + queue + "&items=99999999" + format)
	took := time.Since(start)
	if res.code != http.StatusOK {
		t.Fatalf("via %s: %d %s", nd.ID, res.code, abbrev(res.body))
	}
	var got int
	ids := res.header.Get("X-Message-Ids")
	if format == "" {
		got = len(strings.Split(ids, ","))
		// A separator after every item but the last of a full answer.
		if seps := strings.Count(res.body, "\n"); seps != got && seps != got-1 {
			t.Fatalf("via %s: %d separators for %d ids", nd.ID, seps, got)
		}
		if len(ids) > 8<<10 {
			t.Fatalf("via %s: X-Message-Ids is %d bytes, more than 8 KiB", nd.ID, len(ids))
		}
	} else {
		got = strings.Count(res.body, `"id":`)
	}
	const maxMGet = 1000 // the default --max-mget
	if got == 0 || got > maxMGet {
		t.Fatalf("via %s: %d messages, want 1 to %d", nd.ID, got, maxMGet)
	}
	after := mustStats(nd, queue).Depth
	if before-after != int64(got) {
		t.Fatalf("via %s: depth %d -> %d after handing out %d", nd.ID, before, after, got)
	}
	t.Logf("/mget?items=99999999%s on %s via %s: %d messages, %d bytes of body, %d of X-Message-Ids, depth %d -> %d, in %v",
		format, queue, nd.ID, got, len(res.body), len(ids), before, after, took.Round(time.Millisecond))
	return got
}

// fillMessage is message i of a filled queue, padded to size bytes.
func fillMessage(queue string, i, size int) string {
	m := fmt.Sprintf("%s-%07d", queue, i)
	if len(m) < size {
		m += strings.Repeat("x", size-len(m))
	}
	return m
}

// mustFill puts n messages into queue through nd, in /mput bodies of at
// most 4 MiB.
func mustFill(nd *node, queue string, n, size int) {
	nd.t.Helper()
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			nd.mustPut(nd.QueueURL+"/mput?queue="+url.QueryEscape(queue), b.String())
			b.Reset()
		}
	}
	for i := range n {
		b.WriteString(fillMessage(queue, i, size))
		b.WriteByte('\n')
		if b.Len() > 4<<20 {
			flush()
		}
	}
	flush()
	if st := mustStats(nd, queue); st.Depth != int64(n) {
		nd.t.Fatalf("%s holds %d messages after the fill, want %d", queue, st.Depth, n)
	}
}

type queueStats struct {
	Gets  uint64 `json:"gets"`
	Depth int64  `json:"depth"`
}

func mustStats(nd *node, queue string) queueStats {
	nd.t.Helper()
	body := nd.mustGet(nd.QueueURL + "/stats?format=json&queue=" + url.QueryEscape(queue))
	var st queueStats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		nd.t.Fatalf("stats of %s: %s: %v", queue, abbrev(body), err)
	}
	return st
}

// sendAndHangUp sends one GET to nd on a connection of its own and resets
// the connection without reading anything: a client gone before its
// answer.
func sendAndHangUp(t *testing.T, nd *node, target string) {
	t.Helper()
	// Closed with a reset (SO_LINGER 0), as a client that crashed: the node
	// cannot then write an answer into the kernel's buffers for nobody,
	// which a plain close allows (and which the node counts as delivered:
	// README, "Bounded, lossless pops").
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptLinger(int(fd), syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0})
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	sendRaw(t, nd, target, d).Close()
}

// sendAndStall sends GET target to nd on a connection with a small
// receive buffer and never reads from it: the node's answer stalls once
// the sockets' buffers are full. The caller closes it.
func sendAndStall(t *testing.T, nd *node, target string) net.Conn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	return sendRaw(t, nd, target, d)
}

// sendRaw dials nd's queue port with d and sends GET target, with the
// node's token; the connection is the caller's.
func sendRaw(t *testing.T, nd *node, target string, d *net.Dialer) net.Conn {
	t.Helper()
	u, err := url.Parse(nd.QueueURL)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	if u.Scheme == "https" {
		conn, err = tls.DialWithDialer(d, "tcp", u.Host, nd.tls)
	} else {
		conn, err = d.DialContext(context.Background(), "tcp", u.Host)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", u.Host, err)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n", target, u.Host)
	if nd.token != "" {
		req += "Authorization: Bearer " + nd.token + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n")); err != nil {
		t.Fatalf("send %s: %v", target, err)
	}
	return conn
}
