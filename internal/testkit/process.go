package testkit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Logf receives the harness's progress lines. Nil discards them.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// Lifetime says how a child process is tied to the process that starts
// it.
type Lifetime int

const (
	// SameGroup leaves the child in the starter's process group: a Ctrl-C
	// on the terminal reaches both, so a test run that is interrupted
	// leaves no node behind. The default.
	SameGroup Lifetime = iota
	// OwnGroup puts the child in a process group of its own, so a Ctrl-C
	// reaches the starter alone, which then stops its children itself.
	//
	// It deliberately asks for no parent-death signal: Linux sends that
	// when the thread that forked the child exits (go.dev/issue/27505),
	// and in long runs nodes were killed in the middle. A harness that
	// uses OwnGroup removes the leftovers of a run that was itself killed
	// -9 some other way (netns.RemoveStale for the chaos suite).
	OwnGroup
	// OwnGroupTermWithParent is OwnGroup, and on Linux the kernel sends the
	// child SIGTERM when the starter dies without stopping it (kill -9),
	// so no child outlives it holding its ports. For long-lived starters
	// whose forking threads live as long as they do (devcluster).
	OwnGroupTermWithParent
)

// ErrNotRunning is returned by the operations that need a live process.
var ErrNotRunning = errors.New("not running")

// ProcessConfig describes a Process.
type ProcessConfig struct {
	// Name identifies the process in errors, log lines and Exit records.
	Name string
	// Argv is the command line, program first; SetArgv changes it for the
	// next start.
	Argv []string
	// LogPath, when set, receives the stdout and stderr of every start,
	// appended, each start preceded by a line
	// "==== start <n> at <time>: <argv>".
	LogPath string
	// Stdout and Stderr receive the output when LogPath is empty (nil
	// discards it).
	Stdout, Stderr io.Writer
	// Lifetime ties the process to this one. Default SameGroup.
	Lifetime Lifetime
	// WaitDelay bounds the wait for the output once the process has
	// exited (a grandchild could hold a pipe open); see exec.Cmd.WaitDelay.
	// Zero waits for the output to end.
	WaitDelay time.Duration
	// Logf receives a line for every exit the caller did not cause.
	Logf Logf
	// OnExit, when set, is called once per start, after the process has
	// exited and its output is copied, with the error of exec.Cmd.Wait
	// (nil for exit status 0). Running reports false by then.
	OnExit func(err error)
}

// Exit is a process exit that the caller did not cause: not by Kill,
// Stop, Terminate, nor announced by ExpectExit.
type Exit struct {
	Name   string    // ProcessConfig.Name
	At     time.Time // when the exit was noticed
	Start  int       // which start of the process ended (from 1)
	Status string    // as os.ProcessState says it, e.g. "exit status 1"
}

// Process is one child process that can be started, stopped and started
// again as often as the caller likes.
//
// All methods are safe for concurrent use.
type Process struct {
	cfg ProcessConfig

	mu         sync.Mutex
	argv       []string
	env        []string
	starts     int
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the current process has exited
	paused     bool
	expectExit bool // the caller ends (or ended) the current process
	crashes    []Exit
}

// NewProcess prepares a process; it does not start it.
func NewProcess(cfg ProcessConfig) *Process {
	return &Process{cfg: cfg, argv: slices.Clone(cfg.Argv)}
}

// Name returns ProcessConfig.Name.
func (p *Process) Name() string { return p.cfg.Name }

// SetEnv sets variables (NAME=value) the next starts get on top of this
// process's environment; nil gives them this process's environment alone.
func (p *Process) SetEnv(env []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.env = slices.Clone(env)
}

// SetArgv changes the command line of the next start.
func (p *Process) SetArgv(argv []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.argv = slices.Clone(argv)
}

// Argv returns the command line of the next start.
func (p *Process) Argv() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.argv)
}

// Start launches the process and returns at once. It fails if the
// process is already running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.runningLocked() {
		return fmt.Errorf("start %s: already running", p.cfg.Name)
	}
	if len(p.argv) == 0 {
		return fmt.Errorf("start %s: no command line", p.cfg.Name)
	}
	stdout, stderr := p.cfg.Stdout, p.cfg.Stderr
	var logFile *os.File
	if p.cfg.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(p.cfg.LogPath), 0o755); err != nil {
			return fmt.Errorf("start %s: %w", p.cfg.Name, err)
		}
		f, err := os.OpenFile(p.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start %s: %w", p.cfg.Name, err)
		}
		fmt.Fprintf(f, "==== start %d at %s: %s\n", p.starts+1, time.Now().Format(time.RFC3339Nano), strings.Join(p.argv, " "))
		logFile, stdout, stderr = f, f, f
	}
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	if p.env != nil {
		cmd.Env = append(os.Environ(), p.env...)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr(p.cfg.Lifetime)
	cmd.WaitDelay = p.cfg.WaitDelay
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return fmt.Errorf("start %s: %w", p.cfg.Name, err)
	}
	p.starts++
	exited := make(chan struct{})
	p.cmd, p.exited, p.paused, p.expectExit = cmd, exited, false, false
	go p.wait(cmd, exited, logFile, p.starts)
	return nil
}

