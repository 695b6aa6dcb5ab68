package cluster

import (
	"sync"

	gometrics "github.com/hashicorp/go-metrics/compat"
	gmprom "github.com/hashicorp/go-metrics/compat/prometheus"
	"github.com/prometheus/client_golang/prometheus"
)

// raft and raft-boltdb report their timings (commit time, log store
// writes, fsm apply, snapshots, replication RPCs, last contact) through
// go-metrics' process-wide instance, not through a registry. The process
// sets that instance up once, with one Prometheus sink that every node's
// registry collects (OperatorCollectors): in a process with one node (the
// binary) its metrics are that node's; in a test process with several,
// each node's /metrics shows them all together.
var (
	raftSinkOnce sync.Once
	raftSink     prometheus.Collector
)

// raftSinkCollector returns the process-wide sink, setting up go-metrics
// on the first call. Metric names are the keys of raft with "_" for ".",
// under "quorumq_" (quorumq_raft_commitTime): summaries in milliseconds
// for timings. Nothing expires, so a rare event (a snapshot) stays on
// the dashboard until the next one.
func raftSinkCollector() prometheus.Collector {
	raftSinkOnce.Do(func() {
		opts := gmprom.PrometheusOpts{
			Name: "quorumq_raft_sink",
			// The sink registers itself; here into a registry of its own,
			// never the global one. Node registries add it as a collector.
			Registerer:         prometheus.NewRegistry(),
			SummaryDefinitions: raftSummaries,
		}
		sink, err := gmprom.NewPrometheusSinkFrom(opts)
		if err != nil {
			raftSink = prometheus.NewRegistry() // collects nothing
			return
		}
		conf := gometrics.DefaultConfig("quorumq")
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		// The node's registry has the Go collector already.
		conf.EnableRuntimeMetrics = false
		// Only raft's own keys (memberlist's go to the membership
		// collectors instead).
		conf.FilterDefault = false
		conf.AllowedPrefixes = []string{"quorumq.raft."}
		gometrics.NewGlobal(conf, raftKeys{sink})
		raftSink = sink
	})
	return raftSink
}

// raftSummaries are the timings a dashboard shows, declared up front
// with their help, so that they are present (NaN until observed) on every
// node rather than appearing with the first event. Milliseconds.
var raftSummaries = []gmprom.SummaryDefinition{
	{Name: []string{"quorumq", "raft", "commitTime"}, Help: "Leader: milliseconds from dispatching an entry to its commit on a quorum (last 10 s)."},
	{Name: []string{"quorumq", "raft", "boltdb", "storeLogs"}, Help: "Milliseconds to write and fsync a batch of log entries to raft-boltdb (last 10 s)."},
	{Name: []string{"quorumq", "raft", "leader", "lastContact"}, Help: "Leader: milliseconds since it last heard from each follower, sampled (last 10 s)."},
	{Name: []string{"quorumq", "raft", "fsm", "apply"}, Help: "Milliseconds the state machine took to apply an entry (last 10 s)."},
	{Name: []string{"quorumq", "raft", "rpc", "appendEntries"}, Help: "Follower: milliseconds to handle an AppendEntries RPC (last 10 s)."},
	{Name: []string{"quorumq", "raft", "snapshot", "create"}, Help: "Milliseconds to take a snapshot of the state machine (last 10 s)."},
	{Name: []string{"quorumq", "raft", "snapshot", "persist"}, Help: "Milliseconds to write a snapshot to disk (last 10 s)."},
	{Name: []string{"quorumq", "raft", "fsm", "restore"}, Help: "Milliseconds to restore the state machine from a snapshot (last 10 s)."},
}

// raftKeys drops what raft still reports under its legacy names: the
// replication timings and counters with the peer's id as the last part
// of the metric name (raft.replication.heartbeat.node2). The same values
// come with a peer_id label, and a name made from a node id would need
// escaping and grow with every member ever seen.
type raftKeys struct{ gometrics.MetricSink }

func legacyPeerKey(key []string, labels []gometrics.Label) bool {
	return len(labels) == 0 && len(key) >= 3 && key[2] == "replication"
}

func (s raftKeys) SetGauge(key []string, val float32) { s.SetGaugeWithLabels(key, val, nil) }
func (s raftKeys) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	if !legacyPeerKey(key, labels) {
		s.MetricSink.SetGaugeWithLabels(key, val, labels)
	}
}
func (s raftKeys) IncrCounter(key []string, val float32) { s.IncrCounterWithLabels(key, val, nil) }
func (s raftKeys) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	if !legacyPeerKey(key, labels) {
		s.MetricSink.IncrCounterWithLabels(key, val, labels)
	}
}
func (s raftKeys) AddSample(key []string, val float32) { s.AddSampleWithLabels(key, val, nil) }
func (s raftKeys) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	if !legacyPeerKey(key, labels) {
		s.MetricSink.AddSampleWithLabels(key, val, labels)
	}
}
