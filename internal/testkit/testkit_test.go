package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testport"
)

// fakeServeEnv makes the test binary act as `quorumq serve` (see
// fakeServe). Its value configures the fake: "leader=ID,voters=ID+ID,exit=CODE".
const fakeServeEnv = "TESTKIT_TEST_FAKE_SERVE"

func TestMain(m *testing.M) {
	if mode := os.Getenv(fakeServeEnv); mode != "" {
		os.Exit(fakeServe(os.Args[1:], mode))
	}
	code := m.Run()
	RemoveBuilt()
	os.Exit(code)
}

// fakeServe stands in for `quorumq serve`: it answers /readyz,
// /cluster/status (naming the configured leader, which says it leads)
// and POST /cluster/leave (then exits 0), and exits 0 on SIGTERM. With
// exit=CODE it exits at once with that code.
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
	queue := fs.String("queue-addr", "", "")
	for _, name := range []string{"data-dir", "pubsub-addr", "raft-addr", "gossip-addr", "debug-addr", "bootstrap-expect", "join", "log-level"} {
		fs.String(name, "", "")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fmt.Printf("fake serve %s\n", *id)
	if code := opts["exit"]; code != "" {
		var c int
		fmt.Sscan(code, &c)
		return c
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	ln, err := net.Listen("tcp", *queue)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	left := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ready") })
	mux.HandleFunc("/cluster/status", func(w http.ResponseWriter, r *http.Request) {
		st := api.Status{NodeID: *id, State: api.StateFollower, LeaderID: opts["leader"]}
		if st.LeaderID == *id {
			st.State = api.StateLeader
		}
		for _, v := range strings.Split(opts["voters"], "+") {
			st.Members = append(st.Members, api.Member{ID: v, Voter: true})
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /cluster/leave", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "left")
		close(left)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	select {
	case <-sigs:
		fmt.Fprintln(os.Stderr, "fake: SIGTERM")
	case <-left:
		// Shutdown lets the answer to the leave go out first.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}
	return 0
}

// fakeNode prepares a node that runs this test binary as a fake serve
// in mode, on loopback, logging to the test's temporary directory.
func fakeNode(t *testing.T, id, mode string) *Node {
	t.Helper()
	t.Setenv(fakeServeEnv, mode)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	nd := NewNode(NodeConfig{
		ID: id, Binary: exe, DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "node.log"),
		PubsubAddr: Loopback(testport.Reserve(t)), QueueAddr: Loopback(testport.Reserve(t)),
		RaftAddr: Loopback(testport.Reserve(t)), GossipAddr: Loopback(testport.Reserve(t)),
	})
	t.Cleanup(nd.Kill)
	return nd
}

// TestNodeConfig_Args_GeneratedFlagsThenServeArgs: the command line holds
// the node's id, directory and addresses, the cluster flags when set, and
// the extra flags last so they override the generated ones.
func TestNodeConfig_Args_GeneratedFlagsThenServeArgs(t *testing.T) {
	cfg := NodeConfig{
		ID: "node2", Binary: "/bin/quorumq", DataDir: "d/node2",
		PubsubAddr: "127.0.0.1:7010", QueueAddr: "127.0.0.1:7011", RaftAddr: "127.0.0.1:7012", GossipAddr: "127.0.0.1:7013",
		Expect: 3, Join: []string{"a:1", "b:2"}, ServeArgs: []string{"--log-level=debug"},
		Prefix: []string{"ip", "netns", "exec", "ns2"},
	}
	want := []string{"serve", "--node-id=node2", "--data-dir=d/node2",
		"--pubsub-addr=127.0.0.1:7010", "--queue-addr=127.0.0.1:7011", "--raft-addr=127.0.0.1:7012", "--gossip-addr=127.0.0.1:7013",
		"--bootstrap-expect=3", "--join=a:1,b:2", "--log-level=debug"}
	if got := cfg.Args(); !slices.Equal(got, want) {
		t.Fatalf("args:\n got  %q\n want %q", got, want)
	}
	nd := NewNode(cfg)
	if got := nd.Argv(); !slices.Equal(got[:5], []string{"ip", "netns", "exec", "ns2", "/bin/quorumq"}) {
		t.Fatalf("argv starts %q, want the prefix then the binary", got[:5])
	}
	single := NodeConfig{Binary: "q", DataDir: "d", PubsubAddr: "p", QueueAddr: "q", RaftAddr: "r", GossipAddr: "g", DebugAddr: "x"}
	if got := strings.Join(single.Args(), " "); got != "serve --data-dir=d --pubsub-addr=p --queue-addr=q --raft-addr=r --gossip-addr=g --debug-addr=x" {
		t.Fatalf("single node args: %s", got)
	}
	nd.SetJoin([]string{"c:3"}, 5)
	if a := nd.Argv(); !slices.Contains(a, "--join=c:3") || !slices.Contains(a, "--bootstrap-expect=5") {
		t.Fatalf("after SetJoin: %q", a)
	}
}

// TestProcess_SelfExitIsACrash_KillIsNot: an exit the caller did not
// cause is recorded with its status and start number, an exit by Kill is
// not, and every start appends a header and the output to the log.
func TestProcess_SelfExitIsACrash_KillIsNot(t *testing.T) {
	nd := fakeNode(t, "node1", "exit=3")
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	if code, err := nd.WaitExit(30 * time.Second); err != nil || code != 3 {
		t.Fatalf("exit: %d %v, want 3", code, err)
	}
	crashes := nd.Crashes()
	if len(crashes) != 1 || crashes[0].Name != "node1" || crashes[0].Start != 1 || crashes[0].Status != "exit status 3" {
		t.Fatalf("crashes: %+v", crashes)
	}

	t.Setenv(fakeServeEnv, "leader=node1")
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := nd.WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nd.Start(); err == nil {
		t.Fatal("a second Start of a running process succeeded")
	}
	nd.Kill()
	if nd.Running() || len(nd.Crashes()) != 1 || nd.Starts() != 2 {
		t.Fatalf("after Kill: running %v, crashes %+v, starts %d", nd.Running(), nd.Crashes(), nd.Starts())
	}
	log := nd.LogTail(1 << 20)
	if strings.Count(log, "==== start ") != 2 || !strings.Contains(log, "==== start 2 at ") || strings.Count(log, "fake serve node1\n") != 2 {
		t.Fatalf("log:\n%s", log)
	}
}

// TestProcess_PauseThenTerminate_ResumesAndStopsCleanly: a paused process
// answers nothing; Terminate continues it before SIGTERM, so it exits 0
// within the timeout, and that exit is not a crash.
func TestProcess_PauseThenTerminate_ResumesAndStopsCleanly(t *testing.T) {
	nd := fakeNode(t, "node1", "leader=node1")
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := nd.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nd.Pause(); err != nil {
		t.Fatal(err)
	}
	if !nd.Paused() {
		t.Fatal("not paused after Pause")
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := nd.Ready(short)
	cancel()
	if err == nil {
		t.Fatal("a paused process answered /readyz")
	}
	if code, err := nd.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("terminate: %d %v, want 0", code, err)
	}
	if len(nd.Crashes()) != 0 || nd.Paused() {
		t.Fatalf("crashes %+v, paused %v", nd.Crashes(), nd.Paused())
	}
	if err := nd.Pause(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("pause of a stopped process: %v", err)
	}
}

// TestNode_Leave_ExitIsExpectedAndStartRefused: after POST /cluster/leave
// the node exits by itself without counting as a crash, and it cannot be
// started again.
func TestNode_Leave_ExitIsExpectedAndStartRefused(t *testing.T) {
	nd := fakeNode(t, "node1", "leader=node1")
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := nd.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := nd.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if code, err := nd.WaitExit(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit after leave: %d %v", code, err)
	}
	if !nd.Left() || len(nd.Crashes()) != 0 {
		t.Fatalf("left %v, crashes %+v", nd.Left(), nd.Crashes())
	}
	if err := nd.Start(); err == nil || !strings.Contains(err.Error(), "left the cluster") {
		t.Fatalf("start after leave: %v", err)
	}
}

// TestCluster_StartAgreeOnLeader_AddNodeJoinsAll: Start launches n nodes
// with the same --bootstrap-expect and --join, waits for the agreed
// leader; followers are the rest; a node that leads no more is not found
// as leader; an added node gets a fresh name and the cluster's flags.
func TestCluster_StartAgreeOnLeader_AddNodeJoinsAll(t *testing.T) {
	t.Setenv(fakeServeEnv, "leader=node2,voters=node1+node2+node3")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterOptions{Binary: exe, Dir: t.TempDir(), Port: func() (int, error) { return testport.Reserve(t), nil }, ServeArgs: []string{"--log-level=debug"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()
	if err := c.Start(ctx, 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	nodes := c.Nodes()
	if got := IDs(nodes); !slices.Equal(got, []string{"node1", "node2", "node3"}) {
		t.Fatalf("nodes %v", got)
	}
	join := "--join=" + nodes[0].GossipAddr + "," + nodes[1].GossipAddr + "," + nodes[2].GossipAddr
	for _, nd := range nodes {
		a := nd.Argv()
		if !slices.Contains(a, "--bootstrap-expect=3") || !slices.Contains(a, join) || a[len(a)-1] != "--log-level=debug" {
			t.Fatalf("%s args %q", nd.ID, a)
		}
		if nd.DataDir != filepath.Join(filepath.Dir(nd.LogPath), "data") {
			t.Fatalf("%s: data %s, log %s", nd.ID, nd.DataDir, nd.LogPath)
		}
	}
	l, err := c.Leader(ctx)
	if err != nil || l.ID != "node2" {
		t.Fatalf("leader %v %v", l, err)
	}
	fs, err := c.Followers(ctx)
	if err != nil || !slices.Equal(IDs(fs), []string{"node1", "node3"}) {
		t.Fatalf("followers %v %v", IDs(fs), err)
	}
	if err := c.WaitVoters(ctx, nodes, []string{"node3", "node1", "node2"}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	l.Kill()
	if _, err := c.Leader(ctx); err == nil || !strings.Contains(err.Error(), "leader node2 is not among [node1 node3]") {
		t.Fatalf("leader after node2 was killed: %v", err)
	}
	if _, err := c.WaitLeader(ctx, c.Healthy(), nil, 200*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("WaitLeader without a leader: %v", err)
	}

	n4, err := c.AddNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := n4.WaitReady(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	a := n4.Argv()
	if n4.ID != "node4" || !slices.Contains(a, "--bootstrap-expect=3") || !slices.Contains(a, join+","+n4.GossipAddr) {
		t.Fatalf("%s args %q", n4.ID, a)
	}
}

// TestPoll_PermanentStopsAtOnce_TimeoutNamesTheLastError: a Permanent
// error ends the wait at once; a timeout reports what was awaited and the
// last error; a cancelled context ends it too.
func TestPoll_PermanentStopsAtOnce_TimeoutNamesTheLastError(t *testing.T) {
	ctx := context.Background()
	gone := errors.New("gone")
	calls := 0
	err := Poll(ctx, time.Minute, "x", func(context.Context) error { calls++; return Permanent(gone) })
	if !errors.Is(err, gone) || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	calls = 0
	err = Poll(ctx, time.Minute, "the third call", func(context.Context) error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("%v after %d calls", err, calls)
	}
	err = Poll(ctx, 50*time.Millisecond, "nothing", func(context.Context) error { return errors.New("still wrong") })
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms waiting for nothing: still wrong") {
		t.Fatalf("timeout: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Poll(cctx, time.Minute, "y", func(context.Context) error { return errors.New("no") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestFreePort_NeverTheSameTwice: ports handed out in one process differ
// and are free for TCP and UDP.
func TestFreePort_NeverTheSameTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 20 {
		p, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		pc, err := net.ListenPacket("udp", Loopback(p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		pc.Close()
	}
}

// TestBuildOnce_OneBinaryPerProcess: the first call builds quorumq, every
// call returns the same executable.
func TestBuildOnce_OneBinaryPerProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the quorumq binary")
	}
	a, err := BuildOnce()
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildOnce()
	if err != nil || a != b {
		t.Fatalf("second call: %q %v, want %q", b, err, a)
	}
	if fi, err := os.Stat(a); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s: %v %v", a, fi, err)
	}
}
