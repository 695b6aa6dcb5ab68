package cluster

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/fsm"
)

const metricsNamespace = "quorumq"

// nodeMetrics are the instruments the node updates itself.
type nodeMetrics struct {
	applyLatency     prometheus.Histogram
	entriesProposed  prometheus.Counter
	commandsPerEntry prometheus.Histogram
	entryBytes       prometheus.Histogram
	reconcileActions *prometheus.CounterVec
	reconcileRounds  prometheus.Counter
	tickChecks       prometheus.Counter
	// bootstrapEvaluations counts the bootstrap loop's decisions by
	// outcome (bootstrapOutcomes).
	bootstrapEvaluations *prometheus.CounterVec
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Subsystem: "propose",
			Name:      "latency_seconds",
			Help:      "Time from Propose to its result (committed and applied, or failed), for proposals that reached the coalescer.",
			// 0.25 ms .. ~8 s: fsync on tmpfs up to an election.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
		entriesProposed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: "raft",
			Name:      "entries_proposed_total",
			Help:      "Coalesced log entries handed to raft.Apply by this node.",
		}),
		commandsPerEntry: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Subsystem: "raft",
			Name:      "commands_per_entry",
			Help:      "Commands coalesced into one log entry (group commit at the application level).",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
		}),
		entryBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace,
			Subsystem: "raft",
			Name:      "entry_bytes",
			Help:      "Encoded size of the log entries this node proposed.",
			Buckets:   prometheus.ExponentialBuckets(64, 4, 8), // 64 B .. 1 MiB
		}),
		reconcileActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: "cluster",
			Name:      "reconcile_actions_total",
			Help:      "Raft configuration changes made by this node's reconcile loop while leading, by action and result.",
		}, []string{"action", "result"}),
		reconcileRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: "cluster",
			Name:      "reconcile_rounds_total",
			Help:      "Passes of this node's reconcile loop while leading.",
		}),
		tickChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: "raft",
			Name:      "tick_checks_total",
			Help:      "Checks by the leader's tick loop for due leases and delays (a tick is proposed only when one is due).",
		}),
		bootstrapEvaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace,
			Subsystem: "cluster",
			Name:      "bootstrap_evaluations_total",
			Help:      "Bootstrap decisions of a node that started without raft state, by outcome (wait_*, disabled, failed, bootstrapped, has_state).",
		}, []string{"outcome"}),
	}
}

// Collectors returns the node's Prometheus collectors, for the caller to
// register in its registry:
//
//   - raft gauges: quorumq_raft_{commit_index,applied_index,last_log_index,term,is_leader}
//     (applied_index is the FSM's own, see DESIGN.md);
//   - quorumq_propose_latency_seconds, quorumq_raft_entries_proposed_total,
//     quorumq_raft_commands_per_entry, quorumq_raft_entry_bytes;
//   - per-queue metrics labelled queue=NAME, read from the FSM at scrape time;
//   - membership: quorumq_cluster_members{status} (gossip members as this
//     node sees them), quorumq_cluster_{voters,nonvoters} (raft
//     configuration), quorumq_cluster_reconcile_actions_total{action,result},
//     quorumq_cluster_reconcile_rounds_total and
//     quorumq_cluster_bootstrap_evaluations_total{outcome};
//   - quorumq_raft_tick_checks_total.
func (n *Node) Collectors() []prometheus.Collector {
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Subsystem: "raft", Name: name, Help: help,
		}, v)
	}
	return []prometheus.Collector{
		gauge("commit_index", "Raft commit index known to this node.",
			func() float64 { return float64(n.raft.CommitIndex()) }),
		gauge("applied_index", "Index of the last log entry the FSM applied.",
			func() float64 { return float64(n.fsm.AppliedIndex()) }),
		gauge("last_log_index", "Index of the last entry in this node's raft log.",
			func() float64 { return float64(n.raft.LastIndex()) }),
		gauge("term", "Current raft term.",
			func() float64 { return float64(n.raft.CurrentTerm()) }),
		gauge("is_leader", "1 if this node is the raft leader, else 0.",
			func() float64 {
				if n.raft.State() == raft.Leader {
					return 1
				}
				return 0
			}),
		n.metrics.applyLatency,
		n.metrics.entriesProposed,
		n.metrics.commandsPerEntry,
		n.metrics.entryBytes,
		&queueCollector{f: n.fsm},
		n.metrics.reconcileActions,
		n.metrics.reconcileRounds,
		n.metrics.tickChecks,
		n.metrics.bootstrapEvaluations,
		&membershipCollector{n: n},
	}
}

var (
	descMembers   = prometheus.NewDesc("quorumq_cluster_members", "Gossip members as this node sees them, by status.", []string{"status"}, nil)
	descVoters    = prometheus.NewDesc("quorumq_cluster_voters", "Voters in the raft configuration.", nil, nil)
	descNonvoters = prometheus.NewDesc("quorumq_cluster_nonvoters", "Non-voters in the raft configuration.", nil, nil)
)

// membershipCollector reports membership at scrape time.
type membershipCollector struct{ n *Node }

// Describe implements prometheus.Collector.
func (c *membershipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descMembers
	ch <- descVoters
	ch <- descNonvoters
}

// Collect implements prometheus.Collector.
func (c *membershipCollector) Collect(ch chan<- prometheus.Metric) {
	for status, k := range memberStatusCounts(c.n.members.snapshot()) {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(k), status)
	}
	voters, nonvoters := 0, 0
	for _, s := range c.n.configServers() {
		switch s.Suffrage {
		case raft.Voter:
			voters++
		case raft.Nonvoter:
			nonvoters++
		}
	}
	ch <- prometheus.MustNewConstMetric(descVoters, prometheus.GaugeValue, float64(voters))
	ch <- prometheus.MustNewConstMetric(descNonvoters, prometheus.GaugeValue, float64(nonvoters))
}

// queueCollector reports per-queue state from the local FSM at scrape time.
//
// Depth, in-flight, deferred and bytes are gauges. puts_total and gets_total
// are exposed as counters although /stats?reset=1 (fsm.OpResetStats) sets
// them back to zero: Prometheus' rate() and increase() treat any decrease as
// a counter reset, exactly as after a process restart, so the only loss is
// the increments between the last scrape and the reset. Reporting them as
// gauges would push every dashboard to deriv(), which is wrong for counts.
// overflow_total and dead_total are never reset.
type queueCollector struct {
	f *fsm.FSM
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
)

// Describe implements prometheus.Collector.
func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDepth, descInFlight, descDeferred, descBytes, descPuts, descGets, descOverflow, descDead} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.f.Queues() {
		s := c.f.Stats(q)
		if !s.Exists {
			continue // dropped between Queues and Stats
		}
		ch <- prometheus.MustNewConstMetric(descDepth, prometheus.GaugeValue, float64(s.Depth), q)
		ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(s.InFlight), q)
		ch <- prometheus.MustNewConstMetric(descDeferred, prometheus.GaugeValue, float64(s.Deferred), q)
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.Bytes), q)
		ch <- prometheus.MustNewConstMetric(descPuts, prometheus.CounterValue, float64(s.Puts), q)
		ch <- prometheus.MustNewConstMetric(descGets, prometheus.CounterValue, float64(s.Gets), q)
		ch <- prometheus.MustNewConstMetric(descOverflow, prometheus.CounterValue, float64(s.Overflow), q)
		ch <- prometheus.MustNewConstMetric(descDead, prometheus.CounterValue, float64(s.Dead), q)
	}
}
