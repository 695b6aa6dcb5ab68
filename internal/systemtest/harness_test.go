package systemtest

import (
	"fmt"
	"testing"
	"time"
)

// The cluster tests need multi-node bootstrap, forwarding and membership.
// These tests run the same harness on what a single node already does, so
// the harness itself is known to work whatever state the cluster is in.

// TestHarness_OneNodeCluster_KillRestartWritesSnapshot: the cluster
// harness with one node: leader and voters from /cluster/status, the
// writers with their verification across a kill -9 and restart, the data
// comparison, and snapshot detection in the data directory.
func TestHarness_OneNodeCluster_KillRestartWritesSnapshot(t *testing.T) {
	c := mustStartCluster(t, 1, withFastRaft(), withServeArgs("--raft-snapshot-threshold=32", "--raft-trailing-logs=8", "--raft-snapshot-interval=200ms"))
	l := c.waitForLeader()
	if l.ID != "node1" || len(c.followers()) != 0 {
		t.Fatalf("leader %s, followers %v", l.ID, ids(c.followers()))
	}
	c.waitForVoters(c.nodes, "node1")

	w := startWrites(t, 4, l)
	w.waitAcked(100, 60*time.Second)
	killedAt := time.Now()
	l.kill9()
	l.restart()
	first := waitFirstAckAfter(t, w, killedAt)
	t.Logf("kill -9 to the first acknowledged write after the restart: %v", first.ackedAt.Sub(killedAt).Round(time.Millisecond))
	w.waitAcked(w.acked()+50, 60*time.Second)
	w.halt()
	w.verify(l.mustGet(l.QueueURL + "/dump"))
	waitSameData(t, l, l, "default")
	eventually(t, readyTimeout, "a snapshot", func() error {
		if i := snapshotIndex(l.DataDir); i < 32 {
			return fmt.Errorf("highest snapshot index %d", i)
		}
		return nil
	})
	l.terminate()
	if c.running() != nil {
		t.Fatalf("running after terminate: %v", ids(c.running()))
	}
}

// TestHarness_Netns_PartitionCutsNodesNotTheTest: the namespace network:
// a node started inside its namespace is reached by the test process and
// from another namespace; a partition cuts the other namespace off while
// the test process still reaches the node, and healing restores the path.
// Needs root.
func TestHarness_Netns_PartitionCutsNodesNotTheTest(t *testing.T) {
	nn := mustNetns(t)
	c := mustStartCluster(t, 1, inNetns(nn))
	l := c.waitForLeader()
	probe := nn.addSlot()
	l.mustPut(l.QueueURL+"/put", "before")
	if err := nn.dial(probe, l.QueueAddr); err != nil {
		t.Fatalf("the probe's namespace cannot reach node1: %v", err)
	}
	if err := nn.net.Partition([]int{l.Slot}, []int{probe}); err != nil {
		t.Fatal(err)
	}
	if err := nn.dial(probe, l.QueueAddr); err == nil {
		t.Fatal("the probe's namespace still reaches node1 through the partition")
	} else {
		t.Logf("through the partition: %v", err)
	}
	l.mustPut(l.QueueURL+"/put", "during")
	nn.heal()
	if err := nn.dial(probe, l.QueueAddr); err != nil {
		t.Fatalf("the probe's namespace cannot reach node1 after healing: %v", err)
	}
	l.mustPut(l.QueueURL+"/put", "after")
	if got := l.mustGet(l.QueueURL + "/dump"); got != "before\nduring\nafter\n" {
		t.Fatalf("dump: %q", got)
	}
}
