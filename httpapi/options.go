package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/pubsub"
)

// Queue is the replicated queue as handlers see it. In production it is a
// *fsm.FSM (reads) plus a *cluster.Node (Propose, ConsistentRead).
type Queue interface {
	// Propose commits cmd through raft and returns its result once applied.
	// Errors: api.ErrNotLeader, ErrNoLeader, ErrOutcomeUnknown,
	// ErrShuttingDown, or the context's error.
	Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	// ConsistentRead is a read index: after it returns nil the local FSM
	// reflects every acknowledged write.
	ConsistentRead(ctx context.Context) error
	Stats(queue string) fsm.QueueStats
	Dump(queue string, fn func(data []byte) error) error
	// Pending reports whether a get would find a message at leader time now
	// (Unix nanoseconds), else the earliest due time (0: none).
	Pending(queue string, now int64) (ready bool, next int64)
	// Changed returns a channel closed when queue may have gained ready messages.
	Changed(queue string) <-chan struct{}
}

// Cluster is this node's view of the cluster: for the admin endpoints, and
// for leader forwarding. In production it is a *cluster.Node.
type Cluster interface {
	Status() api.Status
	// Ready reports whether the node knows a leader and has applied up to
	// its commit index.
	Ready() bool
	// ID is this node's id: sent as X-Served-By and in the forwarding loop
	// guard.
	ID() string
	// IsLeader reports whether this node leads right now. It may be stale
	// by the time the handler acts; Propose and ConsistentRead re-check.
	IsLeader() bool
	// Leader returns the leader this node knows. ok is false while none is
	// known; QueueAddr is "" until this node has learned it (gossip).
	Leader() (info api.Leader, ok bool)
}

// Leaver is implemented by a Cluster that can remove this node from the
// cluster for good (POST /cluster/leave).
type Leaver interface {
	Leave(ctx context.Context) error
}

// PubsubHub is this node's pubsub registry as the pubsub port's handlers
// see it. In production it is a *pubsub.Hub.
type PubsubHub interface {
	// Publish queues msgs for topic's local subscribers and returns how
	// many were sent the last message.
	Publish(topic string, msgs [][]byte) (delivered int)
	// Subscribe serves a /sub request until the subscriber is gone. It
	// returns an error only when it wrote nothing (pubsub.ErrClosed).
	Subscribe(w http.ResponseWriter, r *http.Request, opts pubsub.SubscribeOptions) error
	Stats() pubsub.Stats
	// ResetStats zeroes messages received and sent and returns the
	// counters as they were just before.
	ResetStats() pubsub.Stats
	// Clients lists the local subscribers in connect order.
	Clients() []pubsub.Client
}

// Fanout publishes to the subscribers of the other nodes: the cluster half
// of pubsub. nil in Options means this node's subscribers only.
type Fanout interface {
	// Publish delivers msgs, in order, to topic's subscribers on the other
	// nodes and returns how many remote subscribers were sent the last
	// message, so that the /pub reply's <C> counts subscribers
	// cluster-wide. It is best effort: err reports the nodes it could not
	// reach while remoteSubscribers still counts the others, and the
	// Fanout counts its failures itself (pubsub.Hub.RecordRemoteFailure).
	// msgs must not be kept after it returns.
	Publish(ctx context.Context, topic string, msgs [][]byte) (remoteSubscribers int, err error)
}

// PubsubPeer is the node-to-node side of the pubsub port: the routes under
// /internal/ that the other nodes call. They are not bitly pubsub's API and
// none of them matches one of its route globs.
//
//   - POST /internal/deliver?topic=T, with the header X-Quorumq-Hop (a
//     request without it is a 400: it is not a publish API): the body is
//     one or more delivery records (pubsub.AppendDeliveryRecord:
//     length-prefixed, so any bytes survive). Each record goes to this
//     node's local subscribers of T, in order, through Deliver, and is
//     never forwarded: one hop. The answer is 200 with one line per
//     record: how many local subscribers were sent its last message.
//     400 for a bad topic or body, 413 for a body above twice
//     MaxBodySize plus 1 MiB (framing may double a body of empty
//     messages).
//   - GET /internal/subs: this node's subscriber-set entry as the cluster
//     gossips it (SubscriberSet), application/octet-stream. Peers fetch it
//     when they learned a newer version without its topics.
//   - GET /internal/clients: this node's subscribers as JSON
//     (pubsub.EncodeClients), for a cluster-wide /clients on another node.
type PubsubPeer struct {
	// Deliver hands messages published on another node to the local
	// subscribers (pubsub.Hub.Deliver). Required.
	Deliver func(topic string, msgs [][]byte) (delivered int)
	// SubscriberSet returns this node's encoded subscriber-set entry
	// (cluster.Subscribers.Local). nil: /internal/subs is a 404.
	SubscriberSet func() []byte
}

