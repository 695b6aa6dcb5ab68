package cluster

import (
	"strings"
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
		// No service name and no filter: go-metrics then passes every
		// key straight to raftExport, which keeps the documented ones.
		// Its own prefix filter joins every key into a string first, and
		// raft reports some twenty keys per entry: with that filter and
		// all of raft's keys exported, metrics took about a tenth of a
		// leader's CPU under single-message puts.
		conf := gometrics.DefaultConfig("")
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		// The node's registry has the Go collector already.
		conf.EnableRuntimeMetrics = false
		gometrics.NewGlobal(conf, raftExport{sink: sink, keys: raftExported})
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

// raftExported are the keys of raft and raft-boltdb that docs/MONITORING.md
// lists, as raft reports them; ".*" stands for every key under a name.
// Others (memberlist's included: they go to the membership collectors)
// are dropped. So are raft's replication keys: it times every
// AppendEntries and heartbeat per follower, the leader's most frequent
// samples, and a summary per sample cost it several percent of its CPU
// under load; a follower's health shows in quorumq_replication_lag_entries
// and raft.leader.lastContact instead.
var raftExported = newKeySet(
	"raft.commitTime",
	"raft.boltdb.storeLogs",
	"raft.leader.lastContact",
	"raft.leader.dispatchLog",
	"raft.rpc.appendEntries",
	"raft.fsm.apply",
	"raft.fsm.applyBatch",
	"raft.snapshot.create",
	"raft.snapshot.persist",
	"raft.fsm.restore",
	"raft.state.*",
	"raft.transition.heartbeat_timeout",
	"raft.thread.*",
)

// keySet matches go-metrics keys part by part, without joining them.
type keySet struct {
	end, all bool // a key ends here; every key under here is in
	next     map[string]*keySet
}

func newKeySet(keys ...string) *keySet {
	root := &keySet{}
	for _, k := range keys {
		n := root
		prefix, under := strings.CutSuffix(k, ".*")
		for part := range strings.SplitSeq(prefix, ".") {
			if n.next == nil {
				n.next = map[string]*keySet{}
			}
			if n.next[part] == nil {
				n.next[part] = &keySet{}
			}
			n = n.next[part]
		}
		if under {
			n.all = true // "a.*": every key under a, not a itself
		} else {
			n.end = true
		}
	}
	return root
}

func (s *keySet) has(key []string) bool {
	n := s
	for _, part := range key {
		if n.all {
			return true
		}
		if n = n.next[part]; n == nil {
			return false
		}
	}
	return n.end
}

// raftExport passes the keys in keys to sink, under "quorumq".
type raftExport struct {
	sink gometrics.MetricSink
	keys *keySet
}

func exported(key []string) []string { return append([]string{"quorumq"}, key...) }

func (e raftExport) SetGauge(key []string, val float32) { e.SetGaugeWithLabels(key, val, nil) }
func (e raftExport) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	if e.keys.has(key) {
		e.sink.SetGaugeWithLabels(exported(key), val, labels)
	}
}
func (e raftExport) EmitKey(key []string, val float32) {
	if e.keys.has(key) {
		e.sink.EmitKey(exported(key), val)
	}
}
func (e raftExport) IncrCounter(key []string, val float32) { e.IncrCounterWithLabels(key, val, nil) }
func (e raftExport) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	if e.keys.has(key) {
		e.sink.IncrCounterWithLabels(exported(key), val, labels)
	}
}
func (e raftExport) AddSample(key []string, val float32) { e.AddSampleWithLabels(key, val, nil) }
func (e raftExport) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	if e.keys.has(key) {
		e.sink.AddSampleWithLabels(exported(key), val, labels)
	}
}
