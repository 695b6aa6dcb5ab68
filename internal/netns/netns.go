// Package netns puts processes in Linux network namespaces wired to one
// bridge, and partitions them with blackhole routes: the network the
// partition tests (systemtest) and the chaos suite (deploy/chaos) run
// nodes in. It needs root, Linux and iproute2's ip; New says why not
// otherwise.
package netns

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Prefix starts the name of every namespace and link a Net creates:
// qq<pid>-<k>, where pid is the creating process, so that a later run can
// remove the leftovers of a run that crashed (its process is gone) without
// touching those of a run going on at the same time.
const Prefix = "qq"

// MaxSlots bounds the slots of one Net, so that link names stay within
// the kernel's 15 characters.
const MaxSlots = 99

// ErrUnavailable wraps the reason network namespaces cannot be used here
// (not Linux, not root, no ip command, ip netns add refused).
var ErrUnavailable = errors.New("network namespaces unavailable")

// Logf receives progress lines; nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

var seq atomic.Int64

// Net gives each node its own Linux network namespace ("slot"), all wired
// by veth pairs to one bridge:
//
//	namespace <tag>-sw  bridge <tag>br, a plain switch
//	root namespace      veth <tag>c  S.1/24, a port of the bridge: the creating process reaches every node here
//	namespace <tag>-<i> slot i: veth <tag>n<i> S.(i+1)/24, peer <tag>h<i> a port of the bridge
//
// The bridge sits in a namespace of its own so that the machine's firewall
// (br_netfilter with a FORWARD policy of DROP, as Docker sets up) never
// sees the nodes' traffic. S is a 10.77.X.0/24 not in use on the machine.
// Nodes listen on the default ports of their own address. A partition is a
// set of blackhole routes inside the node namespaces, both ways, so the
// creating process still reaches every node (clients are never partitioned
// from the node they talk to; the nodes are from each other).
//
// Slots are added on demand (AddSlot). All methods are safe for concurrent
// use.
type Net struct {
	ipPath string
	tag    string
	subnet string
	sw     string
	logf   Logf

	mu    sync.Mutex
	ns    []string // ns[i-1] is slot i's namespace
	holes map[[2]int]bool
}

// New creates the switch namespace and the creating process's port. It
// returns an error wrapping ErrUnavailable when namespaces cannot be used,
// so callers can skip partitions with the reason.
func New(logf Logf) (*Net, error) {
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: needs Linux", ErrUnavailable)
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("%w: needs root (ip netns add)", ErrUnavailable)
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return nil, fmt.Errorf("%w: needs the ip command (iproute2)", ErrUnavailable)
	}
	k := seq.Add(1)
	nn := &Net{ipPath: ipPath, tag: fmt.Sprintf("%s%d-%s", Prefix, os.Getpid(), strconv.FormatInt(k, 36)), logf: logf, holes: map[[2]int]bool{}}
	RemoveStale(logf)
	nn.subnet, err = nn.freeSubnet(int(k))
	if err != nil {
		return nil, err
	}
	nn.sw = nn.tag + "-sw"
	if err := nn.run("netns", "add", nn.sw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	br, c, cport := nn.tag+"br", nn.tag+"c", nn.tag+"s"
	for _, args := range [][]string{
		{"-n", nn.sw, "link", "add", br, "type", "bridge"},
		{"-n", nn.sw, "link", "set", br, "up"},
		{"link", "add", c, "type", "veth", "peer", "name", cport, "netns", nn.sw},
		{"-n", nn.sw, "link", "set", cport, "master", br},
		{"-n", nn.sw, "link", "set", cport, "up"},
		{"addr", "add", nn.subnet + ".1/24", "dev", c},
		{"link", "set", c, "up"},
	} {
		if err := nn.run(args...); err != nil {
			nn.Close()
			return nil, err
		}
	}
	logf.printf("network %s: this process at %s.1, slots from %s.2", nn.tag, nn.subnet, nn.subnet)
	return nn, nil
}

// Tag returns the prefix of this network's namespace and link names.
func (nn *Net) Tag() string { return nn.tag }

