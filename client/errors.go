package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumq/quorumq/api"
)

// HTTPError is a non-2xx answer.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the X-Error-Code token ("" when the server sent none).
	Code string
	// Body is the one-line error text, without its final newline.
	Body string
	// URL is the request's address and path; a stream's carries its query
	// string, any token= value redacted.
	URL string
	// ServedBy is the X-Served-By header: the node that answered.
	ServedBy string

	kind *api.Error
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

// Unwrap returns the kind of the answer (package api), nil when its
// status names none: compare with errors.Is(err, api.ErrQueueFull), or
// api.ErrUnavailable for every kind that applied nothing.
func (e *HTTPError) Unwrap() error {
	if e.kind == nil {
		return nil
	}
	return e.kind
}

// newHTTPError builds the error for a non-2xx answer: X-Error-Code first,
// the status code second.
func newHTTPError(status int, h http.Header, body []byte, url string) *HTTPError {
	e := &HTTPError{
		Status:   status,
		Code:     h.Get(api.HeaderErrorCode),
		Body:     firstLine(body),
		URL:      url,
		ServedBy: h.Get(api.HeaderServedBy),
	}
	e.kind = api.Decode(e.Code, status)
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
	return errors.Is(err, api.ErrUnavailable) && !errors.Is(err, api.ErrOutcomeUnknown)
}
