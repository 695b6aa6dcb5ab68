package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error kinds. Every error returned by this package for a non-2xx answer
// is an *HTTPError that unwraps to at most two of these; compare with
// errors.Is.
var (
	// ErrBadRequest: 400, malformed or missing parameter (BAD_REQUEST,
	// INVALID_QUEUE_NAME, INVALID_TOPIC_NAME, INVALID_COMMAND). Also
	// returned without a request for input this package refuses to send.
	ErrBadRequest = errors.New("bad request")
	// ErrNotInFlight: 409, ack, nack or touch of a message that is not
	// leased (unknown, already acked, or its lease ran out).
	ErrNotInFlight = errors.New("message is not in flight")
	// ErrTooLarge: 413, a message or body above the node's limit.
	ErrTooLarge = errors.New("too large")
	// ErrQueueFull: 507, the queue is full under the reject policy, or the
	// cluster holds too many queues (QUEUE_FULL, TOO_MANY_QUEUES).
	ErrQueueFull = errors.New("queue is full")
	// ErrUnavailable: the cluster cannot serve the request now and applied
	// nothing of it; safe to retry, on any node. 503 with NO_LEADER,
	// NOT_LEADER, SHUTTING_DOWN or UNAVAILABLE (or a 503 without a token),
	// and "no node could be reached" after every attempt failed to
	// connect.
	ErrUnavailable = errors.New("unavailable")
	// ErrNoLeader: 503 NO_LEADER or NOT_LEADER, an election is in
	// progress. Every ErrNoLeader is also ErrUnavailable.
	ErrNoLeader = errors.New("no leader")
	// ErrOutcomeUnknown: the write may or may not have been applied: 503
	// OUTCOME_UNKNOWN, or the connection failed after the request was
	// sent. Retry only a request that carries an idempotency key (id=).
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// HTTPError is a non-2xx answer.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the X-Error-Code token ("" when the server sent none).
	Code string
	// Body is the one-line error text, without its final newline.
	Body string
	// URL is the request's address and path (no query string).
	URL string
	// ServedBy is the X-Served-By header: the node that answered.
	ServedBy string

	kinds []error
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	b.WriteString("quorumq: ")
	if e.URL != "" {
		b.WriteString(e.URL)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Body != "" {
		b.WriteString(": ")
		b.WriteString(e.Body)
	}
	return b.String()
}

// Unwrap returns the error kinds of the answer (see the Err variables).
func (e *HTTPError) Unwrap() []error { return e.kinds }

// tokenKinds maps X-Error-Code tokens to error kinds. It is read before
// the status code: the token is the server's precise word.
var tokenKinds = map[string][]error{
	"BAD_REQUEST":        {ErrBadRequest},
	"INVALID_QUEUE_NAME": {ErrBadRequest},
	"INVALID_TOPIC_NAME": {ErrBadRequest},
	"INVALID_COMMAND":    {ErrBadRequest},
	"TOO_LARGE":          {ErrTooLarge},
	"NOT_IN_FLIGHT":      {ErrNotInFlight},
	"QUEUE_FULL":         {ErrQueueFull},
	"TOO_MANY_QUEUES":    {ErrQueueFull},
	"NO_LEADER":          {ErrNoLeader, ErrUnavailable},
	"NOT_LEADER":         {ErrNoLeader, ErrUnavailable},
	"SHUTTING_DOWN":      {ErrUnavailable},
	"UNAVAILABLE":        {ErrUnavailable},
	"OUTCOME_UNKNOWN":    {ErrOutcomeUnknown},
}

// statusKinds maps status codes to error kinds when the token is absent
// or unknown (an older server, a proxy in front of the node).
var statusKinds = map[int][]error{
	http.StatusBadRequest:            {ErrBadRequest},
	http.StatusConflict:              {ErrNotInFlight},
	http.StatusRequestEntityTooLarge: {ErrTooLarge},
	http.StatusServiceUnavailable:    {ErrUnavailable},
	http.StatusInsufficientStorage:   {ErrQueueFull},
}

// newHTTPError builds the error for a non-2xx answer: X-Error-Code first,
// the status code second.
func newHTTPError(status int, h http.Header, body []byte, url string) *HTTPError {
	e := &HTTPError{
		Status:   status,
		Code:     h.Get("X-Error-Code"),
		Body:     firstLine(body),
		URL:      url,
		ServedBy: h.Get("X-Served-By"),
	}
	if k, ok := tokenKinds[e.Code]; ok {
		e.kinds = k
	} else {
		e.kinds = statusKinds[status]
	}
	return e
}

// firstLine returns the first line of an error body, bounded, without
// trailing CR/LF.
func firstLine(body []byte) string {
	const max = 512
	s := string(body)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, "\r")
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

// retryable reports whether err says the request was not applied, so that
// it may be sent again to any node whatever it was.
func retryable(err error) bool {
	return errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrOutcomeUnknown)
}
