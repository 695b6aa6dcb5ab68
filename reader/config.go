package reader

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Task processes one message. It returns nil when it is done with the
// message; any error (or a panic) is a failure: the task stays in the
// message's tasks_left and is retried on a later attempt. A task that
// returns an error wrapping ErrRequeueWithoutBackoff is retried the same
// way but does not slow the reader down (see Config.BackoffStep).
//
// The context ends when the reader's shutdown grace period runs out; a task
// should then return quickly. Tasks of one message run one after the other
// on the same *Message; tasks of different messages run concurrently (up to
// Config.Concurrency).
type Task func(ctx context.Context, m *Message) error

// Balance says which node a reader sends its requests to.
type Balance int

const (
	// BalanceDefault is BalanceLeader.
	BalanceDefault Balance = iota
	// BalanceLeader sends every request to the leader, learned from
	// /cluster/status and from the X-Served-By header of each answer, and
	// spreads over the other nodes only while the leader is unknown or
	// unreachable. Every get, ack and nack is executed by the leader
	// anyway; going there directly saves the follower's forwarding hop.
	// The package documentation gives the measurements behind the default.
	BalanceLeader
	// BalanceSpread sends requests to all nodes in turn (round robin), as
	// pysimplehttp's HostPool does; followers forward them to the leader.
	BalanceSpread
)

