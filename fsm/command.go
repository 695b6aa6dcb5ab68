package fsm

import (
	"errors"
	"fmt"
	"time"
)

// Version is the newest format version of a log entry, written as its first
// byte. A replica that meets a newer version refuses to apply it rather than
// diverge. An entry is written with the oldest version that can carry it:
// version 1 unless it holds a command added in version 2 (a get with caps
// or a handover, OpHandoverAck, OpHandoverNack), so that entries an older
// binary can apply are still written for it during a rolling upgrade.
// Version 3 adds OpPurge and OpRedrive.
const Version = 3

// version2 is the format that added capped gets and the handover ops.
const version2 = 2

// version1 is the format of the first release: every op up to OpTick, and
// OpGet with Max and Lease only.
const version1 = 1

// Op is the type of one command.
type Op uint8

// The command set. Values are part of the log format: never renumber them.
const (
	// OpPut stores one or more messages (simplequeue /put and /mput).
	OpPut Op = 1
	// OpGet hands out up to Max ready messages: popped when Lease is 0,
	// leased (in flight until acked or the lease ends) otherwise.
	OpGet Op = 2
	// OpAck finishes leased messages.
	OpAck Op = 3
	// OpNack gives leased messages back, ready again after Delay; Data, when
	// HasData is set, replaces the message body.
	OpNack Op = 4
	// OpTouch extends the lease of in-flight messages to now+Lease.
	OpTouch Op = 5
	// OpConfigure replaces a queue's settings.
	OpConfigure Op = 6
	// OpResetStats zeroes a queue's puts, gets and depth_high_water.
	OpResetStats Op = 7
	// OpTick only advances time: expired leases and due deferred messages of
	// every queue are moved to ready. The leader proposes it so that /stats
	// and followers converge without client traffic.
	OpTick Op = 8

	// Op 9 is the log's spelling of an OpGet that sets MaxBytes, MaxIDBytes
	// or Handover (codec.go); it decodes as OpGet and never appears in a
	// Command.

	// OpHandoverAck confirms handovers: the messages of IDs that are still
	// under a handover lease (see Command.Handover) are finished; other ids
	// are skipped, not refused, since a late confirmation may find its
	// message already given back or expired.
	OpHandoverAck Op = 10
	// OpHandoverNack gives handovers back: the messages of IDs still under
	// a handover lease return to the head of their queue at once, the
	// delivery not counted as an attempt (their answer was never written).
	// Other ids are skipped.
	OpHandoverNack Op = 11

	// OpPurge removes up to Max (0 or more than MaxAdminBatch: MaxAdminBatch)
	// of the queue's ready messages, head first, then its deferred ones,
	// for good. Leased messages stay. Result.Count is how many went,
	// Result.Left how many ready and deferred ones are left. Version 3.
	OpPurge Op = 12
	// OpRedrive moves ready messages of the queue, in order, to To, or
	// when To is empty to the queue each was dead-lettered from, with
	// their attempts reset to 0 and their last error and origin cleared.
	// It looks at the messages from position Skip on (those before it
	// stayed in earlier commands), at most MaxAdminBatch of them, and
	// moves up to Max (0 or more than MaxAdminBatch: MaxAdminBatch);
	// messages without an origin, when To is empty, stay. Result.Count
	// is how many moved, Result.Stayed how many it looked at and left,
	// Result.Left the ready messages left in the queue. Version 3.
	OpRedrive Op = 13
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpGet:
		return "get"
	case OpAck:
		return "ack"
	case OpNack:
		return "nack"
	case OpTouch:
		return "touch"
	case OpConfigure:
		return "configure"
	case OpResetStats:
		return "reset_stats"
	case OpTick:
		return "tick"
	case OpHandoverAck:
		return "handover_ack"
	case OpHandoverNack:
		return "handover_nack"
	case OpPurge:
		return "purge"
	case OpRedrive:
		return "redrive"
	}
	return "unknown"
}

// OverflowPolicy says what a put does when it would take a queue past its limits.
type OverflowPolicy uint8

const (
	// OverflowReject refuses the whole put with ErrQueueFull and stores nothing.
	OverflowReject OverflowPolicy = 0
	// OverflowEvictOldest stores the put, then drops ready messages from the
	// head until the queue fits again (simplequeue's behaviour).
	OverflowEvictOldest OverflowPolicy = 1
)

// String is the policy's name on the wire and the command line: reject or
// evict-oldest.
func (p OverflowPolicy) String() string {
	if p == OverflowEvictOldest {
		return "evict-oldest"
	}
	return "reject"
}

