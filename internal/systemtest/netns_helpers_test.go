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

// netnsNet is a test's view of an internal/netns network: node i runs in
// slot i, on the default ports of its own address, and the test process
// reaches every node while partitions cut the nodes off from each other.
type netnsNet struct {
	t     *testing.T
	net   *netns.Net
	slots int
}

// mustNetns sets up namespaces for n nodes and tears them down at cleanup,
// after the nodes (whose cleanups are registered later) have stopped. It
// skips the test unless it runs as root on Linux with iproute2's ip and
// namespaces work.
func mustNetns(t *testing.T, n int) *netnsNet {
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
	for range n {
		if _, err := nn.AddSlot(); err != nil {
			t.Fatal(err)
		}
	}
	return &netnsNet{t: t, net: nn, slots: n}
}

// ip returns node i's address.
func (nn *netnsNet) ip(i int) string { return nn.net.IP(i) }

// exec is the command prefix that runs a program in node i's namespace.
func (nn *netnsNet) exec(i int) []string { return nn.net.Exec(i) }

// dial connects from inside node i's namespace to addr (host:port), the
// way the nodes reach each other, by running this test binary there as a
// probe.
func (nn *netnsNet) dial(i int, addr string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append(nn.exec(i), self)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), dialEnv+"="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("from node%d's namespace to %s: %v: %s", i, addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isolate cuts node a off from each of others, both ways. The test process
// still reaches every node.
func (nn *netnsNet) isolate(a int, others ...int) {
	nn.t.Helper()
	if err := nn.net.Partition([]int{a}, others); err != nil {
		nn.t.Fatal(err)
	}
	nn.t.Logf("partition: node%d cut off from %v", a, others)
}

// heal removes every cut.
func (nn *netnsNet) heal() {
	nn.t.Helper()
	if err := nn.net.Heal(); err != nil {
		nn.t.Fatal(err)
	}
	nn.t.Log("partition healed")
}
