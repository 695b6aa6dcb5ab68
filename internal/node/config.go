package node

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/peer"
	"github.com/quorumq/quorumq/pubsub"
)

// Defaults of what serve adds to its parts' options.
const (
	DefaultDataDir         = "./quorumq-data"
	DefaultQueueAddr       = "0.0.0.0:8081"
	DefaultPubsubAddr      = "0.0.0.0:8080"
	DefaultRaftAddr        = "0.0.0.0:8300"
	DefaultGossipAddr      = "0.0.0.0:7946"
	DefaultShutdownTimeout = 30 * time.Second
)

// Config is everything `quorumq serve` takes: each part's own options,
// from the part's DefaultOptions, and the node's addresses. Start from
// DefaultConfig; RegisterFlags makes a flag (and so a QUORUMQ_* variable)
// of every field a user sets. Start only validates, and fills in what
// the parts need from each other (noted on each field).
type Config struct {
	// Cluster is the raft host and membership: NodeID, DataDir, LogStore
	// (--raft-log-store), RaftBind (--raft-addr), GossipBind
	// (--gossip-addr), Join, BootstrapExpect and the raft tuning. Start sets FSM, Peer, Logger and the advertised
	// addresses (from Advertise and the bound ports).
	Cluster cluster.Options
	// HTTP is what both ports share: message and body sizes, separators,
	// the limits stamped into puts, the forward timeout. Start sets the
	// dependencies, the metrics registry, Logger and FanoutTimeout (to
	// Fanout.Timeout).
	HTTP httpapi.Options
	// Hub is this node's pubsub registry (--max-pending-bytes,
	// --max-buffered-bytes, --subscriber-send-buffer). Start sets Logger
	// and OnChange.
	Hub pubsub.Options
	// Fanout carries publishes to the other nodes' subscribers
	// (--fanout-timeout, --fanout-queue, --fanout-queue-bytes). Start sets
	// Self, Hub, Directory, Peer, Registerer and Logger.
	Fanout pubsub.FanoutOptions
	// Router enqueues routed topics (--route). Start sets QueueAddr,
	// NodeID, Registerer and Logger, and raises Timeout to at least
	// HTTP.ForwardTimeout plus half of pubsub.DefaultRouteTimeout, so an
	// election does not fail a routed publish.
	Router pubsub.RouterOptions
	// Peer is the node-to-node client's pool and deadlines. Start sets
	// TLS.
	Peer peer.Options
	// Conn bounds every connection of both HTTP ports: header, body and
	// idle timeouts and a cap per port (--header-read-timeout,
	// --body-read-timeout, --idle-timeout, --max-conns).
	Conn ConnLimits
	// LeanHTTP serves the queue port's plain HTTP/1.1 requests with
	// internal/leanhttp rather than net/http (--lean-http, default on):
	// the same answers for a fraction of the CPU. Long-polls, HTTPS and
	// anything leanhttp does not handle stay with net/http.
	LeanHTTP bool

	// TLS names the node's certificate and key and the cluster CA
	// (--tls-cert, --tls-key, --tls-ca). With them both HTTP ports serve
	// HTTPS, and the raft transport and every node-to-node call are
	// mutual TLS: only holders of a certificate of the cluster CA take
	// part. Reloaded on SIGHUP. Empty: plain TCP everywhere.
	TLS certs.Files
	// GossipKeyFile names the gossip keys (--gossip-key-file,
	// certs.LoadGossipKeys): with them gossip is encrypted and members
	// without a key cannot join. Reloaded on SIGHUP for rotation.
	GossipKeyFile string
	// AuthTokensFile names the tokens and their roles (--auth-tokens-file,
	// internal/auth's format): with it every request but /healthz and
	// /readyz needs a token of the right role. Reloaded on SIGHUP.
	AuthTokensFile string

	// QueueAddr and PubsubAddr are the HTTP ports' bind addresses (port 0
	// picks a free one: Server.QueueAddr and PubsubAddr say which).
	QueueAddr, PubsubAddr string
	// Advertise is the host other nodes use to reach this one. Empty: the
	// raft bind host, or the first non-loopback address when binding
	// 0.0.0.0 (AdvertiseHost).
	Advertise string
	// OverflowLog, when set, is the file that receives the messages the
	// evict-oldest policy drops (reopened on SIGHUP).
	OverflowLog string
	// DebugAddr, when set, serves Go's profiler (net/http/pprof under
	// /debug/pprof/) on its own listener. Off by default: bind it to
	// loopback, it exposes internals.
	DebugAddr string
	// AnalyticsRedis is the Redis where `quorumq analyze` keeps its
	// aggregates (--analytics-redis): GET /analytics answers them live
	// and the web UI draws them. Empty: off, /analytics is a 404.
	AnalyticsRedis string
	// OpenAnalytics opens the live view of AnalyticsRedis; required with
	// it. The serve command sets it: package analytics is a library of
	// the users', whose own tests start nodes, so the node does not
	// import it.
	OpenAnalytics func(redisURL string, log *slog.Logger) (Analytics, error)
	// Bodies is where and how the state machine keeps message bodies
	// (--body-segment-size, --body-cache). Start sets Dir (the data
	// directory's body store) and, when it is 0, CacheBytes
	// (BodyCacheBytes).
	Bodies fsm.Options
	// MemoryBudget is the memory the node sizes its caches and the index
	// of queued messages by (--memory-budget); the bodies are on disk.
	// Start sets the Go runtime's soft limit to 80 % of it (unless
	// GOMEMLIMIT is lower). Default DefaultMemoryBudget().
	MemoryBudget int64
	// ShutdownTimeout bounds a graceful shutdown in Run.
	ShutdownTimeout time.Duration
	// Version is the binary's version, shown by quorumq_build_info (not a
	// flag: serve passes main.version). Empty: "dev".
	Version string
	// Logger receives the node's logs and is handed to every part.
	Logger *slog.Logger

	// wrapPubsub, in tests, wraps the pubsub port's handler.
	wrapPubsub func(http.Handler) http.Handler
}

