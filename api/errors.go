package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Error is one kind of failure on the wire: the status code, the token sent
// in X-Error-Code (stable, for programs) and the one-line text sent when the
// error carries none of its own. Kinds are compared with errors.Is; a kind
// with a parent is also its parent (ErrInvalidQueueName is ErrBadRequest).
type Error struct {
	Token  string
	Status int
	// Text is the body of a response for this kind when the error has no
	// message of its own (see Errorf), or always when Fixed.
	Text string
	// Fixed kinds always answer Text: their detail is for the log, not the
	// client (an outcome that is unknown is unknown whatever the cause).
	Fixed  bool
	parent *Error
}

func (e *Error) Error() string { return e.Text }

// Is reports whether target is one of e's parents.
func (e *Error) Is(target error) bool {
	for p := e.parent; p != nil; p = p.parent {
		if p == target {
			return true
		}
	}
	return false
}

// Retryable reports whether a request answered with this kind applied
// nothing and may be sent again, to any node.
func (e *Error) Retryable() bool { return e == ErrUnavailable || e.Is(ErrUnavailable) }

// Errorf returns an error of kind e whose one-line text for the client is
// the formatted message.
func (e *Error) Errorf(format string, args ...any) error {
	return &detailed{kind: e, msg: fmt.Sprintf(format, args...)}
}

// detailed is an error of a kind with the text the client reads.
type detailed struct {
	kind *Error
	msg  string
}

func (d *detailed) Error() string { return d.msg }
func (d *detailed) Unwrap() error { return d.kind }

func kind(token string, status int, text string, parent *Error) *Error {
	return &Error{Token: token, Status: status, Text: text, parent: parent}
}

func fixed(e *Error) *Error { e.Fixed = true; return e }

// StatusQueueFull answers a put to a full queue (reject policy) and a
// request that would create a queue past the cluster's limit.
//
// It is 507 Insufficient Storage rather than 503: the cluster is healthy
// and every node would answer the same, so a load balancer or client must
// not mistake it for an unavailable node (503 is reserved for "retry
// shortly, maybe elsewhere"), and 507 says exactly what happened: the
// server cannot store the message. The queue drains as readers consume it,
// so producers should back off and retry.
const StatusQueueFull = http.StatusInsufficientStorage

// The error kinds. Every error response carries one of their tokens.
var (
	// ErrBadRequest is a malformed or missing parameter; the request
	// changed nothing.
	ErrBadRequest = kind("BAD_REQUEST", http.StatusBadRequest, "bad request", nil)
	// ErrInvalidQueueName is a queue name outside NamePattern.
	ErrInvalidQueueName = kind("INVALID_QUEUE_NAME", http.StatusBadRequest, "invalid queue name: want "+NamePattern, ErrBadRequest)
	// ErrInvalidTopicName is a topic name outside NamePattern.
	ErrInvalidTopicName = kind("INVALID_TOPIC_NAME", http.StatusBadRequest, "invalid topic name: want "+NamePattern, ErrBadRequest)
	// ErrInvalidCommand is a command whose parts do not fit together (for
	// example a touch without a lease on a queue without a default one).
	ErrInvalidCommand = kind("INVALID_COMMAND", http.StatusBadRequest, "invalid command", ErrBadRequest)
	// ErrTooLarge is a message or body above the node's limit.
	ErrTooLarge = kind("TOO_LARGE", http.StatusRequestEntityTooLarge, "request too large", nil)
	// ErrNotInFlight is an ack, nack or touch of a message that is not
	// leased: unknown, already acked, or its lease ran out.
	ErrNotInFlight = kind("NOT_IN_FLIGHT", http.StatusConflict, "message is not in flight (unknown, already acked, or its lease expired)", nil)
	// ErrQueueFull is a put to a queue at its limits under the reject policy.
	ErrQueueFull = kind("QUEUE_FULL", StatusQueueFull, "queue is full", nil)
	// ErrTooManyQueues is a request that would create a queue past the
	// cluster's limit.
	ErrTooManyQueues = kind("TOO_MANY_QUEUES", StatusQueueFull, "too many queues", ErrQueueFull)
	// ErrMethodNotAllowed is a method the route does not take.
	ErrMethodNotAllowed = kind("METHOD_NOT_ALLOWED", http.StatusMethodNotAllowed, "method not allowed", nil)
	// ErrNotFound is something the node does not have, such as an
	// endpoint of a feature it was not started with.
	ErrNotFound = kind("NOT_FOUND", http.StatusNotFound, "not found", nil)
	// ErrNotSupported is a request this node cannot serve at all.
	ErrNotSupported = kind("NOT_SUPPORTED", http.StatusNotImplemented, "not supported", nil)
	// ErrLastVoter refuses a leave that would leave the cluster without a
	// voter; nothing changed.
	ErrLastVoter = kind("LAST_VOTER", http.StatusConflict, "this node is the cluster's last voter and cannot leave", nil)
	// ErrUnauthorized: the request carries no token, or one the node does
	// not know. The answer has WWW-Authenticate: Bearer.
	ErrUnauthorized = kind("UNAUTHORIZED", http.StatusUnauthorized, "missing or unknown token", nil)
	// ErrForbidden: the request is refused whoever asks again the same way:
	// the token lacks the role or the queue or topic is outside its
	// scopes, a browser page of another origin sent an admin request, or a
	// node-to-node route was called by something that is not a member.
	ErrForbidden = kind("FORBIDDEN", http.StatusForbidden, "forbidden", nil)

	// ErrUnavailable: the cluster cannot serve the request now and applied
	// nothing of it; it is safe to retry, on any node. Every kind below
	// but ErrOutcomeUnknown is also ErrUnavailable.
	ErrUnavailable = kind("UNAVAILABLE", http.StatusServiceUnavailable, "unavailable; retry shortly", nil)
	// ErrNotLeader: the node that took the request does not lead (any
	// more); nothing was applied.
	ErrNotLeader = kind("NOT_LEADER", http.StatusServiceUnavailable, "this node is not the leader; retry", ErrUnavailable)
	// ErrNoLeader: no leader was known, or none could be reached, within
	// the wait.
	ErrNoLeader = kind("NO_LEADER", http.StatusServiceUnavailable, "no leader is known; retry shortly", ErrUnavailable)
	// ErrShuttingDown: the node is stopping and takes no new requests.
	ErrShuttingDown = fixed(kind("SHUTTING_DOWN", http.StatusServiceUnavailable, "this node is shutting down; retry", ErrUnavailable))
	// ErrRouteFailed: a publish in route mode could not be enqueued, so
	// nothing was published.
	ErrRouteFailed = kind("ROUTE_FAILED", http.StatusServiceUnavailable, "enqueue into the route's queue failed; nothing was published; retry", ErrUnavailable)
	// ErrCanceled: the client went away while the request waited; nobody
	// reads this answer.
	ErrCanceled = fixed(kind("CANCELED", http.StatusServiceUnavailable, "request canceled", ErrUnavailable))

	// ErrOutcomeUnknown: a write was handed to raft, but leadership was
	// lost, or the wait ran out, before it was known to be applied: it may
	// or may not take effect. Retry only with an idempotency key (id=).
	ErrOutcomeUnknown = fixed(kind("OUTCOME_UNKNOWN", http.StatusServiceUnavailable, "outcome unknown: the write may or may not have been applied; retry with id=KEY", nil))
	// ErrInternal is a failure of the node itself.
	ErrInternal = fixed(kind("INTERNAL", http.StatusInternalServerError, "internal server error", nil))
)

