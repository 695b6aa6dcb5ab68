package systemtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// netnsPrefix starts the name of every namespace and link the tests
// create: qmq<pid>-<k>, where pid is the test process, so a later run can
// tell leftovers of a crashed run (their process is gone) from the live
// objects of a run going on at the same time.
const netnsPrefix = "qmq"

var netnsSeq atomic.Int64

// netnsNet gives each node of a test cluster its own Linux network
// namespace, all wired by veth pairs to one bridge:
//
//	namespace <tag>-sw   bridge <tag>br, a plain switch
//	root namespace       veth <tag>c 10.77.X.1/24, port of the bridge: the test process reaches every node here
//	namespace <tag>-<i>  node i: veth <tag>n<i> 10.77.X.(i+1)/24, peer <tag>h<i> a port of the bridge
//
// The bridge lives in a namespace of its own rather than in the root one,
// so the machine's firewall never sees the nodes' traffic: with
// br_netfilter loaded and a FORWARD policy of DROP (what Docker sets up on
// CI machines), bridged packets in the root namespace would be dropped.
// X is picked so the subnet is not in use on the machine. Nodes use the
// default ports on their own address. A partition is a pair of blackhole
// routes inside the node namespaces, so the test still reaches every node.
type netnsNet struct {
	t      *testing.T
	ipPath string
	tag    string
	subnet string   // "10.77.X"
	sw     string   // the bridge's namespace
	ns     []string // ns[i-1] is node i's namespace
	holes  [][2]int // blackholed (from, to) node pairs
}

// mustNetns sets up namespaces for n nodes and tears them down at cleanup.
// It skips the test unless it runs as root on Linux with iproute2's ip and
// namespaces work.
func mustNetns(t *testing.T, n int) *netnsNet {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (ip netns add); run the tests as root to include this one")
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs the ip command (iproute2) for network namespaces")
	}
	nn := &netnsNet{t: t, ipPath: ipPath, tag: fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))}
	nn.removeStale()
	subnet, err := nn.freeSubnet()
	if err != nil {
		t.Fatal(err)
	}
	nn.subnet, nn.sw = subnet, nn.tag+"-sw"
	if err := nn.run("netns", "add", nn.sw); err != nil {
		t.Skipf("ip netns add does not work here: %v", err)
	}
	t.Cleanup(nn.teardown)

	br, client, clientPort := nn.tag+"br", nn.tag+"c", nn.tag+"s"
	nn.must("-n", nn.sw, "link", "add", br, "type", "bridge")
	nn.must("-n", nn.sw, "link", "set", br, "up")
	nn.must("link", "add", client, "type", "veth", "peer", "name", clientPort, "netns", nn.sw)
	nn.must("-n", nn.sw, "link", "set", clientPort, "master", br)
	nn.must("-n", nn.sw, "link", "set", clientPort, "up")
	nn.must("addr", "add", nn.subnet+".1/24", "dev", client)
	nn.must("link", "set", client, "up")
	for i := 1; i <= n; i++ {
		ns, port, peer := fmt.Sprintf("%s-%d", nn.tag, i), fmt.Sprintf("%sh%d", nn.tag, i), fmt.Sprintf("%sn%d", nn.tag, i)
		nn.must("netns", "add", ns)
		nn.ns = append(nn.ns, ns)
		nn.must("-n", nn.sw, "link", "add", port, "type", "veth", "peer", "name", peer, "netns", ns)
		nn.must("-n", nn.sw, "link", "set", port, "master", br)
		nn.must("-n", nn.sw, "link", "set", port, "up")
		nn.must("-n", ns, "addr", "add", nn.ip(i)+"/24", "dev", peer)
		nn.must("-n", ns, "link", "set", peer, "up")
		nn.must("-n", ns, "link", "set", "lo", "up")
	}
	// The test process must reach every node: a closed port answers with
	// a reset at once, a broken link times out.
	for i := 1; i <= n; i++ {
		conn, err := net.DialTimeout("tcp", nn.ip(i)+":9", 5*time.Second)
		if err == nil {
			conn.Close()
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("the root namespace cannot reach %s in %s: %v", nn.ip(i), nn.ns[i-1], err)
		}
	}
	t.Logf("network %s: test process at %s.1, nodes at %s.2-%d", nn.tag, nn.subnet, nn.subnet, n+1)
	return nn
}

