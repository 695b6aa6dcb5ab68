package tohttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/reader"
)

// taskName is the reader task that sends a message.
const taskName = "http"

// maxErrorBody bounds what is read of a failed answer (for the log).
const maxErrorBody = 4 << 10

// Stats are the forwarder's counters.
type Stats struct {
	// Requests by result: "2xx", "3xx", "4xx", "5xx", "timeout", "error".
	Requests map[string]int64
	// Delivered messages (a 2xx answer), DeadLettered and Dropped ones
	// (failed for good).
	Delivered, DeadLettered, Dropped int64
}

// Forwarder forwards one queue to one endpoint.
type Forwarder struct {
	cfg        Config
	log        *slog.Logger
	rd         *reader.Reader
	q          *client.Queue
	httpClient *http.Client
	deadLetter string // "" drops

	requests                         *prometheus.CounterVec
	messages                         *prometheus.CounterVec
	delivered, deadLettered, dropped atomic.Int64
	byResult                         [len(results)]atomic.Int64
}

var results = [...]string{"2xx", "3xx", "4xx", "5xx", "timeout", "error"}

// New checks cfg and returns a forwarder; nothing is sent before Run.
func New(cfg Config) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger.With("component", "to_http"), httpClient: cfg.HTTPClient}
	if f.httpClient == nil {
		f.httpClient = &http.Client{Transport: client.NewTransport()}
	}
	opts := client.DefaultOptions()
	opts.Token, opts.TLS = cfg.Reader.Token, cfg.Reader.TLS
	q, err := client.NewQueue(cfg.Reader.Addrs, &opts)
	if err != nil {
		return nil, fmt.Errorf("to_http: %w", err)
	}
	f.q = q
	labels := prometheus.Labels{"queue": queueName(cfg.Reader.Queue)}
	f.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorumq_to_http_requests_total", Help: "Requests to the endpoint, by result (2xx, 3xx, 4xx, 5xx, timeout, error).",
		ConstLabels: labels}, []string{"result"})
	f.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "quorumq_to_http_messages_total", Help: "Messages done with, by outcome (delivered, dead_lettered, dropped).",
		ConstLabels: labels}, []string{"outcome"})
	for _, r := range results {
		f.requests.WithLabelValues(r)
	}
	for _, o := range []string{"delivered", "dead_lettered", "dropped"} {
		f.messages.WithLabelValues(o)
	}
	return f, nil
}

// Collectors returns the forwarder's metrics and its reader's (once Run
// has started it; before, only the forwarder's).
func (f *Forwarder) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{f.requests, f.messages}
	if f.rd != nil {
		cs = append(cs, f.rd.Collectors()...)
	}
	return cs
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{Requests: map[string]int64{}, Delivered: f.delivered.Load(), DeadLettered: f.deadLettered.Load(), Dropped: f.dropped.Load()}
	for i, r := range results {
		s.Requests[r] = f.byResult[i].Load()
	}
	return s
}

// Prepare resolves the dead-letter queue (asking the cluster for the
// queue's configuration when Config.DeadLetter is empty) and builds the
// reader. Run calls it when it was not called; a program calls it first to
// register Collectors before Run.
func (f *Forwarder) Prepare(ctx context.Context) error {
	if f.rd != nil {
		return nil
	}
	switch {
	case f.cfg.Drop:
	case f.cfg.DeadLetter != "":
		f.deadLetter = f.cfg.DeadLetter
	default:
		qc, err := f.q.Config(ctx, f.cfg.Reader.Queue, client.ConfigChange{})
		if err != nil {
			return fmt.Errorf("to_http: reading the queue's configuration for its dead_letter: %w", err)
		}
		f.deadLetter = qc.DeadLetter
	}
	rc := f.cfg.Reader
	rc.Logger = f.cfg.Logger
	rc.Tasks = map[string]reader.Task{taskName: f.send}
	rc.MaxTries = f.cfg.MaxAttempts + deadLetterTries
	rc.DeadLetter = f.deadLetter
	rd, err := reader.New(rc)
	if err != nil {
		return cli.Mark(err, ErrInvalid)
	}
	f.rd = rd
	return nil
}

