package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/peer/peertest"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testwait"
)

// testOptions returns options for a fast single-node cluster in dir:
// loopback, short raft timeouts so an election takes ~100 ms.
func testOptions(t testing.TB, dir string) Options {
	o := DefaultOptions()
	o.DataDir = dir
	o.RaftBind = "127.0.0.1:0"
	o.QueueAddr = "127.0.0.1:8081"
	o.PubsubAddr = "127.0.0.1:8080"
	o.HeartbeatTimeout = 50 * time.Millisecond
	o.ElectionTimeout = 50 * time.Millisecond
	o.LeaderLeaseTimeout = 50 * time.Millisecond
	o.CommitTimeout = 5 * time.Millisecond
	o.Logger = testlog.New(t)
	o.Peer = peertest.Client(t)
	return o
}

// openWith opens a node over opts hosting f.
func openWith(opts Options, f *fsm.FSM) (*Node, error) {
	opts.FSM = f
	return Open(context.Background(), opts)
}

// mustOpen opens a node and shuts it down when the test ends.
func mustOpen(t testing.TB, opts Options, f *fsm.FSM) *Node {
	t.Helper()
	n, err := openWith(opts, f)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return n
}

// mustLead waits until n is the leader and its first-term barrier is applied.
func mustLead(t testing.TB, n *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := n.WaitForLeader(ctx)
	if err != nil {
		t.Fatalf("WaitForLeader: %v", err)
	}
	if id != n.ID() {
		t.Fatalf("leader is %q, want this node %q", id, n.ID())
	}
	testwait.For(t, 10*time.Second, "node leads", n.IsLeader)
}

func mustPropose(t testing.TB, n *Node, cmd fsm.Command) fsm.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := n.Propose(ctx, cmd)
	if err != nil {
		t.Fatalf("Propose(%v): %v", cmd.Op, err)
	}
	if res.Err != nil {
		t.Fatalf("Propose(%v): result error: %v", cmd.Op, res.Err)
	}
	return res
}

func putCmd(queue string, msgs ...string) fsm.Command {
	c := fsm.Command{Op: fsm.OpPut, Queue: queue}
	for _, m := range msgs {
		c.Messages = append(c.Messages, []byte(m))
	}
	return c
}

func popCmd(queue string, max int) fsm.Command {
	return fsm.Command{Op: fsm.OpGet, Queue: queue, Max: max, Lease: api.NoLease}
}

func dump(t testing.TB, f *fsm.FSM, queue string) []string {
	t.Helper()
	var out []string
	if err := f.Dump(queue, func(b []byte) error {
		out = append(out, string(b))
		return nil
	}); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return out
}