// ip returns node i's address.
func (nn *netnsNet) ip(i int) string { return fmt.Sprintf("%s.%d", nn.subnet, i+1) }

// exec is the command prefix that runs a program in node i's namespace.
func (nn *netnsNet) exec(i int) []string {
	return []string{nn.ipPath, "netns", "exec", nn.ns[i-1]}
}

// dial connects from inside node i's namespace to addr (host:port), the
// way the nodes reach each other, by running this test binary there as a
// probe.
func (nn *netnsNet) dial(i int, addr string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(nn.ipPath, "netns", "exec", nn.ns[i-1], self)
	cmd.Env = append(os.Environ(), dialEnv+"="+addr)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("from %s to %s: %v: %s", nn.ns[i-1], addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// isolate cuts node a off from each of others, both ways, with blackhole
// routes in their namespaces. The test process still reaches every node.
func (nn *netnsNet) isolate(a int, others ...int) {
	nn.t.Helper()
	for _, b := range others {
		for _, p := range [][2]int{{a, b}, {b, a}} {
			nn.must("-n", nn.ns[p[0]-1], "route", "add", "blackhole", nn.ip(p[1])+"/32")
			nn.holes = append(nn.holes, p)
		}
	}
	nn.t.Logf("partition: node%d cut off from %v", a, others)
}

// heal removes every blackhole route.
func (nn *netnsNet) heal() {
	nn.t.Helper()
	for _, p := range nn.holes {
		nn.must("-n", nn.ns[p[0]-1], "route", "del", "blackhole", nn.ip(p[1])+"/32")
	}
	nn.holes = nil
	nn.t.Log("partition healed")
}

// teardown deletes the namespaces, which takes the bridge and every veth
// pair along. The nodes' cleanups, registered later, have run by then.
func (nn *netnsNet) teardown() {
	for _, ns := range append(nn.ns, nn.sw) {
		if err := nn.run("netns", "del", ns); err != nil {
			nn.t.Logf("cleanup: %v", err)
		}
	}
	nn.run("link", "del", nn.tag+"c") // gone with the bridge's namespace, normally
}

// removeStale deletes namespaces and links left by test processes that
// no longer exist.
func (nn *netnsNet) removeStale() {
	if out, err := exec.Command(nn.ipPath, "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && staleName(f[0]) {
				nn.t.Logf("removing namespace %s left by a test process that is gone", f[0])
				nn.run("netns", "del", f[0])
			}
		}
	}
	if out, err := exec.Command(nn.ipPath, "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if staleName(name) {
				nn.t.Logf("removing link %s left by a test process that is gone", name)
				nn.run("link", "del", name)
			}
		}
	}
}

// staleName reports whether name is one of ours whose process is gone.
func staleName(name string) bool {
	rest, ok := strings.CutPrefix(name, netnsPrefix)
	if !ok {
		return false
	}
	digits, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(digits)
	if !ok || err != nil || pid == os.Getpid() {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// freeSubnet picks 10.77.X with no address or route of the machine in it,
// starting from a place that depends on the process id so that two runs
// at the same time pick different ones.
func (nn *netnsNet) freeSubnet() (string, error) {
	addrs, err1 := exec.Command(nn.ipPath, "-4", "addr", "show").Output()
	routes, err2 := exec.Command(nn.ipPath, "-4", "route", "show", "table", "all").Output()
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("list addresses and routes: %w", err)
	}
	used := string(addrs) + string(routes)
	start := os.Getpid()
	for k := range 250 {
		s := fmt.Sprintf("10.77.%d", (start+k)%250+1)
		if !strings.Contains(used, s+".") {
			return s, nil
		}
	}
	return "", errors.New("every 10.77.X.0/24 is in use")
}

func (nn *netnsNet) run(args ...string) error {
	out, err := exec.Command(nn.ipPath, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (nn *netnsNet) must(args ...string) {
	nn.t.Helper()
	if err := nn.run(args...); err != nil {
		nn.t.Fatal(err)
	}
}
