// Package node assembles one quorumq node from its parts (the state
// machine, the raft node, the HTTP ports) and runs it until it is stopped.
// It owns the start-up and shutdown order; each part owns its own job.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/peer"
	"github.com/quorumq/quorumq/pubsub"
)

// Config is everything `quorumq serve` takes. The zero value of a field means
// the default documented on it; Defaults fills them in.
type Config struct {
	NodeID          string // default: generated and persisted in DataDir
	DataDir         string // default ./quorumq-data
	QueueAddr       string // default 0.0.0.0:8081
	PubsubAddr      string // default 0.0.0.0:8080
	RaftAddr        string // default 0.0.0.0:8300
	GossipAddr      string // default 0.0.0.0:7946
	Advertise       string // default: bind host, or the first non-loopback address when binding 0.0.0.0
	Join            []string
	BootstrapExpect int           // default 1
	ForwardTimeout  time.Duration // default 5s

	MaxMsgSize     int64 // default 256 KiB
	MaxBodySize    int64 // default 5 MiB
	MaxDepth       int64
	MaxBytes       int64
	OverflowPolicy fsm.OverflowPolicy
	OverflowLog    string
	MaxMGet        int
	MGetSep        string // default "\n"
	MPutSep        string // default "\n"

	// MaxPendingBytes is how much unsent output a pubsub subscriber may
	// have before it is kicked. Default 50 MiB.
	MaxPendingBytes int64
	// FanoutTimeout bounds how long a publish waits for the other nodes'
	// answers, and how long one delivery to another node may take,
	// queueing included, before it counts as failed (--fanout-timeout).
	// Default 1s.
	FanoutTimeout time.Duration
	// FanoutQueue bounds the publishes waiting to be sent to one other
	// node; more count as failed (--fanout-queue). Default 1024.
	FanoutQueue int
	// Routes: every message published on Route.Topic on this node (with
	// /pub) is also enqueued into Route.Queue through raft before the
	// publish is answered (--route=TOPIC:QUEUE, repeatable; parse with
	// pubsub.ParseRoute).
	Routes []pubsub.Route

	// Raft tuning; zero keeps the cluster package's defaults.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotThreshold  uint64
	SnapshotInterval   time.Duration
	TrailingLogs       uint64
	MaxAppendEntries   int
	PendingEntries     int // cluster.Options.MaxPendingApplies

	// DebugAddr, when set, serves Go's profiler (net/http/pprof under
	// /debug/pprof/) on its own listener (--debug-addr). It is off by
	// default: bind it to loopback, it exposes internals.
	DebugAddr string

	Logger *slog.Logger

	// wrapPubsub, in tests, wraps the pubsub port's handler.
	wrapPubsub func(http.Handler) http.Handler
}

// Defaults fills unset fields with their documented defaults.
func (c *Config) Defaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.DataDir, "./quorumq-data")
	def(&c.QueueAddr, "0.0.0.0:8081")
	def(&c.PubsubAddr, "0.0.0.0:8080")
	def(&c.RaftAddr, "0.0.0.0:8300")
	def(&c.GossipAddr, "0.0.0.0:7946")
	def(&c.MGetSep, "\n")
	def(&c.MPutSep, "\n")
	if c.BootstrapExpect == 0 {
		c.BootstrapExpect = 1
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = 5 * time.Second
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = 256 << 10
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = 5 << 20
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = pubsub.DefaultMaxPendingBytes
	}
	if c.FanoutTimeout == 0 {
		c.FanoutTimeout = pubsub.DefaultDeliverTimeout
	}
	if c.FanoutQueue == 0 {
		c.FanoutQueue = pubsub.DefaultPeerQueue
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// drainGrace is how long in-flight requests get before their contexts are cancelled at shutdown.
const drainGrace = time.Second

// Server is one running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	node     *cluster.Node
	peer     *peer.Client
	hub      *pubsub.Hub
	fanout   *pubsub.Fanout
	router   *pubsub.Router // nil without Routes
	overflow *httpapi.OverflowLog
	servers  []*http.Server
	errc     chan error
	// stopRequests cancels the context of every request still running when
	// the drain grace period ends, so idle long-polls do not hold shutdown.
	stopRequests context.CancelFunc
	requestCtx   context.Context
	// left is closed once this node has left the cluster for good
	// (POST /cluster/leave); the process should then shut down.
	left     chan struct{}
	leftOnce sync.Once

	// QueueAddr and PubsubAddr are the bound listen addresses (useful with port 0).
	QueueAddr, PubsubAddr string
}

