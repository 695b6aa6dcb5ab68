package devcluster

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// Defaults for Config.
const (
	DefaultNodes    = 3
	DefaultBaseDir  = "./devcluster-data"
	DefaultBasePort = 9000
	// DefaultStopTimeout is longer than serve's own --shutdown-timeout
	// (30 s), so a node that is slow to stop still gets to finish cleanly.
	DefaultStopTimeout = 45 * time.Second
	// DefaultReadyNotice is how often Run names the nodes it is still
	// waiting for.
	DefaultReadyNotice = 15 * time.Second
	// DefaultRestartDelay is how long a node that died stays down before
	// Run starts it again: long enough to watch the others elect a leader
	// without it (about a second).
	DefaultRestartDelay = 3 * time.Second

	// MaxNodes bounds Config.Nodes: enough for any experiment on one
	// machine, and a typo such as --nodes=300 fails instead of starting
	// hundreds of processes.
	MaxNodes = 99
	// PortStride is the distance between the port blocks of two nodes.
	PortStride = 10
)

// Offsets of a node's ports inside its block of PortStride ports.
const (
	pubsubOffset = 0
	queueOffset  = 1
	raftOffset   = 2
	gossipOffset = 3
)

// host is where every node binds and advertises: the cluster is local.
const host = "127.0.0.1"

// Config describes a development cluster. Start from DefaultConfig.
type Config struct {
	// Nodes is the number of nodes, 1 to MaxNodes.
	Nodes int
	// BaseDir holds one data directory per node, BaseDir/node<i>. A second
	// run on the same BaseDir reuses the data: the nodes restart with their
	// raft state and rejoin.
	BaseDir string
	// BasePort is the first port of the plan (see Node).
	BasePort int
	// Binary is the quorumq executable started as `Binary serve ...`; ""
	// is the running executable (os.Executable).
	Binary string
	// ServeArgs are appended to every node's serve command line after the
	// flags devcluster generates, so they can override them (the last
	// occurrence of a flag wins).
	ServeArgs []string
	// StopTimeout is how long Run waits for the nodes after SIGTERM before
	// it sends SIGKILL; it must be positive.
	StopTimeout time.Duration
	// ReadyNotice is how often Run reports the nodes that are not ready
	// yet; it must be positive.
	ReadyNotice time.Duration
	// Restart: a node that exits with a failure (killed, crashed) is
	// started again on its data after RestartDelay, doubled for each
	// failure in a row soon after a start; false leaves it down.
	Restart bool
	// RestartDelay is the first back-off before a restart; it must be
	// positive.
	RestartDelay time.Duration
	// Secure runs the cluster secured: a cluster CA, a certificate per
	// node, a gossip key and an admin token in BaseDir/certs (made on the
	// first secured run, reused after), HTTPS on every port.
	Secure bool
}

// DefaultConfig returns the defaults: DefaultNodes nodes from
// DefaultBasePort in DefaultBaseDir, run with this executable, stopped
// within DefaultStopTimeout, naming slow nodes every DefaultReadyNotice.
func DefaultConfig() Config {
	return Config{
		Nodes:        DefaultNodes,
		BaseDir:      DefaultBaseDir,
		BasePort:     DefaultBasePort,
		StopTimeout:  DefaultStopTimeout,
		ReadyNotice:  DefaultReadyNotice,
		Restart:      true,
		RestartDelay: DefaultRestartDelay,
	}
}

// RegisterFlags defines the devcluster flags on fs, writing into c, whose
// values are the flags' defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Nodes, "nodes", c.Nodes, fmt.Sprintf("number of nodes (1 to %d)", MaxNodes))
	fs.StringVar(&c.BaseDir, "base-dir", c.BaseDir, "parent of the nodes' data directories (DIR/node<i>)")
	fs.IntVar(&c.BasePort, "base-port", c.BasePort, "first port; node i uses base-port+10(i-1) to +3")
	fs.StringVar(&c.Binary, "binary", c.Binary, "quorumq binary to run the nodes with (default: this one)")
	fs.DurationVar(&c.StopTimeout, "stop-timeout", c.StopTimeout, "how long to wait for the nodes after SIGTERM before SIGKILL")
	fs.BoolVar(&c.Restart, "restart", c.Restart, "start a node that dies (kill -9, a crash) again on its data after --restart-delay; false leaves it down")
	fs.DurationVar(&c.RestartDelay, "restart-delay", c.RestartDelay, "how long a node that died stays down before it is restarted (doubled while it keeps failing)")
	fs.BoolVar(&c.Secure, "secure", c.Secure, "run secured: TLS, mutual TLS between nodes, a gossip key and an admin token, all made in BASE-DIR/certs")
}

