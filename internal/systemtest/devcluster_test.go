package systemtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestDevcluster_ThreeNodes_CurlAnyNode: `quorumq devcluster --nodes=3`
// brings up a cluster on the documented ports (node i: base+10(i-1), queue
// at +1) in which any node serves the queue: a put on node2 is got on
// node3. SIGTERM stops it with exit 0, and a second run on the same base
// directory still has the data.
func TestDevcluster_ThreeNodes_CurlAnyNode(t *testing.T) {
	base, dir := freePortBlock(t, 3), t.TempDir()
	queue := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+10*(i-1)+1) }

	d := startDevcluster(t, "--nodes=3", "--base-dir="+dir, "--base-port="+strconv.Itoa(base))
	d.waitOutput("all 3 nodes ready")
	u := newUser(t, nil)
	u.mustPut(queue(2)+"/put", "hello")
	u.mustPut(queue(2)+"/put", "again")
	if got := u.mustGet(queue(3) + "/get"); got != "hello" {
		t.Fatalf("get on node3: %q, want hello", got)
	}
	out := d.stop()
	for _, want := range []string{"node1  " + queue(1), "node3  " + queue(3), "[node1] ", "[node2] ", "[node3] ", "leads (queue http://127.0.0.1:", "all nodes stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	mustBeQuietStart(t, out)

	d = startDevcluster(t, "--nodes=3", "--base-dir="+dir, "--base-port="+strconv.Itoa(base))
	d.waitOutput("all 3 nodes ready")
	if got := u.mustGet(queue(1) + "/get"); got != "again" {
		t.Fatalf("get on node1 after a restart on the same base dir: %q, want again", got)
	}
	d.stop()
}

// TestDevcluster_OneNode_ServesAndStopsCleanly: `quorumq devcluster
// --nodes=1` runs one node on the documented ports that serves puts and
// gets, passes flags after -- on to serve, and on SIGTERM stops it and
// exits 0, leaving its ports free.
func TestDevcluster_OneNode_ServesAndStopsCleanly(t *testing.T) {
	base := freePortBlock(t, 1)
	queue := fmt.Sprintf("http://127.0.0.1:%d", base+1)
	d := startDevcluster(t, "--nodes=1", "--base-dir="+t.TempDir(), "--base-port="+strconv.Itoa(base), "--", "--log-level=debug")
	d.waitOutput("all 1 node ready")
	d.waitOutput("node1 leads (queue " + queue + ")")
	u := newUser(t, nil)
	u.mustPut(queue+"/put", "solo")
	if got := u.mustGet(queue + "/get"); got != "solo" {
		t.Fatalf("get: %q", got)
	}
	out := d.stop()
	if !strings.Contains(out, "[node1] ") || !strings.Contains(out, "level=DEBUG") {
		t.Errorf("no [node1] debug lines in the output")
	}
	if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", base+1)); err == nil {
		conn.Close()
		t.Fatalf("node1's queue port still accepts connections after devcluster stopped")
	}
}

// TestDevcluster_KilledNode_ComesBackOnItsDataAndRejoins: kill -9 of a
// devcluster node is reported, devcluster starts the node again on its
// data directory after --restart-delay, and it rejoins: ready (caught up
// with a leader) and holding what was put before the kill. The stop after
// that is clean.
func TestDevcluster_KilledNode_ComesBackOnItsDataAndRejoins(t *testing.T) {
	base := freePortBlock(t, 3)
	queue := func(i int) string { return fmt.Sprintf("http://127.0.0.1:%d", base+10*(i-1)+1) }
	d := startDevcluster(t, "--nodes=3", "--base-dir="+t.TempDir(), "--base-port="+strconv.Itoa(base), "--restart-delay=200ms")
	d.waitOutput("all 3 nodes ready")
	u := newUser(t, nil)
	u.mustPut(queue(1)+"/put", "before the kill")

	pid := d.pid("node2")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.waitOutput("devcluster: node2 exited unexpectedly (signal: killed); restarting it on its data in 200ms")
	d.waitOutput("devcluster: node2 restarted (pid ")
	d.waitOutput("devcluster: node2 is ready again")
	if again := d.pid("node2"); again != pid {
		t.Fatalf("the pids line changed: %d, then %d", pid, again)
	}
	if got := u.mustGet(queue(2) + "/dump?stale=1"); got != "before the kill\n" {
		t.Fatalf("node2's own state after its restart: %q, want the message put before the kill", got)
	}
	if got := u.mustGet(queue(2) + "/get"); got != "before the kill" {
		t.Fatalf("get through node2 after its restart: %q", got)
	}
	d.stop()
}

