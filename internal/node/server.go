// Package node assembles one quorumq node from its parts (the state
// machine, the raft node, the HTTP ports) and runs it until it is stopped.
// It owns the start-up and shutdown order; each part owns its own job.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/auth"
	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/leanhttp"
	"github.com/quorumq/quorumq/internal/peer"
	"github.com/quorumq/quorumq/pubsub"
)

// drainGrace is how long in-flight requests get before their contexts are cancelled at shutdown.
const drainGrace = time.Second

// Server is one running node.
type Server struct {
	cfg      Config
	log      *slog.Logger
	node     *cluster.Node
	fsm      *fsm.FSM
	peer     *peer.Client
	hub      *pubsub.Hub
	fanout   *pubsub.Fanout
	router   *pubsub.Router // nil without Routes
	overflow *httpapi.OverflowLog
	servers  []httpServer
	errc     chan error
	// step names the step of Shutdown running (ShutdownStep).
	step atomic.Pointer[string]
	// stopRequests cancels the context of every request still running when
	// the drain grace period ends, so idle long-polls do not hold shutdown.
	stopRequests context.CancelFunc
	// queueHandler is the queue port's handler, whose handover
	// confirmations Shutdown drains.
	queueHandler http.Handler
	requestCtx   context.Context
	// left is closed once this node has left the cluster for good
	// (POST /cluster/leave); the process should then shut down.
	left     chan struct{}
	leftOnce sync.Once

	// tls and gossipKeys are the loaded TLS material and gossip keys (nil
	// in open mode); Reload reads their files again.
	tls        *certs.Material
	gossipKeys [][]byte
	tokens     *auth.Store // nil: no tokens needed
	// dataDir keeps quorumq_data_dir_bytes.
	dataDir *dataDirSize

	// analytics is the live view of --analytics-redis (nil: none);
	// stopAnalytics ends its sampling and closes it.
	analytics     Analytics
	stopAnalytics func()

	// QueueAddr and PubsubAddr are the bound listen addresses (useful with port 0).
	QueueAddr, PubsubAddr string
}

