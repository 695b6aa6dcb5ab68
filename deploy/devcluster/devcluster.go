// Package devcluster runs a quorumq cluster on one machine for development:
// N `quorumq serve` child processes on loopback with predictable ports
// (see Node), their output interleaved line by line with a "[node<i>] "
// prefix, a report once every node is ready and which one leads, and an
// orderly stop. It is what `quorumq devcluster` runs.
//
// A node that dies (kill -9, a crash) is reported and, after a back-off
// (Config.RestartDelay), started again on its data, so it rejoins as a
// restarted server would; with Config.Restart false it is left down, and
// the others keep running. A node that exits cleanly (after POST
// /cluster/leave) stays down. Run it again on the same base directory and
// the nodes restart on their data and rejoin.
package devcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/testkit"
)

const (
	// pollInterval is how often Run asks the nodes whether they are ready.
	pollInterval = 250 * time.Millisecond
	// leaderWait bounds how long Run waits, once every node is ready, for
	// them to name the same leader before it reports what each one says.
	leaderWait = 10 * time.Second
	// requestTimeout bounds each readiness and status request.
	requestTimeout = 2 * time.Second
	// waitDelay bounds the wait for a child's output after it exits (a
	// grandchild could hold the pipe open).
	waitDelay = 2 * time.Second
	// healthyRun is how long a node must have run for its exit not to
	// count as one more failure in a row: a node that fails sooner is
	// restarted after twice the previous delay (at most maxRestartDelay),
	// and after maxQuickFailures of those it is left down.
	healthyRun       = 30 * time.Second
	maxRestartDelay  = time.Minute
	maxQuickFailures = 5
)

// Run starts the cluster cfg describes and runs it until ctx ends, then
// sends every node SIGTERM and waits for them (SIGKILL after
// cfg.StopTimeout). Node output goes to stdout and stderr, each line
// prefixed with "[node<i>] "; Run's own messages go to stdout, prefixed
// with "devcluster: ".
//
// A node that exits with a failure is restarted after cfg.RestartDelay
// (doubling while it keeps failing soon after starting) when cfg.Restart.
//
// Run returns an error if the cluster cannot start (bad config, a port
// taken, the binary missing), when every node has exited on its own, or
// when a node's last run ended in a failure; nil after a clean stop.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	cfg, err := cfg.resolved()
	if err != nil {
		return err
	}
	plan := cfg.plan()
	if err := checkPorts(plan); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.BaseDir, 0o755); err != nil {
		return fmt.Errorf("base dir: %w", err)
	}
	out, errOut := &output{w: stdout}, &output{w: stderr}
	var sec *testkit.Security
	if cfg.Secure {
		if sec, err = secure(cfg, plan); err != nil {
			return err
		}
	}
	printPlan(out, cfg, plan)

	// exits holds at most one exit per node: a node is started again only
	// after its exit was taken from it.
	exits := make(chan *child, len(plan))
	start := func(n Node) (*child, error) {
		return startChild(nodeConfig(cfg.Binary, plan, n, cfg.ServeArgs, sec), n, out, errOut, exits)
	}
	children := make([]*child, 0, len(plan))
	for _, n := range plan {
		c, err := start(n)
		if err != nil {
			stopAll(children, cfg.StopTimeout, out)
			return err // it names the node
		}
		children = append(children, c)
	}
	out.printf("devcluster: pids %s", pids(children))

	// bg runs the restart back-offs and the readiness reports of restarted
	// nodes; they end with runCtx.
	runCtx, cancelRun := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer bg.Wait()
	defer cancelRun()
	bg.Add(1)
	go func() {
		defer bg.Done()
		awaitReady(runCtx, cfg, slices.Clone(children), out)
	}()

	restarts := make(chan Node, len(plan))
	quick := make([]int, len(plan)) // failures in a row soon after a start, per node
	for alive := len(children); alive > 0; {
		select {
		case <-ctx.Done():
			cancelRun()
			return stopAll(children, cfg.StopTimeout, out)
		case c := <-exits:
			if c.err != nil && cfg.Restart {
				i := c.node.Index - 1
				if time.Since(c.started) < healthyRun {
					quick[i]++
				} else {
					quick[i] = 0
				}
				if quick[i] <= maxQuickFailures {
					delay := restartDelay(cfg.RestartDelay, quick[i])
					out.printf("devcluster: %s exited unexpectedly (%s); restarting it on its data in %v (--restart=false leaves it down)", c.node.ID, exitText(c.err), delay)
					bg.Add(1)
					go func() {
						defer bg.Done()
						t := time.NewTimer(delay)
						defer t.Stop()
						select {
						case <-runCtx.Done():
						case <-t.C:
							restarts <- c.node // one per node at most: never blocks
						}
					}()
					continue
				}
				out.printf("devcluster: %s failed %d times in a row within %v of starting; leaving it down", c.node.ID, quick[i], healthyRun)
			}
			alive--
			how := "exited unexpectedly"
			if c.err == nil {
				how = "exited" // after POST /cluster/leave, say
			}
			out.printf("devcluster: %s %s (%s); %d of %d nodes still running", c.node.ID, how, exitText(c.err), alive, len(children))
		case n := <-restarts:
			c, err := start(n)
			if err != nil {
				alive--
				out.printf("devcluster: %s could not be restarted (%v); %d of %d nodes still running", n.ID, err, alive, len(children))
				continue
			}
			children[n.Index-1] = c
			out.printf("devcluster: %s restarted (pid %d)", n.ID, c.proc.PID())
			bg.Add(1)
			go func() {
				defer bg.Done()
				awaitRestarted(runCtx, c, out)
			}()
		}
	}
	if f := failures(children); f != "" {
		return fmt.Errorf("every node has exited (%s)", f)
	}
	return errors.New("every node has exited")
}

