package systemtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/netns"
)

// netnsNet is a test's view of an internal/netns network: a cluster
// started inNetns gives each node a namespace (slot) of its own, on the
// default ports of its own address, and the test process reaches every
// node while partitions cut the nodes off from each other.
type netnsNet struct {
	t   *testing.T
	net *netns.Net
}

// mustNetns sets up the network and tears it down at cleanup, after the
// nodes (whose cleanups are registered later) have stopped. It skips the
// test unless it runs as root on Linux with iproute2's ip and namespaces
// work.
func mustNetns(t *testing.T) *netnsNet {
	t.Helper()
	nn, err := netns.New(t.Logf)
	if errors.Is(err, netns.ErrUnavailable) {
		t.Skipf("%v; run the tests as root on Linux to include this one", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nn.Close(); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	return &netnsNet{t: t, net: nn}
}

// addSlot adds a namespace that runs no node, to probe from (dial).
func (nn *netnsNet) addSlot() int {
	nn.t.Helper()
	slot, err := nn.net.AddSlot()
	if err != nil {
		nn.t.Fatal(err)
	}
	return slot
}

// dial connects from inside a slot's namespace to addr (host:port), the
// way the nodes reach each other, by running this test binary there as a
// probe.
func (nn *netnsNet) dial(slot int, addr string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append(nn.net.Exec(slot), self)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), dialEnv+"="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("from slot %d's namespace to %s: %v: %s", slot, addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isolate cuts node a off from each of others, both ways. The test process
// still reaches every node.
func (nn *netnsNet) isolate(a *node, others ...*node) {
	nn.t.Helper()
	var slots []int
	for _, o := range others {
		slots = append(slots, o.Slot)
	}
	if err := nn.net.Partition([]int{a.Slot}, slots); err != nil {
		nn.t.Fatal(err)
	}
	nn.t.Logf("partition: %s cut off from %v", a.ID, ids(others))
}

// heal removes every cut.
func (nn *netnsNet) heal() {
	nn.t.Helper()
	if err := nn.net.Heal(); err != nil {
		nn.t.Fatal(err)
	}
	nn.t.Log("partition healed")
}
