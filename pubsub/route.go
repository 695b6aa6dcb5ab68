package pubsub

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/wait"
)

// Route sends every message published on Topic on this node (with /pub,
// not those delivered from other nodes) into the queue Queue as well, so
// that each message is enqueued once cluster-wide (--route=TOPIC:QUEUE).
type Route struct {
	Topic string
	Queue string
}

// String is the command-line form, TOPIC:QUEUE.
func (r Route) String() string { return r.Topic + ":" + r.Queue }

// ParseRoute parses TOPIC:QUEUE. Both names follow api.NamePattern.
func ParseRoute(s string) (Route, error) {
	topic, queue, ok := strings.Cut(s, ":")
	if !ok {
		return Route{}, fmt.Errorf("route %q: want TOPIC:QUEUE", s)
	}
	if err := api.CheckTopicName(topic); err != nil {
		return Route{}, fmt.Errorf("route %q: %w", s, err)
	}
	if err := api.CheckQueueName(queue); err != nil {
		return Route{}, fmt.Errorf("route %q: %w", s, err)
	}
	return Route{Topic: topic, Queue: queue}, nil
}

// ParseRoutes parses a comma-separated list of TOPIC:QUEUE (the form of
// an environment variable; names cannot contain commas). Empty items are
// skipped.
func ParseRoutes(s string) ([]Route, error) {
	var out []Route
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		r, err := ParseRoute(item)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Errors of Router.Enqueue.
var (
	// ErrRoute: a routed publish could not be enqueued (no leader within
	// the timeout, queue full, ...). Nothing was published; the publisher
	// may retry.
	ErrRoute = fmt.Errorf("pubsub: enqueue into the route's queue failed: %w", api.ErrRouteFailed)
	// ErrRouteTooLarge: a message is larger than the queue port accepts;
	// a retry cannot succeed.
	ErrRouteTooLarge = fmt.Errorf("pubsub: message too large for the route's queue: %w", api.ErrTooLarge)
)

// DefaultRouteTimeout bounds one routed enqueue, retries included.
const DefaultRouteTimeout = 10 * time.Second

// RouterOptions configures a Router.
type RouterOptions struct {
	// Routes to apply. A topic may go to several queues.
	Routes []Route
	// QueueAddr is this node's queue port (host:port). The router posts
	// there, and the port forwards to the leader as for any client.
	// Required when Routes is not empty.
	QueueAddr string
	// NodeID prefixes the idempotency keys (id=) of the enqueues.
	NodeID string
	// Timeout bounds one enqueue, retries included. Positive; keep it
	// above the queue port's --forward-timeout, which an election can
	// take.
	Timeout time.Duration
	// Transport carries the requests. Required; Close closes its idle
	// connections.
	Transport http.RoundTripper
	// TLS, when set, makes the router call https:// with this client
	// configuration (set on Transport when it is an *http.Transport).
	TLS *tls.Config
	// Registerer receives quorumq_pubsub_routed_messages_total. nil: not
	// registered.
	Registerer prometheus.Registerer
	// Logger (component=pubsub). Required.
	Logger *slog.Logger
}

// DefaultRouterOptions returns the defaults: no routes, Timeout
// DefaultRouteTimeout (10 s), a Transport of its own that keeps
// connections alive, Logger slog.Default(), no metrics.
func DefaultRouterOptions() RouterOptions {
	return RouterOptions{
		Timeout: DefaultRouteTimeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
		},
		Logger: slog.Default(),
	}
}

// Router enqueues the messages of routed topics through this node's queue
// port: POST /mput?queue=Q&separator=%0A&id=KEY, which forwards to the
// leader, so a 200 means committed on a quorum. Each publish gets its own
// id=, and the router resends a request that failed in a way that may be
// temporary (no answer, or a 503) with the same id until Timeout: the
// queue's de-duplication makes the resend safe. Empty messages are not
// enqueued (the queue stores no empty records).
type Router struct {
	o       RouterOptions
	log     *slog.Logger
	client  *http.Client
	scheme  string // "http://" or "https://"
	byTopic map[string][]string
	prefix  string
	seq     atomic.Uint64
	routed  *prometheus.CounterVec
}

