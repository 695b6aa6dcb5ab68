package httpapi

import (
	"context"
	"crypto/tls"
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
	// AllStats is every queue's Stats, sorted by name (/queues).
	AllStats() []fsm.QueueStats
	Dump(queue string, fn func(data []byte) error) error
	// DumpEach calls fn with a page of queue's ready messages and
	// returns its depth (the paged /dump).
	DumpEach(queue string, o fsm.DumpOptions, fn func(m fsm.DumpMessage) error) (total int64, err error)
	// Pending reports whether a get would find a message at leader time now
	// (Unix nanoseconds), else the earliest due time (0: none).
	Pending(queue string, now int64) (ready bool, next int64)
	// Changed returns a channel closed when queue may have gained ready messages.
	Changed(queue string) <-chan struct{}
	// Usage is what every queue holds together, in this node's state,
	// without raft: what MaxQueuedBytes is checked against.
	Usage() fsm.Usage
}

// GroupProposer is a Queue that can propose several commands together:
// committed in as few entries as fit, each command answered at its index
// with the result and error Propose would give it. The leader proposes a
// follower's batch this way; a Queue without it gets the commands one by
// one.
type GroupProposer interface {
	ProposeGroup(ctx context.Context, cmds []fsm.Command) ([]fsm.Result, []error)
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
	// DefaultForwardBatchQueue bounds the forwarded commands a follower
	// holds for its batches (--forward-batch-queue).
	DefaultForwardBatchQueue = 4096
	// DefaultForwardBatchQueueBytes bounds their encoded bytes
	// (--forward-batch-queue-bytes).
	DefaultForwardBatchQueueBytes = 64 << 20
	// DefaultFanoutTimeout bounds Fanout.Publish for one /pub.
	DefaultFanoutTimeout = 5 * time.Second
	// DefaultMaxMGet bounds /mget?items= (--max-mget).
	DefaultMaxMGet = 1000
	// MaxMGetLimit is the largest MaxMGet accepted: one get is applied
	// under the state machine's lock, and its answer is held in memory.
	MaxMGetLimit = 100000
	// DefaultMaxGetBytes bounds the message bytes of one /get or /mget
	// answer (--max-get-bytes).
	DefaultMaxGetBytes = 4 << 20
	// DefaultHandoverLease is how long a popped message is held for its
	// answer to be written before it comes back (--handover-lease).
	DefaultHandoverLease = 30 * time.Second
	// Unlimited as MaxQueuedBytes or MaxQueuedMessages turns that budget
	// off.
	Unlimited = -1
	// FallbackMaxQueuedBytes is the default budget of queued bytes where
	// the node does not derive one from its disk.
	FallbackMaxQueuedBytes = 1 << 30
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
	// Leaver, POST /cluster/leave (Backuper: GET /backup and POST
	// /restore), says where the leader is for
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
	// PubsubNodes, when set, lists every node's subscribers and pubsub
	// counters for GET /pubsub/topics (on both ports): this node's from
	// its Hub, the others' from their api.PathClients and
	// api.PathPubsubStats. nil: /pubsub/topics is a 404.
	PubsubNodes func(ctx context.Context) ([]PubsubNode, error)
	// Analytics, when set, answers GET /analytics (on both ports): the
	// aggregates of `quorumq analyze` read live from Redis. nil: 404.
	Analytics Analytics
	// Peer serves the pubsub port's node-to-node routes under /internal/.
	// nil: they answer 404.
	Peer *PubsubPeer
	// Route, when set, runs for every /pub before anything is published
	// (route mode, pubsub.Router.Enqueue): an error answers 503 (413 for
	// pubsub.ErrRouteTooLarge) and nothing is published, so the publisher
	// can retry. Deliveries from other nodes never go through it.
	Route func(ctx context.Context, topic string, msgs [][]byte) error
	// Auth, when set, makes every request but /healthz, /readyz and the
	// node-to-node routes carry a token (Authorization: Bearer TOKEN, or
	// token=TOKEN in the query) whose roles and scopes allow it: 401
	// without a known token, 403 when it does not allow the request.
	// nil: open mode, no tokens. In production an *auth.Store.
	Auth Authenticator
	// InternalAuth, when set, decides whether a request to a node-to-node
	// route (under api.PathInternal, on either port) comes from a member
	// of the cluster (the cluster's client certificate); false answers
	// 403. Tokens are never asked for there. nil: those routes are open,
	// which Auth does not allow (validate refuses Auth without it: pass
	// a function that returns true to keep them open knowingly).
	InternalAuth func(*http.Request) bool
	// NodeID, when set, names the cluster node a request comes from
	// (verified by its cluster certificate), or false for any other
	// client. With Auth, a request from a node without a token acts with
	// every role: nodes use the public routes for their own work (routed
	// publishes enqueued on the local queue port). nil: no request is a
	// node's.
	NodeID func(*http.Request) (string, bool)
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
	// --max-mget, whose 0 meant unlimited). 1 to MaxMGetLimit; default
	// DefaultMaxMGet (1000).
	MaxMGet int
	// MaxGetBytes bounds the message bytes one /get or /mget hands out:
	// the get stops before the next message would pass it, but always
	// hands out at least one. Decided by the state machine at apply time.
	// Default DefaultMaxGetBytes (4 MiB).
	MaxGetBytes int64
	// HandoverLease is how long a popped message stays held while its
	// answer is written: confirmed once it is, given back at once when it
	// cannot be, back by itself when the lease ends unconfirmed (a node
	// failure, a forward that timed out). The write of such an answer is
	// bounded by half of it. Default DefaultHandoverLease (30s).
	HandoverLease time.Duration
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
	// MaxQueuedBytes is this node's budget for queued data on disk: the
	// bodies of every message its queues hold plus fsm.MessageOverhead
	// each (Queue.Usage().Cost()). A /put or /mput that would take the
	// node past it answers 507 QUEUE_FULL with the figures, and nothing
	// is stored; the check runs on the node the client asked, before
	// forwarding, and again on the leader when the request is forwarded
	// there. Unlimited turns it off; 0 is refused. Default
	// FallbackMaxQueuedBytes; a node derives it from its disk
	// (--max-queued-bytes).
	MaxQueuedBytes int64
	// MaxQueuedMessages is this node's budget of stored messages, which
	// bounds the index the state machine keeps in memory
	// (fsm.IndexBytesPerMessage each); checked with MaxQueuedBytes, 507
	// past it. Default Unlimited; a node derives it from its memory
	// budget (--memory-budget).
	MaxQueuedMessages int64

	// ProposeTimeout bounds each Propose and ConsistentRead. A write that
	// runs past it answers 503 "outcome unknown". Default 10s.
	ProposeTimeout time.Duration
	// MaxWait caps wait= on /get and /mget (longer waits are lowered to
	// it). Default 5m.
	MaxWait time.Duration
	// ForwardTimeout bounds what a node that does not lead does for a
	// request that needs the leader, until the leader's answer starts:
	// waiting for a leader whose address is known, each attempt (dial,
	// TLS handshake, the leader's work) and the retries after failures
	// that left nothing applied; a long-poll adds its own wait=. Past it
	// the answer is 503: NO_LEADER, or OUTCOME_UNKNOWN for a write that
	// reached a leader that did not answer (a frozen one). A relayed
	// answer that then sends nothing for this long is cut. Default 5s
	// (--forward-timeout).
	ForwardTimeout time.Duration
	// ForwardBatch makes a follower turn the forwarded writes that are one
	// command each (/put, /mput, /ack, /nack, /touch) into commands itself
	// and send them to the leader in batches (POST api.PathPropose),
	// instead of relaying each request; see DESIGN.md, "Batched
	// forwarding". Only with a leader that advertises api.HeaderPropose.
	// Default true (--forward-batch).
	ForwardBatch bool
	// ForwardBatchQueue bounds the commands waiting to be sent in a
	// batch; a write that finds it full is relayed on its own, as without
	// batching. At least 1 with ForwardBatch. Default
	// DefaultForwardBatchQueue (4096, --forward-batch-queue).
	ForwardBatchQueue int
	// ForwardBatchQueueBytes bounds their encoded size in the same way.
	// Positive with ForwardBatch. Default DefaultForwardBatchQueueBytes
	// (64 MiB, --forward-batch-queue-bytes).
	ForwardBatchQueueBytes int64
	// PeerTLS, when set, is the client configuration of node-to-node
	// calls (the node's certificate, the cluster CA): requests are then
	// forwarded, and redirected, to the leader over https://. nil: http://.
	PeerTLS *tls.Config
	// FanoutTimeout bounds each Fanout.Publish. Default
	// DefaultFanoutTimeout (5s).
	FanoutTimeout time.Duration
	// MaxRestoreBytes bounds the backup a POST /restore takes (413
	// above). Default DefaultMaxRestoreBytes (64 GiB,
	// --max-restore-size).
	MaxRestoreBytes int64
	// RestoreTimeout bounds a whole POST /restore (upload, check,
	// replication) and a whole GET /backup (the download). Default
	// DefaultRestoreTimeout (30m, --restore-timeout).
	RestoreTimeout time.Duration
}