// DefaultConfig returns every part's defaults (cluster.DefaultOptions,
// httpapi.DefaultOptions, pubsub.DefaultOptions, DefaultFanoutOptions and
// DefaultRouterOptions, peer.DefaultOptions, DefaultConnLimits) with
// serve's addresses:
// DataDir DefaultDataDir, the queue port on 0.0.0.0:8081, pubsub on
// 0.0.0.0:8080, raft on 0.0.0.0:8300, gossip on 0.0.0.0:7946; shutdown
// within 30 s; Logger slog.Default().
func DefaultConfig() Config {
	c := Config{
		Cluster:         cluster.DefaultOptions(),
		HTTP:            httpapi.DefaultOptions(),
		Hub:             pubsub.DefaultOptions(),
		Fanout:          pubsub.DefaultFanoutOptions(),
		Router:          pubsub.DefaultRouterOptions(),
		Peer:            peer.DefaultOptions(),
		Conn:            DefaultConnLimits(),
		LeanHTTP:        true,
		QueueAddr:       DefaultQueueAddr,
		PubsubAddr:      DefaultPubsubAddr,
		ShutdownTimeout: DefaultShutdownTimeout,
		MemoryBudget:    DefaultMemoryBudget(),
		Logger:          slog.Default(),
	}
	c.Cluster.DataDir = DefaultDataDir
	// Derived in Start from the data directory's disk and the memory
	// budget (resolveBudgets).
	c.HTTP.MaxQueuedBytes, c.HTTP.MaxQueuedMessages = 0, 0
	c.Cluster.RaftBind = DefaultRaftAddr
	c.Cluster.GossipBind = DefaultGossipAddr
	return c
}

