package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster"
)

// NodeConfig describes a Node. Empty optional fields leave their flag out,
// so serve's own default applies.
type NodeConfig struct {
	// ID is the --node-id (optional: serve then uses the hostname).
	ID string
	// Binary is the quorumq executable (required).
	Binary string
	// DataDir is the --data-dir (required).
	DataDir string
	// Listen addresses, host:port (required but DebugAddr).
	PubsubAddr, QueueAddr, RaftAddr, GossipAddr string
	// DebugAddr is the --debug-addr, where serve's profiler answers
	// (optional).
	DebugAddr string
	// Expect is the --bootstrap-expect (optional).
	Expect int
	// Join lists the --join gossip addresses (optional).
	Join []string
	// ServeArgs come after the generated flags, so they override them
	// (the last occurrence of a flag wins).
	ServeArgs []string
	// Security, when set, secures the node: its certificate (issued for
	// ID, which is then required), the gossip key and the tokens file
	// are on its command line, its URLs are https://, and the node's own
	// calls (Status, Ready, Leave, Call) trust the CA and send the admin
	// token.
	Security *Security

	// Slot is the node's network-namespace slot (see netns.Net), 0 on
	// loopback; Prefix runs the binary through another command there
	// (netns.Net.Exec).
	Slot   int
	Prefix []string

	// Output, lifetime and exits, as for ProcessConfig: LogPath, else
	// Stdout and Stderr.
	LogPath        string
	Stdout, Stderr io.Writer
	Lifetime       Lifetime
	WaitDelay      time.Duration
	Logf           Logf
	OnExit         func(err error)
}

// Args returns the command line after the binary: serve, then --node-id,
// --data-dir, the addresses, --bootstrap-expect and --join (each when
// set), then ServeArgs.
func (c NodeConfig) Args() []string {
	args := []string{"serve"}
	if c.ID != "" {
		args = append(args, "--node-id="+c.ID)
	}
	args = append(args,
		"--data-dir="+c.DataDir,
		"--pubsub-addr="+c.PubsubAddr,
		"--queue-addr="+c.QueueAddr,
		"--raft-addr="+c.RaftAddr,
		"--gossip-addr="+c.GossipAddr,
	)
	if c.DebugAddr != "" {
		args = append(args, "--debug-addr="+c.DebugAddr)
	}
	if c.Expect > 0 {
		args = append(args, "--bootstrap-expect="+strconv.Itoa(c.Expect))
	}
	if len(c.Join) > 0 {
		args = append(args, "--join="+strings.Join(c.Join, ","))
	}
	if c.Security != nil {
		args = append(args, c.Security.serveArgs(c.ID)...)
	}
	return append(args, c.ServeArgs...)
}

func (c NodeConfig) scheme() string {
	if c.Security != nil {
		return "https://"
	}
	return "http://"
}

func (c NodeConfig) argv() []string {
	return append(append(slices.Clone(c.Prefix), c.Binary), c.Args()...)
}

// Node is one `quorumq serve` process: its id, data directory and
// addresses stay the same across starts, so a restart is the same member
// coming back on its data. Its Process methods start and stop it.
//
// All methods are safe for concurrent use.
type Node struct {
	*Process

	// ID is the --node-id ("" when serve chose it).
	ID string
	// Slot is the network-namespace slot, 0 on loopback.
	Slot int
	// DataDir is the --data-dir; LogPath receives the output ("" when it
	// goes to writers).
	DataDir, LogPath string
	// Listen addresses (host:port); DebugAddr "" without a profiler.
	PubsubAddr, QueueAddr, RaftAddr, GossipAddr, DebugAddr string
	// QueueURL and PubsubURL are the ports' base URLs, http://host:port
	// (https:// when secured).
	QueueURL, PubsubURL string

	mu   sync.Mutex
	cfg  NodeConfig
	left bool
}

// NewNode prepares a node; it does not start it.
func NewNode(cfg NodeConfig) *Node {
	cfg.Join, cfg.ServeArgs, cfg.Prefix = slices.Clone(cfg.Join), slices.Clone(cfg.ServeArgs), slices.Clone(cfg.Prefix)
	name := cfg.ID
	if name == "" {
		name = "node"
	}
	return &Node{
		Process: NewProcess(ProcessConfig{
			Name: name, Argv: cfg.argv(), LogPath: cfg.LogPath, Stdout: cfg.Stdout, Stderr: cfg.Stderr,
			Lifetime: cfg.Lifetime, WaitDelay: cfg.WaitDelay, Logf: cfg.Logf, OnExit: cfg.OnExit,
		}),
		ID: cfg.ID, Slot: cfg.Slot, DataDir: cfg.DataDir, LogPath: cfg.LogPath,
		PubsubAddr: cfg.PubsubAddr, QueueAddr: cfg.QueueAddr, RaftAddr: cfg.RaftAddr, GossipAddr: cfg.GossipAddr, DebugAddr: cfg.DebugAddr,
		QueueURL: cfg.scheme() + cfg.QueueAddr, PubsubURL: cfg.scheme() + cfg.PubsubAddr,
		cfg: cfg,
	}
}