// Start opens the node and starts serving. It returns once the ports are
// listening; the raft node may still be electing a leader.
func Start(cfg Config) (*Server, error) {
	cfg.Defaults()
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), errc: make(chan error, 2), left: make(chan struct{})}
	s.requestCtx, s.stopRequests = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// Listen first so that a taken port fails start-up before raft opens.
	queueLn, err := net.Listen("tcp", cfg.QueueAddr)
	if err != nil {
		return nil, fmt.Errorf("queue port: %w", err)
	}
	pubsubLn, err := net.Listen("tcp", cfg.PubsubAddr)
	if err != nil {
		queueLn.Close()
		return nil, fmt.Errorf("pubsub port: %w", err)
	}
	s.QueueAddr, s.PubsubAddr = queueLn.Addr().String(), pubsubLn.Addr().String()
	closeListeners := func() { queueLn.Close(); pubsubLn.Close() }

	host, err := AdvertiseHost(cfg.Advertise, cfg.RaftAddr)
	if err != nil {
		closeListeners()
		return nil, err
	}
	// One pool for every node-to-node request: status, subscriber sets,
	// deliveries, client listings.
	if s.peer, err = peer.New(peer.DefaultOptions()); err != nil {
		closeListeners()
		return nil, err
	}
	f := fsm.New()
	copts := clusterOptions(cfg, f, host, s.QueueAddr, s.PubsubAddr)
	copts.Peer = s.peer
	node, err := cluster.Open(context.Background(), copts)
	if err != nil {
		closeListeners()
		return nil, err
	}
	s.node = node

	if cfg.OverflowLog != "" {
		if s.overflow, err = httpapi.OpenOverflowLog(cfg.OverflowLog); err != nil {
			closeListeners()
			node.Shutdown(context.Background())
			return nil, err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(node.Collectors()...)

	// One set of options for both ports; the pubsub port adds its own.
	opts := httpapi.DefaultOptions()
	opts.Queue = queueBackend{FSM: f, Node: node}
	opts.Cluster = leavingNode{Node: node, s: s}
	opts.Gatherer = reg
	opts.Registerer = reg
	opts.Logger = cfg.Logger
	opts.MaxMsgSize = cfg.MaxMsgSize
	opts.MaxBodySize = cfg.MaxBodySize
	opts.MaxMGet = cfg.MaxMGet
	opts.MGetSep = cfg.MGetSep
	opts.MPutSep = cfg.MPutSep
	opts.Limits = fsm.Limits{MaxDepth: cfg.MaxDepth, MaxBytes: cfg.MaxBytes, Policy: cfg.OverflowPolicy}
	opts.Overflow = s.overflow
	opts.ForwardTimeout = cfg.ForwardTimeout
	queueHandler, err := httpapi.NewQueueHandler(opts)
	if err != nil {
		closeListeners()
		node.Shutdown(context.Background())
		return nil, err
	}
	pubsubHandler, err := s.newPubsub(cfg, reg, opts, withHost(host, s.QueueAddr))
	if err != nil {
		closeListeners()
		s.closePubsub()
		node.Shutdown(context.Background())
		return nil, err
	}
	if cfg.DebugAddr != "" {
		debugLn, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			closeListeners()
			s.closePubsub()
			node.Shutdown(context.Background())
			return nil, fmt.Errorf("debug port: %w", err)
		}
		s.serve(debugLn, debugHandler())
		s.log.Info("profiler listening", "debug_addr", debugLn.Addr().String())
	}
	s.serve(queueLn, queueHandler)
	s.serve(pubsubLn, pubsubHandler)
	s.log.Info("node started", "node_id", node.ID(), "queue_addr", s.QueueAddr, "pubsub_addr", s.PubsubAddr, "raft_addr", cfg.RaftAddr, "data_dir", cfg.DataDir)
	return s, nil
}

