package systemtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testport"
)

// binary is the quorumq binary built once for the whole package.
var binary string

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
	dir, err := os.MkdirTemp("", "quorumq-systemtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "quorumq")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building quorumq:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Timeouts for waits on processes. Generous: the test machine may be small
// and busy, and a wait ends as soon as its condition holds.
const (
	readyTimeout = 60 * time.Second // start (or restart) until /readyz is 200
	stopTimeout  = 60 * time.Second // SIGTERM or leave until the process exits
	// logTailBytes is how much of each node's log a failed test prints.
	logTailBytes = 16 << 10
)

// node is one quorumq serve process. Its log (stdout and stderr of every
// start) goes to logPath and is printed when the test fails.
type node struct {
	t    *testing.T
	name string // the --node-id in clusters, "node" for a single node
	// prefix runs the binary through another command (ip netns exec NS).
	prefix  []string
	args    []string // serve and its flags
	dataDir string
	logPath string

	queue      string // http://host:port of the queue port
	queueAddr  string // host:port of the queue port
	pubsubAddr string
	raftAddr   string
	gossipAddr string

	starts int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
}

// newNode prepares a node whose files live in dir; it kills the process
// and prints the log tail (if the test failed) at cleanup.
func newNode(t *testing.T, name, dir string) *node {
	n := &node{t: t, name: name, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "node.log")}
	t.Cleanup(func() {
		n.kill()
		if t.Failed() {
			t.Logf("---- %s: last %d KiB of %s ----\n%s", n.name, logTailBytes>>10, n.logPath, n.logTail(logTailBytes))
		}
	})
	return n
}

// setAddrs records the node's listen addresses (host:port each).
func (n *node) setAddrs(queue, pubsub, raft, gossip string) {
	n.queueAddr, n.pubsubAddr, n.raftAddr, n.gossipAddr = queue, pubsub, raft, gossip
	n.queue = "http://" + queue
}

// mustStartNode starts a single-node cluster on fresh ports and waits until
// it is ready. Extra flags are appended.
func mustStartNode(t *testing.T, extra ...string) *node {
	t.Helper()
	n := newNode(t, "node", t.TempDir())
	n.setAddrs(loopbackAddr(freePort(t)), loopbackAddr(freePort(t)), loopbackAddr(freePort(t)), loopbackAddr(testport.Reserve(t)))
	n.args = append([]string{"serve",
		"--data-dir=" + n.dataDir,
		"--queue-addr=" + n.queueAddr,
		"--pubsub-addr=" + n.pubsubAddr,
		"--raft-addr=" + n.raftAddr,
		"--gossip-addr=" + n.gossipAddr,
	}, extra...)
	n.mustStart()
	return n
}

// start launches the process and returns at once. It is safe to call from
// several goroutines for different nodes.
func (n *node) start() error {
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	argv := append(append(append([]string{}, n.prefix...), binary), n.args...)
	fmt.Fprintf(logf, "==== start %d at %s: %s\n", n.starts, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited = cmd, exited
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	return nil
}

// mustStart starts the process (again, with the same flags, data directory
// and ports) and waits until it is ready.
func (n *node) mustStart() {
	n.t.Helper()
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
	n.mustBeReady(readyTimeout)
}

// restart is mustStart after a stop: same data directory, same ports.
func (n *node) restart() {
	n.t.Helper()
	if n.running() {
		n.t.Fatalf("restart %s: it is still running", n.name)
	}
	n.mustStart()
}

// mustBeReady waits until /readyz answers 200. On timeout it says what the
// node last reported about itself.
func (n *node) mustBeReady(timeout time.Duration) {
	n.t.Helper()
	eventually(n.t, timeout, n.name+" ready", func() error {
		if !n.running() {
			n.t.Fatalf("%s exited during start-up (%s); its log follows the test output", n.name, n.cmd.ProcessState)
		}
		code, body := httpGet(n.queue + "/readyz")
		if code == http.StatusOK {
			return nil
		}
		st, err := n.status()
		if err != nil {
			return fmt.Errorf("/readyz: %d %s; %v", code, strings.TrimSpace(body), err)
		}
		return fmt.Errorf("/readyz: %d %s; state %s, leader %q, term %d, commit %d, applied %d, voters %v",
			code, strings.TrimSpace(body), st.State, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex, st.voters())
	})
}

// running reports whether the node's process is alive.
func (n *node) running() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill9 kills the process without any chance to clean up.
func (n *node) kill9() {
	n.t.Helper()
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// terminate sends SIGTERM and waits for a clean exit.
func (n *node) terminate() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	if code := n.waitExit(stopTimeout); code != 0 {
		n.t.Fatalf("%s: exit status %d after SIGTERM", n.name, code)
	}
}

// waitExit waits for the process to exit on its own and returns its exit
// code (-1 if a signal ended it).
func (n *node) waitExit(timeout time.Duration) int {
	n.t.Helper()
	select {
	case <-n.exited:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		n.t.Fatalf("%s did not exit within %v", n.name, timeout)
		return 0
	}
}

func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

func (n *node) logTail(max int) string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// clusterStatus is GET /cluster/status as ARCHITECTURE.md defines it. The
// tests decode the contract, not the cluster package's Go type.
type clusterStatus struct {
	NodeID       string   `json:"node_id"`
	State        string   `json:"state"`
	LeaderID     string   `json:"leader_id"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []member `json:"members"`
}

type member struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	Voter      bool   `json:"voter"`
	QueueAddr  string `json:"queue_addr"`
	PubsubAddr string `json:"pubsub_addr"`
	RaftAddr   string `json:"raft_addr"`
}

// voters returns the ids of the voters, in the order listed.
func (s clusterStatus) voters() []string {
	var ids []string
	for _, m := range s.Members {
		if m.Voter {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func (s clusterStatus) member(id string) (member, bool) {
	for _, m := range s.Members {
		if m.ID == id {
			return m, true
		}
	}
	return member{}, false
}

// status asks the node for GET /cluster/status.
func (n *node) status() (clusterStatus, error) {
	var st clusterStatus
	code, body := httpGet(n.queue + "/cluster/status")
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: GET /cluster/status: %d %s", n.name, code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return st, fmt.Errorf("%s: /cluster/status: %v in %q", n.name, err, body)
	}
	return st, nil
}

var (
	portsMu sync.Mutex
	// portsGiven keeps freePort from handing out a port twice in one run:
	// the kernel may return a port again once its listener is closed.
	portsGiven = map[int]bool{}
)

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if claimPort(port) {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func claimPort(port int) bool {
	portsMu.Lock()
	defer portsMu.Unlock()
	if portsGiven[port] {
		return false
	}
	portsGiven[port] = true
	return true
}

func loopbackAddr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// eventually polls check until it returns nil; on timeout the test fails
// with the last error, which says what was still wrong.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
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