// RegisterFlags defines serve's flags on fs, writing into c, whose
// values are the flags' defaults. The log flags are the caller's
// (cli.LogFlags), which then sets Logger.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	cl, h := &c.Cluster, &c.HTTP
	fs.StringVar(&cl.NodeID, "node-id", cl.NodeID, "node id for raft and gossip (default: <hostname>-<random>, persisted in --data-dir)")
	fs.StringVar(&cl.DataDir, "data-dir", cl.DataDir, "raft log, snapshots and node identity")
	fs.StringVar(&c.QueueAddr, "queue-addr", c.QueueAddr, "simplequeue-compatible HTTP API")
	fs.StringVar(&c.PubsubAddr, "pubsub-addr", c.PubsubAddr, "pubsub-compatible HTTP API")
	fs.StringVar(&cl.RaftBind, "raft-addr", cl.RaftBind, "raft transport")
	fs.StringVar(&cl.GossipBind, "gossip-addr", cl.GossipBind, "memberlist gossip (TCP and UDP)")
	fs.StringVar(&c.Advertise, "advertise", c.Advertise, "host other nodes use to reach this one (default: bind host, or the first non-loopback address when binding 0.0.0.0)")
	fs.Var(listFlag{&cl.Join}, "join", "comma-separated gossip `addresses` of existing members (repeatable)")
	fs.IntVar(&cl.BootstrapExpect, "bootstrap-expect", cl.BootstrapExpect, "number of servers to wait for before the first election")
	fs.DurationVar(&h.ForwardTimeout, "forward-timeout", h.ForwardTimeout, "how long a request waits for a leader before 503")
	fs.BoolVar(&h.ForwardBatch, "forward-batch", h.ForwardBatch, "send the writes this node forwards to the leader (/put, /mput, /ack, /nack, /touch) in batches, when the leader supports it (false: one request each)")
	fs.IntVar(&h.ForwardBatchQueue, "forward-batch-queue", h.ForwardBatchQueue, "forwarded commands waiting for a batch; past it a write is forwarded on its own")
	fs.Int64Var(&h.ForwardBatchQueueBytes, "forward-batch-queue-bytes", h.ForwardBatchQueueBytes, "bytes of forwarded commands waiting for a batch; past it a write is forwarded on its own")

	fs.Int64Var(&h.MaxMsgSize, "max-msg-size", h.MaxMsgSize, "largest message in bytes (413 above)")
	fs.Int64Var(&h.MaxBodySize, "max-body-size", h.MaxBodySize, "largest request body in bytes (413 above)")
	fs.Var(sizeFlag{&h.MaxRestoreBytes}, "max-restore-size", "largest backup POST /restore takes, a `size` (413 above)")
	fs.DurationVar(&h.RestoreTimeout, "restore-timeout", h.RestoreTimeout, "bound on a whole POST /restore (upload, check and replication) and on a whole GET /backup (download)")
	fs.Int64Var(&h.Limits.MaxDepth, "max-depth", h.Limits.MaxDepth, "messages a queue may hold (0: unlimited)")
	fs.Int64Var(&h.Limits.MaxBytes, "max-bytes", h.Limits.MaxBytes, "message bytes a queue may hold (0: unlimited)")
	fs.TextVar(&h.Limits.Policy, "overflow-policy", h.Limits.Policy, "when a queue is full: reject (non-200, nothing stored) or evict-oldest (simplequeue's behaviour)")
	fs.StringVar(&c.OverflowLog, "overflow-log", c.OverflowLog, "file that receives messages evicted by evict-oldest (reopened on SIGHUP)")
	fs.IntVar(&h.MaxMGet, "max-mget", h.MaxMGet, fmt.Sprintf("upper bound for /mget?items= (1 to %d)", httpapi.MaxMGetLimit))
	fs.Int64Var(&h.MaxGetBytes, "max-get-bytes", h.MaxGetBytes, "message bytes one /get or /mget hands out at most (at least one message always goes)")
	fs.DurationVar(&h.HandoverLease, "handover-lease", h.HandoverLease, "how long a popped message is held while its answer is written; it comes back if the answer is not confirmed by then")
	fs.StringVar(&h.MGetSep, "mget-item-sep", h.MGetSep, "default separator between /mget items")
	fs.StringVar(&h.MPutSep, "mput-item-sep", h.MPutSep, "default separator of /mput records")
	fs.Int64Var(&c.Hub.MaxPendingBytes, "max-pending-bytes", c.Hub.MaxPendingBytes, "unsent bytes a pubsub subscriber may have before it is kicked")
	fs.Int64Var(&c.Hub.MaxBufferedBytes, "max-buffered-bytes", c.Hub.MaxBufferedBytes, "bytes the node holds for all pubsub subscribers and the fan-out together; past it the subscribers furthest behind are kicked")
	fs.IntVar(&c.Hub.SendBuffer, "subscriber-send-buffer", c.Hub.SendBuffer, "kernel send buffer (SO_SNDBUF) of each /sub connection, which bounds the kernel memory a stalled subscriber holds (0: the kernel's autotuning)")
	fs.DurationVar(&c.Fanout.Timeout, "fanout-timeout", c.Fanout.Timeout, "how long a publish waits for other nodes; a delivery not done by then counts as failed")
	fs.IntVar(&c.Fanout.QueueLen, "fanout-queue", c.Fanout.QueueLen, "publishes waiting per other node before more count as failed")
	fs.IntVar(&c.Fanout.QueueBytes, "fanout-queue-bytes", c.Fanout.QueueBytes, "bytes of publishes waiting per other node before more count as failed")
	fs.Var(routeFlag{&c.Router.Routes}, "route", "`TOPIC:QUEUE`: also enqueue every message published on TOPIC on this node into QUEUE before answering /pub (repeatable or comma-separated)")

	// Connection limits and the node's budget of queued bytes.
	fs.DurationVar(&c.Conn.HeaderTimeout, "header-read-timeout", c.Conn.HeaderTimeout, "how long a client may take to send a request's headers")
	fs.DurationVar(&c.Conn.BodyTimeout, "body-read-timeout", c.Conn.BodyTimeout, "how long a client may take to send a request's body (400 and the connection closed after)")
	fs.DurationVar(&c.Conn.IdleTimeout, "idle-timeout", c.Conn.IdleTimeout, "close a kept-alive connection idle this long (more than 90s: other nodes keep theirs 90s)")
	fs.IntVar(&c.Conn.MaxConns, "max-conns", c.Conn.MaxConns, "open connections per HTTP port, subscribers included; more get 503 and are closed: 10000, or a quarter of the open-file limit when lower")
	fs.BoolVar(&c.LeanHTTP, "lean-http", c.LeanHTTP, "serve the queue port's plain HTTP/1.1 requests with quorumq's lean server (long-polls and HTTPS always use Go's net/http)")
	fs.Var(sizeFlag{&c.Bodies.SegmentSize}, "body-segment-size", "`size` at which a message-body segment file is sealed and the next begun (default 64MiB; a segment is deleted once none of its messages is stored)")
	fs.Var(sizeFlag{&c.Bodies.CacheBytes}, "body-cache", "`size` of the cache of message-body blocks read from disk (default a 32nd of --memory-budget, 8MiB to 256MiB)")
	fs.Var(sizeFlag{&c.MemoryBudget}, "memory-budget", "`size` of memory the node's index of queued messages and its caches are sized by (message bodies are on disk); the Go runtime's soft limit is set to 80% of it unless GOMEMLIMIT is lower: GOMEMLIMIT when set, else half of the memory available to the process")
	fs.Var(sizeFlag{&h.MaxQueuedBytes}, "max-queued-bytes", "`size` of the messages this node may hold on disk, bodies plus "+strconv.Itoa(fsm.MessageOverhead)+
		" bytes each (e.g. 50GiB, or unlimited); past it /put and /mput answer 507. The default is half of the space free on the data directory's file system at start")
	fs.Var(sizeFlag{&h.MaxQueuedMessages}, "max-queued-messages", "`count` of messages this node may hold (or unlimited): each takes about "+strconv.Itoa(fsm.IndexBytesPerMessage)+
		" bytes of memory in the index; past it /put and /mput answer 507: what half of --memory-budget indexes")

	c.registerRaftTiming(fs)
	fs.DurationVar(&cl.CommitTimeout, "raft-commit-timeout", cl.CommitTimeout, "raft commit timeout")
	fs.Uint64Var(&cl.SnapshotThreshold, "raft-snapshot-threshold", cl.SnapshotThreshold, "log entries between snapshots")
	fs.DurationVar(&cl.SnapshotInterval, "raft-snapshot-interval", cl.SnapshotInterval, "how often to check for a snapshot")
	fs.Uint64Var(&cl.TrailingLogs, "raft-trailing-logs", cl.TrailingLogs, "log entries kept after a snapshot")
	fs.Var(logBytesFlag{&cl.SnapshotBytes}, "raft-snapshot-bytes", "`size` of log entries applied after which a snapshot is taken, whatever their count (0: off)")
	fs.Var(logBytesFlag{&cl.TrailingBytes}, "raft-trailing-bytes", "`size` of log entries kept after a snapshot: lowers --raft-trailing-logs (to 1024 at least) when entries are large (0: off)")
	fs.IntVar(&cl.MaxAppendEntries, "raft-max-append-entries", cl.MaxAppendEntries, "entries per append RPC and apply batch")
	fs.IntVar(&cl.MaxPendingApplies, "raft-pending-entries", cl.MaxPendingApplies, "coalesced entries in raft at once: 1 makes the biggest entries, 2 overlaps slow log writes")
	fs.TextVar(&cl.LogStore, "raft-log-store", cl.LogStore, "raft log store: auto (the kind the data dir holds; boltdb for a new one), boltdb (raft-boltdb) or wal (raft-wal: one write and one fsync per entry, faster; see the README on its crash bug); a data dir keeps the kind it was created with")

	fs.StringVar(&c.TLS.Cert, "tls-cert", c.TLS.Cert, "this node's certificate (PEM), issued by --tls-ca for its node id; turns on HTTPS and the cluster's mutual TLS (reloaded on SIGHUP)")
	fs.StringVar(&c.TLS.Key, "tls-key", c.TLS.Key, "the key of --tls-cert (PEM)")
	fs.StringVar(&c.TLS.CA, "tls-ca", c.TLS.CA, "the cluster CA (PEM): only nodes with a certificate from it may join, vote or receive the log")
	fs.StringVar(&c.AuthTokensFile, "auth-tokens-file", c.AuthTokensFile, "tokens and their roles (produce, consume, monitor, admin), one per line: NAME ROLES SECRET [SCOPE...]; every request then needs one (reloaded on SIGHUP)")
	fs.StringVar(&c.GossipKeyFile, "gossip-key-file", c.GossipKeyFile, "gossip encryption keys, one base64 key per line, the first the primary (reloaded on SIGHUP for rotation)")
	fs.StringVar(&c.AnalyticsRedis, "analytics-redis", c.AnalyticsRedis, "`address` (host:port or redis://...) of the Redis where `quorumq analyze` keeps its aggregates: GET /analytics and the web UI show them live (default: off)")
	fs.StringVar(&c.DebugAddr, "debug-addr", c.DebugAddr, "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (default: off)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "bound on a graceful shutdown")
}