// Defaults and bounds.
const (
	// DefaultMaxMsgSize bounds one message.
	DefaultMaxMsgSize = 256 << 10
	// DefaultMaxBodySize bounds a request body.
	DefaultMaxBodySize = 5 << 20
	// DefaultProposeTimeout bounds each Propose and ConsistentRead.
	DefaultProposeTimeout = 10 * time.Second
	// DefaultMaxWait caps wait= on /get and /mget.
	DefaultMaxWait = 5 * time.Minute
	// DefaultForwardTimeout bounds how long a request that needs the leader
	// is held while no leader is reachable (--forward-timeout).
	DefaultForwardTimeout = 5 * time.Second
	// DefaultFanoutTimeout bounds Fanout.Publish for one /pub.
	DefaultFanoutTimeout = 5 * time.Second
	// MaxLease caps lease= on /get, /mget, /touch and /config.
	MaxLease = 12 * time.Hour
	// MaxDelay caps delay= on /put, /mput and /nack.
	MaxDelay = 7 * 24 * time.Hour

	// maxEntryBytes is the encoded size above which a /mput is split into
	// several put commands (log entries stay well under 512 KiB).
	maxEntryBytes = 256 << 10
	// maxIDs bounds the id list of /ack, /nack and /touch.
	maxIDs = 10000
	// maxReqIDLen bounds id=KEY on /put and /mput: keys are kept in the
	// replicated dedup table for fsm.DedupWindow.
	maxReqIDLen = 256
	// maxReasonLen bounds reason= on /nack; longer reasons are truncated.
	maxReasonLen = 1024
)

// Options configures both ports' handlers: one node builds both from one
// value. Start from DefaultOptions, which holds every default; the
// constructors only check the values. Each constructor uses the
// dependencies of its port and ignores the others'.
type Options struct {
	// Queue is the replicated queue. Required by NewQueueHandler.
	Queue Queue
	// Cluster answers /readyz, /cluster/status and, if it implements
	// Leaver, POST /cluster/leave, says where the leader is for
	// forwarding, and names this node in X-Served-By. Required by
	// NewQueueHandler. NewPubsubHandler serves the admin endpoints only
	// with a Cluster; without one its port is bitly pubsub's alone.
	Cluster Cluster
	// Hub is this node's pubsub registry. Required by NewPubsubHandler.
	Hub PubsubHub
	// Fanout reaches the other nodes' subscribers. nil: local only.
	Fanout Fanout
	// Clients, when set, replaces Hub.Clients for /clients: the cluster
	// listing returns every node's subscribers with Client.Node set, and
	// each line then ends in " node:<id>".
	Clients func(ctx context.Context) ([]pubsub.Client, error)
	// Peer serves the pubsub port's node-to-node routes under /internal/.
	// nil: they answer 404.
	Peer *PubsubPeer
	// Route, when set, runs for every /pub before anything is published
	// (route mode, pubsub.Router.Enqueue): an error answers 503 (413 for
	// pubsub.ErrRouteTooLarge) and nothing is published, so the publisher
	// can retry. Deliveries from other nodes never go through it.
	Route func(ctx context.Context, topic string, msgs [][]byte) error
	// Overflow receives the messages evicted by the evict-oldest policy,
	// one per line. nil: they are dropped (still counted in overflow).
	Overflow *OverflowLog

	// Gatherer is served on /metrics. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives httpapi's own metrics (requests by route and
	// code, messages put and handed out by queue, forwarding). Default
	// prometheus.DefaultRegisterer. Both ports register on it and share
	// the collectors.
	Registerer prometheus.Registerer
	// Logger receives errors (component=httpapi). Default slog.Default().
	// There is no per-request log.
	Logger *slog.Logger
	// Now is the local clock, used for the empty-poll fast path and the
	// long-poll timers; the leader stamps log time itself. Default time.Now.
	Now func() time.Time

	// MaxMsgSize bounds one message (/put data, each /mput record, a /nack
	// body); larger ones get 413. Default DefaultMaxMsgSize (256 KiB).
	MaxMsgSize int64
	// MaxBodySize bounds a POST body on either port; larger ones get 413.
	// Default DefaultMaxBodySize (5 MiB).
	MaxBodySize int64
	// MaxMGet lowers /mget?items= to at most this many (simplequeue
	// --max-mget). 0, the default: unlimited.
	MaxMGet int
	// MGetSep is written between /mget items when the request has no
	// separator= (simplequeue --mget-item-sep). Default "\n".
	MGetSep string
	// MPutSep splits /mput input when the request has no separator=
	// (simplequeue --mput-item-sep); not empty. Default "\n".
	MPutSep string
	// Limits (--max-depth, --max-bytes, --overflow-policy) are stamped into
	// every put; a queue's own /config limits take precedence. Default:
	// none, reject.
	Limits fsm.Limits

	// ProposeTimeout bounds each Propose and ConsistentRead. A write that
	// runs past it answers 503 "outcome unknown". Default 10s.
	ProposeTimeout time.Duration
	// MaxWait caps wait= on /get and /mget (longer waits are lowered to
	// it). Default 5m.
	MaxWait time.Duration
	// ForwardTimeout bounds the hold of a request that needs the leader on
	// a node that does not lead: waiting for a leader whose address is
	// known, and retrying after failures that left nothing applied. Past it
	// the answer is 503 "no leader". It does not bound a forwarded request
	// once the leader has it (a long-poll may take its whole wait=).
	// Default 5s (--forward-timeout).
	ForwardTimeout time.Duration
	// FanoutTimeout bounds each Fanout.Publish. Default
	// DefaultFanoutTimeout (5s).
	FanoutTimeout time.Duration
}