// ErrInvalid marks a Config that Validate refuses.
var ErrInvalid = errors.New("invalid devcluster configuration")

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if c.Nodes < 1 || c.Nodes > MaxNodes {
		return bad("nodes=%d: want 1 to %d", c.Nodes, MaxNodes)
	}
	if last := c.BasePort + PortStride*(c.Nodes-1) + gossipOffset; c.BasePort < 1 || last > 65535 {
		return bad("base-port=%d: %d nodes need ports %d to %d", c.BasePort, c.Nodes, c.BasePort, last)
	}
	switch {
	case c.BaseDir == "":
		return bad("base-dir is empty")
	case c.StopTimeout <= 0:
		return bad("stop-timeout=%v: must be positive", c.StopTimeout)
	case c.RestartDelay <= 0:
		return bad("restart-delay=%v: must be positive", c.RestartDelay)
	case c.ReadyNotice <= 0:
		return bad("ready notice %v: must be positive", c.ReadyNotice)
	}
	return nil
}

// CertsDir is where a secured cluster keeps its CA, certificates, gossip
// key and tokens.
func (c Config) CertsDir() string { return filepath.Join(c.BaseDir, "certs") }

// resolved validates c and names the binary when c leaves it to this
// executable.
func (c Config) resolved() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("find the quorumq binary: %w", err)
		}
		c.Binary = exe
	}
	return c, nil
}

// Node is one planned node. Node i (1-based) owns the ports
// BasePort+PortStride*(i-1) onwards:
//
//	+0 pubsub   +1 queue   +2 raft   +3 gossip (TCP and UDP)
//
// so with the defaults node1 is 9000-9003, node2 9010-9013, node3
// 9020-9023, and node2's queue API is http://127.0.0.1:9011. Every address
// is on 127.0.0.1. The id is node<i> and the data directory
// BaseDir/node<i>.
type Node struct {
	Index      int
	ID         string
	DataDir    string
	PubsubAddr string
	QueueAddr  string
	RaftAddr   string
	GossipAddr string
	// Secure: the node serves HTTPS (Config.Secure).
	Secure bool
}

// PIDFile holds the node's process id while it runs (BaseDir/node<i>.pid),
// for `kill -9 $(cat devcluster-data/node2.pid)`.
func (n Node) PIDFile() string { return n.DataDir + ".pid" }

// QueueURL is the base URL of the node's queue API.
func (n Node) QueueURL() string { return n.scheme() + n.QueueAddr }

// PubsubURL is the base URL of the node's pubsub API.
func (n Node) PubsubURL() string { return n.scheme() + n.PubsubAddr }

func (n Node) scheme() string {
	if n.Secure {
		return "https://"
	}
	return "http://"
}

// Plan returns the nodes cfg describes.
func Plan(cfg Config) ([]Node, error) {
	cfg, err := cfg.resolved()
	if err != nil {
		return nil, err
	}
	return cfg.plan(), nil
}

func (c Config) plan() []Node {
	nodes := make([]Node, c.Nodes)
	for i := range nodes {
		base := c.BasePort + PortStride*i
		addr := func(off int) string { return net.JoinHostPort(host, strconv.Itoa(base+off)) }
		id := fmt.Sprintf("node%d", i+1)
		nodes[i] = Node{
			Secure:     c.Secure,
			Index:      i + 1,
			ID:         id,
			DataDir:    filepath.Join(c.BaseDir, id),
			PubsubAddr: addr(pubsubOffset),
			QueueAddr:  addr(queueOffset),
			RaftAddr:   addr(raftOffset),
			GossipAddr: addr(gossipOffset),
		}
	}
	return nodes
}

// nodeConfig is how node n of plan runs: binary serve with its id,
// directory and ports, then extra. Every node gets the same
// --bootstrap-expect and the same --join list (all gossip addresses, its
// own included), so the command lines differ only in the node's own id,
// directory and ports; the cluster's bootstrap rule makes the same command
// line work for the first start and for every restart.
func nodeConfig(binary string, plan []Node, n Node, extra []string, sec *testkit.Security) testkit.NodeConfig {
	join := make([]string, len(plan))
	for i, p := range plan {
		join[i] = p.GossipAddr
	}
	return testkit.NodeConfig{
		ID: n.ID, Binary: binary, DataDir: n.DataDir,
		PubsubAddr: n.PubsubAddr, QueueAddr: n.QueueAddr, RaftAddr: n.RaftAddr, GossipAddr: n.GossipAddr,
		Expect: len(plan), Join: join, ServeArgs: extra, Security: sec,
	}
}

// checkPorts fails when one of the plan's ports is taken, so a second
// devcluster on the same ports stops with a clear message instead of N
// nodes that each fail on their own.
func checkPorts(plan []Node) error {
	for _, n := range plan {
		for _, p := range []struct{ name, addr string }{
			{"pubsub", n.PubsubAddr}, {"queue", n.QueueAddr}, {"raft", n.RaftAddr}, {"gossip", n.GossipAddr},
		} {
			ln, err := net.Listen("tcp", p.addr)
			if err != nil {
				return fmt.Errorf("%s %s port %s is taken (another devcluster? choose another --base-port): %w", n.ID, p.name, p.addr, err)
			}
			ln.Close()
		}
		pc, err := net.ListenPacket("udp", n.GossipAddr)
		if err != nil {
			return fmt.Errorf("%s gossip UDP port %s is taken (choose another --base-port): %w", n.ID, n.GossipAddr, err)
		}
		pc.Close()
	}
	return nil
}