// registerRaftTiming defines the three raft timeouts. The heartbeat
// timeout moves the other two along (cluster.Options.SetHeartbeatTimeout)
// unless they are given too, in any order.
func (c *Config) registerRaftTiming(fs *flag.FlagSet) {
	o := &c.Cluster
	var election, lease time.Duration // given explicitly; 0: not given
	fs.Var(durationFlag{&o.HeartbeatTimeout, func(d time.Duration) {
		o.SetHeartbeatTimeout(d)
		if election > 0 {
			o.ElectionTimeout = election
		}
		if lease > 0 {
			o.LeaderLeaseTimeout = lease
		}
	}}, "raft-heartbeat-timeout", "raft heartbeat timeout (a `duration`); the election timeout and leader lease follow it unless given")
	fs.Var(durationFlag{&o.ElectionTimeout, func(d time.Duration) { election, o.ElectionTimeout = d, d }},
		"raft-election-timeout", "raft election timeout (a `duration`)")
	fs.Var(durationFlag{&o.LeaderLeaseTimeout, func(d time.Duration) { lease, o.LeaderLeaseTimeout = d, d }},
		"raft-leader-lease-timeout", "raft leader lease timeout (a `duration`)")
}

// ErrInvalid marks a Config that Validate refuses.
var ErrInvalid = errors.New("invalid serve configuration")