// AddSlot creates the namespace of one more node, wires it to the bridge
// and checks that this process reaches it. It returns the slot's
// number (from 1).
func (nn *Net) AddSlot() (int, error) {
	nn.mu.Lock()
	i := len(nn.ns) + 1
	if i > MaxSlots {
		nn.mu.Unlock()
		return 0, fmt.Errorf("netns: at most %d slots", MaxSlots)
	}
	ns, port, peer := fmt.Sprintf("%s-%d", nn.tag, i), fmt.Sprintf("%sh%d", nn.tag, i), fmt.Sprintf("%sn%d", nn.tag, i)
	if err := nn.run("netns", "add", ns); err != nil {
		nn.mu.Unlock()
		return 0, err
	}
	nn.ns = append(nn.ns, ns)
	nn.mu.Unlock()
	for _, args := range [][]string{
		{"-n", nn.sw, "link", "add", port, "type", "veth", "peer", "name", peer, "netns", ns},
		{"-n", nn.sw, "link", "set", port, "master", nn.tag + "br"},
		{"-n", nn.sw, "link", "set", port, "up"},
		{"-n", ns, "addr", "add", nn.IP(i) + "/24", "dev", peer},
		{"-n", ns, "link", "set", peer, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if err := nn.run(args...); err != nil {
			return 0, err
		}
	}
	// A closed port answers with a reset at once; a broken link times out.
	conn, err := net.DialTimeout("tcp", nn.IP(i)+":9", 5*time.Second)
	if err == nil {
		conn.Close()
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		return 0, fmt.Errorf("netns: this process cannot reach %s in %s: %v", nn.IP(i), ns, err)
	}
	return i, nil
}

// IP returns slot i's address.
func (nn *Net) IP(i int) string { return fmt.Sprintf("%s.%d", nn.subnet, i+1) }

// Exec is the command prefix that runs a program in slot i's namespace.
// ip netns exec execs the program in place, so the process the caller
// starts is the program itself (signals reach it directly).
func (nn *Net) Exec(i int) []string {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	return []string{nn.ipPath, "netns", "exec", nn.ns[i-1]}
}

// Cut blocks traffic between slots a and b, both ways (idempotent).
func (nn *Net) Cut(a, b int) error {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var errs []error
	for _, p := range [][2]int{{a, b}, {b, a}} {
		if nn.holes[p] {
			continue
		}
		if err := nn.run("-n", nn.ns[p[0]-1], "route", "add", "blackhole", nn.IP(p[1])+"/32"); err != nil {
			errs = append(errs, err)
			continue
		}
		nn.holes[p] = true
	}
	return errors.Join(errs...)
}

// Partition cuts every slot of each group off from every slot of the
// other groups. Slots in no group keep their links. Overlapping groups
// make a bridge: Partition([]int{1,2}, []int{2,3}) cuts 1 from 3 only.
func (nn *Net) Partition(groups ...[]int) error {
	var errs []error
	for _, p := range PartitionPairs(groups...) {
		errs = append(errs, nn.Cut(p[0], p[1]))
	}
	return errors.Join(errs...)
}

// PartitionPairs returns the pairs of slots Partition cuts: every slot of
// a group with every slot of another group, except that a slot in both
// groups (a bridge) keeps its links to both.
func PartitionPairs(groups ...[]int) [][2]int {
	var pairs [][2]int
	for gi, g := range groups {
		for _, h := range groups[gi+1:] {
			for _, a := range g {
				for _, b := range h {
					if a == b || slices.Contains(g, b) || slices.Contains(h, a) {
						continue
					}
					pairs = append(pairs, [2]int{a, b})
				}
			}
		}
	}
	return pairs
}

// Cuts returns the blocked (from, to) pairs.
func (nn *Net) Cuts() [][2]int {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var r [][2]int
	for p := range nn.holes {
		r = append(r, p)
	}
	slices.SortFunc(r, func(x, y [2]int) int {
		if x[0] != y[0] {
			return x[0] - y[0]
		}
		return x[1] - y[1]
	})
	return r
}

// Heal removes every blackhole route.
func (nn *Net) Heal() error {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var errs []error
	for p := range nn.holes {
		if err := nn.run("-n", nn.ns[p[0]-1], "route", "del", "blackhole", nn.IP(p[1])+"/32"); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(nn.holes, p)
	}
	return errors.Join(errs...)
}

// Close deletes the namespaces, which takes the bridge and every veth pair
// along. Stop the nodes first.
func (nn *Net) Close() error {
	nn.mu.Lock()
	defer nn.mu.Unlock()
	var errs []error
	for _, ns := range append(slices.Clone(nn.ns), nn.sw) {
		if err := nn.run("netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	nn.ns = nil
	nn.run("link", "del", nn.tag+"c") // gone with the switch namespace, normally
	return errors.Join(errs...)
}

// RemoveStale deletes namespaces and links named by Prefix whose creating
// process no longer exists, killing the processes still running inside
// those namespaces.
func RemoveStale(logf Logf) {
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		return
	}
	run := func(args ...string) { exec.Command(ipPath, args...).Run() }
	if out, err := exec.Command(ipPath, "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && staleName(f[0]) {
				// Nodes of a process that was killed -9 still run in
				// there (a namespace outlives its name while a process is
				// inside).
				if pids, err := exec.Command(ipPath, "netns", "pids", f[0]).Output(); err == nil {
					for _, p := range strings.Fields(string(pids)) {
						if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
							if proc, err := os.FindProcess(pid); err == nil {
								proc.Kill()
							}
						}
					}
				}
				logf.printf("removing namespace %s left by a process that is gone", f[0])
				run("netns", "del", f[0])
			}
		}
	}
	if out, err := exec.Command(ipPath, "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if staleName(name) {
				logf.printf("removing link %s left by a process that is gone", name)
				run("link", "del", name)
			}
		}
	}
}

// staleName reports whether name is one of ours whose process is gone.
func staleName(name string) bool {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return false
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	pid, err := strconv.Atoi(rest[:end])
	if err != nil || pid == os.Getpid() {
		return false
	}
	_, err = os.Stat(fmt.Sprintf("/proc/%d", pid))
	return errors.Is(err, os.ErrNotExist)
}

// freeSubnet picks 10.77.X with no address or route of the machine in it,
// starting from a place that depends on the process id and on k, the
// network's number in this process, so that networks created at the same
// time pick different ones.
func (nn *Net) freeSubnet(k int) (string, error) {
	addrs, err1 := exec.Command(nn.ipPath, "-4", "addr", "show").Output()
	routes, err2 := exec.Command(nn.ipPath, "-4", "route", "show", "table", "all").Output()
	if err := errors.Join(err1, err2); err != nil {
		return "", fmt.Errorf("list addresses and routes: %w", err)
	}
	used := string(addrs) + string(routes)
	start := os.Getpid() + 41*k
	for j := range 250 {
		s := fmt.Sprintf("10.77.%d", (start+j)%250+1)
		if !strings.Contains(used, s+".") {
			return s, nil
		}
	}
	return "", errors.New("every 10.77.X.0/24 is in use")
}

func (nn *Net) run(args ...string) error {
	out, err := exec.Command(nn.ipPath, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
