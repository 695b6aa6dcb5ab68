package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
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

// Options configures the handlers. The zero value of each field means its
// documented default.
type Options struct {
	// Queue is the replicated queue. Required by NewQueueHandler.
	Queue Queue
	// Cluster answers /readyz, /cluster/status and, if it implements
	// Leaver, POST /cluster/leave, and says where the leader is for
	// forwarding. Required by NewQueueHandler.
	Cluster Cluster

	// Gatherer is served on /metrics. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives httpapi's own metrics (requests by route and
	// code, messages put and handed out by queue). Default
	// prometheus.DefaultRegisterer. Registering twice on one Registerer
	// (the queue and the pubsub port both mount the admin endpoints)
	// shares the collectors.
	Registerer prometheus.Registerer

	// MaxMsgSize bounds one message (/put data, each /mput record, a /nack
	// body); larger ones get 413. Default DefaultMaxMsgSize (256 KiB).
	MaxMsgSize int64
	// MaxBodySize bounds a POST body; larger ones get 413. Default
	// DefaultMaxBodySize (5 MiB).
	MaxBodySize int64
	// MaxMGet lowers /mget?items= to at most this many (simplequeue
	// --max-mget). 0: unlimited.
	MaxMGet int
	// MGetSep is written between /mget items when the request has no
	// separator= (simplequeue --mget-item-sep). Default "\n".
	MGetSep string
	// MPutSep splits /mput input when the request has no separator=
	// (simplequeue --mput-item-sep). Default "\n".
	MPutSep string
	// Limits (--max-depth, --max-bytes, --overflow-policy) are stamped into
	// every put; a queue's own /config limits take precedence.
	Limits fsm.Limits
	// Overflow receives the messages evicted by the evict-oldest policy,
	// one per line. nil: they are dropped (still counted in overflow).
	Overflow *OverflowLog

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
	// Now is the local clock, used for the empty-poll fast path and the
	// long-poll timers; the leader stamps log time itself. Default time.Now.
	Now func() time.Time
	// Logger receives errors (component=httpapi). Default slog.Default().
	// There is no per-request log.
	Logger *slog.Logger
}

// withDefaults fills in defaults and checks the values that have bounds.
func (o Options) withDefaults() (Options, error) {
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.DefaultRegisterer
	}
	if o.MaxMsgSize == 0 {
		o.MaxMsgSize = DefaultMaxMsgSize
	}
	if o.MaxBodySize == 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.MGetSep == "" {
		o.MGetSep = "\n"
	}
	if o.MPutSep == "" {
		o.MPutSep = "\n"
	}
	if o.ProposeTimeout == 0 {
		o.ProposeTimeout = DefaultProposeTimeout
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.ForwardTimeout == 0 {
		o.ForwardTimeout = DefaultForwardTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "httpapi")

	var errs []error
	if o.MaxMsgSize < 0 {
		errs = append(errs, fmt.Errorf("MaxMsgSize %d is negative", o.MaxMsgSize))
	}
	if o.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("MaxBodySize %d is negative", o.MaxBodySize))
	}
	if o.MaxMGet < 0 {
		errs = append(errs, fmt.Errorf("MaxMGet %d is negative", o.MaxMGet))
	}
	if o.ProposeTimeout < 0 {
		errs = append(errs, fmt.Errorf("ProposeTimeout %s is negative", o.ProposeTimeout))
	}
	if o.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("MaxWait %s is negative", o.MaxWait))
	}
	if o.ForwardTimeout < 0 {
		errs = append(errs, fmt.Errorf("ForwardTimeout %s is negative", o.ForwardTimeout))
	}
	if o.Limits.MaxDepth < 0 || o.Limits.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("limits %+v: max depth and max bytes must not be negative", o.Limits))
	}
	if o.Limits.Policy > fsm.OverflowEvictOldest {
		errs = append(errs, fmt.Errorf("unknown overflow policy %d", o.Limits.Policy))
	}
	return o, errors.Join(errs...)
}