// clusterOptions are the raft node's options: cluster.DefaultOptions with
// what cfg sets (zero raft tuning keeps the default).
func clusterOptions(cfg Config, f *fsm.FSM, host, queueAddr, pubsubAddr string) cluster.Options {
	o := cluster.DefaultOptions()
	o.FSM = f
	o.NodeID = cfg.NodeID
	o.DataDir = cfg.DataDir
	o.RaftBind = cfg.RaftAddr
	o.RaftAdvertise = withHost(host, cfg.RaftAddr)
	o.GossipBind = cfg.GossipAddr
	o.GossipAdvertise = withHost(host, cfg.GossipAddr)
	o.Join = cfg.Join
	o.QueueAddr = withHost(host, queueAddr)
	o.PubsubAddr = withHost(host, pubsubAddr)
	o.BootstrapExpect = cfg.BootstrapExpect
	o.Logger = cfg.Logger
	if cfg.HeartbeatTimeout > 0 {
		o.SetHeartbeatTimeout(cfg.HeartbeatTimeout)
	}
	setIf(&o.ElectionTimeout, cfg.ElectionTimeout)
	setIf(&o.LeaderLeaseTimeout, cfg.LeaderLeaseTimeout)
	setIf(&o.CommitTimeout, cfg.CommitTimeout)
	setIf(&o.SnapshotThreshold, cfg.SnapshotThreshold)
	setIf(&o.SnapshotInterval, cfg.SnapshotInterval)
	setIf(&o.TrailingLogs, cfg.TrailingLogs)
	setIf(&o.MaxAppendEntries, cfg.MaxAppendEntries)
	setIf(&o.MaxPendingApplies, cfg.PendingEntries)
	return o
}

// setIf sets *dst to v unless v is zero (unset).
func setIf[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// queueBackend is what the queue handlers need: reads from the local state
// machine, writes and consistent reads through raft.
type queueBackend struct {
	*fsm.FSM
	*cluster.Node
}

// leavingNode is the raft node as the admin endpoints see it: a successful
// leave also tells the process to stop.
type leavingNode struct {
	*cluster.Node
	s *Server
}

func (l leavingNode) Leave(ctx context.Context) error {
	if err := l.Node.Leave(ctx); err != nil {
		return err
	}
	l.s.leftOnce.Do(func() { close(l.s.left) })
	return nil
}

// Left is closed when this node has left the cluster (POST /cluster/leave).
func (s *Server) Left() <-chan struct{} { return s.left }

func (s *Server) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.requestCtx },
	}
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}()
}

// Node returns the raft node, for tests and status tools.
func (s *Server) Node() *cluster.Node { return s.node }

// Err delivers a fatal serving error.
func (s *Server) Err() <-chan error { return s.errc }

// ReopenLogs reopens the overflow log (SIGHUP, for log rotation).
func (s *Server) ReopenLogs() error {
	if s.overflow == nil {
		return nil
	}
	return s.overflow.Reopen()
}

// Shutdown stops the node gracefully: HTTP first so clients move away and
// in-flight requests finish, then raft (leadership handed over if this node
// leads), then the stores. The node stays a member of the cluster.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	// Ordinary requests finish within the grace period; long-polls and
	// streams are then cancelled and answer whatever they have.
	grace := time.AfterFunc(drainGrace, s.stopRequests)
	defer grace.Stop()
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http drain: %w", err))
			srv.Close()
		}
	}
	s.stopRequests()
	// Subscribers' connections were taken over from the HTTP server, which
	// no longer tracks them.
	s.closePubsub()
	if err := s.node.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	s.peer.CloseIdleConnections()
	if s.overflow != nil {
		if err := s.overflow.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("node stopped")
	return errors.Join(errs...)
}
