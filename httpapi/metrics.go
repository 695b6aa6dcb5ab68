package httpapi

import (
	"errors"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the counters httpapi registers itself.
type metrics struct {
	requests       *prometheus.CounterVec
	put            *prometheus.CounterVec
	delivered      *prometheus.CounterVec
	forwards       *prometheus.CounterVec
	forwardRetries *prometheus.CounterVec
	handovers      *prometheus.CounterVec
	// Batched forwarding (batch.go), on a follower.
	batches        prometheus.Counter
	batchCommands  prometheus.Histogram
	batchFallbacks *prometheus.CounterVec

	requestCounters   counterCache[requestKey]
	putCounters       counterCache[string]
	deliveredCounters counterCache[string]
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	return &metrics{
		requests: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_http_requests_total",
			Help: "HTTP requests answered, by route and status code.",
		}, []string{"route", "code"})),
		put: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_messages_put_total",
			Help: "Messages stored through this node's /put and /mput, by queue.",
		}, []string{"queue"})),
		delivered: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_messages_delivered_total",
			Help: "Messages handed out (popped or leased) through this node's /get and /mget, by queue.",
		}, []string{"queue"})),
		forwards: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_http_forwarded_total",
			Help: "Requests this node did not serve itself because it does not lead, by route and result " +
				"(proxied, batched: its writes went in batches, redirected, refused: a forwarded request reached a non-leader, no_leader, outcome_unknown, canceled, error).",
		}, []string{"route", "result"})),
		forwardRetries: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_http_forward_retries_total",
			Help: "Forwarding attempts repeated after one that left nothing applied on the leader, by route.",
		}, []string{"route"})),
		handovers: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_handover_messages_total",
			Help: "Popped messages this node settled after writing their answer, by result (confirmed: the answer was " +
				"written; given_back: it could not be, the messages are ready again; unsettled: neither reached the log, " +
				"the handover lease gives them back).",
		}, []string{"result"})),
		batches: register(reg, log, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumq_forward_batches_total",
			Help: "Batches of forwarded commands this node sent to the leader (POST /internal/propose), retries included.",
		})),
		batchCommands: register(reg, log, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quorumq_forward_batch_commands",
			Help:    "Commands per batch this node sent to the leader.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10), // 1 to 512, maxBatchCommands
		})),
		batchFallbacks: register(reg, log, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_forward_batch_fallbacks_total",
			Help: "Writes that were to be batched and were relayed on their own instead, by reason " +
				"(queue_full, unsupported: the leader does not serve batches, leader_changed: to one not known to, shutting_down).",
		}, []string{"reason"})),
	}
}

// register registers c, or returns the collector already registered under
// the same description (both ports build handlers on one registry).
func register[C prometheus.Collector](reg prometheus.Registerer, log *slog.Logger, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn("metric not registered", "err", err)
	return c
}

func (m *metrics) request(route string, code int) {
	m.requestCounters.get(requestKey{route, code}, func() prometheus.Counter {
		return m.requests.WithLabelValues(route, strconv.Itoa(code))
	}).Inc()
}

// putCounter and deliveredCounter return the per-queue counters, cached.
func (m *metrics) putCounter(queue string) prometheus.Counter {
	return m.putCounters.get(queue, func() prometheus.Counter { return m.put.WithLabelValues(queue) })
}

func (m *metrics) deliveredCounter(queue string) prometheus.Counter {
	return m.deliveredCounters.get(queue, func() prometheus.Counter { return m.delivered.WithLabelValues(queue) })
}

type requestKey struct {
	route string
	code  int
}

// counterCache maps label values to their child counter without the
// label hashing and allocations of WithLabelValues on every request.
// Reads are lock-free (an immutable map behind an atomic pointer); a miss
// copies the map. The label sets are small (routes × status codes, queue
// names), and a cache that grows past maxCachedCounters stops caching.
type counterCache[K comparable] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]prometheus.Counter]
}

const maxCachedCounters = 4096

func (c *counterCache[K]) get(k K, create func() prometheus.Counter) prometheus.Counter {
	if m := c.m.Load(); m != nil {
		if ctr, ok := (*m)[k]; ok {
			return ctr
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if ctr, ok := (*old)[k]; ok {
			return ctr
		}
		if len(*old) >= maxCachedCounters {
			return create()
		}
	}
	ctr := create()
	next := make(map[K]prometheus.Counter, 1)
	if old != nil {
		next = maps.Clone(*old)
	}
	next[k] = ctr
	c.m.Store(&next)
	return ctr
}

func (m *metrics) forwarded(route, result string) {
	m.forwards.WithLabelValues(route, result).Inc()
}

// handedOver counts n messages of handovers settled with result.
func (m *metrics) handedOver(result string, n int) {
	m.handovers.WithLabelValues(result).Add(float64(n))
}

// batchSent counts one batch of n commands sent to the leader.
func (m *metrics) batchSent(n int) {
	m.batches.Inc()
	m.batchCommands.Observe(float64(n))
}

// batchFallback counts a write relayed on its own instead of batched.
func (m *metrics) batchFallback(reason string) {
	m.batchFallbacks.WithLabelValues(reason).Inc()
}