// kinds lists every kind, for decoding tokens.
var kinds = []*Error{
	ErrBadRequest, ErrInvalidQueueName, ErrInvalidTopicName, ErrInvalidCommand, ErrTooLarge,
	ErrNotInFlight, ErrQueueFull, ErrTooManyQueues, ErrMethodNotAllowed, ErrNotSupported,
	ErrLastVoter, ErrUnauthorized, ErrForbidden, ErrUnavailable, ErrNotLeader, ErrNoLeader, ErrShuttingDown, ErrRouteFailed,
	ErrCanceled, ErrOutcomeUnknown, ErrInternal,
}

// Classify returns the kind of err and the one-line text a client is sent
// for it. ErrOutcomeUnknown wins over any other kind err also carries (a
// write cut short by a lost leadership is unknown, not "not the leader").
// A canceled context is ErrCanceled. known is false for an error of no
// kind, which is ErrInternal.
func Classify(err error) (k *Error, text string, known bool) {
	switch {
	case errors.Is(err, ErrOutcomeUnknown):
		k = ErrOutcomeUnknown
	case errors.As(err, &k):
	case errors.Is(err, context.Canceled):
		k = ErrCanceled
	default:
		return ErrInternal, ErrInternal.Text, false
	}
	text = k.Text
	var d *detailed
	if !k.Fixed && errors.As(err, &d) && d.kind == k && d.msg != "" {
		text = d.msg
	}
	return k, OneLine(text), true
}

// Decode returns the kind of an error response: by its X-Error-Code token,
// else (an older server, a proxy in front of the node) by its status code.
// It is nil for a status that names no kind.
func Decode(token string, status int) *Error {
	for _, k := range kinds {
		if k.Token == token {
			return k
		}
	}
	switch status {
	case http.StatusBadRequest:
		return ErrBadRequest
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrForbidden
	case http.StatusConflict:
		return ErrNotInFlight
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusServiceUnavailable:
		return ErrUnavailable
	case StatusQueueFull:
		return ErrQueueFull
	}
	return nil
}

// OneLine folds line breaks into spaces: an error body is one line.
func OneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// Quote renders a client's value for an error text: quoted, on one line,
// cut to a readable length.
func Quote(v string) string {
	const max = 64
	if len(v) > max {
		return strconv.Quote(v[:max]) + "..."
	}
	return strconv.Quote(v)
}
