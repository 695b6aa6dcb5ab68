package pubsub

import "github.com/prometheus/client_golang/prometheus"

// NewHubCollector returns a collector that reports h's counters (Stats) at
// scrape time:
//
//   - quorumq_pubsub_connections: subscribers connected now (gauge);
//   - quorumq_pubsub_connections_total: subscribes since start;
//   - quorumq_pubsub_messages_received_total, quorumq_pubsub_messages_sent_total:
//     /stats' messages received and sent. /stats?reset zeroes them, which
//     Prometheus' rate() treats as a counter reset, as after a restart
//     (the same choice as the queue counters);
//   - quorumq_pubsub_kicked_clients_total;
//   - quorumq_pubsub_remote_messages_received_total: messages published on
//     other nodes and delivered here;
//   - quorumq_pubsub_remote_failures_total and
//     quorumq_pubsub_remote_dropped_messages_total: deliveries to other
//     nodes that failed, and the messages they carried;
//   - quorumq_pubsub_remote_messages_sent_total: messages of this node's
//     publishes that other nodes answered as delivered;
//   - quorumq_pubsub_buffered_bytes: what the node holds for its
//     subscribers and the fan-out now (gauge, against
//     --max-buffered-bytes), and quorumq_pubsub_buffer_overruns_total:
//     publishes that went past it because kicking could not make room.
func NewHubCollector(h *Hub) prometheus.Collector { return hubCollector{h} }

type hubCollector struct{ h *Hub }

var (
	descConnections    = prometheus.NewDesc("quorumq_pubsub_connections", "Subscribers connected to this node now (kicked ones until their connection closes).", nil, nil)
	descConnectionsTot = prometheus.NewDesc("quorumq_pubsub_connections_total", "Subscribes to this node since start.", nil, nil)
	descReceived       = prometheus.NewDesc("quorumq_pubsub_messages_received_total", "Messages published on this node (/pub); reset to 0 by /stats?reset.", nil, nil)
	descSent           = prometheus.NewDesc("quorumq_pubsub_messages_sent_total", "(message, local subscriber) pairs queued; reset to 0 by /stats?reset.", nil, nil)
	descKicked         = prometheus.NewDesc("quorumq_pubsub_kicked_clients_total", "Subscribers kicked for being too slow.", nil, nil)
	descRemoteReceived = prometheus.NewDesc("quorumq_pubsub_remote_messages_received_total", "Messages published on other nodes and delivered to this node's subscribers.", nil, nil)
	descRemoteFailures = prometheus.NewDesc("quorumq_pubsub_remote_failures_total", "Deliveries of this node's publishes to other nodes that failed.", nil, nil)
	descRemoteDropped  = prometheus.NewDesc("quorumq_pubsub_remote_dropped_messages_total", "Messages in the failed deliveries: messages that did not reach some node's subscribers.", nil, nil)
	descRemoteSent     = prometheus.NewDesc("quorumq_pubsub_remote_messages_sent_total", "Messages of this node's publishes that other nodes answered as delivered.", nil, nil)
	descBuffered       = prometheus.NewDesc("quorumq_pubsub_buffered_bytes", "Bytes the node holds for its subscribers and the fan-out (bounded by --max-buffered-bytes).", nil, nil)
	descOverruns       = prometheus.NewDesc("quorumq_pubsub_buffer_overruns_total", "Publishes that took the buffered bytes past --max-buffered-bytes because kicking every subscriber holding anything did not make room.", nil, nil)
	hubDescs           = []*prometheus.Desc{descConnections, descConnectionsTot, descReceived, descSent, descKicked, descRemoteReceived, descRemoteFailures, descRemoteDropped, descRemoteSent, descBuffered, descOverruns}
)

// Describe implements prometheus.Collector.
func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range hubDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(st.CurrentConnections))
	counter(descConnectionsTot, st.TotalConnections)
	counter(descReceived, st.MessagesReceived)
	counter(descSent, st.MessagesSent)
	counter(descKicked, st.KickedClients)
	counter(descRemoteReceived, st.RemoteReceived)
	counter(descRemoteFailures, st.RemoteFailures)
	counter(descRemoteDropped, st.RemoteDropped)
	counter(descRemoteSent, st.RemoteSent)
	ch <- prometheus.MustNewConstMetric(descBuffered, prometheus.GaugeValue, float64(st.BufferedBytes))
	counter(descOverruns, st.BufferOverruns)
}
