package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/fsm"
)

// Error kinds of this package. Handlers return an *apiError of one of these
// (or an fsm/cluster error); errorTable decides the response.
var (
	errBadRequest   = errors.New("bad request")
	errTooLarge     = errors.New("too large")
	errMethod       = errors.New("method not allowed")
	errNotSupported = errors.New("not supported")
	errUnavailable  = errors.New("unavailable")
)

// apiError is an error with the one line the client reads.
type apiError struct {
	kind error
	msg  string
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.kind }

func newError(kind error, format string, args ...any) error {
	return &apiError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return newError(errBadRequest, format, args...)
}

func tooLarge(format string, args ...any) error {
	return newError(errTooLarge, format, args...)
}

func invalidQueueName(name string) error {
	return newError(fsm.ErrInvalidQueueName, "invalid queue name %s: want [A-Za-z0-9._-]{1,64}", quote(name))
}

// errorClass is one row of the error table.
type errorClass struct {
	kind  error
	code  int
	token string // stable, for programs: the X-Error-Code header
	msg   string // body when the error carries no message of its own
	fixed bool   // always send msg, whatever the error says
}

// Tokens that the forwarding step reads in a leader's 503: the leader
// applied nothing, so the request may be sent again.
const (
	tokenNotLeader    = "NOT_LEADER"
	tokenNoLeader     = "NO_LEADER"
	tokenShuttingDown = "SHUTTING_DOWN"
)

const outcomeUnknownMsg = "outcome unknown: the write may or may not have been applied; retry with id=KEY"

// errorTable maps every error a handler can return to a response. It is
// the only place that decides error status codes. Rows are tried in order
// with errors.Is; every 503 also carries Retry-After: 1.
var errorTable = []errorClass{
	{kind: cluster.ErrOutcomeUnknown, code: http.StatusServiceUnavailable, token: "OUTCOME_UNKNOWN", msg: outcomeUnknownMsg, fixed: true},
	{kind: errBadRequest, code: http.StatusBadRequest, token: "BAD_REQUEST", msg: "bad request"},
	{kind: fsm.ErrInvalidQueueName, code: http.StatusBadRequest, token: "INVALID_QUEUE_NAME", msg: "invalid queue name: want [A-Za-z0-9._-]{1,64}"},
	{kind: fsm.ErrInvalidCommand, code: http.StatusBadRequest, token: "INVALID_COMMAND", msg: "invalid command"},
	{kind: errTooLarge, code: http.StatusRequestEntityTooLarge, token: "TOO_LARGE", msg: "request too large"},
	{kind: fsm.ErrNotInFlight, code: http.StatusConflict, token: "NOT_IN_FLIGHT", msg: "message is not in flight (unknown, already acked, or its lease expired)"},
	{kind: fsm.ErrQueueFull, code: StatusQueueFull, token: "QUEUE_FULL", msg: "queue is full"},
	{kind: fsm.ErrTooManyQueues, code: StatusQueueFull, token: "TOO_MANY_QUEUES", msg: "too many queues"},
	{kind: errMethod, code: http.StatusMethodNotAllowed, token: "METHOD_NOT_ALLOWED", msg: "method not allowed"},
	{kind: errNotSupported, code: http.StatusNotImplemented, token: "NOT_SUPPORTED", msg: "not supported"},
	{kind: cluster.ErrLastVoter, code: http.StatusConflict, token: "LAST_VOTER", msg: "this node is the cluster's last voter and cannot leave"},
	// Only the forwarding step words its own NOT_LEADER and NO_LEADER
	// (*apiError); cluster's errors get the fixed text.
	{kind: cluster.ErrNotLeader, code: http.StatusServiceUnavailable, token: tokenNotLeader, msg: "this node is not the leader; retry"},
	{kind: cluster.ErrNoLeader, code: http.StatusServiceUnavailable, token: tokenNoLeader, msg: "no leader is known; retry shortly"},
	{kind: cluster.ErrShuttingDown, code: http.StatusServiceUnavailable, token: tokenShuttingDown, msg: "this node is shutting down; retry", fixed: true},
	{kind: errUnavailable, code: http.StatusServiceUnavailable, token: "UNAVAILABLE", msg: "unavailable; retry shortly"},
	// The client went away while waiting; nobody reads this answer.
	{kind: context.Canceled, code: http.StatusServiceUnavailable, token: "CANCELED", msg: "request canceled", fixed: true},
}

var internalError = errorClass{code: http.StatusInternalServerError, token: "INTERNAL", msg: "internal server error", fixed: true}

// classify returns the response for err: its class and the one-line body
// (without the final newline). known is false for errors outside the table.
func classify(err error) (c errorClass, body string, known bool) {
	c, known = internalError, false
	for _, row := range errorTable {
		if errors.Is(err, row.kind) {
			c, known = row, true
			break
		}
	}
	body = c.msg
	var ae *apiError
	if !c.fixed && errors.As(err, &ae) && ae.msg != "" {
		body = ae.msg
	}
	return c, oneLine(body), known
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
