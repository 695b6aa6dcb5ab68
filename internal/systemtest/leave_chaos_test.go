package systemtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/netns"
)

// TestCluster_LeaderLeave_AfterPartitionsAndPause_ExitsWithinShutdownTimeout
// replays the faults that preceded a leave which never finished in a long
// chaos run: five nodes under writes, one follower killed, the leader cut
// off from the others and healed (with namespaces, as root), the leader
// (whoever leads then) paused for 5.5 s and resumed, and at once asked to
// leave. The leave is answered, the process exits within its
// --shutdown-timeout of the answer, and while it runs the node never
// reports itself a member in state shutdown with no leader (the hung
// node's signature).
func TestCluster_LeaderLeave_AfterPartitionsAndPause_ExitsWithinShutdownTimeout(t *testing.T) {
	const shutdownTimeout = 8 * time.Second
	// The chaos schedule's flags (deploy/chaos.DefaultServeArgs): fast
	// raft, and snapshots small and frequent enough that a node paused
	// for seconds is sent one.
	opts := []clusterOption{withFastRaft(), withServeArgs("--shutdown-timeout="+shutdownTimeout.String(), "--forward-timeout=3s",
		"--raft-snapshot-threshold=1024", "--raft-trailing-logs=512", "--raft-snapshot-interval=5s")}
	var nn *netnsNet
	if n, err := netns.New(t.Logf); err == nil {
		nn = &netnsNet{t: t, net: n}
		t.Cleanup(func() {
			if err := n.Close(); err != nil {
				t.Logf("cleanup: %v", err)
			}
		})
		opts = append(opts, inNetns(nn))
	} else if !errors.Is(err, netns.ErrUnavailable) {
		t.Fatal(err)
	} else {
		t.Logf("no partitions: %v", err)
	}
	c := mustStartCluster(t, 5, opts...)
	l := c.waitForLeader()
	w := startWrites(t, 4, c.nodes...)
	w.waitAcked(50, 60*time.Second)

	dead := c.followers()[0]
	dead.kill9()
	alive := without(c.nodes, dead)
	if nn != nil {
		// partition-leader, then partition-halves, each healed.
		nn.isolate(l, without(alive, l)...)
		l = c.waitForLeaderOf(without(alive, l), l)
		nn.heal()
		rest := without(alive, l)
		nn.isolate(l, rest[0])
		nn.heal()
	}
	l = c.waitForLeaderOf(alive, nil)
	w.waitAcked(w.acked()+20, 60*time.Second)

	if err := l.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5500 * time.Millisecond) // the fault's length, as the schedule has it
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}

	// Watch the leaving node's own status until it exits.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		bad []string
	)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			ctx, cancel := context.WithTimeout(watchCtx, time.Second)
			st, err := l.Status(ctx)
			cancel()
			if err == nil && st.State == "shutdown" && st.LeaderID == "" {
				for _, m := range st.Members {
					if m.ID == l.ID && m.Voter {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s: state %s, no leader, a voter of %v", time.Now().Format("15:04:05.000"), st.State, voterIDs(st.Members)))
						mu.Unlock()
					}
				}
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	defer func() { stopWatch(); <-watched }()

	asked := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	// Only ctx bounds the leave: a node that lost its lead during the
	// pause waits up to 15 s for the leader to remove it before it
	// answers, past the user's usual 10 s client timeout.
	unbounded := &http.Client{Transport: l.client.Transport}
	res, err := l.send(ctx, unbounded, http.MethodPost, l.QueueURL+"/cluster/leave", nil)
	cancel()
	if err != nil || res.code != http.StatusOK {
		t.Fatalf("POST /cluster/leave on %s: %d %q %v", l.ID, res.code, res.body, err)
	}
	answered := time.Now()
	t.Logf("leave answered %v after the request", time.Since(asked).Round(time.Millisecond))
	code, err := l.WaitExit(shutdownTimeout + 2*time.Second)
	if err != nil {
		t.Fatalf("%s did not exit within its --shutdown-timeout=%v of the leave's answer: %v", l.ID, shutdownTimeout, err)
	}
	t.Logf("%s exited with status %d, %v after the leave's answer", l.ID, code, time.Since(answered).Round(time.Millisecond))
	stopWatch()
	<-watched
	if len(bad) > 0 {
		t.Fatalf("%s reported itself a leaderless shut-down voter %d times, first %s", l.ID, len(bad), bad[0])
	}
	if b, err := os.ReadFile(filepath.Join(l.DataDir, "shutdown-stacks.txt")); err == nil {
		t.Logf("%s's shutdown was cut short; what held it:\n%s", l.ID, b)
	}
	if !l.DirLeft() {
		t.Fatalf("%s's data directory is not marked left", l.ID)
	}

	// The others carry on without it.
	w.halt()
	dead.restart()
	rest := without(c.nodes, l)
	c.waitForVoters(rest, ids(rest)...)
}

// voterIDs lists the voters among members.
func voterIDs(members []api.Member) []string {
	var out []string
	for _, m := range members {
		if m.Voter {
			out = append(out, m.ID)
		}
	}
	return out
}