func (b Balance) String() string {
	switch b {
	case BalanceDefault, BalanceLeader:
		return "leader"
	case BalanceSpread:
		return "spread"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// ParseBalance reads "leader" or "spread" (for flags).
func ParseBalance(s string) (Balance, error) {
	switch s {
	case "leader", "":
		return BalanceLeader, nil
	case "spread":
		return BalanceSpread, nil
	}
	return 0, fmt.Errorf("balance %q: want leader or spread", s)
}

// Defaults of Config.
const (
	DefaultMaxTries         = 5
	DefaultRequeueDelay     = 90 * time.Second
	DefaultLease            = 30 * time.Second
	DefaultLongPoll         = 10 * time.Second
	DefaultConcurrency      = 1
	DefaultShutdownGrace    = 20 * time.Second
	DefaultBackoffStep      = 3 * time.Second
	DefaultBackoffMax       = 2 * time.Minute
	DefaultRefreshInterval  = 10 * time.Second
	DefaultProgressInterval = 30 * time.Second
	// DefaultSettleTimeout bounds the retries of one ack, nack or dead
	// letter put across nodes.
	DefaultSettleTimeout = time.Minute
)

// Config configures a Reader. Start from DefaultConfig, which holds every
// default; Addrs and Tasks are required. New only validates. A program
// registers the flags readers share from it with RegisterFlags.
type Config struct {
	// Addrs are base URLs of the queue port of one or more nodes, such as
	// "http://127.0.0.1:9001". The reader also discovers the other members
	// from /cluster/status unless DisableDiscovery is set.
	Addrs []string
	// Queue is the queue to read ("" is the queue named default).
	Queue string
	// Tasks maps task names to functions. Every message goes through every
	// task (the names a message still has in its tasks_left).
	Tasks map[string]Task

	// MaxTries is the number of attempts a message gets: after the
	// MaxTries-th attempt with a failure the reader gives up on it. Default
	// 5. pysimplehttp's max_tries=N allows N+1 attempts; MaxTries=N+1 is
	// the same budget. See the package documentation.
	MaxTries int
	// RequeueDelay is the back-off of a failed message: after its n-th
	// attempt it is due again RequeueDelay×n later (retry_on). Default 90s,
	// pysimplehttp's requeue_delay.
	RequeueDelay time.Duration
	// MGetItems bounds how many messages one fetch may lease; 0:
	// Concurrency. A fetch never asks for more messages than there are
	// idle workers, so the reader holds at most Concurrency leases.
	MGetItems int
	// Lease is the lease taken on each message. A message whose processing
	// takes longer is touched every Lease/3. Default 30s.
	Lease time.Duration
	// LongPoll is how long a fetch waits on an empty queue (wait=) before
	// it returns empty and is sent again. Default 10s.
	LongPoll time.Duration
	// Concurrency is the number of messages processed at the same time.
	// Default 1 (BaseReader's one at a time).
	Concurrency int

	// Preprocess runs before Validate and the tasks on every attempt; it
	// usually decodes m.Body into m.Data. An error (or a panic) fails the
	// attempt: every task stays in tasks_left and the message is retried.
	Preprocess func(ctx context.Context, m *Message) error
	// Validate runs after Preprocess. false: the message is acked without
	// running any task (counted as skipped). A panic fails the attempt like
	// a Preprocess error.
	Validate func(ctx context.Context, m *Message) bool
	// GiveUp is called once when the reader gives up on a message, before
	// the message is acked (or moved to DeadLetter). m.TasksLeft names the
	// tasks that never succeeded and m.Err holds the last attempt's
	// failures. A panic is logged and ignored.
	GiveUp func(ctx context.Context, m *Message)
	// DeadLetter, when not "", is a queue the reader puts given-up messages
	// on (their final envelope, with an idempotency key) before acking
	// them. "": given-up messages are only logged, passed to GiveUp and
	// acked.
	DeadLetter string

	// BackoffStep slows the reader down while tasks fail, like
	// pysimplehttp's BackoffTimer: every task (and Preprocess) has an
	// interval that grows by BackoffStep on each failure and shrinks by it
	// on each success (floor 0, cap BackoffMax); after each attempt the
	// reader fetches no new message for the largest interval. Default 3s;
	// zero or negative turns the back-off off.
	BackoffStep time.Duration
	// BackoffMax caps the back-off interval. Default 2m.
	BackoffMax time.Duration

	// Balance chooses the node of each request. Default BalanceLeader.
	Balance Balance
	// DisableDiscovery keeps the reader on Addrs only (for example when
	// the members' advertised addresses are not reachable from here).
	DisableDiscovery bool
	// RefreshInterval is how often the reader asks the nodes for
	// /cluster/status (members, leader, health). It also asks at once
	// after a failure. Default 10s.
	RefreshInterval time.Duration

	// ShutdownGrace bounds how long Run lets running tasks finish after
	// its context ends. Past it the tasks' context is cancelled, and what
	// is still running a moment later is given back. Default 20s.
	ShutdownGrace time.Duration
	// SettleTimeout bounds the retries of one ack, nack or dead-letter put
	// over the nodes. Default 1m.
	SettleTimeout time.Duration

	// Logger receives the reader's logs (component=reader). Required;
	// DefaultConfig: slog.Default().
	Logger *slog.Logger
	// ProgressInterval is how often a progress line (counters and rate) is
	// logged at info level. Default 30s; <= 0: never.
	ProgressInterval time.Duration
	// OnEvent, if set, is called after every outcome of a delivery (see
	// Event). It runs on the reader's goroutines: it must be quick and safe
	// for concurrent use.
	OnEvent func(Event)
	// HTTPClient sends the requests. Default: one with the client
	// package's pooled transport, verifying HTTPS nodes with TLS.
	HTTPClient *http.Client
	// Token, when set, goes with every request, discovery's included, as
	// a bearer token (client.Options.Token).
	Token string
	// TLS, when set, verifies the nodes' HTTPS certificates (usually
	// client.TLSConfig of the cluster CA) and makes every address,
	// discovered ones included, an https:// one (client.HTTPS).
	TLS *tls.Config
}

// preprocessTimer is the back-off timer of Preprocess and Validate, named
// as in pysimplehttp.
const preprocessTimer = "__preprocess"

// DefaultConfig returns the defaults: DefaultMaxTries attempts
// DefaultRequeueDelay apart, fetches of up to Concurrency messages
// (MGetItems 0), DefaultLease, DefaultLongPoll, DefaultConcurrency, a
// back-off of DefaultBackoffStep up to DefaultBackoffMax, the leader,
// DefaultRefreshInterval, DefaultShutdownGrace, DefaultSettleTimeout,
// slog.Default() and a progress line every DefaultProgressInterval.
func DefaultConfig() Config {
	return Config{
		MaxTries:         DefaultMaxTries,
		RequeueDelay:     DefaultRequeueDelay,
		Lease:            DefaultLease,
		LongPoll:         DefaultLongPoll,
		Concurrency:      DefaultConcurrency,
		BackoffStep:      DefaultBackoffStep,
		BackoffMax:       DefaultBackoffMax,
		Balance:          BalanceLeader,
		RefreshInterval:  DefaultRefreshInterval,
		ShutdownGrace:    DefaultShutdownGrace,
		SettleTimeout:    DefaultSettleTimeout,
		Logger:           slog.Default(),
		ProgressInterval: DefaultProgressInterval,
	}
}

// validated checks c and returns it ready to run: MGetItems 0 becomes
// Concurrency, BalanceDefault BalanceLeader, and a lease under 3ms 3ms
// (it is touched every Lease/3).
func (c Config) validated() (Config, error) {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("no address (Config.Addrs)"))
	}
	if c.Queue != "" {
		errs = append(errs, api.CheckQueueName(c.Queue))
	}
	if c.DeadLetter != "" {
		if err := api.CheckQueueName(c.DeadLetter); err != nil {
			errs = append(errs, fmt.Errorf("dead-letter queue: %w", err))
		}
	}
	if c.DeadLetter != "" && c.DeadLetter == c.Queue {
		errs = append(errs, errors.New("the dead-letter queue is the queue itself"))
	}
	if len(c.Tasks) == 0 {
		errs = append(errs, errors.New("no task (Config.Tasks)"))
	}
	for name, fn := range c.Tasks {
		switch {
		case name == "":
			errs = append(errs, errors.New("a task has an empty name"))
		case name == preprocessTimer:
			errs = append(errs, fmt.Errorf("task name %q is reserved", name))
		case fn == nil:
			errs = append(errs, fmt.Errorf("task %q is nil", name))
		}
	}
	for _, v := range []struct {
		name    string
		d       time.Duration
		zeroBad bool
	}{{"MaxTries", time.Duration(c.MaxTries), true}, {"RequeueDelay", c.RequeueDelay, false}, {"MGetItems", time.Duration(c.MGetItems), false},
		{"Lease", c.Lease, true}, {"LongPoll", c.LongPoll, true}, {"Concurrency", time.Duration(c.Concurrency), true},
		{"BackoffMax", c.BackoffMax, true}, {"RefreshInterval", c.RefreshInterval, true}, {"ShutdownGrace", c.ShutdownGrace, false},
		{"SettleTimeout", c.SettleTimeout, true}} {
		switch {
		case v.d < 0:
			errs = append(errs, fmt.Errorf("%s is negative", v.name))
		case v.d == 0 && v.zeroBad:
			errs = append(errs, fmt.Errorf("%s is zero (start from DefaultConfig)", v.name))
		}
	}
	switch c.Balance {
	case BalanceDefault, BalanceLeader, BalanceSpread:
	default:
		errs = append(errs, fmt.Errorf("unknown %v", c.Balance))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("no logger (Config.Logger)"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("reader: %w", err)
	}
	if c.MGetItems == 0 {
		c.MGetItems = c.Concurrency
	}
	c.Lease = max(c.Lease, 3*time.Millisecond)
	if c.Balance == BalanceDefault {
		c.Balance = BalanceLeader
	}
	return c, nil
}
