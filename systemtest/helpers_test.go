package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the quorumq binary built once for the whole package.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorumq-systemtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "quorumq")
	build := exec.Command("go", "build", "-o", binary, "../cmd/node")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building quorumq:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one quorumq serve process.
type node struct {
	t       *testing.T
	args    []string
	dataDir string
	queue   string // http://host:port of the queue port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// mustStartNode starts a single-node cluster on fresh ports and waits until
// it is ready. Extra flags are appended.
func mustStartNode(t *testing.T, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "node.log")}
	qp := freePort(t)
	n.queue = fmt.Sprintf("http://127.0.0.1:%d", qp)
	n.args = append([]string{"serve",
		"--data-dir=" + n.dataDir,
		fmt.Sprintf("--queue-addr=127.0.0.1:%d", qp),
		fmt.Sprintf("--pubsub-addr=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("--raft-addr=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("--gossip-addr=127.0.0.1:%d", freePort(t)),
	}, extra...)
	n.mustStart()
	t.Cleanup(func() { n.kill() })
	return n
}

func (n *node) mustStart() {
	n.t.Helper()
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cmd = exec.Command(binary, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() { n.cmd.Wait(); logf.Close(); close(n.exited) }()
	n.mustBeReady(15 * time.Second)
}

func (n *node) mustBeReady(timeout time.Duration) {
	n.t.Helper()
	waitFor(n.t, timeout, "node ready", func() bool {
		select {
		case <-n.exited:
			n.t.Fatalf("node exited during start-up:\n%s", n.logTail())
		default:
		}
		code, _ := httpGet(n.queue + "/readyz")
		return code == http.StatusOK
	})
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
	select {
	case <-n.exited:
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			n.t.Fatalf("exit status %d after SIGTERM:\n%s", code, n.logTail())
		}
	case <-time.After(30 * time.Second):
		n.t.Fatalf("node did not stop within 30s of SIGTERM:\n%s", n.logTail())
	}
}

func (n *node) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.exited
	}
}

func (n *node) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func mustGet(t *testing.T, url string) string {
	t.Helper()
	code, body := httpGet(url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, strings.TrimSpace(body))
	}
	return body
}