// Start opens the node and starts serving. It returns once the ports are
// listening; the raft node may still be electing a leader.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), errc: make(chan error, 2), left: make(chan struct{})}
	s.requestCtx, s.stopRequests = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.Cluster.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cfg.applyMemoryBudget()
	cfg.resolveBudgets()
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
	// Whatever start-up opened is closed again if a later step fails.
	var undo []func()
	fail := func(err error) (*Server, error) {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return nil, err
	}
	undo = append(undo, func() { queueLn.Close(); pubsubLn.Close() })
	if err := s.loadSecrets(); err != nil {
		return fail(err)
	}
	if s.tls != nil {
		// The ports' listeners get TLS in servePort, above the cap.
		cfg.Peer.TLS = s.tls.ClientConfig()
		cfg.Router.TLS = s.tls.ClientConfig()
		cfg.HTTP.PeerTLS = s.tls.ClientConfig()
		cfg.Cluster.TLS = s.tls
	}
	cfg.Cluster.GossipKeys = s.gossipKeys
	s.warnIfOpen()

	host, err := AdvertiseHost(cfg.Advertise, cfg.Cluster.RaftBind)
	if err != nil {
		return fail(err)
	}
	// One pool for every node-to-node request: status, subscriber sets,
	// deliveries, client listings.
	if s.peer, err = peer.New(cfg.Peer); err != nil {
		return fail(err)
	}
	undo = append(undo, s.peer.CloseIdleConnections)
	bodies := cfg.Bodies
	bodies.Dir = cluster.BodiesDir(cfg.Cluster.DataDir)
	if bodies.CacheBytes == 0 {
		bodies.CacheBytes = cfg.BodyCacheBytes()
	}
	f, err := fsm.Open(bodies)
	if err != nil {
		return fail(err)
	}
	s.fsm = f
	copts := cfg.Cluster
	copts.FSM, copts.Peer, copts.Logger = f, s.peer, cfg.Logger
	copts.RaftAdvertise = withHost(host, copts.RaftBind)
	copts.GossipAdvertise = withHost(host, copts.GossipBind)
	copts.QueueAddr = withHost(host, s.QueueAddr)
	copts.PubsubAddr = withHost(host, s.PubsubAddr)
	node, err := cluster.Open(context.Background(), copts)
	if err != nil {
		return fail(err)
	}
	s.node = node
	undo = append(undo, func() { node.Shutdown(context.Background()) })

	if cfg.OverflowLog != "" {
		if s.overflow, err = httpapi.OpenOverflowLog(cfg.OverflowLog); err != nil {
			return fail(err)
		}
		undo = append(undo, func() { s.overflow.Close() })
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(node.Collectors()...)
	reg.MustRegister(node.OperatorCollectors()...)
	registerBuildInfo(reg, cfg.Version)
	s.dataDir = startDataDirSize(reg, cfg.Cluster.DataDir, s.log)
	undo = append(undo, s.dataDir.close)
	conns := newConnMetrics(reg)
	registerUsage(reg, f, cfg.HTTP.MaxQueuedBytes, cfg.HTTP.MaxQueuedMessages)

	// One set of options for both ports; the pubsub port adds its own.
	opts := cfg.HTTP
	opts.Queue = queueBackend{FSM: f, Node: node}
	opts.Cluster = leavingNode{Node: node, s: s}
	opts.Gatherer = reg
	opts.Registerer = reg
	opts.Logger = cfg.Logger
	opts.Overflow = s.overflow
	if s.tokens != nil {
		opts.Auth = s.tokens
	}
	opts.InternalAuth = s.internalAuth()
	opts.PubsubNodes = s.pubsubNodes
	if err := s.startAnalytics(cfg); err != nil {
		return fail(err)
	}
	if s.analytics != nil {
		undo = append(undo, s.stopAnalytics)
		opts.Analytics = s.analytics
	}
	if s.tls != nil {
		opts.NodeID = func(r *http.Request) (string, bool) {
			id, err := certs.PeerNodeID(r.TLS)
			return id, err == nil
		}
	}
	queueHandler, err := httpapi.NewQueueHandler(opts)
	if err != nil {
		return fail(err)
	}
	s.queueHandler = queueHandler
	undo = append(undo, s.closePubsub)
	pubsubHandler, err := s.newPubsub(cfg, reg, opts, withHost(host, s.QueueAddr))
	if err != nil {
		return fail(err)
	}
	if cfg.DebugAddr != "" {
		debugLn, err := net.Listen("tcp", cfg.DebugAddr)
		if err != nil {
			return fail(fmt.Errorf("debug port: %w", err))
		}
		s.serve(debugLn, debugHandler())
		s.log.Info("profiler listening", "debug_addr", debugLn.Addr().String())
	}
	s.servePort(queueLn, queueHandler, "queue", conns, cfg.LeanHTTP)
	s.servePort(pubsubLn, pubsubHandler, "pubsub", conns, false)
	budget := "unlimited"
	if b := cfg.HTTP.MaxQueuedBytes; b != httpapi.Unlimited {
		budget = api.FormatBytes(b)
	}
	s.log.Info("node started", "node_id", node.ID(), "queue_addr", s.QueueAddr, "pubsub_addr", s.PubsubAddr, "raft_addr", cfg.Cluster.RaftBind, "data_dir", cfg.Cluster.DataDir,
		"raft_log_store", cfg.Cluster.LogStore, "max_queued_bytes", budget, "max_queued_messages", cfg.HTTP.MaxQueuedMessages,
		"memory_budget", api.FormatBytes(cfg.MemoryBudget), "body_cache", api.FormatBytes(bodies.CacheBytes), "max_conns", cfg.Conn.MaxConns)
	return s, nil
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

// Leave departs (cluster.Node.Depart) and has Run stop the process: raft
// shuts down after the answer has gone out and the HTTP servers have
// stopped, within --shutdown-timeout, so the request never waits on raft's
// shutdown and nobody is answered by a node whose raft has stopped.
func (l leavingNode) Leave(ctx context.Context) error {
	if err := l.Node.Depart(ctx); err != nil {
		return err
	}
	l.s.leftOnce.Do(func() { close(l.s.left) })
	return nil
}

// The admin endpoints back up and restore through the raft node.
var _ httpapi.Backuper = leavingNode{}

// Left is closed when this node has left the cluster (POST /cluster/leave).
func (s *Server) Left() <-chan struct{} { return s.left }

// servePort serves one of the HTTP ports with every connection limit:
// the cap of open connections under TLS, and the body timeout. lean: plain
// HTTP/1.1 requests go to leanhttp (not over TLS, where net/http also
// negotiates HTTP/2).
func (s *Server) servePort(ln net.Listener, h http.Handler, port string, m *connMetrics, lean bool) {
	var tlsConf *tls.Config
	if s.tls != nil {
		tlsConf = s.tls.HTTPConfig()
	}
	ln = newCapListener(ln, port, s.cfg.Conn.MaxConns, tlsConf, m, s.log)
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	h = withBodyTimeout(h, s.cfg.Conn.BodyTimeout, m.bodyTimeouts.WithLabelValues(port))
	if !lean || tlsConf != nil {
		s.serve(ln, h)
		return
	}
	srv, err := leanhttp.New(h, s.stdServer(h), leanhttp.Options{
		HeaderTimeout: s.cfg.Conn.HeaderTimeout,
		IdleTimeout:   s.cfg.Conn.IdleTimeout,
		Lean:          httpapi.Lean,
		BaseContext:   s.requestCtx,
		Log:           s.log,
	})
	if err != nil {
		s.errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err) // validated in Config
		return
	}
	s.run(srv, ln)
}

