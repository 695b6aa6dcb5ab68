package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/fsm"
)

// Collectors returns the node's Prometheus collectors, for the caller to
// register in its registry:
//
//   - raft gauges: quorumq_raft_{commit_index,applied_index,last_log_index,term,is_leader}
//     (applied_index is the FSM's own, see DESIGN.md);
//   - quorumq_propose_latency_seconds, quorumq_raft_entries_proposed_total,
//     quorumq_raft_commands_per_entry, quorumq_raft_entry_bytes,
//     quorumq_raft_tick_checks_total, quorumq_raft_log_store_info{kind};
//   - per-queue metrics labelled queue=NAME, read from the FSM at scrape time;
//   - membership: quorumq_cluster_members{status} (gossip members as this
//     node sees them), quorumq_cluster_{voters,nonvoters} (raft
//     configuration), quorumq_cluster_reconcile_actions_total{action,result},
//     quorumq_cluster_reconcile_rounds_total and
//     quorumq_cluster_bootstrap_evaluations_total{outcome}.
//
// The subscriber-set gossip's are Subscribers().Collectors().
func (n *Node) Collectors() []prometheus.Collector {
	cs := append(n.host.Collectors(), &queueCollector{f: n.fsm, now: time.Now})
	return append(cs, n.members.Collectors()...)
}

// queueCollector reports per-queue state from the local FSM at scrape time.
//
// Depth, in-flight, deferred and bytes are gauges. puts_total and gets_total
// are exposed as counters although /stats?reset=1 (fsm.OpResetStats) sets
// them back to zero: Prometheus' rate() and increase() treat any decrease as
// a counter reset, exactly as after a process restart, so the only loss is
// the increments between the last scrape and the reset. Reporting them as
// gauges would push every dashboard to deriv(), which is wrong for counts.
// overflow_total, dead_total, acks_total, nacks_total,
// lease_expired_total and redelivered_total are never reset.
// oldest_age_seconds is this node's clock minus the put time (leader log
// time, to a second) of the next ready message, 0 when none is ready.
type queueCollector struct {
	f   *fsm.FSM
	now func() time.Time
}

var (
	queueLabels  = []string{"queue"}
	descDepth    = prometheus.NewDesc("quorumq_queue_depth", "Ready messages in the queue.", queueLabels, nil)
	descInFlight = prometheus.NewDesc("quorumq_queue_in_flight", "Leased messages waiting for ack, nack or lease expiry.", queueLabels, nil)
	descDeferred = prometheus.NewDesc("quorumq_queue_deferred", "Messages waiting for their delay to pass.", queueLabels, nil)
	descBytes    = prometheus.NewDesc("quorumq_queue_bytes", "Bytes of all messages the queue holds (ready, in flight and deferred).", queueLabels, nil)
	descPuts     = prometheus.NewDesc("quorumq_queue_puts_total", "Messages stored in the queue; reset to 0 by /stats?reset=1.", queueLabels, nil)
	descGets     = prometheus.NewDesc("quorumq_queue_gets_total", "Messages handed out from the queue; reset to 0 by /stats?reset=1.", queueLabels, nil)
	descOverflow = prometheus.NewDesc("quorumq_queue_overflow_total", "Messages evicted by the evict-oldest overflow policy.", queueLabels, nil)
	descDead     = prometheus.NewDesc("quorumq_queue_dead_total", "Messages that exceeded MaxAttempts.", queueLabels, nil)
	descAcks     = prometheus.NewDesc("quorumq_queue_acks_total", "Leased messages acked.", queueLabels, nil)
	descNacks    = prometheus.NewDesc("quorumq_queue_nacks_total", "Leased messages nacked.", queueLabels, nil)
	descExpired  = prometheus.NewDesc("quorumq_queue_lease_expired_total", "Leases that ran out before an ack or nack.", queueLabels, nil)
	descRedeliv  = prometheus.NewDesc("quorumq_queue_redelivered_total", "Deliveries of messages delivered before.", queueLabels, nil)
	descOldest   = prometheus.NewDesc("quorumq_queue_oldest_age_seconds", "Age of the next ready message (since its put, to a second); 0 when none is ready.", queueLabels, nil)
)

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descInFlight, descDeferred, descBytes, descPuts, descGets, descOverflow, descDead,
		descAcks, descNacks, descExpired, descRedeliv, descOldest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now().UnixNano()
	for _, s := range c.f.AllStats() {
		q := s.Name
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(s.Depth), q)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), q)
		ch <- prometheus.MustNewConstMetric(descDeferred, prometheus.GaugeValue, float64(s.Deferred), q)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes), q)
		ch <- prometheus.MustNewConstMetric(descPuts, prometheus.CounterValue, float64(s.Puts), q)
		ch <- prometheus.MustNewConstMetric(descGets, prometheus.CounterValue, float64(s.Gets), q)
		ch <- prometheus.MustNewConstMetric(descOverflow, prometheus.CounterValue, float64(s.Overflow), q)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.Dead), q)
		ch <- prometheus.MustNewConstMetric(descAcks, prometheus.CounterValue, float64(s.Acks), q)
		ch <- prometheus.MustNewConstMetric(descNacks, prometheus.CounterValue, float64(s.Nacks), q)
		ch <- prometheus.MustNewConstMetric(descExpired, prometheus.CounterValue, float64(s.Expired), q)
		ch <- prometheus.MustNewConstMetric(descRedeliv, prometheus.CounterValue, float64(s.Redelivered), q)
		var age float64
		if s.OldestPut > 0 {
			age = max(float64(now-s.OldestPut)/1e9, 0)
		}
		ch <- prometheus.MustNewConstMetric(descOldest, prometheus.GaugeValue, age, q)
	}
}
