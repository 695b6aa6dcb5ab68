package systemtest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testport"
)

// dialEnv makes the test binary a probe instead: it dials the TCP address
// in the variable and exits 0 if that worked (see netnsNet.dial).
const dialEnv = "QUORUMQ_SYSTEMTEST_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialEnv); addr != "" {
		conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		conn.Close()
		os.Exit(0)
	}
	code := m.Run()
	testkit.RemoveBuilt()
	os.Exit(code)
}

// mustBinary returns the quorumq binary, built once for the whole package.
func mustBinary(t testing.TB) string {
	t.Helper()
	bin, err := testkit.BuildOnce()
	if err != nil {
		t.Fatalf("building quorumq: %v", err)
	}
	return bin
}

// Timeouts for waits on processes. Generous: the test machine may be small
// and busy, and a wait ends as soon as its condition holds.
const (
	readyTimeout = 60 * time.Second // start (or restart) until /readyz is 200
	stopTimeout  = 60 * time.Second // SIGTERM or leave until the process exits
	// logTailBytes is how much of each node's log a failed test prints.
	logTailBytes = 16 << 10
)

// node is a testkit node bound to its test: its helpers fail the test
// instead of returning errors. Its log (stdout and stderr of every start)
// is printed when the test fails.
type node struct {
	*testkit.Node
	*user
}

// reservePort is the port source of the nodes tests start.
func reservePort(t testing.TB) func() (int, error) {
	return func() (int, error) { return testport.Reserve(t), nil }
}

// mustStartNode starts a single-node cluster on fresh ports, open or
// secured as m says, with serve's profiler on (see parkedPolls), and
// waits until it is ready. Extra flags are appended.
func mustStartNode(t *testing.T, m mode, extra ...string) *node {
	t.Helper()
	n := newNode(t, m, extra...)
	n.mustStart()
	if n.secured() {
		n.mustRefuseAnonymous(n)
	}
	return n
}

// newNode is mustStartNode's node before its first start.
func newNode(t *testing.T, m mode, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	addr := func() string { return testkit.Loopback(testport.Reserve(t)) }
	cfg := testkit.NodeConfig{
		Binary: mustBinary(t), DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "node.log"),
		PubsubAddr: addr(), QueueAddr: addr(), RaftAddr: addr(), GossipAddr: addr(), DebugAddr: addr(),
		ServeArgs: extra,
	}
	if m.secure {
		// A secured node's certificate names its id.
		cfg.ID, cfg.Security = "node1", mustSecurity(t)
		if _, err := cfg.Security.NodeFiles(cfg.ID, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	n := &node{Node: testkit.NewNode(cfg), user: newUser(t, cfg.Security)}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			logTails(t, n.Node)
		}
	})
	return n
}

// logTails prints the end of each node's log.
func logTails(t testing.TB, nodes ...*testkit.Node) {
	for _, nd := range nodes {
		t.Logf("---- %s: last %d KiB of %s ----\n%s", nd.Name(), logTailBytes>>10, nd.LogPath, nd.LogTail(logTailBytes))
	}
}

// mustStart starts the process (again, with the same flags, data directory
// and ports) and waits until it is ready.
func (n *node) mustStart() {
	n.t.Helper()
	if err := n.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.mustBeReady(readyTimeout)
}

// restart is mustStart after a stop: same data directory, same ports.
func (n *node) restart() {
	n.t.Helper()
	if n.Running() {
		n.t.Fatalf("restart %s: it is still running", n.Name())
	}
	n.mustStart()
}

// mustBeReady waits until /readyz answers 200. On timeout it says what the
// node last reported about itself; if the process exits, at once.
func (n *node) mustBeReady(timeout time.Duration) {
	n.t.Helper()
	if err := n.WaitReady(context.Background(), timeout); err != nil {
		n.t.Fatalf("%v; the node's log follows the test output", err)
	}
}

// kill9 kills the process without any chance to clean up, and waits for
// it to be gone.
func (n *node) kill9() { n.Kill() }

// terminate sends SIGTERM and requires a clean exit.
func (n *node) terminate() {
	n.t.Helper()
	if code, err := n.Terminate(stopTimeout); err != nil || code != 0 {
		n.t.Fatalf("%s: exit status %d after SIGTERM (%v)", n.Name(), code, err)
	}
}

// waitExit waits for the process to exit on its own and returns its exit
// code (-1 if a signal ended it).
func (n *node) waitExit(timeout time.Duration) int {
	n.t.Helper()
	code, err := n.WaitExit(timeout)
	if err != nil {
		n.t.Fatal(err)
	}
	return code
}

// status asks the node for GET /cluster/status.
func (n *node) status() (*api.Status, error) {
	return n.Status(context.Background())
}

// parkedPolls counts the requests that wait in nd for a message to
// arrive (wait= on /get or /mget). A waiting request shows only in the
// goroutine dump of serve's profiler, as a goroutine blocked in a select
// of package httpapi (the long-poll wait); an idle node has no such
// goroutine (tests check that before they park a poll), so a change that
// adds one makes them fail instead of pass for the wrong reason.
func parkedPolls(nd *node) (int, error) {
	if nd.DebugAddr == "" {
		return 0, fmt.Errorf("%s runs without the profiler (withProfiler)", nd.Name())
	}
	// The profiler speaks plain HTTP, on a secured node too.
	body, code, err := testkit.Call(context.Background(), http.MethodGet, "http://"+nd.DebugAddr+"/debug/pprof/goroutine?debug=2")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("%s: goroutine dump: %d %v", nd.Name(), code, err)
	}
	n := 0
	for _, g := range strings.Split(body, "\n\n") {
		header, rest, _ := strings.Cut(g, "\n")
		if strings.Contains(header, " [select") && strings.HasPrefix(rest, "github.com/quorumq/quorumq/httpapi.") {
			n++
		}
	}
	return n, nil
}

// waitParked waits until want requests wait in nd for a message.
func waitParked(t testing.TB, nd *node, want int) {
	t.Helper()
	eventually(t, readyTimeout, fmt.Sprintf("%d long-polls parked in %s", want, nd.Name()), func() error {
		got, err := parkedPolls(nd)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%d parked", got)
		}
		return nil
	})
}

// eventually polls check until it returns nil; on timeout the test fails
// with the last error, which says what was still wrong.
func eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	err := testkit.Poll(context.Background(), timeout, what, func(context.Context) error { return check() })
	if err != nil {
		t.Fatal(err)
	}
}

// dumpItems splits a /dump body into its messages.
func dumpItems(body string) []string {
	body = strings.TrimSuffix(body, "\n")
	if body == "" {
		return nil
	}
	return strings.Split(body, "\n")
}

// metric reads one sample of nd's /metrics (0 when absent).
func (nd *node) metric(sample string) float64 {
	nd.t.Helper()
	for line := range strings.Lines(nd.mustGet(nd.QueueURL + "/metrics")) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				nd.t.Fatalf("%s: %q", sample, v)
			}
			return f
		}
	}
	return 0
}
