package pstohttp

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a collector of b's counters (Stats), read at scrape
// time, for --metrics-addr:
//
//   - quorumq_ps_to_http_messages_received_total, _skipped_total: messages
//     read from the sources, and those shorter than --min-line-length;
//   - quorumq_ps_to_http_connects_total, _reconnects_total,
//     _source_errors_total: subscriptions, those after the first, and
//     failed subscriptions or broken streams;
//   - per destination (label destination: its index in command-line
//     order, and method; never the URL, which may hold a token):
//     quorumq_ps_to_http_messages_posted_total (accepted with a 2xx),
//     _failed_total (refused or retries used up), _dropped_total (buffer
//     full or not delivered before exit), _retries_total, and the gauge
//     quorumq_ps_to_http_buffered_messages.
func (b *Bridge) Collector() prometheus.Collector { return bridgeCollector{b} }

type bridgeCollector struct{ b *Bridge }

var (
	destLabels       = []string{"destination", "method"}
	descP2HReceived  = prometheus.NewDesc("quorumq_ps_to_http_messages_received_total", "Messages read from the pubsub sources.", nil, nil)
	descP2HSkipped   = prometheus.NewDesc("quorumq_ps_to_http_messages_skipped_total", "Messages dropped for being shorter than --min-line-length.", nil, nil)
	descP2HConnects  = prometheus.NewDesc("quorumq_ps_to_http_connects_total", "Successful subscriptions to a source.", nil, nil)
	descP2HReconn    = prometheus.NewDesc("quorumq_ps_to_http_reconnects_total", "Subscriptions after the first: the stream broke or moved to another source.", nil, nil)
	descP2HSrcErrors = prometheus.NewDesc("quorumq_ps_to_http_source_errors_total", "Failed subscriptions and broken streams.", nil, nil)
	descP2HPosted    = prometheus.NewDesc("quorumq_ps_to_http_messages_posted_total", "Messages a destination accepted with a 2xx.", destLabels, nil)
	descP2HFailed    = prometheus.NewDesc("quorumq_ps_to_http_messages_failed_total", "Messages a destination refused with a permanent 4xx, or whose retries ran out.", destLabels, nil)
	descP2HDropped   = prometheus.NewDesc("quorumq_ps_to_http_messages_dropped_total", "Messages dropped because the destination's buffer was full, or not delivered before exit.", destLabels, nil)
	descP2HRetries   = prometheus.NewDesc("quorumq_ps_to_http_retries_total", "Failed attempts that were retried.", destLabels, nil)
	descP2HBuffered  = prometheus.NewDesc("quorumq_ps_to_http_buffered_messages", "Messages waiting for the destination now (bounded by --buffer-size).", destLabels, nil)
	bridgeDescs      = []*prometheus.Desc{descP2HReceived, descP2HSkipped, descP2HConnects, descP2HReconn, descP2HSrcErrors, descP2HPosted, descP2HFailed, descP2HDropped, descP2HRetries, descP2HBuffered}
)

// Describe implements prometheus.Collector.
func (c bridgeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range bridgeDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c bridgeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descP2HReceived, s.Received)
	counter(descP2HSkipped, s.Skipped)
	counter(descP2HConnects, s.Connects)
	counter(descP2HReconn, s.Reconnects)
	counter(descP2HSrcErrors, s.SourceErrors)
	for i, d := range s.Destinations {
		l := []string{strconv.Itoa(i), d.Destination.Method}
		counter(descP2HPosted, d.Forwarded, l...)
		counter(descP2HFailed, d.Failed, l...)
		counter(descP2HDropped, d.Dropped, l...)
		counter(descP2HRetries, d.Retried, l...)
		ch <- prometheus.MustNewConstMetric(descP2HBuffered, prometheus.GaugeValue, float64(d.Buffered), l...)
	}
}
