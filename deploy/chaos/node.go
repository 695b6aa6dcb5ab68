package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

// Logf receives the harness's progress lines. Nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// Node is one `quorumq serve` process slot: an id, a data directory, its
// addresses and the command line, started and stopped as often as the
// caller likes. Its log (stdout and stderr of every start, each start
// preceded by a "==== start" line) is appended to LogPath.
//
// All methods are safe for concurrent use.
type Node struct {
	// ID is the --node-id.
	ID string
	// Slot is the node's network-namespace slot (see netns.Net), 0 on loopback.
	Slot int
	// DataDir is the --data-dir.
	DataDir string
	// LogPath receives the process output.
	LogPath string
	// QueueURL is http://QueueAddr.
	QueueURL string
	// Listen addresses (host:port).
	QueueAddr, PubsubAddr, RaftAddr, GossipAddr string

	spec   NodeSpec
	binary string
	prefix []string // runs the binary through another command (ip netns exec NS)
	args   []string // serve and its flags
	logf   Logf

	mu     sync.Mutex
	starts int
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has exited
	paused bool
	left   bool
	// expectExit is set when the harness ends the process (Kill,
	// Terminate, ExpectExit); any other exit is recorded in crashes.
	expectExit bool
	crashes    []Exit
}

// Exit is a process exit the harness did not cause.
type Exit struct {
	Node   string    `json:"node"`
	At     time.Time `json:"at"`
	Start  int       `json:"start"` // which start of the node
	Status string    `json:"status"`
}

// NodeSpec describes a node for NewNode.
type NodeSpec struct {
	ID      string
	Slot    int
	Dir     string   // holds data/ and node.log
	Binary  string   // the quorumq binary
	Prefix  []string // command prefix, e.g. netns.Net.Exec(slot)
	Queue   string   // host:port of each listener
	Pubsub  string
	Raft    string
	Gossip  string
	Join    []string // --join gossip addresses
	Expect  int      // --bootstrap-expect
	Extra   []string // further serve flags
	Logf    Logf
	LogName string // file name of the log in Dir (default node.log)
}

// NewNode prepares a node; it does not start it.
func NewNode(s NodeSpec) *Node {
	logName := s.LogName
	if logName == "" {
		logName = "node.log"
	}
	n := &Node{
		ID: s.ID, Slot: s.Slot,
		DataDir: filepath.Join(s.Dir, "data"), LogPath: filepath.Join(s.Dir, logName),
		QueueAddr: s.Queue, PubsubAddr: s.Pubsub, RaftAddr: s.Raft, GossipAddr: s.Gossip,
		QueueURL: "http://" + s.Queue,
		spec:     s, binary: s.Binary, prefix: s.Prefix, logf: s.Logf,
	}
	n.args = n.serveArgs()
	return n
}

func (n *Node) serveArgs() []string {
	return append([]string{"serve",
		"--node-id=" + n.ID,
		"--data-dir=" + n.DataDir,
		"--queue-addr=" + n.QueueAddr,
		"--pubsub-addr=" + n.PubsubAddr,
		"--raft-addr=" + n.RaftAddr,
		"--gossip-addr=" + n.GossipAddr,
		fmt.Sprintf("--bootstrap-expect=%d", max(n.spec.Expect, 1)),
		"--join=" + strings.Join(n.spec.Join, ","),
	}, n.spec.Extra...)
}

// SetJoin changes the --join addresses and --bootstrap-expect of the next
// start.
func (n *Node) SetJoin(join []string, expect int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.spec.Join, n.spec.Expect = slices.Clone(join), expect
	n.args = n.serveArgs()
}

// Args returns the command line of the next start (without the prefix).
func (n *Node) Args() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string{n.binary}, n.args...)
}

// Start launches the process and returns at once (see WaitReady). It fails
// if the process is already running or the node has left.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("start %s: already running", n.ID)
	}
	if n.left {
		return fmt.Errorf("start %s: the node left the cluster; a left data directory must not come back", n.ID)
	}
	if err := os.MkdirAll(filepath.Dir(n.LogPath), 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	n.starts++
	argv := append(append(append([]string{}, n.prefix...), n.binary), n.args...)
	fmt.Fprintf(logf, "==== start %d at %s: %s\n", n.starts, time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.paused, n.expectExit = cmd, exited, false, false
	start := n.starts
	go func() {
		cmd.Wait()
		logf.Close()
		n.mu.Lock()
		if !n.expectExit {
			n.crashes = append(n.crashes, Exit{Node: n.ID, At: time.Now(), Start: start, Status: cmd.ProcessState.String()})
			n.logf.printf("%s (start %d) exited by itself: %s", n.ID, start, cmd.ProcessState)
		}
		n.mu.Unlock()
		close(exited)
	}()
	return nil
}

// ExpectExit tells the harness that the current process is about to end
// by the caller's doing (e.g. after POST /cluster/leave), so its exit is
// not recorded as a crash.
func (n *Node) ExpectExit() {
	n.mu.Lock()
	n.expectExit = true
	n.mu.Unlock()
}

// Crashes returns the exits the harness did not cause.
func (n *Node) Crashes() []Exit {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.crashes)
}

// Starts returns how many times the node was started.
func (n *Node) Starts() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.starts
}

// PID returns the current process id (0 when not running).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether the process is alive (paused counts as alive).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