// httpServer is one of the node's servers: net/http's, or leanhttp's.
type httpServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// serve serves h on ln with net/http and the header and idle timeouts.
func (s *Server) serve(ln net.Listener, h http.Handler) {
	s.run(s.stdServer(h), ln)
}

// stdServer is net/http's server of h with the header and idle timeouts.
func (s *Server) stdServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.cfg.Conn.HeaderTimeout,
		IdleTimeout:       s.cfg.Conn.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.requestCtx },
	}
}

// run serves ln with srv until Shutdown.
func (s *Server) run(srv httpServer, ln net.Listener) {
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err)
		}
	}()
}

// registerUsage exports what the queues hold against the budget of
// queued bytes (httpapi.Options.MaxQueuedBytes).
func registerUsage(reg prometheus.Registerer, f *fsm.FSM, budget, messages int64) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_queued_messages",
			Help: "Messages all queues hold on this node: ready, in flight, deferred.",
		}, func() float64 { return float64(f.Usage().Messages) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_queued_bytes",
			Help: "What the queues hold as the budget counts it: message bodies plus fsm.MessageOverhead bytes each.",
		}, func() float64 { return float64(f.Usage().Cost()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_body_store_bytes",
			Help: "Bytes of the message-body segment files on disk, records of removed messages included until their segment goes.",
		}, func() float64 { return float64(f.BodyStats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_body_store_segments",
			Help: "Message-body segment files on disk.",
		}, func() float64 { return float64(f.BodyStats().Segments) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_body_cache_bytes",
			Help: "Memory held by blocks of message bodies: the read cache (--body-cache) and the block being written.",
		}, func() float64 { return float64(f.BodyStats().CachedBytes) }),
	)
	for k := fsm.RestoredInPlace; k <= fsm.RestoredInline; k++ {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "quorumq_snapshot_restores_total",
			Help:        "Snapshots the state machine took up: in_place (its own, at restart), segments (another node's, with its body segments), inline (bodies inline).",
			ConstLabels: prometheus.Labels{"kind": k.String()},
		}, func() float64 { return float64(f.Restores(k)) }))
	}
	if messages != httpapi.Unlimited {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_queued_messages_budget",
			Help: "The budget of stored messages (--max-queued-messages, from --memory-budget): past it /put and /mput answer 507.",
		}, func() float64 { return float64(messages) }))
	}
	if budget != httpapi.Unlimited {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "quorumq_queued_bytes_budget",
			Help: "The budget of queued bytes (--max-queued-bytes): past it /put and /mput answer 507.",
		}, func() float64 { return float64(budget) }))
	}
}

// QueueURL and PubsubURL are the base URLs of the bound ports (https://
// with TLS).
func (s *Server) QueueURL() string  { return s.scheme() + s.QueueAddr }
func (s *Server) PubsubURL() string { return s.scheme() + s.PubsubAddr }

func (s *Server) scheme() string {
	if s.tls != nil {
		return "https://"
	}
	return "http://"
}

// Node returns the raft node, for tests and status tools.
func (s *Server) Node() *cluster.Node { return s.node }

// Err delivers a fatal serving error.
func (s *Server) Err() <-chan error { return s.errc }

