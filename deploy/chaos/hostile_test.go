package chaos

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// A kill held from 10 s to 20 s (step over at 22 s): fault window 10-24 s.
var oneFault = []FaultEvent{{Kind: KillLeader, Start: 10 * s, Healed: 20 * s, Ended: 22 * s}}

func TestCheckMGetCap_AnswerAboveTheCap_Violation(t *testing.T) {
	h := newTestHistory().h
	h.BigMGets = []MGetRecord{
		{Queue: WorkQueue, Items: 99999999, Returned: 1000, Outcome: OK},
		{Queue: "lin-000", Items: 5000, Returned: 3, Outcome: OK},
		{Queue: WorkQueue, Items: 99999999, Returned: 0, Outcome: Unknown},
	}
	if c := checkMGetCap(h, 1000); !c.Pass || c.Checked != 2 {
		t.Fatalf("answers within the cap: pass=%v checked=%d %q", c.Pass, c.Checked, c.Examples)
	}
	h.BigMGets = append(h.BigMGets, MGetRecord{Queue: WorkQueue, Items: 99999999, Returned: 1001, Outcome: OK})
	if c := checkMGetCap(h, 1000); c.Pass || c.Violations != 1 {
		t.Fatalf("an answer above the cap: pass=%v violations=%d", c.Pass, c.Violations)
	}
	if c := checkMGetCap(h, 0); !c.Pass {
		t.Fatalf("no cap expected, yet %q", c.Examples)
	}
}

func TestCheckPubLatency(t *testing.T) {
	pub := func(start, end time.Duration, out Outcome, probe bool) PubRecord {
		return PubRecord{Node: "node1", Start: start, End: end, Outcome: out, Probe: probe}
	}
	for _, tc := range []struct {
		name string
		pubs []PubRecord
		pass bool
	}{
		{"fast, no fault", []PubRecord{pub(1*s, 1*s+10, OK, false), pub(30*s, 30*s+10, OK, false)}, true},
		{"slow during a fault", []PubRecord{pub(12*s, 18*s, Unknown, false)}, true},
		{"slow just after the step ended", []PubRecord{pub(23*s, 29*s, Unknown, false)}, true},
		{"slow with no fault", []PubRecord{pub(30*s, 36*s, Unknown, false)}, false},
		{"answered late with no fault", []PubRecord{pub(1*s, 7*s, OK, false)}, false},
		{"refused with no fault", []PubRecord{pub(1*s, 1*s+10, Fail, false)}, false},
		{"probe failed", []PubRecord{pub(40*s, 40*s+10, Fail, true)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHistory().h
			h.Pubs = tc.pubs
			if c := checkPubLatency(h, oneFault, 5*s); c.Pass != tc.pass {
				t.Fatalf("pass=%v, want %v; %q %q", c.Pass, tc.pass, c.Examples, c.Notes)
			}
		})
	}
}

func TestCheckServed(t *testing.T) {
	many := func(out Outcome) *history {
		b := newTestHistory()
		for i := range 20 {
			start := 30*s + time.Duration(i)*100*time.Millisecond
			b.put("p0-"+string(rune('a'+i)), 0, attempt(out, "", "", start, start+10*time.Millisecond))
		}
		return b
	}
	if c := checkServed(many(OK).h, oneFault, 5*s); !c.Pass || c.Checked != 20 {
		t.Fatalf("all served: pass=%v checked=%d %q", c.Pass, c.Checked, c.Examples)
	}
	if c := checkServed(many(Fail).h, oneFault, 5*s); c.Pass {
		t.Fatal("nothing served with no fault in effect, yet the check passes")
	}
	slow := many(OK).put("slow", 0, attempt(OK, "", "9", 40*s, 46*s))
	if c := checkServed(slow.h, oneFault, 5*s); c.Pass {
		t.Fatal("a put answered after 6 s with no fault in effect passes")
	}
	during := many(OK).put("slow", 0, attempt(Unknown, "TIMEOUT", "", 11*s, 17*s))
	during.h.Lin = []LinOp{lin(0, "get", "", 12*s, 18*s, Unknown)}
	if c := checkServed(during.h, oneFault, 5*s); !c.Pass {
		t.Fatalf("slow requests during a fault fail the check: %q", c.Examples)
	}
}

