package devcluster

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeServeEnv makes the test binary act as `quorumq serve` (see
// fakeServe); Run's children inherit it. Its value configures the fake:
// "leader=ID,crash=ID,ignore-term=ID".
const fakeServeEnv = "DEVCLUSTER_TEST_FAKE_SERVE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeServeEnv); mode != "" {
		os.Exit(fakeServe(os.Args[1:], mode))
	}
	os.Exit(m.Run())
}

// fakeServe stands in for `quorumq serve`: it answers /readyz and
// /cluster/status on the queue address, records each start in its data
// directory, and exits 0 on SIGTERM. Per mode it crashes at once, or
// ignores SIGTERM.
func fakeServe(args []string, mode string) int {
	opts := map[string]string{}
	for _, kv := range strings.Split(mode, ",") {
		k, v, _ := strings.Cut(kv, "=")
		opts[k] = v
	}
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintf(os.Stderr, "fake: want serve, got %q\n", args)
		return 2
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	id := fs.String("node-id", "", "")
	dataDir := fs.String("data-dir", "", "")
	queue := fs.String("queue-addr", "", "")
	for _, name := range []string{"pubsub-addr", "raft-addr", "gossip-addr", "bootstrap-expect", "join", "log-level"} {
		fs.String(name, "", "")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := os.OpenFile(filepath.Join(*dataDir, "starts"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintln(f, "start")
	f.Close()
	if opts["crash"] == *id {
		fmt.Fprintf(os.Stderr, "fake %s: crashing\n", *id)
		return 3
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *queue)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ready") })
	mux.HandleFunc("/cluster/status", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"node_id":%q,"state":"follower","leader_id":%q,"members":[]}`+"\n", *id, opts["leader"])
	})
	go http.Serve(ln, mux)
	fmt.Printf("fake serve %s listening on %s\n", *id, *queue)
	for range sigs {
		if opts["ignore-term"] == *id {
			fmt.Printf("fake serve %s ignores SIGTERM\n", *id)
			continue
		}
		fmt.Fprint(os.Stderr, "bye") // no newline: devcluster must still print it whole
		return 0
	}
	return 0
}

// syncBuffer is a bytes buffer safe for Run's writers and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeBase returns a base port whose whole plan for n nodes is free.
func freeBase(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + 10*rand.IntN(1200) // below the ephemeral range
		if checkPorts(Config{Nodes: n, BasePort: base, BaseDir: "x"}.plan()) == nil {
			return base
		}
	}
	t.Fatal("no free block of ports")
	return 0
}

// running is one Run in the background.
type running struct {
	cancel         context.CancelFunc
	done           chan struct{} // closed when Run has returned err
	err            error
	stdout, stderr *syncBuffer
}

func startRun(t *testing.T, mode string, cfg Config) *running {
	t.Helper()
	t.Setenv(fakeServeEnv, mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg = testConfig(cfg)
	cfg.Binary = exe
	if cfg.BaseDir == DefaultBaseDir {
		cfg.BaseDir = t.TempDir()
	}
	if cfg.BasePort == DefaultBasePort {
		cfg.BasePort = freeBase(t, cfg.Nodes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{}), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() {
		defer close(r.done)
		r.err = Run(ctx, cfg, r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Error("Run did not return within a minute of cancel")
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
		}
	})
	return r
}

func (r *running) waitOutput(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(r.stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output within 60s", want)
		}
		select {
		case <-r.done:
			t.Fatalf("Run returned %v before printing %q", r.err, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancel")
		return nil
	}
}

// TestRun_StartsNodesReportsLeaderAndStops: Run prints the plan, starts
// every node with its flags, prefixes their output line by line, reports
// readiness and the leader, and on cancel stops them all cleanly.
func TestRun_StartsNodesReportsLeaderAndStops(t *testing.T) {
	r := startRun(t, "leader=node2", Config{Nodes: 3})
	r.waitOutput(t, "all 3 nodes ready")
	r.waitOutput(t, "node2 leads (queue http://127.0.0.1:")
	out := r.stdout.String()
	for _, want := range []string{"NODE", "QUEUE", "PUBSUB", "[node1] fake serve node1 listening", "[node3] fake serve node3 listening"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if !strings.Contains(r.stdout.String(), "devcluster: all nodes stopped") {
		t.Errorf("no stop report")
	}
	for _, id := range []string{"node1", "node2", "node3"} {
		if !strings.Contains(r.stderr.String(), "["+id+"] bye\n") {
			t.Errorf("stderr lacks the unterminated last line of %s", id)
		}
	}
}

// TestRun_SameBaseDir_ReusesData: a second Run on the same base directory
// starts the nodes on the same data directories.
func TestRun_SameBaseDir_ReusesData(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		r := startRun(t, "leader=node1", Config{Nodes: 2, BaseDir: dir})
		r.waitOutput(t, "node1 leads")
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"node1", "node2"} {
		b, err := os.ReadFile(filepath.Join(dir, id, "starts"))
		if err != nil || string(b) != "start\nstart\n" {
			t.Fatalf("%s starts: %q %v", id, b, err)
		}
	}
}

// TestRun_NodeDies_ReportedOthersKeepRunning: a node that exits on its own
// is reported, the others stay up and are reported ready, and the failure
// is part of Run's result.
func TestRun_NodeDies_ReportedOthersKeepRunning(t *testing.T) {
	r := startRun(t, "leader=node1,crash=node3", Config{Nodes: 3})
	r.waitOutput(t, "devcluster: node3 exited unexpectedly (exit status 3); 2 of 3 nodes still running")
	r.waitOutput(t, "2 of 3 nodes ready")
	r.waitOutput(t, "node1 leads")
	plan, _ := Plan(testConfig(Config{Nodes: 3, BasePort: r.basePort(t), Binary: "x"}))
	resp, err := http.Get(plan[1].QueueURL() + "/readyz")
	if err != nil {
		t.Fatalf("node2 after node3 died: %v", err)
	}
	resp.Body.Close()
	err = r.stop(t)
	if err == nil || !strings.Contains(err.Error(), "node3: exit status 3") {
		t.Fatalf("Run: %v, want node3's failure", err)
	}
}

// TestRun_StuckNode_KilledAfterStopTimeout: a node that ignores SIGTERM is
// killed once StopTimeout has passed, and Run says so.
func TestRun_StuckNode_KilledAfterStopTimeout(t *testing.T) {
	r := startRun(t, "leader=node1,ignore-term=node1", Config{Nodes: 2, StopTimeout: time.Second})
	r.waitOutput(t, "node1 leads")
	err := r.stop(t)
	if err == nil || !strings.Contains(err.Error(), "node1: signal: killed") {
		t.Fatalf("Run: %v, want node1 killed", err)
	}
	if !strings.Contains(r.stdout.String(), "node1 did not stop within 1s; sending SIGKILL") {
		t.Fatalf("no SIGKILL report")
	}
}

// TestRun_PortTaken_FailsBeforeStarting: a taken port stops Run before any
// node starts, naming the node and the port.
func TestRun_PortTaken_FailsBeforeStarting(t *testing.T) {
	base := freeBase(t, 3)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+11))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	err = Run(context.Background(), testConfig(Config{Nodes: 3, BasePort: base, BaseDir: dir, Binary: "/nonexistent"}), &syncBuffer{}, &syncBuffer{})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("node2 queue port 127.0.0.1:%d is taken", base+11)) {
		t.Fatalf("Run: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("base dir not empty: %v", entries)
	}
}

// TestRun_KilledNode_RestartedOnItsData: a node killed with SIGKILL is
// reported, started again on the same data directory after the restart
// delay, reported ready again, and a later stop is clean.
func TestRun_KilledNode_RestartedOnItsData(t *testing.T) {
	dir := t.TempDir()
	r := startRun(t, "leader=node1", Config{Nodes: 3, BaseDir: dir, Restart: true, RestartDelay: 100 * time.Millisecond})
	r.waitOutput(t, "all 3 nodes ready")
	pidFile := filepath.Join(dir, "node2.pid")
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(r.pid(t, "node2")) {
		t.Fatalf("%s: %q %v, want the pid devcluster printed", pidFile, b, err)
	}
	if err := syscall.Kill(r.pid(t, "node2"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitOutput(t, "devcluster: node2 exited unexpectedly (signal: killed); restarting it on its data in 100ms (--restart=false leaves it down)")
	r.waitOutput(t, "devcluster: node2 restarted (pid ")
	r.waitOutput(t, "devcluster: node2 is ready again after ")
	if b, err := os.ReadFile(filepath.Join(dir, "node2", "starts")); err != nil || string(b) != "start\nstart\n" {
		t.Fatalf("node2 starts: %q %v, want two starts on its data directory", b, err)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after the restarted node stopped cleanly: %v", err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("%s is left after the stop (%v)", pidFile, err)
	}
}

// TestRun_NodeKeepsFailing_LeftDownAfterBackoffs: a node that fails at
// once every time is restarted with a doubling delay, then left down; the
// failure is Run's result.
func TestRun_NodeKeepsFailing_LeftDownAfterBackoffs(t *testing.T) {
	dir := t.TempDir()
	r := startRun(t, "leader=node1,crash=node2", Config{Nodes: 2, BaseDir: dir, Restart: true, RestartDelay: 10 * time.Millisecond})
	r.waitOutput(t, "restarting it on its data in 10ms")
	r.waitOutput(t, "restarting it on its data in 160ms")
	r.waitOutput(t, fmt.Sprintf("devcluster: node2 failed %d times in a row within 30s of starting; leaving it down", maxQuickFailures+1))
	r.waitOutput(t, "node2 exited unexpectedly (exit status 3); 1 of 2 nodes still running")
	if b, _ := os.ReadFile(filepath.Join(dir, "node2", "starts")); strings.Count(string(b), "start") != maxQuickFailures+1 {
		t.Fatalf("node2 started %d times, want %d", strings.Count(string(b), "start"), maxQuickFailures+1)
	}
	if err := r.stop(t); err == nil || !strings.Contains(err.Error(), "node2: exit status 3") {
		t.Fatalf("Run: %v, want node2's failure", err)
	}
}

// pid reads a node's process id from the "devcluster: pids" line.
func (r *running) pid(t *testing.T, id string) int {
	t.Helper()
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		rest, ok := strings.CutPrefix(line, "devcluster: pids ")
		if !ok {
			continue
		}
		for _, f := range strings.Fields(rest) {
			var pid int
			if name, v, _ := strings.Cut(f, "="); name == id {
				if _, err := fmt.Sscan(v, &pid); err == nil {
					return pid
				}
			}
		}
	}
	t.Fatalf("no pid of %s in the output", id)
	return 0
}

// basePort reads the base port back from the printed plan.
func (r *running) basePort(t *testing.T) int {
	t.Helper()
	for _, line := range strings.Split(r.stdout.String(), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "node1" {
			var port int
			if _, err := fmt.Sscanf(f[1], "http://127.0.0.1:%d", &port); err == nil {
				return port - queueOffset
			}
		}
	}
	t.Fatal("no node1 row in the plan")
	return 0
}