// DefaultOptions returns the options with every default set and no
// dependencies: set Queue and Cluster for the queue port, Hub (and
// Cluster, Fanout, Peer... for a cluster node) for the pubsub port.
func DefaultOptions() Options {
	return Options{
		Gatherer:       prometheus.DefaultGatherer,
		Registerer:     prometheus.DefaultRegisterer,
		Logger:         slog.Default(),
		Now:            time.Now,
		MaxMsgSize:     DefaultMaxMsgSize,
		MaxBodySize:    DefaultMaxBodySize,
		MGetSep:        "\n",
		MPutSep:        "\n",
		ProposeTimeout: DefaultProposeTimeout,
		MaxWait:        DefaultMaxWait,
		ForwardTimeout: DefaultForwardTimeout,
		FanoutTimeout:  DefaultFanoutTimeout,
	}
}

// validate checks the values both ports use; each constructor adds its
// port's required dependencies (required names what they are).
func (o *Options) validate(required ...error) error {
	errs := required
	if o.Gatherer == nil {
		errs = append(errs, errors.New("Gatherer is required"))
	}
	if o.Registerer == nil {
		errs = append(errs, errors.New("Registerer is required"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	if o.Now == nil {
		errs = append(errs, errors.New("Now is required"))
	}
	if o.MaxMsgSize <= 0 {
		errs = append(errs, fmt.Errorf("MaxMsgSize %d is not positive", o.MaxMsgSize))
	}
	if o.MaxBodySize <= 0 {
		errs = append(errs, fmt.Errorf("MaxBodySize %d is not positive", o.MaxBodySize))
	}
	if o.MaxMGet < 0 {
		errs = append(errs, fmt.Errorf("MaxMGet %d is negative", o.MaxMGet))
	}
	if o.MPutSep == "" {
		errs = append(errs, errors.New("MPutSep is empty"))
	}
	if o.Limits.MaxDepth < 0 || o.Limits.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("limits %+v: max depth and max bytes must not be negative", o.Limits))
	}
	if o.Limits.Policy > fsm.OverflowEvictOldest {
		errs = append(errs, fmt.Errorf("unknown overflow policy %d", o.Limits.Policy))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProposeTimeout", o.ProposeTimeout}, {"MaxWait", o.MaxWait},
		{"ForwardTimeout", o.ForwardTimeout}, {"FanoutTimeout", o.FanoutTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s is not positive", d.name, d.v))
		}
	}
	if o.Peer != nil && o.Peer.Deliver == nil {
		errs = append(errs, errors.New("Peer.Deliver is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	return nil
}
