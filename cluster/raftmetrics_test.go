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

// TestRaftKeys_DropsTheLegacyPerPeerNames: raft's replication metrics
// named after a peer are dropped, their labelled twins and every other
// key pass.
func TestRaftKeys_DropsTheLegacyPerPeerNames(t *testing.T) {
	rec := &recordingSink{}
	s := raftKeys{rec}
	s.AddSample([]string{"quorumq", "raft", "replication", "heartbeat", "node2"}, 1)
	s.AddSampleWithLabels([]string{"quorumq", "raft", "replication", "heartbeat"}, 1, []gometrics.Label{{Name: "peer_id", Value: "node2"}})
	s.IncrCounter([]string{"quorumq", "raft", "replication", "appendEntries", "logs", "node2"}, 1)
	s.AddSample([]string{"quorumq", "raft", "commitTime"}, 1)
	got := strings.Join(rec.keys, " ")
	if want := "quorumq.raft.replication.heartbeat{peer_id} quorumq.raft.commitTime"; got != want {
		t.Fatalf("passed %q, want %q", got, want)
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
