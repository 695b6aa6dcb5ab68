package node_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestOperatorMetrics_ThreeNodes_LeaderSeesEveryMembersProgress: in a
// 3-node cluster every node knows the leader, one leads, the leader's
// /metrics has a replication lag per follower and its /cluster/status
// each member's applied index and lag; every node reports its build and
// the size of its data directory.
func TestOperatorMetrics_ThreeNodes_LeaderSeesEveryMembersProgress(t *testing.T) {
	cfgs := clusterConfigs(t, 3)
	var servers []*node.Server
	for i := range cfgs {
		cfgs[i].Cluster.ProgressInterval = 100 * time.Millisecond
		cfgs[i].Version = "v1.2.3-test"
		s, _ := mustStart(t, cfgs[i])
		servers = append(servers, s)
	}
	for _, s := range servers {
		nodetest.WaitReady(t, s)
	}
	mustCall(t, http.MethodPost, servers[0].QueueAddr, "/put?queue=m", "one", "")

	var leader *node.Server
	testwait.For(t, 30*time.Second, "one leader, known to all", func() bool {
		leader = nil
		for _, s := range servers {
			_, page := call(t, http.MethodGet, s.QueueAddr, "/metrics", "")
			if !strings.Contains(page, "\nquorumq_has_leader 1\n") {
				return false
			}
			if strings.Contains(page, "\nquorumq_is_leader 1\n") {
				if leader != nil {
					return false
				}
				leader = s
			}
		}
		return leader != nil
	})
	testwait.For(t, 30*time.Second, "each member's applied index on the leader", func() bool {
		_, body := call(t, http.MethodGet, leader.QueueAddr, "/cluster/status", "")
		var st api.Status
		if err := json.Unmarshal([]byte(body), &st); err != nil || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.AppliedIndex == 0 || m.Lag < 0 || m.Lag > int64(st.CommitIndex) {
				return false
			}
		}
		return true
	})
	_, page := call(t, http.MethodGet, leader.QueueAddr, "/metrics", "")
	for _, want := range []string{
		`quorumq_replication_lag_entries{peer="n`,
		`quorumq_build_info{goversion="go`,
		`version="v1.2.3-test"} 1`,
		"quorumq_data_dir_bytes ",
		"quorumq_leader_changes_total ",
		"quorumq_raft_commitTime_count ",
		`quorumq_http_request_duration_seconds_count{route="put"} `,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the leader's /metrics lacks %q", want)
		}
	}
	if n := strings.Count(page, "quorumq_replication_lag_entries{"); n != 2 {
		t.Errorf("%d replication lag series on the leader, want 2 (one per follower)", n)
	}
}
