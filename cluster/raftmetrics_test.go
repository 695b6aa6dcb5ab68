package cluster

import (
	"strings"
	"testing"

	gometrics "github.com/hashicorp/go-metrics/compat"
	"github.com/prometheus/client_golang/prometheus"
)

// recordingSink records the keys that reach it.
type recordingSink struct {
	gometrics.BlackholeSink
	keys []string
}

func (s *recordingSink) AddSampleWithLabels(key []string, _ float32, labels []gometrics.Label) {
	s.keys = append(s.keys, strings.Join(key, ".")+label(labels))
}

func (s *recordingSink) IncrCounterWithLabels(key []string, _ float32, labels []gometrics.Label) {
	s.keys = append(s.keys, strings.Join(key, ".")+label(labels))
}

func label(ls []gometrics.Label) string {
	if len(ls) == 0 {
		return ""
	}
	return "{" + ls[0].Name + "}"
}

// TestRaftExport_KeepsTheDocumentedKeysOnly: the keys docs/MONITORING.md
// lists reach the sink under "quorumq"; raft's other per-entry keys, its
// per-follower replication keys, and keys of other libraries do not.
func TestRaftExport_KeepsTheDocumentedKeysOnly(t *testing.T) {
	rec := &recordingSink{}
	conf := gometrics.DefaultConfig("")
	conf.EnableHostname, conf.EnableRuntimeMetrics = false, false
	m, err := gometrics.New(conf, raftExport{sink: rec, keys: raftExported})
	if err != nil {
		t.Fatal(err)
	}
	peer := []gometrics.Label{{Name: "peer_id", Value: "node2"}}
	for _, k := range []struct {
		key    string
		labels []gometrics.Label
	}{
		{"raft.commitTime", nil},
		{"raft.boltdb.storeLogs", nil},
		{"raft.boltdb.logSize", nil},
		{"raft.fsm.apply", nil},
		{"raft.fsm.applyBatch", nil},
		{"raft.fsm.applyBatchNum", nil},
		{"raft.fsm.enqueue", nil},
		{"raft.rpc.appendEntries", nil},
		{"raft.rpc.appendEntries.storeLogs", nil},
		{"raft.replication.appendEntries.rpc", peer},
		{"raft.replication.appendEntries.rpc.node2", nil},
		{"raft.replication.heartbeat", peer},
		{"raft.replication.heartbeat.node2", nil},
		{"raft.leader.dispatchLog", nil},
		{"raft.leader.dispatchNumLogs", nil},
		{"raft.thread.main.saturation", nil},
		{"raft.thread", nil},
		{"memberlist.gossip", nil},
	} {
		m.AddSampleWithLabels(strings.Split(k.key, "."), 1, k.labels)
	}
	m.IncrCounter([]string{"raft", "state", "leader"}, 1)
	m.IncrCounter([]string{"raft", "transition", "heartbeat_timeout"}, 1)
	m.IncrCounter([]string{"raft", "apply"}, 1)
	m.IncrCounterWithLabels([]string{"raft", "replication", "appendEntries", "logs"}, 1, peer)
	got := strings.Join(rec.keys, " ")
	want := "quorumq.raft.commitTime quorumq.raft.boltdb.storeLogs quorumq.raft.fsm.apply quorumq.raft.fsm.applyBatch " +
		"quorumq.raft.rpc.appendEntries quorumq.raft.leader.dispatchLog " +
		"quorumq.raft.thread.main.saturation quorumq.raft.state.leader quorumq.raft.transition.heartbeat_timeout"
	if got != want {
		t.Fatalf("reached the sink:\n%s\nwant:\n%s", got, want)
	}
}

// BenchmarkRaftExport_DroppedKey is what a key raft reports and nobody
// exports costs.
func BenchmarkRaftExport_DroppedKey(b *testing.B) {
	conf := gometrics.DefaultConfig("")
	conf.EnableHostname, conf.EnableRuntimeMetrics = false, false
	m, _ := gometrics.New(conf, raftExport{sink: &gometrics.BlackholeSink{}, keys: raftExported})
	key := []string{"raft", "rpc", "appendEntries", "storeLogs"}
	b.ReportAllocs()
	for b.Loop() {
		m.AddSample(key, 1)
	}
}

// TestRaftSink_SharedByEveryRegistryWithHelp: the process-wide sink can
// sit in several registries at once (nodes of one test process), and the
// declared timings are there before raft reports any.
func TestRaftSink_SharedByEveryRegistryWithHelp(t *testing.T) {
	for range 2 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(raftSinkCollector())
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		help := map[string]string{}
		for _, mf := range mfs {
			help[mf.GetName()] = mf.GetHelp()
		}
		for _, name := range []string{"quorumq_raft_commitTime", "quorumq_raft_boltdb_storeLogs"} {
			if h := help[name]; h == "" || h == name {
				t.Fatalf("%s: help %q (gathered %d families)", name, h, len(mfs))
			}
		}
	}
}
