package rafthost

import (
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// namespace is the Prometheus namespace of the host's metrics.
const namespace = "quorumq"

// metrics are the instruments the host updates itself.
type metrics struct {
	applyLatency     prometheus.Histogram
	entriesProposed  prometheus.Counter
	commandsPerEntry prometheus.Histogram
	entryBytes       prometheus.Histogram
	tickChecks       prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		applyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "propose",
			Name:      "latency_seconds",
			Help:      "Time from Propose to its result (committed and applied, or failed), for proposals that reached the coalescer.",
			// 0.25 ms .. ~8 s: fsync on tmpfs up to an election.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
		entriesProposed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "raft",
			Name:      "entries_proposed_total",
			Help:      "Coalesced log entries handed to raft.Apply by this node.",
		}),
		commandsPerEntry: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "raft",
			Name:      "commands_per_entry",
			Help:      "Commands coalesced into one log entry (group commit at the application level).",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 11), // 1 .. 1024
		}),
		entryBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Subsystem: "raft",
			Name:      "entry_bytes",
			Help:      "Encoded size of the log entries this node proposed.",
			Buckets:   prometheus.ExponentialBuckets(64, 4, 8), // 64 B .. 1 MiB
		}),
		tickChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Subsystem: "raft",
			Name:      "tick_checks_total",
			Help:      "Checks by the leader's tick loop for due leases and delays (a tick is proposed only when one is due).",
		}),
	}
}

// Collectors returns the host's Prometheus collectors: the raft gauges
// quorumq_raft_{commit_index,applied_index,last_log_index,term,is_leader}
// (applied_index is the FSM's own), quorumq_propose_latency_seconds,
// quorumq_raft_entries_proposed_total, quorumq_raft_commands_per_entry,
// quorumq_raft_entry_bytes, quorumq_raft_tick_checks_total, and
// quorumq_raft_log_store_info{kind}, so dashboards can tell nodes on
// different log stores apart.
func (h *Host) Collectors() []prometheus.Collector {
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "raft", Name: name, Help: help,
		}, v)
	}
	return []prometheus.Collector{
		gauge("commit_index", "Raft commit index known to this node.",
			func() float64 { return float64(h.raft.CommitIndex()) }),
		gauge("applied_index", "Index of the last log entry the FSM applied.",
			func() float64 { return float64(h.fsm.AppliedIndex()) }),
		gauge("last_log_index", "Index of the last entry in this node's raft log.",
			func() float64 { return float64(h.raft.LastIndex()) }),
		gauge("term", "Current raft term.",
			func() float64 { return float64(h.raft.CurrentTerm()) }),
		gauge("is_leader", "1 if this node is the raft leader, else 0.",
			func() float64 {
				if h.raft.State() == raft.Leader {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "raft", Name: "log_store_info",
			Help:        "Always 1; kind names the store of this node's raft log (boltdb or wal).",
			ConstLabels: prometheus.Labels{"kind": h.opts.LogStore.String()},
		}, func() float64 { return 1 }),
		h.metrics.applyLatency,
		h.metrics.entriesProposed,
		h.metrics.commandsPerEntry,
		h.metrics.entryBytes,
		h.metrics.tickChecks,
	}
}