// Run forwards until ctx ends, then lets the requests in flight finish
// (the reader's ShutdownGrace) and gives back what it did not finish.
func (f *Forwarder) Run(ctx context.Context) error {
	if err := f.Prepare(ctx); err != nil {
		return err
	}
	target := "drop"
	if f.deadLetter != "" {
		target = f.deadLetter
	}
	f.log.Info("forwarding", "queue", queueName(f.cfg.Reader.Queue), "method", f.cfg.Method, "url", client.RedactURL(f.cfg.URL),
		"max_attempts", f.cfg.MaxAttempts, "failed_to", target)
	err := f.rd.Run(ctx)
	s := f.Stats()
	f.log.Info("stopped", "delivered", s.Delivered, "dead_lettered", s.DeadLettered, "dropped", s.Dropped, "requests", s.Requests)
	return err
}

// permanentError is an answer that retrying will not change.
type permanentError struct{ error }

func (p permanentError) Unwrap() error { return p.error }

// errDeadLetterPending: an earlier attempt failed for good but could not
// dead-letter the message; it is not sent again.
var errDeadLetterPending = errors.New("failed for good earlier; dead-letter put still pending")

// send is the reader task: one request for one attempt of m.
func (f *Forwarder) send(ctx context.Context, m *reader.Message) error {
	if m.Attempts > f.cfg.MaxAttempts {
		return f.failed(ctx, m, errDeadLetterPending)
	}
	err := f.request(ctx, m.Body)
	if err == nil {
		f.delivered.Add(1)
		f.messages.WithLabelValues("delivered").Inc()
		return nil
	}
	var perm permanentError
	if errors.As(err, &perm) || m.Attempts >= f.cfg.MaxAttempts {
		return f.failed(ctx, m, err)
	}
	f.log.Debug("request failed; retrying later", "id", m.ID, "attempt", m.Attempts, "err", err)
	return err
}

// failed dead-letters or drops m, which failed for good with cause. An
// error (the dead-letter put failed) makes the reader try again later.
func (f *Forwarder) failed(ctx context.Context, m *reader.Message, cause error) error {
	if f.deadLetter == "" {
		f.dropped.Add(1)
		f.messages.WithLabelValues("dropped").Inc()
		f.log.Warn("dropping message", "id", m.ID, "attempts", m.Attempts, "err", cause, "message", preview(m.Body))
		return nil
	}
	key := "to_http-" + queueName(f.cfg.Reader.Queue) + "-" + m.ID
	if _, err := f.q.Put(ctx, f.deadLetter, m.Body, client.PutOptions{ID: key}); err != nil {
		f.log.Warn("dead-letter put failed; trying again later", "id", m.ID, "dead_letter", f.deadLetter, "err", err)
		return fmt.Errorf("dead-letter put: %w (%w)", err, reader.ErrRequeueWithoutBackoff)
	}
	f.deadLettered.Add(1)
	f.messages.WithLabelValues("dead_lettered").Inc()
	f.log.Warn("dead-lettered message", "id", m.ID, "attempts", m.Attempts, "dead_letter", f.deadLetter, "err", cause)
	return nil
}

// request sends body to the endpoint once. A nil error is a 2xx; a
// permanentError a 4xx other than 408 and 429.
func (f *Forwarder) request(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	var req *http.Request
	var err error
	if f.cfg.Method == http.MethodGet {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, strings.ReplaceAll(f.cfg.URL, "%s", escape(body)), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", f.cfg.ContentType)
		}
	}
	if err != nil {
		f.count("error")
		return permanentError{client.RedactError(err)}
	}
	resp, err := f.httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			f.count("timeout")
			return fmt.Errorf("no answer within %v", f.cfg.Timeout)
		}
		f.count("error")
		return client.RedactError(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection
	code := resp.StatusCode
	f.count(fmt.Sprintf("%dxx", min(max(code/100, 2), 5)))
	switch {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return permanentError{answerError(code, msg)}
	}
	return answerError(code, msg)
}

func (f *Forwarder) count(result string) {
	for i, r := range results {
		if r == result {
			f.byResult[i].Add(1)
		}
	}
	f.requests.WithLabelValues(result).Inc()
}

// escape percent-encodes the message for a GET template (space as %20).
func escape(b []byte) string {
	return strings.ReplaceAll(url.QueryEscape(string(b)), "+", "%20")
}

// answerError is a failed answer: its status and the start of its body.
func answerError(code int, body []byte) error {
	if line := firstLine(body); line != "" {
		return fmt.Errorf("%d %s: %s", code, http.StatusText(code), line)
	}
	return fmt.Errorf("%d %s", code, http.StatusText(code))
}

// firstLine is the start of an answer's body, for logs.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return preview([]byte(s))
}

// preview is at most 200 bytes of b, valid UTF-8.
func preview(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.ToValidUTF8(string(b), "?")
}