// mustBeQuietStart fails if a healthy start logged what every start goes
// through as a warning (raft's first election, followers catching up,
// seeds not up yet), or a value over several lines.
func mustBeQuietStart(t *testing.T, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `\n`) {
			t.Errorf("a log value over several lines: %s", line)
		}
		if !strings.Contains(line, "level=WARN") {
			continue
		}
		first := strings.Contains(line, "starting election") && strings.Contains(line, `last-leader-id=""`)
		for _, msg := range []string{"no known peers", "failed to get previous log", "appendEntries rejected", "attempt=1 "} {
			first = first || strings.Contains(line, msg)
		}
		if first {
			t.Errorf("a healthy start warned: %s", line)
		}
	}
}

// pid reads a node's process id from devcluster's "devcluster: pids" line
// (printed once, at the start).
func (d *devclusterRun) pid(id string) int {
	d.t.Helper()
	for _, line := range strings.Split(d.out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "devcluster: pids "); ok {
			for _, f := range strings.Fields(rest) {
				if name, v, _ := strings.Cut(f, "="); name == id {
					if pid, err := strconv.Atoi(v); err == nil {
						return pid
					}
				}
			}
		}
	}
	d.t.Fatalf("no pid of %s in devcluster's output", id)
	return 0
}

// devclusterRun is one `quorumq devcluster` process; stdout and stderr go
// to one buffer.
type devclusterRun struct {
	*testkit.Process
	t   *testing.T
	out *lockedBuffer
}

func startDevcluster(t *testing.T, args ...string) *devclusterRun {
	t.Helper()
	d := &devclusterRun{t: t, out: &lockedBuffer{}}
	d.Process = testkit.NewProcess(testkit.ProcessConfig{
		Name:   "devcluster",
		Argv:   append([]string{mustBinary(t), "devcluster"}, args...),
		Stdout: d.out, Stderr: d.out,
	})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM first: devcluster stops its nodes. SIGKILL only if that
		// hangs; the nodes then get SIGTERM from the kernel.
		if d.Running() {
			d.Terminate(stopTimeout)
		}
		if t.Failed() {
			t.Logf("---- devcluster %s output ----\n%s", strings.Join(args, " "), tail(d.out.String(), 4*logTailBytes))
		}
	})
	return d
}

// waitOutput waits until the output contains want.
func (d *devclusterRun) waitOutput(want string) {
	d.t.Helper()
	testwait.For(d.t, 2*readyTimeout, fmt.Sprintf("%q from devcluster", want), func() bool {
		if !d.Running() {
			d.t.Fatalf("devcluster exited (%+v) before printing %q", d.Crashes(), want)
		}
		return strings.Contains(d.out.String(), want)
	})

}

// stop sends SIGTERM, requires exit status 0 and returns the output.
func (d *devclusterRun) stop() string {
	d.t.Helper()
	if code, err := d.Terminate(stopTimeout); err != nil || code != 0 {
		d.t.Fatalf("devcluster: exit status %d after SIGTERM (%v)", code, err)
	}
	return d.out.String()
}

// freePortBlock returns a base port for devcluster whose whole plan for n
// nodes (base+10(i-1) to +3, gossip on TCP and UDP) is free right now.
func freePortBlock(t *testing.T, n int) int {
	t.Helper()
	for range 200 {
		base := 20000 + 10*rand.IntN(1200) // below the ephemeral range
		if portBlockFree(base, n) {
			return base
		}
	}
	t.Fatal("no free block of ports for devcluster")
	return 0
}

func portBlockFree(base, n int) bool {
	for i := range n {
		for off := range 4 {
			addr := testkit.Loopback(base + 10*i + off)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return false
			}
			ln.Close()
		}
		pc, err := net.ListenPacket("udp", testkit.Loopback(base+10*i+3))
		if err != nil {
			return false
		}
		pc.Close()
	}
	return true
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