// Validate checks what the node itself owns; each part validates its own
// options when Start opens it.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	switch {
	case c.QueueAddr == "":
		return bad("queue-addr is empty")
	case c.PubsubAddr == "":
		return bad("pubsub-addr is empty")
	case c.ShutdownTimeout <= 0:
		return bad("shutdown-timeout=%v: must be positive", c.ShutdownTimeout)
	case c.MemoryBudget <= 0:
		return bad("memory-budget=%d: must be positive", c.MemoryBudget)
	case c.Logger == nil:
		return bad("Logger is required")
	case c.Conn.validate() != nil:
		return bad("%v", c.Conn.validate())
	case c.Conn.IdleTimeout <= max(c.Peer.IdleTimeout, httpapi.ForwardIdleTimeout):
		// Other nodes keep idle connections to this one that long; closing
		// them first could lose a request sent just then.
		return bad("idle-timeout=%v: must be longer than the %v other nodes keep an idle connection", c.Conn.IdleTimeout, max(c.Peer.IdleTimeout, httpapi.ForwardIdleTimeout))
	case c.TLS.Enabled() && (c.TLS.Cert == "" || c.TLS.Key == "" || c.TLS.CA == ""):
		return bad("tls-cert, tls-key and tls-ca go together")
	case c.AnalyticsRedis != "" && c.OpenAnalytics == nil:
		return bad("analytics-redis is set but this build cannot open analytics (OpenAnalytics is nil)")
	case len(c.Router.Routes) > 0 && c.AuthTokensFile != "" && !c.TLS.Enabled():
		// The router enqueues through the queue port as the node itself,
		// which only a node certificate can prove.
		return bad("route with auth-tokens-file needs tls-cert, tls-key and tls-ca")
	}
	return nil
}