// wait reaps the process of one start; it ends when the process does.
func (p *Process) wait(cmd *exec.Cmd, exited chan struct{}, logFile *os.File, start int) {
	err := cmd.Wait()
	if logFile != nil {
		logFile.Close()
	}
	p.mu.Lock()
	if !p.expectExit {
		p.crashes = append(p.crashes, Exit{Name: p.cfg.Name, At: time.Now(), Start: start, Status: cmd.ProcessState.String()})
		p.cfg.Logf.printf("%s (start %d) exited by itself: %s", p.cfg.Name, start, cmd.ProcessState)
	}
	p.paused = false
	close(exited)
	p.mu.Unlock()
	if p.cfg.OnExit != nil {
		p.cfg.OnExit(err)
	}
}

// ExpectExit tells the harness that the current process is about to end
// by the caller's doing (after POST /cluster/leave, say), so its exit is
// not recorded as a crash.
func (p *Process) ExpectExit() {
	p.mu.Lock()
	p.expectExit = true
	p.mu.Unlock()
}

// Crashes returns the exits the caller did not cause, oldest first.
func (p *Process) Crashes() []Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.crashes)
}

// Starts returns how many times the process was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// PID returns the current process id, 0 when not running.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process is alive (paused counts as alive).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.runningLocked()
}

func (p *Process) runningLocked() bool {
	if p.exited == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Paused reports whether the process is stopped by Pause.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused && p.runningLocked()
}

// Kill sends SIGKILL (after SIGCONT, should the process be paused) and
// waits until the process has exited. A process that is not running is
// left as it is.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited, running := p.cmd, p.exited, p.runningLocked()
	p.expectExit = true
	p.mu.Unlock()
	if !running {
		return
	}
	signalKill(cmd.Process)
	<-exited
}

// Stop sends SIGTERM (after SIGCONT, should the process be paused) and
// returns at once; Exited or WaitExit tell when it has gone.
func (p *Process) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("stop %s: %w", p.cfg.Name, ErrNotRunning)
	}
	p.expectExit = true
	if p.paused {
		signalCont(p.cmd.Process)
		p.paused = false
	}
	return signalTerm(p.cmd.Process)
}

// Terminate sends SIGTERM (a graceful stop) and waits up to timeout for
// the exit; then it kills the process. It returns the exit code (-1 when
// a signal ended the process).
func (p *Process) Terminate(timeout time.Duration) (int, error) {
	if err := p.Stop(); err != nil {
		return 0, err
	}
	code, err := p.WaitExit(timeout)
	if err != nil {
		p.Kill()
		return -1, fmt.Errorf("terminate %s: no exit within %v after SIGTERM; killed", p.cfg.Name, timeout)
	}
	return code, nil
}

// Exited returns a channel that is closed once the current process has
// exited; nil before the first start.
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// WaitExit waits up to timeout for the current process to exit and
// returns its exit code (-1 when a signal ended it).
func (p *Process) WaitExit(timeout time.Duration) (int, error) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if exited == nil {
		return 0, fmt.Errorf("%s was never started", p.cfg.Name)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode(), nil
	case <-t.C:
		return 0, fmt.Errorf("%s did not exit within %v", p.cfg.Name, timeout)
	}
}

// Pause stops the process with SIGSTOP (a GC-like pause: its sockets stay
// open, nothing is answered) and returns once all its threads have stopped.
func (p *Process) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("pause %s: %w", p.cfg.Name, ErrNotRunning)
	}
	if err := signalStop(p.cmd.Process); err != nil {
		return fmt.Errorf("pause %s: %w", p.cfg.Name, err)
	}
	p.paused = true
	if err := awaitStopped(p.cmd.Process.Pid, 5*time.Second); err != nil {
		return fmt.Errorf("pause %s: %w", p.cfg.Name, err)
	}
	return nil
}

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	if !p.runningLocked() {
		return fmt.Errorf("resume %s: %w", p.cfg.Name, ErrNotRunning)
	}
	return signalCont(p.cmd.Process)
}

// Hangup sends SIGHUP (serve reloads certificates, keys, tokens and its
// overflow log).
func (p *Process) Hangup() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.runningLocked() {
		return fmt.Errorf("hangup %s: %w", p.cfg.Name, ErrNotRunning)
	}
	return signalHangup(p.cmd.Process)
}

// LogTail returns the last max bytes of LogPath ("" without one).
func (p *Process) LogTail(max int) string {
	if p.cfg.LogPath == "" {
		return ""
	}
	b, _ := os.ReadFile(p.cfg.LogPath)
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