// The kernel's view of a socket tells a stalled subscriber that the node
// closed it, without reading a byte.
func TestTCPClosed_PeerCloses_SeenWithoutReading(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("HTTP/1.1 200 OK\r\n\r\nstream"))
			accepted <- c
		}
		close(accepted)
	}()
	d := net.Dialer{Control: smallReceiveBuffer(4096)}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line, err := readLine(c)
	if err != nil || line != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q, %v", line, err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("nothing accepted")
	}
	if closed, known := tcpClosed(c); closed || !known {
		t.Fatalf("open connection: closed=%v known=%v", closed, known)
	}
	srv.Close()
	err = testkit.Poll(context.Background(), 5*time.Second, "closed seen", func(context.Context) error {
		if closed, _ := tcpClosed(c); !closed {
			return errors.New("still established")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReport_WriteTable_ShowsTheNewParts(t *testing.T) {
	h := newTestHistory().h
	h.BigMGets = []MGetRecord{{Queue: WorkQueue, Items: 99999999, Returned: 7, Bytes: 70, Outcome: OK}}
	h.Pubs = []PubRecord{{Node: "node1", Start: 1 * s, End: 1*s + 3*time.Millisecond, Outcome: OK, Subscribers: 9}}
	h.Hostile = []HostileConn{
		{Kind: SlowBody, Node: "node1", Port: portQueue, Start: 1 * s, End: 11 * s, Ended: EndClosedByServer, Answer: "HTTP/1.1 408 Request Timeout"},
		{Kind: IdleConn, Node: "node1", Port: portQueue, Start: 1 * s, End: 90 * s, Ended: EndOpen},
		{Kind: StalledSub, Node: "node1", Port: portPubsub, Start: 1 * s, End: 90 * s, Ended: EndOpen},
	}
	lin := []LinResult{
		{Queue: "lin-000", Piece: 0, Ops: 10, Result: LinOK},
		{Queue: "lin-000", Piece: 1, Ops: 30, Unknown: 2, Result: LinTimeout, From: 3 * s, To: 9 * s, Took: 30 * s},
	}
	rep := &Report{Lin: lin, Checks: []CheckResult{LinCheck(lin)}, Hostile: hostileReport(h, DefaultWorkloadConfig(),
		[]FaultEvent{{Kind: Restart, Start: 5 * s, ExitAfter: GracefulExitWait, ExitKilled: true, Error: "no exit"}})}
	var b strings.Builder
	rep.WriteTable(&b)
	for _, want := range []string{
		"lin-000", "TIMED OUT (a failure) in piece 1", "LARGE MGET", "7/0", "PUB TO STALLED",
		"slow-body", "408 Request Timeout", "stalled-sub", "VIOLATIONS: " + CheckLin,
		"graceful restarts: 1, 1 killed after no exit within 10s",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
}

// At the end, a stalled subscriber the node dropped long ago (its close
// stuck behind unread data) is told from one still attached by reading
// what it left.
func TestDrainStalled_DroppedOrAttached(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, dropped := range []bool{true, false} {
		served := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(served)
				return
			}
			c.Write(append(bytes.Repeat([]byte("m\n"), 100000), "ERROR_TOO_SLOW. kicked for having 9 pending bytes\n"...))
			if dropped {
				c.Close()
			}
			served <- c
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		srv := <-served
		hc := &hconn{conn: c, rec: HostileConn{Kind: StalledSub, Ended: EndOpen}}
		drainStalled(hc)
		c.Close()
		if srv != nil {
			srv.Close()
		}
		switch {
		case dropped && (hc.rec.Ended != EndClosedByServer || !hc.rec.EndSeenLate || !strings.HasPrefix(hc.rec.Answer, "ERROR_TOO_SLOW")):
			t.Fatalf("dropped subscriber recorded as %+v", hc.rec)
		case !dropped && hc.rec.Ended != EndOpen:
			t.Fatalf("attached subscriber recorded as %+v", hc.rec)
		}
	}
}
