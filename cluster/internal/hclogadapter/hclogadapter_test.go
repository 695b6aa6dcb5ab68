package hclogadapter

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// testLogger returns an adapter writing text records without times to the
// returned buffer, on a clock the test moves.
func testLogger(level slog.Level) (*Logger, *bytes.Buffer, *time.Time) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	now := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	a := New(slog.New(h), "raft", level)
	a.limit = newLimiter(RepeatWindow, func() time.Time { return now })
	return a, &buf, &now
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestLimiter_RepeatedPeerErrorsAreSummarisedOncePerWindow: a dead
// follower's errors, several a second, come out as the first one, then one
// a minute with the count of those left out; each peer and each message
// has its own count.
func TestLimiter_RepeatedPeerErrorsAreSummarisedOncePerWindow(t *testing.T) {
	a, buf, now := testLogger(slog.LevelInfo)
	for i := range 70 {
		a.Error("failed to heartbeat to", "peer", "127.0.0.1:9012", "backoff time", "250ms", "error", "connection refused")
		a.Error("failed to appendEntries to", "peer", "{Suffrage:Voter ID:node2 Address:127.0.0.1:9012}", "error", "connection refused")
		if i < 3 {
			a.Error("failed to heartbeat to", "peer", "127.0.0.1:9022", "error", "connection refused")
		}
		a.Warn("failed to contact", "server-id", "node2", "time", time.Duration(i)*time.Millisecond)
		*now = now.Add(300 * time.Millisecond) // 70 rounds: 21 s
	}
	got := lines(buf)
	if len(got) != 4 {
		t.Fatalf("%d lines in the first 21 s, want the first of each of 4 kinds:\n%s", len(got), buf)
	}
	for _, l := range got {
		if strings.Contains(l, "repeats=") {
			t.Errorf("a first line carries a count: %s", l)
		}
	}

	buf.Reset()
	*now = now.Add(RepeatWindow)
	a.Error("failed to heartbeat to", "peer", "127.0.0.1:9012", "error", "connection refused")
	a.Error("failed to heartbeat to", "peer", "127.0.0.1:9022", "error", "connection refused")
	a.Warn("failed to contact", "server-id", "node2")
	a.Error("failed to heartbeat to", "peer", "127.0.0.1:9012", "error", "connection refused") // in the new window
	got = lines(buf)
	want := []string{
		`level=ERROR msg="failed to heartbeat to" subsystem=raft peer=127.0.0.1:9012 error="connection refused" repeats="69 more in the last 1m21s"`,
		`level=ERROR msg="failed to heartbeat to" subsystem=raft peer=127.0.0.1:9022 error="connection refused" repeats="2 more in the last 1m21s"`,
		`level=WARN msg="failed to contact" subsystem=raft server-id=node2 repeats="69 more in the last 1m21s"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after the window:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestLimiter_MemberlistLinesAreKeyedByTheirText: memberlist's plain lines
// name the peer in the text; the same failure from a new local port is the
// same line, another peer is another.
func TestLimiter_MemberlistLinesAreKeyedByTheirText(t *testing.T) {
	a, buf, _ := testLogger(slog.LevelInfo)
	w := a.Named("memberlist").StandardWriter(nil)
	for port := 40000; port < 40010; port++ {
		fmt.Fprintf(w, "[ERR] memberlist: Failed fallback ping: read tcp 127.0.0.1:%d->127.0.0.1:9013: i/o timeout\n", port)
		fmt.Fprintf(w, "[ERR] memberlist: Failed fallback ping: read tcp 127.0.0.1:%d->127.0.0.1:9023: i/o timeout\n", port)
		fmt.Fprintf(w, "[INFO] memberlist: Suspect node2 has failed, no acks received\n")
	}
	got := lines(buf)
	if n := len(got); n != 2+10 {
		t.Fatalf("%d lines, want one error per peer and every info line:\n%s", n, buf)
	}
}

// TestLimiter_ForgetsOldKeysWhenFull: the limiter's memory is bounded; once
// full of keys older than the window it starts over, and with only recent
// keys it lets new ones through unlimited.
func TestLimiter_ForgetsOldKeysWhenFull(t *testing.T) {
	now := time.Unix(0, 0)
	l := newLimiter(time.Minute, func() time.Time { return now })
	for i := range maxRepeatKeys {
		l.admit(fmt.Sprint(i))
	}
	if ok, _, _ := l.admit("new"); !ok {
		t.Fatal("a new key was dropped while the limiter was full of recent keys")
	}
	if len(l.keys) != maxRepeatKeys {
		t.Fatalf("%d keys, want the cap %d", len(l.keys), maxRepeatKeys)
	}
	now = now.Add(time.Minute)
	l.admit("newer")
	if len(l.keys) != 1 {
		t.Fatalf("%d keys after the window, want the old ones forgotten", len(l.keys))
	}
}

// TestDemote_HealthyStartIsQuiet: the warnings raft writes on every healthy
// start and catch-up come out below WARN; a lost leader stays a warning.
func TestDemote_HealthyStartIsQuiet(t *testing.T) {
	a, buf, _ := testLogger(slog.LevelInfo)
	a.Warn("no known peers, aborting election")
	a.Warn("heartbeat timeout reached, starting election", "last-leader-addr", "", "last-leader-id", "")
	a.Warn("failed to get previous log", "previous-index", 1, "last-index", 0, "error", "log not found")
	a.Warn("appendEntries rejected, sending older logs", "peer", "node2", "next", 1)
	got := lines(buf)
	if len(got) != 1 || !strings.HasPrefix(got[0], `level=INFO msg="heartbeat timeout reached, starting election"`) {
		t.Fatalf("a healthy start logged:\n%s\nwant only the first election, at INFO", buf)
	}
	buf.Reset()
	a.Log(hclog.Warn, "heartbeat timeout reached, starting election", "last-leader-addr", "127.0.0.1:9002", "last-leader-id", "node1")
	if got := lines(buf); len(got) != 1 || !strings.HasPrefix(got[0], "level=WARN") {
		t.Fatalf("losing a leader logged %q, want a warning", got)
	}
}
