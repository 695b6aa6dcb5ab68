package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	t testing.TB
}

// reservePort is the port source of the nodes tests start.
func reservePort(t testing.TB) func() (int, error) {
	return func() (int, error) { return testport.Reserve(t), nil }
}

// mustStartNode starts a single-node cluster on fresh ports, with serve's
// profiler on (see parkedPolls), and waits until it is ready. Extra flags
// are appended.
func mustStartNode(t *testing.T, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	addr := func() string { return testkit.Loopback(testport.Reserve(t)) }
	n := &node{t: t, Node: testkit.NewNode(testkit.NodeConfig{
		Binary: mustBinary(t), DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "node.log"),
		PubsubAddr: addr(), QueueAddr: addr(), RaftAddr: addr(), GossipAddr: addr(), DebugAddr: addr(),
		ServeArgs: extra,
	})}
	t.Cleanup(func() {
		n.Kill()
		if t.Failed() {
			logTails(t, n.Node)
		}
	})
	n.mustStart()
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

// httpClient talks to the nodes directly, never through a proxy from the
// environment (the network-namespace test uses non-loopback addresses).
var httpClient = &http.Client{
	Timeout: 10 * time.Second,
	Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	},
}

// noRedirectClient returns 3xx answers instead of following them.
var noRedirectClient = &http.Client{
	Timeout:       httpClient.Timeout,
	Transport:     httpClient.Transport,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func httpGet(url string) (int, string) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func httpPost(ctx context.Context, url string, body []byte) (int, string, error) {
	res, err := do(ctx, httpClient, http.MethodPost, url, body)
	return res.code, res.body, err
}

// response is an HTTP answer read whole.
type response struct {
	code   int
	header http.Header
	body   string
}

func do(ctx context.Context, client *http.Client, method, url string, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return response{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	code, body := httpGet(url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, strings.TrimSpace(body))
	}
	return body
}

// mustPut sends one message with POST /put and requires a 200.
func mustPut(t *testing.T, url, msg string) response {
	t.Helper()
	res, err := do(context.Background(), httpClient, http.MethodPost, url, []byte(msg))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	if res.code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", url, res.code, strings.TrimSpace(res.body))
	}
	return res
}

// dumpItems splits a /dump body into its messages.
func dumpItems(body string) []string {
	body = strings.TrimSuffix(body, "\n")
	if body == "" {
		return nil
	}
	return strings.Split(body, "\n")
}