// Reload reads again what SIGHUP reloads: the TLS certificate, key and
// CA (new connections use them), the gossip keys (rotation) and the
// tokens (the next request uses them). A file
// that does not load leaves the one in use and is reported in the error.
// The overflow log is reopened (log rotation); failing that is fatal
// (ErrReopen), since evicted messages would be lost.
func (s *Server) Reload() error {
	var errs []error
	if s.tls != nil {
		if err := s.tls.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.cfg.GossipKeyFile != "" {
		keys, err := certs.LoadGossipKeys(s.cfg.GossipKeyFile)
		if err == nil {
			err = s.node.SetGossipKeys(keys)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.tokens != nil {
		if err := s.tokens.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.overflow != nil {
		if err := s.overflow.Reopen(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrReopen, err))
		}
	}
	return errors.Join(errs...)
}

// ErrReopen: the overflow log could not be reopened.
var ErrReopen = errors.New("reopen overflow log")

// loadSecrets loads the TLS material and gossip keys the config names.
func (s *Server) loadSecrets() error {
	var err error
	if s.cfg.TLS.Enabled() {
		if s.tls, err = certs.Load(s.cfg.TLS); err != nil {
			return err
		}
	}
	if s.cfg.GossipKeyFile != "" {
		if s.gossipKeys, err = certs.LoadGossipKeys(s.cfg.GossipKeyFile); err != nil {
			return err
		}
	}
	if s.cfg.AuthTokensFile != "" {
		if s.tokens, err = auth.NewStore(s.cfg.AuthTokensFile, s.cfg.Logger); err != nil {
			return err
		}
	}
	return nil
}

// internalAuth decides who may call the node-to-node routes: with TLS,
// only other nodes, by their cluster certificate; without TLS but with
// tokens, anyone (the routes carry no credentials then, and the warning
// at start says the cluster is not secured); in open mode, anyone.
func (s *Server) internalAuth() func(*http.Request) bool {
	if s.tls != nil {
		return func(r *http.Request) bool {
			_, err := certs.PeerNodeID(r.TLS)
			return err == nil
		}
	}
	if s.tokens != nil {
		return func(*http.Request) bool { return true }
	}
	return nil
}

// warnIfOpen warns when a port other machines can reach runs without TLS,
// gossip keys or tokens: anyone on that network could join the cluster
// or use its queues.
func (s *Server) warnIfOpen() {
	if s.tls != nil && s.gossipKeys != nil && s.tokens != nil {
		return
	}
	for _, a := range []string{s.QueueAddr, s.PubsubAddr, s.cfg.Cluster.RaftBind, s.cfg.Cluster.GossipBind} {
		host, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
			continue
		}
		s.log.Warn("this node listens beyond loopback without TLS, gossip keys and tokens: anyone who reaches it may join the cluster or read and change queues; see the README's Security section",
			"addr", a, "tls", s.tls != nil, "gossip_keys", s.gossipKeys != nil, "tokens", s.tokens != nil)
		return
	}
}

// setStep records the step of Shutdown now running.
func (s *Server) setStep(step string) { s.step.Store(&step) }

// ShutdownStep names the step of Shutdown running now ("" before it
// began, "done" after), down to the raft node's own step.
func (s *Server) ShutdownStep() string {
	p := s.step.Load()
	switch {
	case p == nil:
		return ""
	case *p == "raft node shutdown":
		return *p + ": " + s.node.ShutdownStep()
	}
	return *p
}

// Shutdown stops the node gracefully: HTTP first so clients move away and
// in-flight requests finish, then raft (leadership handed over if this node
// leads), then the stores. The node stays a member of the cluster.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	defer s.setStep("done")
	s.setStep("http drain")
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
	s.setStep("forwarding and handover drain")
	// Pops whose answers were written are confirmed through raft before it
	// stops; what is not confirmed in time comes back after its handover
	// lease, delivered again rather than lost.
	if s.queueHandler != nil {
		// Handlers have returned, so every batched write was answered;
		// this stops the batcher for good.
		if err := httpapi.DrainForwarding(ctx, s.queueHandler); err != nil {
			errs = append(errs, fmt.Errorf("forwarding drain: %w", err))
		}
		if err := httpapi.DrainHandovers(ctx, s.queueHandler); err != nil {
			errs = append(errs, fmt.Errorf("handover drain: %w", err))
		}
	}
	// Subscribers' connections were taken over from the HTTP server, which
	// no longer tracks them.
	s.setStep("pubsub close")
	s.closePubsub()
	s.setStep("raft node shutdown")
	if err := s.node.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	} else if err := s.fsm.Close(); err != nil {
		// Raft has stopped, so nothing writes bodies any more.
		errs = append(errs, fmt.Errorf("body store: %w", err))
	}
	s.setStep("close stores")
	s.peer.CloseIdleConnections()
	if s.stopAnalytics != nil {
		s.stopAnalytics()
	}
	s.dataDir.close()
	if s.overflow != nil {
		if err := s.overflow.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.log.Info("node stopped")
	return errors.Join(errs...)
}
