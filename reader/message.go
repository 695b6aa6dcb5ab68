package reader

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Message is one delivery of a message to the reader's tasks.
type Message struct {
	// ID is the id of the message's lease (the server's message id: it
	// stays the same across deliveries).
	ID string
	// Body is the payload: the message as it was put on the queue, or,
	// when it came back from a requeue, the envelope's data (a JSON value
	// as it appears in the envelope; a body that was not JSON comes back
	// byte for byte, see the package documentation).
	Body []byte
	// Attempts counts the attempts of this message, this one included:
	// the envelope's tries after the increment. 1 on a first attempt.
	Attempts int
	// Data is what Preprocess produced (nil without Preprocess).
	Data any

	// Deliveries is the server's count of deliveries (X-Attempts), this
	// one included. It also counts deliveries that were not attempts: a
	// message put back because it was not due yet, or whose lease ran out
	// in a reader that died.
	Deliveries int
	// Started is when the message was first wrapped (the envelope's
	// started, whole seconds).
	Started time.Time
	// TasksLeft names the tasks this attempt runs, in order. In GiveUp it
	// names the tasks that never succeeded.
	TasksLeft []string
	// Err is set for GiveUp: the failures of the last attempt.
	Err error

	env envelope
}

// Decode unmarshals the body as JSON into v.
func (m *Message) Decode(v any) error { return json.Unmarshal(m.Body, v) }

// Envelope returns the message's BaseReader envelope as JSON, as the reader
// would put it back on the queue now (in GiveUp: with the final tries and
// the tasks that never succeeded), for dumping a given-up message.
func (m *Message) Envelope() []byte {
	e := m.env.clone()
	e.tries = m.Attempts
	e.tasksLeft = slices.Clone(m.TasksLeft)
	return e.encode()
}

// ErrRequeueWithoutBackoff, returned by a task (or wrapped in its error),
// fails the task like any error, so it is retried with the message's growing
// retry delay, but it does not count as a failure for the reader's back-off
// (pysimplehttp's RequeueWithoutBackoff).
var ErrRequeueWithoutBackoff = errors.New("requeue without backoff")

// EventKind is the outcome of one delivery.
type EventKind int

const (
	// EventDone: every task succeeded and the message was acked.
	EventDone EventKind = iota + 1
	// EventRetry: the attempt had failures; the message was given back
	// with a new envelope (tasks_left, tries, retry_on), due after
	// RequeueDelay × tries.
	EventRetry
	// EventNotDue: the message's retry_on was in the future; it was given
	// back unchanged, due at retry_on, without an attempt.
	EventNotDue
	// EventGiveUp: the message used up MaxTries; GiveUp ran and the
	// message was acked (after the dead-letter put, if configured).
	EventGiveUp
	// EventSkipped: Validate returned false; the message was acked.
	EventSkipped
	// EventReleased: the reader shut down before it could start or finish
	// the attempt; the message was given back at once, without counting
	// the attempt (tasks that succeeded are removed from tasks_left).
	EventReleased
)

func (k EventKind) String() string {
	switch k {
	case EventDone:
		return "done"
	case EventRetry:
		return "retry"
	case EventNotDue:
		return "not_due"
	case EventGiveUp:
		return "give_up"
	case EventSkipped:
		return "skipped"
	case EventReleased:
		return "released"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is the outcome of one delivery, passed to Config.OnEvent once the
// ack or nack that ends the delivery has been answered.
type Event struct {
	Kind    EventKind
	Message *Message
	// LeaseLost: the ack or nack answered 409 at once: the lease had ended
	// (a stall, or a node failure outlasted it), so it changed nothing.
	// The message is, or will be, delivered again (at least once).
	LeaseLost bool
	// Uncertain: the first try of the ack or nack had an unknown outcome
	// and a retry answered 409, so the first try most likely applied.
	Uncertain bool
	// Err is set when the ack or nack failed for good (SettleTimeout, or
	// the server refused it); the message comes back when its lease ends.
	Err error
}