// NewRouter returns a router for opts.Routes.
func NewRouter(opts RouterOptions) (*Router, error) {
	o := opts
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("route Timeout %s is not positive", o.Timeout))
	}
	if len(o.Routes) > 0 && o.QueueAddr == "" {
		errs = append(errs, errors.New("RouterOptions.QueueAddr is required"))
	}
	if o.Transport == nil {
		errs = append(errs, errors.New("RouterOptions.Transport is required"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("RouterOptions.Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	scheme := "http://"
	if o.TLS != nil {
		scheme = "https://"
		if t, ok := o.Transport.(*http.Transport); ok {
			t = t.Clone()
			t.TLSClientConfig = o.TLS
			o.Transport = t
		}
	}
	r := &Router{
		o:       o,
		scheme:  scheme,
		log:     o.Logger.With("component", "pubsub"),
		client:  &http.Client{Transport: o.Transport},
		byTopic: map[string][]string{},
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_pubsub_routed_messages_total",
			Help: "Messages of routed topics enqueued into their queue (--route), by topic, queue and result (ok, error).",
		}, []string{"topic", "queue", "result"}),
	}
	for _, rt := range o.Routes {
		if _, err := ParseRoute(rt.String()); err != nil {
			return nil, err
		}
		if !containsString(r.byTopic[rt.Topic], rt.Queue) {
			r.byTopic[rt.Topic] = append(r.byTopic[rt.Topic], rt.Queue)
		}
	}
	var nonce [6]byte
	rand.Read(nonce[:])
	// A key per process start: a restarted node never reuses one within
	// the queue's de-duplication window.
	r.prefix = "route-" + o.NodeID + "-" + hex.EncodeToString(nonce[:])
	if o.Registerer != nil {
		if err := o.Registerer.Register(r.routed); err != nil {
			return nil, fmt.Errorf("pubsub: route metrics: %w", err)
		}
	}
	return r, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Routed reports whether topic has a route.
func (r *Router) Routed(topic string) bool { return len(r.byTopic[topic]) > 0 }

// Enqueue enqueues msgs into every queue topic is routed to (in parallel)
// and returns once each is committed, or the first error: ErrRoute or
// ErrRouteTooLarge, wrapped with the reason. Unrouted topics return nil at
// once. A failed call may have stored the messages in some of the queues
// (or, when the outcome stayed unknown, in all): a publisher's retry can
// then enqueue them twice.
func (r *Router) Enqueue(ctx context.Context, topic string, msgs [][]byte) error {
	queues := r.byTopic[topic]
	if len(queues) == 0 {
		return nil
	}
	records := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		if len(m) > 0 {
			records = append(records, m)
		}
	}
	if len(records) == 0 {
		return nil
	}
	body := bytes.Join(records, []byte{'\n'})
	key := r.prefix + "-" + strconv.FormatUint(r.seq.Add(1), 10)
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	errs := make([]error, len(queues))
	var wg sync.WaitGroup
	for i, q := range queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.enqueue(ctx, q, key, body)
			result := "ok"
			if errs[i] != nil {
				result = "error"
				r.log.Warn("routed publish not enqueued", "topic", topic, "queue", q, "err", errs[i])
			}
			r.routed.WithLabelValues(topic, q, result).Add(float64(len(records)))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// enqueue posts body to queue, resending on failures that may be
// temporary until ctx ends.
func (r *Router) enqueue(ctx context.Context, queue, key string, body []byte) error {
	u := r.scheme + r.o.QueueAddr + "/mput?" + url.Values{
		"queue": {queue}, "separator": {"\n"}, "id": {key},
	}.Encode()
	backoff := 50 * time.Millisecond
	for {
		err := r.post(ctx, u, body)
		var retry *retryableError
		if err == nil || !errors.As(err, &retry) {
			return err
		}
		if wait.Sleep(ctx, backoff) != nil {
			return fmt.Errorf("%w: queue %s: %v (gave up after %s)", ErrRoute, queue, retry.err, r.o.Timeout)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retryableError wraps a failure after which a resend with the same id=
// is safe and may succeed.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }

func (r *Router) post(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRoute, err)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return &retryableError{err}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %s", ErrRouteTooLarge, firstLine(b))
	case resp.StatusCode == http.StatusServiceUnavailable:
		return &retryableError{fmt.Errorf("%s: %s", resp.Status, firstLine(b))}
	default:
		return fmt.Errorf("%w: %s: %s", ErrRoute, resp.Status, firstLine(b))
	}
}

// Close releases the router's idle connections.
func (r *Router) Close() {
	if t, ok := r.o.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