// SetJoin changes --join and --bootstrap-expect for the next start.
func (n *Node) SetJoin(join []string, expect int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.Join, n.cfg.Expect = slices.Clone(join), expect
	n.Process.SetArgv(n.cfg.argv())
}

// Start launches the process and returns at once (see WaitReady). It
// fails if it is already running or the node has left the cluster: a
// left data directory must not come back.
func (n *Node) Start() error {
	if n.Left() {
		return fmt.Errorf("start %s: the node left the cluster; a left data directory must not come back", n.Name())
	}
	return n.Process.Start()
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

// DirLeft reports whether the node's data directory says it left the
// cluster (the node marks it during a leave, before it shuts down), even
// when the answer to the leave never came.
func (n *Node) DirLeft() bool {
	return errors.Is(cluster.CheckNotLeft(n.DataDir), cluster.ErrLeft)
}

// Call is the package's Call, as this node's own client: on a secured
// node it trusts the cluster CA and sends the admin token.
func (n *Node) Call(ctx context.Context, method, url string) (body string, code int, err error) {
	if sec := n.cfg.Security; sec != nil {
		return call(ctx, sec.client, sec.Token, method, url)
	}
	return Call(ctx, method, url)
}

// Status asks the node for GET /cluster/status.
func (n *Node) Status(ctx context.Context) (*api.Status, error) {
	body, code, err := n.Call(ctx, http.MethodGet, n.QueueURL+"/cluster/status")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.Name(), err)
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s: /cluster/status: %d %s", n.Name(), code, strings.TrimSpace(body))
	}
	var st api.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, fmt.Errorf("%s: /cluster/status: %v in %q", n.Name(), err, body)
	}
	return &st, nil
}

// Ready returns nil once GET /readyz answers 200; otherwise an error with
// the answer and what the node says about itself.
func (n *Node) Ready(ctx context.Context) error {
	body, code, err := n.Call(ctx, http.MethodGet, n.QueueURL+"/readyz")
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name(), err)
	}
	if code == http.StatusOK {
		return nil
	}
	st, err := n.Status(ctx)
	if err != nil {
		return fmt.Errorf("%s: /readyz: %d %s; %v", n.Name(), code, strings.TrimSpace(body), err)
	}
	return fmt.Errorf("%s: /readyz: %d %s; state %s, leader %q, term %d, commit %d, applied %d, voters %v",
		n.Name(), code, strings.TrimSpace(body), st.State, st.LeaderID, st.Term, st.CommitIndex, st.AppliedIndex, Voters(st))
}

// WaitReady waits up to timeout until /readyz answers 200. It fails at
// once if the process is not running.
func (n *Node) WaitReady(ctx context.Context, timeout time.Duration) error {
	return Poll(ctx, timeout, n.Name()+" ready", func(ctx context.Context) error {
		if !n.Running() {
			return Permanent(fmt.Errorf("%s is not running (exited during start-up? see %s)", n.Name(), n.LogPath))
		}
		return n.Ready(ctx)
	})
}

// Leave sends POST /cluster/leave: the node leaves the cluster for good
// and then exits by itself (see WaitExit), which is therefore not recorded
// as a crash. On a 200 the node is marked left.
func (n *Node) Leave(ctx context.Context) error {
	n.ExpectExit()
	body, code, err := n.Call(ctx, http.MethodPost, n.QueueURL+"/cluster/leave")
	if err != nil {
		return fmt.Errorf("leave %s: %w", n.Name(), err)
	}
	if code != http.StatusOK {
		return fmt.Errorf("leave %s: %d %s", n.Name(), code, strings.TrimSpace(body))
	}
	n.MarkLeft()
	return nil
}

// Voters returns the ids of the voters in st, in the order listed.
func Voters(st *api.Status) []string {
	var ids []string
	for _, m := range st.Members {
		if m.Voter {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// Member returns the member id of st.
func Member(st *api.Status, id string) (api.Member, bool) {
	for _, m := range st.Members {
		if m.ID == id {
			return m, true
		}
	}
	return api.Member{}, false
}
