package membership

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// namespace is the Prometheus namespace of the membership metrics.
const namespace = "quorumq"

// metrics are the instruments membership updates itself.
type metrics struct {
	reconcileActions *prometheus.CounterVec
	reconcileRounds  prometheus.Counter
	// bootstrapEvaluations counts the bootstrap loop's decisions by
	// outcome (bootstrapOutcomes).
	bootstrapEvaluations *prometheus.CounterVec
	// joins counts attempts to join gossip through one seed, by result:
	// a node that keeps failing cannot reach or authenticate to the
	// cluster (wrong or missing gossip key).
	joins *prometheus.CounterVec
}

func newMetrics() *metrics {
	return &metrics{
		reconcileActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "cluster",
			Name:      "reconcile_actions_total",
			Help:      "Raft configuration changes made by this node's reconcile loop while leading, by action and result.",
		}, []string{"action", "result"}),
		reconcileRounds: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "cluster",
			Name:      "reconcile_rounds_total",
			Help:      "Passes of this node's reconcile loop while leading.",
		}),
		bootstrapEvaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "cluster",
			Name:      "bootstrap_evaluations_total",
			Help:      "Bootstrap decisions of a node that started without raft state, by outcome (wait_*, disabled, failed, bootstrapped, has_state).",
		}, []string{"outcome"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "cluster",
			Name:      "gossip_join_attempts_total",
			Help:      "Attempts to join gossip through one seed, by result (ok, error).",
		}, []string{"result"}),
	}
}

// Collectors returns membership's collectors: quorumq_cluster_members{status}
// (gossip members as this node sees them), quorumq_cluster_{voters,nonvoters}
// (raft configuration), quorumq_cluster_reconcile_actions_total{action,result},
// quorumq_cluster_reconcile_rounds_total,
// quorumq_cluster_bootstrap_evaluations_total{outcome} and
// quorumq_cluster_gossip_join_attempts_total{result}.
func (n *Membership) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		n.metrics.reconcileActions,
		n.metrics.reconcileRounds,
		n.metrics.bootstrapEvaluations,
		n.metrics.joins,
		&membershipCollector{n: n},
	}
}

var (
	descMembers   = prometheus.NewDesc("quorumq_cluster_members", "Gossip members as this node sees them, by status.", []string{"status"}, nil)
	descVoters    = prometheus.NewDesc("quorumq_cluster_voters", "Voters in the raft configuration.", nil, nil)
	descNonvoters = prometheus.NewDesc("quorumq_cluster_nonvoters", "Non-voters in the raft configuration.", nil, nil)
)

// membershipCollector reports membership at scrape time.
type membershipCollector struct{ n *Membership }

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
	for _, s := range c.n.host.ConfigServers() {
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