// secure makes or reuses the cluster's security material and every
// node's certificate (for 127.0.0.1 and localhost).
func secure(cfg Config, plan []Node) (*testkit.Security, error) {
	sec, err := testkit.OpenSecurity(cfg.CertsDir())
	if err != nil {
		return nil, fmt.Errorf("secure: %w", err)
	}
	for _, n := range plan {
		if _, err := sec.NodeFiles(n.ID, host); err != nil {
			return nil, fmt.Errorf("secure: %s: %w", n.ID, err)
		}
	}
	return sec, nil
}

func printPlan(out *output, cfg Config, plan []Node) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "devcluster: starting %s (%s serve), data in %s\n", count(len(plan), "node"), cfg.Binary, cfg.BaseDir)
	if cfg.Secure {
		dir := cfg.CertsDir()
		fmt.Fprintf(&b, "devcluster: secured: TLS with the CA %s/ca.pem, gossip key and admin token in %s; try\n", dir, dir)
		fmt.Fprintf(&b, "devcluster:   curl --cacert %s/ca.pem -H \"Authorization: Bearer $(awk '$1 == \"admin\" {print $3}' %s/tokens)\" %s/put?data=hello\n", dir, dir, plan[0].QueueURL())
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tQUEUE\tPUBSUB\tRAFT\tGOSSIP\tDATA")
	for _, n := range plan {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.QueueURL(), n.PubsubURL(), n.RaftAddr, n.GossipAddr, n.DataDir)
	}
	tw.Flush()
	out.write(b.Bytes())
}

// restartDelay is the back-off before restarting a node that has failed
// quick times in a row soon after starting (0: it had run a while).
func restartDelay(base time.Duration, quick int) time.Duration {
	d := base
	for ; quick > 1 && d < maxRestartDelay; quick-- {
		d *= 2
	}
	return min(d, maxRestartDelay)
}

// awaitRestarted reports when a restarted node is ready again, or nothing
// if it exits first or ctx ends.
func awaitRestarted(ctx context.Context, c *child, out *output) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.done:
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		err := c.proc.Ready(rctx)
		cancel()
		if err == nil {
			out.printf("devcluster: %s is ready again after %v", c.node.ID, time.Since(c.started).Round(100*time.Millisecond))
			return
		}
	}
}