// durationFlag is a duration flag whose Set runs set, for flags that
// change more than one field.
type durationFlag struct {
	d   *time.Duration
	set func(time.Duration)
}

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

func (f durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	f.set(d)
	return nil
}

// logBytesFlag is a size of log entries, 0 for off.
type logBytesFlag struct{ n *uint64 }

func (f logBytesFlag) String() string {
	if f.n == nil {
		return ""
	}
	return api.FormatBytes(int64(*f.n))
}

func (f logBytesFlag) Set(v string) error {
	n, err := api.ParseBytes(v)
	if err != nil {
		return err
	}
	if n < 0 {
		return errors.New("a size of log entries cannot be negative")
	}
	*f.n = uint64(n)
	return nil
}

// sizeFlag is a size in bytes (api.ParseBytes: 512MiB, 1073741824) or
// "unlimited" (httpapi.Unlimited). 0 is refused: no budget is never a
// default.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	switch {
	case f.n == nil || *f.n == 0: // 0: derived when the node starts
		return ""
	case *f.n == httpapi.Unlimited:
		return "unlimited"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if *f.n >= u.n && *f.n%u.n == 0 {
			return strconv.FormatInt(*f.n/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(*f.n, 10)
}

func (f sizeFlag) Set(v string) error {
	if strings.EqualFold(strings.TrimSpace(v), "unlimited") {
		*f.n = httpapi.Unlimited
		return nil
	}
	n, err := api.ParseBytes(v)
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("0 is not a budget: give a size, or unlimited")
	}
	*f.n = n
	return nil
}

// listFlag appends the items of a comma-separated value.
type listFlag struct{ l *[]string }

func (f listFlag) String() string {
	if f.l == nil {
		return ""
	}
	return strings.Join(*f.l, ",")
}

func (f listFlag) Set(v string) error {
	*f.l = append(*f.l, cli.CommaList(v)...)
	return nil
}

// routeFlag appends the routes of a comma-separated TOPIC:QUEUE list.
type routeFlag struct{ rs *[]pubsub.Route }

func (f routeFlag) String() string {
	if f.rs == nil {
		return ""
	}
	var s []string
	for _, r := range *f.rs {
		s = append(s, r.String())
	}
	return strings.Join(s, ",")
}

func (f routeFlag) Set(v string) error {
	rs, err := pubsub.ParseRoutes(v)
	*f.rs = append(*f.rs, rs...)
	return err
}
