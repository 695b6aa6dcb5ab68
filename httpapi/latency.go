package httpapi

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are few on purpose: every request observes one, on a
// port that answers 100k+ requests a second. They cover a local write
// (about a millisecond) to a long-poll's end.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5}

// observeLatency gives each route of e its child of
// quorumq_http_request_duration_seconds{route}, resolved once here so
// that a request only reads the clock twice and observes: no label
// lookup, no allocation. Both ports share the histogram (register).
func (e *engine) observeLatency(reg prometheus.Registerer, log *slog.Logger) {
	vec := register(reg, log, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "quorumq_http_request_duration_seconds",
		Help: "Time from routing a request to its handler's return (answers streamed after it, such as /sub, are not included), by route. " +
			"Long-polls (wait=) count their wait.",
		Buckets: latencyBuckets,
	}, []string{"route"}))
	for i := range e.routes {
		e.routes[i].latency = vec.WithLabelValues(e.routes[i].name)
	}
}

// latencyObserver is a route's latency child.
type latencyObserver = prometheus.Observer