func pids(cs []*child) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = fmt.Sprintf("%s=%d", c.node.ID, c.proc.PID())
	}
	return strings.Join(s, " ")
}

// child is one run of a node's `quorumq serve`.
type child struct {
	node    Node
	proc    *testkit.Node
	started time.Time
	done    chan struct{} // closed once the process has exited and its output is flushed
	err     error         // the exit error; read only after done is closed
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startChild starts node n as cfg says, its output prefixed with
// "[<id>] ". Each node gets a process group of its own, so a Ctrl-C in the
// terminal reaches devcluster alone and it stops the nodes itself; on
// Linux the kernel sends a node SIGTERM should devcluster die without
// stopping it (kill -9), so no node outlives it holding the ports.
func startChild(cfg testkit.NodeConfig, n Node, out, errOut *output, exits chan<- *child) (*child, error) {
	prefix := "[" + n.ID + "] "
	stdout, stderr := &prefixWriter{out: out, prefix: prefix}, &prefixWriter{out: errOut, prefix: prefix}
	c := &child{node: n, started: time.Now(), done: make(chan struct{})}
	cfg.Stdout, cfg.Stderr = stdout, stderr
	cfg.Lifetime = testkit.OwnGroupTermWithParent
	cfg.WaitDelay = waitDelay
	cfg.OnExit = func(err error) {
		os.Remove(n.PIDFile()) // no stale pid for a kill to hit
		stdout.flush()
		stderr.flush()
		c.err = err
		close(c.done)
		exits <- c // buffered for every child: never blocks
	}
	c.proc = testkit.NewNode(cfg)
	if err := c.proc.Start(); err != nil {
		return nil, err
	}
	// Best effort: the pid is also printed, and the node runs without it.
	os.WriteFile(n.PIDFile(), []byte(strconv.Itoa(c.proc.PID())+"\n"), 0o644)
	return c, nil
}

// stopAll sends SIGTERM to every running child, waits up to timeout, then
// SIGKILLs the rest. It returns the failures of every child, including the
// ones that had already exited.
func stopAll(children []*child, timeout time.Duration, out *output) error {
	var running []*child
	for _, c := range children {
		if !c.exited() {
			running = append(running, c)
		}
	}
	if len(running) > 0 {
		out.printf("devcluster: stopping %s (SIGTERM; SIGKILL after %v)", count(len(running), "node"), timeout)
		for _, c := range running {
			c.proc.Stop() // an error means it has just exited
		}
		deadline := time.NewTimer(timeout)
		defer deadline.Stop()
		for _, c := range running {
			select {
			case <-c.done:
			case <-deadline.C:
				for _, k := range running {
					if !k.exited() {
						out.printf("devcluster: %s did not stop within %v; sending SIGKILL", k.node.ID, timeout)
						k.proc.Kill()
					}
				}
				<-c.done
			}
		}
		for _, c := range running {
			<-c.done
		}
	}
	if f := failures(children); f != "" {
		return errors.New(f)
	}
	out.printf("devcluster: all nodes stopped")
	return nil
}

// failures lists the children that exited with a failure, on one line.
func failures(children []*child) string {
	var s []string
	for _, c := range children {
		if c.exited() && c.err != nil {
			s = append(s, c.node.ID+": "+exitText(c.err))
		}
	}
	return strings.Join(s, "; ")
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// awaitReady polls every running node's /readyz until all are ready, then
// reports which node leads. It names the nodes it still waits for every
// cfg.ReadyNotice and gives up quietly when ctx ends.
func awaitReady(ctx context.Context, cfg Config, children []*child, out *output) {
	start := time.Now()
	nextNotice := start.Add(cfg.ReadyNotice)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	pending := append([]*child(nil), children...)
	for {
		var still []*child
		for _, c := range pending {
			if c.exited() {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, requestTimeout)
			if c.proc.Ready(rctx) != nil {
				still = append(still, c)
			}
			cancel()
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if time.Now().After(nextNotice) {
			out.printf("devcluster: still waiting for %s to be ready (%v)", names(pending), time.Since(start).Round(time.Second))
			nextNotice = time.Now().Add(cfg.ReadyNotice)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}

	var ready []*child
	for _, c := range children {
		if !c.exited() {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 {
		return
	}
	what := "all " + count(len(children), "node") + " ready"
	if len(ready) < len(children) {
		what = fmt.Sprintf("%d of %d nodes ready", len(ready), len(children))
	}
	what += fmt.Sprintf(" after %v", time.Since(start).Round(100*time.Millisecond))

	leaderDeadline := time.Now().Add(leaderWait)
	for {
		leader, views := agreedLeader(ctx, ready)
		if leader != "" {
			queue := leaderURL(leader, children, views)
			out.printf("devcluster: %s; %s leads (queue %s)", what, leader, queue)
			out.printf("devcluster: try: curl -d hello %s/put ; curl %s/get", ready[0].node.QueueURL(), ready[len(ready)-1].node.QueueURL())
			return
		}
		if time.Now().After(leaderDeadline) {
			out.printf("devcluster: %s; no agreed leader yet (%s)", what, strings.Join(viewText(views), ", "))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// agreedLeader returns the leader id every node in cs names, or "" with
// what each said.
func agreedLeader(ctx context.Context, cs []*child) (string, map[string]*api.Status) {
	views := map[string]*api.Status{}
	leader := ""
	agreed := true
	for _, c := range cs {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		st, err := c.proc.Status(rctx)
		cancel()
		if err != nil {
			agreed = false
			continue
		}
		views[c.node.ID] = st
		if st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
			agreed = false
		}
		if leader == "" {
			leader = st.LeaderID
		}
	}
	if !agreed {
		return "", views
	}
	return leader, views
}

// leaderURL is the leader's queue URL: from the plan when it is one of
// ours, else from what the nodes report.
func leaderURL(id string, children []*child, views map[string]*api.Status) string {
	for _, c := range children {
		if c.node.ID == id {
			return c.node.QueueURL()
		}
	}
	for _, st := range views {
		for _, m := range st.Members {
			if m.ID == id && m.QueueAddr != "" {
				return "http://" + m.QueueAddr
			}
		}
	}
	return "unknown"
}

func viewText(views map[string]*api.Status) []string {
	var s []string
	for id, st := range views {
		l := st.LeaderID
		if l == "" {
			l = "none"
		}
		s = append(s, fmt.Sprintf("%s says %s", id, l))
	}
	return s
}

// count is "1 node", "3 nodes".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func names(cs []*child) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.node.ID
	}
	return strings.Join(s, ", ")
}

// output writes whole lines to one writer, one at a time.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *output) write(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.w.Write(b) // a dev tool keeps its nodes running even if the terminal goes away
}

func (o *output) printf(format string, args ...any) {
	o.write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

// maxLine is where prefixWriter breaks a line that has no end.
const maxLine = 64 << 10

// prefixWriter passes the lines written to it on to out, each prefixed, one
// whole line at a time, so the output of several nodes interleaves by line.
type prefixWriter struct {
	mu     sync.Mutex
	out    *output
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	rest := p.buf
	for {
		line, after, found := bytes.Cut(rest, []byte{'\n'})
		if !found {
			if len(rest) < maxLine {
				break
			}
			line, after = rest[:maxLine], rest[maxLine:]
		}
		p.emit(line)
		rest = after
	}
	p.buf = append(p.buf[:0], rest...)
	return len(b), nil
}

// flush passes on a last line that had no newline.
func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		p.emit(p.buf)
		p.buf = p.buf[:0]
	}
}

func (p *prefixWriter) emit(line []byte) {
	b := make([]byte, 0, len(p.prefix)+len(line)+1)
	b = append(append(append(b, p.prefix...), line...), '\n')
	p.out.write(b)
}