// DefaultOptions returns the options with every default set and no
// dependencies: set Queue and Cluster for the queue port, Hub (and
// Cluster, Fanout, Peer... for a cluster node) for the pubsub port.
func DefaultOptions() Options {
	return Options{
		Gatherer:          prometheus.DefaultGatherer,
		Registerer:        prometheus.DefaultRegisterer,
		Logger:            slog.Default(),
		Now:               time.Now,
		MaxMsgSize:        DefaultMaxMsgSize,
		MaxBodySize:       DefaultMaxBodySize,
		MaxMGet:           DefaultMaxMGet,
		MaxGetBytes:       DefaultMaxGetBytes,
		HandoverLease:     DefaultHandoverLease,
		MGetSep:           "\n",
		MPutSep:           "\n",
		MaxQueuedBytes:    FallbackMaxQueuedBytes,
		MaxQueuedMessages: Unlimited,
		ProposeTimeout:    DefaultProposeTimeout,
		MaxWait:           DefaultMaxWait,
		ForwardTimeout:    DefaultForwardTimeout,
		FanoutTimeout:     DefaultFanoutTimeout,
		MaxRestoreBytes:   DefaultMaxRestoreBytes,
		RestoreTimeout:    DefaultRestoreTimeout,

		ForwardBatch:           true,
		ForwardBatchQueue:      DefaultForwardBatchQueue,
		ForwardBatchQueueBytes: DefaultForwardBatchQueueBytes,
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
	if o.MaxRestoreBytes <= 0 || o.RestoreTimeout <= 0 {
		errs = append(errs, fmt.Errorf("MaxRestoreBytes %d and RestoreTimeout %v must be positive", o.MaxRestoreBytes, o.RestoreTimeout))
	}
	if o.MaxMGet < 1 || o.MaxMGet > MaxMGetLimit {
		errs = append(errs, fmt.Errorf("MaxMGet %d: want 1 to %d (0 no longer means unlimited)", o.MaxMGet, MaxMGetLimit))
	}
	if o.MaxGetBytes <= 0 {
		errs = append(errs, fmt.Errorf("MaxGetBytes %d is not positive", o.MaxGetBytes))
	}
	if o.MPutSep == "" {
		errs = append(errs, errors.New("MPutSep is empty"))
	}
	if o.Limits.MaxDepth < 0 || o.Limits.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("limits %+v: max depth and max bytes must not be negative", o.Limits))
	}
	if o.MaxQueuedBytes <= 0 && o.MaxQueuedBytes != Unlimited {
		errs = append(errs, fmt.Errorf("MaxQueuedBytes %d is not positive (Unlimited is %d)", o.MaxQueuedBytes, Unlimited))
	}
	if o.MaxQueuedMessages <= 0 && o.MaxQueuedMessages != Unlimited {
		errs = append(errs, fmt.Errorf("MaxQueuedMessages %d is not positive (Unlimited is %d)", o.MaxQueuedMessages, Unlimited))
	}
	if o.ForwardBatch && (o.ForwardBatchQueue < 1 || o.ForwardBatchQueueBytes <= 0) {
		errs = append(errs, fmt.Errorf("ForwardBatchQueue %d and ForwardBatchQueueBytes %d must be positive with ForwardBatch",
			o.ForwardBatchQueue, o.ForwardBatchQueueBytes))
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
		{"HandoverLease", o.HandoverLease},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s %s is not positive", d.name, d.v))
		}
	}
	if o.Auth != nil && o.InternalAuth == nil {
		errs = append(errs, errors.New("Auth is set without InternalAuth: the node-to-node routes would be open to anonymous clients"))
	}
	if o.Peer != nil && o.Peer.Deliver == nil {
		errs = append(errs, errors.New("Peer.Deliver is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	return nil
}
