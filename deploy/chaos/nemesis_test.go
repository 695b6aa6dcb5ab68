package chaos

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// After a leave whose answer the nemesis never read, the cluster's
// configuration decides: the node that left (its process gone, its
// directory not yet looked at) is retired, so it is never started again
// nor waited for at the final heal, and a node asked to leave that is
// still in the configuration stays a member.
func TestNemesis_LostLeaveAnswer_ConfigurationDecides(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	bin, err := testkit.BuildOnce()
	if err != nil {
		t.Fatal(err)
	}
	c, err := testkit.NewCluster(testkit.ClusterOptions{Binary: bin, Dir: t.TempDir(), ServeArgs: DefaultServeArgs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes()
	gone, stays := nodes[2], nodes[1]
	// The leave, sent around the nemesis: it never saw the answer.
	gone.ExpectExit()
	if _, code, err := gone.Call(ctx, http.MethodPost, gone.QueueURL+"/cluster/leave"); err != nil || code != http.StatusOK {
		t.Fatalf("leave %s: %d %v", gone.ID, code, err)
	}
	if _, err := gone.WaitExit(time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitVoters(ctx, c.Healthy(), testkit.IDs(testkit.Without(nodes, gone)), time.Minute); err != nil {
		t.Fatal(err)
	}

	n := &Nemesis{C: c, H: NewHistory(), ReadyTimeout: 30 * time.Second, Logf: t.Logf}
	n.unsure = []*testkit.Node{gone, stays}
	n.settleLeaves(ctx)
	if !gone.Left() {
		t.Fatalf("%s left the configuration but is still a member for the nemesis", gone.ID)
	}
	if stays.Left() || !stays.Running() {
		t.Fatalf("%s is in the configuration but was retired (left %v, running %v)", stays.ID, stays.Left(), stays.Running())
	}
	if len(n.unsure) != 0 {
		t.Fatalf("still unsure about %v", testkit.IDs(n.unsure))
	}
	if ev := n.HealAll(ctx, time.Minute); ev.Error != "" {
		t.Fatalf("final heal: %s", ev.Error)
	}
}