func (n *Node) runningLocked() bool {
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

// Paused reports whether the process is stopped by Pause.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.runningLocked()
}

// Left reports whether the node left the cluster (MarkLeft).
func (n *Node) Left() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.left
}

// MarkLeft records that the node left the cluster for good: Start refuses
// it from now on.
func (n *Node) MarkLeft() {
	n.mu.Lock()
	n.left = true
	n.mu.Unlock()
}

// Kill sends SIGKILL (after SIGCONT, should the process be paused) and
// waits for the process to exit. A node that is not running is left as
// it is.
func (n *Node) Kill() {
	n.mu.Lock()
	cmd, exited, running := n.cmd, n.exited, n.runningLocked()
	n.paused = false
	n.expectExit = true
	n.mu.Unlock()
	if !running {
		return
	}
	signalKill(cmd.Process)
	<-exited
}

// Terminate sends SIGTERM (graceful shutdown, the node stays a member) and
// waits up to timeout for the exit; then it kills the process. It returns
// the exit code (-1 when a signal ended it).
func (n *Node) Terminate(timeout time.Duration) (int, error) {
	n.mu.Lock()
	cmd, exited, running, paused := n.cmd, n.exited, n.runningLocked(), n.paused
	n.paused = false
	n.expectExit = true
	n.mu.Unlock()
	if !running {
		return 0, fmt.Errorf("terminate %s: not running", n.ID)
	}
	if paused {
		signalCont(cmd.Process)
	}
	signalTerm(cmd.Process)
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		signalKill(cmd.Process)
		<-exited
		return -1, fmt.Errorf("terminate %s: no exit within %v after SIGTERM; killed", n.ID, timeout)
	}
}

// WaitExit waits up to timeout for the process to exit by itself and
// returns its exit code.
func (n *Node) WaitExit(timeout time.Duration) (int, error) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if exited == nil {
		return 0, fmt.Errorf("%s was never started", n.ID)
	}
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return 0, fmt.Errorf("%s did not exit within %v", n.ID, timeout)
	}
}

// Pause stops the process with SIGSTOP (a GC-like pause: sockets stay
// open, nothing is answered).
func (n *Node) Pause() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return fmt.Errorf("pause %s: not running", n.ID)
	}
	if err := signalStop(n.cmd.Process); err != nil {
		return fmt.Errorf("pause %s: %w", n.ID, err)
	}
	n.paused = true
	return nil
}

// Resume continues a paused process with SIGCONT.
func (n *Node) Resume() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		n.paused = false
		return fmt.Errorf("resume %s: not running", n.ID)
	}
	n.paused = false
	return signalCont(n.cmd.Process)
}

// Status asks the node for GET /cluster/status.
func (n *Node) Status(ctx context.Context) (*api.Status, error) {
	var st api.Status
	body, code, err := httpDo(ctx, http.MethodGet, n.QueueURL+"/cluster/status")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.ID, err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: /cluster/status: %d %s", n.ID, code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("%s: /cluster/status: %v", n.ID, err)
	}
	return &st, nil
}

// Ready reports whether /readyz answers 200.
func (n *Node) Ready(ctx context.Context) error {
	body, code, err := httpDo(ctx, http.MethodGet, n.QueueURL+"/readyz")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s: /readyz: %d %s", n.ID, code, strings.TrimSpace(body))
	}
	return nil
}

// WaitReady waits until /readyz answers 200. It fails at once if the
// process exits.
func (n *Node) WaitReady(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, n.ID+" ready", func(ctx context.Context) error {
		if !n.Running() {
			return permanent(fmt.Errorf("%s is not running (exited during start-up? see %s)", n.ID, n.LogPath))
		}
		return n.Ready(ctx)
	})
}

// Leave sends POST /cluster/leave: the node leaves the cluster for good and
// then exits by itself (see WaitExit). It does not mark the node left; the
// caller does, once the leave is answered 200.
func (n *Node) Leave(ctx context.Context) error {
	body, code, err := httpDo(ctx, http.MethodPost, n.QueueURL+"/cluster/leave")
	if err != nil {
		return fmt.Errorf("leave %s: %w", n.ID, err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("leave %s: %d %s", n.ID, code, strings.TrimSpace(body))
	}
	return nil
}

// LogTail returns the last max bytes of the node's log.
func (n *Node) LogTail(max int) string {
	b, _ := os.ReadFile(n.LogPath)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// adminClient talks to the nodes directly (never through a proxy from the
// environment), for status, readiness, leave and the checker's reads.
var adminClient = &http.Client{Transport: client.NewTransport()}

// httpDo sends one request bounded by ctx (and 5 s when ctx has no
// deadline) and returns the body, bounded, and the status.
func httpDo(ctx context.Context, method, url string) (string, int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return "", 0, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", 0, err
	}
	return string(b), resp.StatusCode, nil
}

// permanentError stops poll at once.
type permanentError struct{ error }

func permanent(err error) error { return permanentError{err} }

// poll calls check every 100 ms until it returns nil, a permanent error,
// timeout passes or ctx ends; the error then says what was still wrong.
// Each check gets a context bounded to 5 s.
func poll(ctx context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := check(cctx)
		cancel()
		if err == nil {
			return nil
		}
		var p permanentError
		if errors.As(err, &p) {
			return p.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %w", timeout, what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
