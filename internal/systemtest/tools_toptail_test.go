package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// outputLines are the lines a process wrote to b so far.
func outputLines(b *lockedBuffer) []string {
	text := strings.TrimSuffix(b.String(), "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// startToolOutput starts `quorumq args...` in the background; its stdout is the
// returned buffer. It is killed at the end of the test.
func startToolOutput(t *testing.T, args ...string) *lockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, mustBinary(t), args...)
	out, errs := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, errs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("---- quorumq %s: stderr ----\n%s", args[0], errs.String())
		}
	})
	return out
}

// TestTail_Queue_PrintsNewMessagesConsumesNothing: tail -n 2 prints the
// queue's last two messages, then every message put after it started, in
// order; the queue's depth stays what the puts made it.
func TestTail_Queue_PrintsNewMessagesConsumesNothing(t *testing.T) {
	inModes(t, testTail_Queue_PrintsNewMessagesConsumesNothing)
}

func testTail_Queue_PrintsNewMessagesConsumesNothing(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	nd := c.nodes[1]
	for i := range 5 {
		nd.mustPut(nd.QueueURL+"/put?queue=events", fmt.Sprintf("old-%d", i))
	}
	out := startToolOutput(t, append([]string{"tail", queueAddrs(c.nodes), "--queue=events", "-n", "2", "--interval=100ms"}, c.toolArgs()...)...)
	testwait.For(t, 30*time.Second, "tail printing the last two messages", func() bool { return len(outputLines(out)) >= 2 })
	want := []string{"old-3", "old-4"}
	for i := range 12 {
		m := fmt.Sprintf("new-%d", i)
		want = append(want, m)
		c.nodes[i%3].mustPut(c.nodes[i%3].QueueURL+"/put?queue=events", m)
	}
	testwait.For(t, 30*time.Second, "tail printing every new message", func() bool { return len(outputLines(out)) >= len(want) })
	if got := outputLines(out); !slices.Equal(got, want) {
		t.Fatalf("tail printed %q, want %q", got, want)
	}
	if qc := nd.queueCounts("events", false); qc.Depth != 17 || qc.InFlight != 0 {
		t.Fatalf("events after tail: %+v, want depth 17 and nothing leased", qc)
	}

	// --follow=false -n 3 --format=json: the last three as JSON, then exit.
	js := mustRunTool(t, append([]string{"tail", queueAddrs(c.nodes[:1]), "--queue=events", "-n", "3", "--follow=false", "--format=json"}, c.toolArgs()...)...)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(js), "\n") {
		var m struct {
			Queue, ID, Data string
			Attempts        int
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil || m.Queue != "events" || m.ID == "" {
			t.Fatalf("json line %q: %+v %v", l, m, err)
		}
		got = append(got, m.Data)
	}
	if !slices.Equal(got, []string{"new-9", "new-10", "new-11"}) {
		t.Fatalf("tail -n 3 --format=json: %q", got)
	}
}

// TestTail_Topic_PrintsWhatIsPublished: tail --topic finds the pubsub
// ports from /cluster/status and prints what is published on any node.
func TestTail_Topic_PrintsWhatIsPublished(t *testing.T) {
	inModes(t, testTail_Topic_PrintsWhatIsPublished)
}

func testTail_Topic_PrintsWhatIsPublished(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	out := startToolOutput(t, append([]string{"tail", queueAddrs(c.nodes[:1]), "--topic=clicks"}, c.toolArgs()...)...)
	// Pubsub keeps nothing: publish until the subscription is there.
	testwait.For(t, 30*time.Second, "tail subscribed", func() bool {
		c.nodes[2].mustPut(c.nodes[2].PubsubURL+"/pub?topic=clicks", "ping")
		return len(outputLines(out)) > 0
	})
	c.nodes[1].mustPut(c.nodes[1].PubsubURL+"/pub?topic=clicks", "hello")
	testwait.For(t, 30*time.Second, "tail printing the publish", func() bool {
		return slices.Contains(outputLines(out), "hello")
	})
}

// TestTop_Once_ShowsEveryNodeAndQueue: top --once, asked through a
// follower, prints one frame with every member (state, indexes, lag) and
// every queue with its depth.
func TestTop_Once_ShowsEveryNodeAndQueue(t *testing.T) {
	inModes(t, testTop_Once_ShowsEveryNodeAndQueue)
}

func testTop_Once_ShowsEveryNodeAndQueue(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	l := c.waitForLeader()
	for i := range 4 {
		l.mustPut(l.QueueURL+"/put?queue=alpha", fmt.Sprint(i))
	}
	l.mustPut(l.QueueURL+"/put?queue=beta&delay=1h", "later")
	frame := mustRunTool(t, append([]string{"top", queueAddrs(c.followers()[:1]), "--once"}, c.toolArgs()...)...)
	if strings.Contains(frame, "\x1b[") {
		t.Errorf("top --once into a pipe wrote terminal escapes:\n%s", frame)
	}
	if !strings.Contains(frame, "leader "+l.ID) {
		t.Errorf("the frame does not name the leader %s:\n%s", l.ID, frame)
	}
	for _, nd := range c.nodes {
		state := "follower"
		if nd == l {
			state = "leader"
		}
		if !regexp.MustCompile(`(?m)^` + nd.ID + `\s+` + state + `\s+alive\s+\d+\s+\d+\s+\d+\s+\d+\s`).MatchString(frame) {
			t.Errorf("no row for %s as a %s with its indexes and lag:\n%s", nd.ID, state, frame)
		}
	}
	for _, row := range []string{`(?m)^alpha\s+4\s+0\s+0\s+0\s`, `(?m)^beta\s+0\s+0\s+1\s+0\s`} {
		if !regexp.MustCompile(row).MatchString(frame) {
			t.Errorf("no queue row like %s:\n%s", row, frame)
		}
	}
}