// MarshalText writes String.
func (p OverflowPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText reads a policy's name; any other text is an error.
func (p *OverflowPolicy) UnmarshalText(b []byte) error {
	switch string(b) {
	case "reject":
		*p = OverflowReject
	case "evict-oldest":
		*p = OverflowEvictOldest
	default:
		return fmt.Errorf("overflow policy %q: want reject or evict-oldest", b)
	}
	return nil
}

// Limits bound a queue. Zero means unlimited. The leader stamps its
// configured limits into every put so that all replicas enforce the same ones.
type Limits struct {
	MaxDepth int64
	MaxBytes int64
	Policy   OverflowPolicy
}

// QueueConfig holds the replicated per-queue settings.
type QueueConfig struct {
	// DefaultLease is used by a leased get that gives no lease of its own (0: none).
	DefaultLease time.Duration
	// MaxAttempts is the number of deliveries after which a message that is
	// nacked or whose lease runs out goes to DeadLetter (0: unlimited).
	MaxAttempts uint32
	// DeadLetter names the queue that receives messages past MaxAttempts.
	// Empty: such messages are dropped and counted in Dead.
	DeadLetter string
	// Limits, when any field is set, override the limits a put carries.
	Limits Limits
}

// Command is one state change. Which fields matter depends on Op.
type Command struct {
	Op    Op
	Queue string

	// Put.
	Messages [][]byte
	Delay    time.Duration // also Nack
	// ReqID is the client's request id (id=KEY on /put): a put whose ReqID was
	// applied within DedupWindow is not applied again.
	ReqID  string
	Limits Limits

	// Get: up to Max messages. Lease > 0 leases them for that long; 0 uses
	// the queue's DefaultLease, which pops them when none is set; < 0 (api.NoLease)
	// always pops. Touch: the new lease, 0 meaning the queue's DefaultLease.
	Max   int
	Lease time.Duration
	// Get: MaxBytes (0: no bound) stops the get before the bodies handed
	// out would add up to more than MaxBytes; MaxIDBytes (0: no bound)
	// before their ids, written in decimal and joined with commas (the
	// X-Message-Ids header), would be longer than MaxIDBytes. The first
	// message is always handed out, whatever its size. Both are decided
	// here, at apply time, so that every replica takes the same messages.
	MaxBytes   int64
	MaxIDBytes int
	// Get: Handover > 0 turns a get that would pop (Lease and the queue's
	// DefaultLease resolve to none) into a handover: the messages are
	// leased for Handover, marked as a handover, and Result.Handover is
	// set. The proposer confirms them with OpHandoverAck once the answer
	// is written, or gives them back with OpHandoverNack; unconfirmed,
	// they return to the head when the lease ends, never dead-lettered.
	// Handover leases are not in flight for OpAck, OpNack and OpTouch.
	Handover time.Duration

	// Ack, Nack, Touch, HandoverAck, HandoverNack.
	IDs     []uint64
	HasData bool   // Nack: Data replaces the body
	Data    []byte // Nack
	Reason  string // Nack: recorded as the message's last error

	// Redrive: To is the queue every moved message goes to (empty: each
	// to its origin); Skip is the position from the head to start at.
	To   string
	Skip int

	// Configure: the fields of Config named in ConfigFields replace the
	// queue's current ones, atomically; ConfigFields 0 replaces them all.
	Config       QueueConfig
	ConfigFields ConfigField
}

// ConfigField names settings of QueueConfig, for partial updates.
type ConfigField uint8

// The settings a configure command can change one by one.
const (
	ConfigDefaultLease ConfigField = 1 << iota
	ConfigMaxAttempts
	ConfigDeadLetter
	ConfigMaxDepth
	ConfigMaxBytes
	ConfigPolicy
)

// Entry is one Raft log entry: commands that share the leader's timestamp.
// Grouping many requests into one entry is the application half of group commit.
type Entry struct {
	// Now is the leader's wall clock in Unix nanoseconds when it proposed the entry.
	Now      int64
	Commands []Command
}

// Message is a message handed to a reader.
type Message struct {
	ID uint64
	// Attempts counts deliveries, this one included.
	Attempts uint32
	Data     []byte
	// LastError is the reason of the last nack, or "lease expired"; empty
	// on a first delivery.
	LastError string
}

// Result is the outcome of one command, returned to the node that proposed it.
// Byte slices in it share memory with the state (a leased message keeps its
// body there): treat them as read-only.
type Result struct {
	// Err is a business outcome, one of the api kinds ErrQueueFull,
	// ErrTooManyQueues (a queue past MaxQueues), ErrNotInFlight (an ack,
	// nack or touch of an id that is not leased), ErrInvalidQueueName or
	// ErrInvalidCommand (fields that do not fit together); the command
	// changed nothing.
	Err error
	// IDs are the ids assigned by a put, in order.
	IDs []uint64
	// Duplicate is set when a put's ReqID was seen within the window;
	// IDs then holds the ids of the original put.
	Duplicate bool
	// Messages are what a get handed out, oldest first.
	Messages []Message
	// Handover is set when a get's Messages are under a handover lease
	// (Command.Handover): the proposer must confirm or give them back.
	Handover bool
	// Evicted are bodies dropped by OverflowEvictOldest, oldest first; the
	// proposer writes them to its overflow log.
	Evicted [][]byte
	// Count is how many ids an ack, nack, touch, handover ack or handover
	// nack applied to, how many messages a purge removed or a redrive
	// moved.
	Count int
	// Left is what a purge left of the queue's ready and deferred
	// messages, or a redrive of its ready ones.
	Left int
	// Stayed is how many messages a redrive looked at and left in place
	// (no origin and no To): the next command's Skip grows by it.
	Stayed int
}

// HandoverExpired is the LastError of a message whose handover lease ran
// out unconfirmed: its answer may have been written, so it may come twice.
const HandoverExpired = "handover expired"

// Errors that stop decoding a log entry or a snapshot.
var (
	// ErrCorrupt means the bytes do not decode as a log entry or snapshot.
	ErrCorrupt = errors.New("corrupt encoding")
	// ErrNewerVersion means the bytes were written by a newer quorumq.
	ErrNewerVersion = errors.New("written by a newer version")
)

const (
	// MaxQueues bounds the number of queues so a client cannot exhaust memory with names.
	MaxQueues = 10000
	// DedupWindow is how long a put's ReqID is remembered.
	DedupWindow = 2 * time.Minute
	// DedupMaxKeys bounds the dedup table; the oldest keys are forgotten first.
	DedupMaxKeys = 200000
	// MaxAdminBatch bounds the messages one purge or redrive command
	// removes, moves or looks at, so that one apply cannot stall the log;
	// the proposer sends more commands for more.
	MaxAdminBatch = 10000
)
