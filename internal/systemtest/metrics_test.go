package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// scrape is one /metrics page: each series ("name{labels}") with its
// value, and the families seen.
type scrape struct {
	series   map[string]float64
	families map[string]bool
}

func parseScrape(t testing.TB, page string) scrape {
	t.Helper()
	s := scrape{series: map[string]float64{}, families: map[string]bool{}}
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics line %q", line)
		}
		series := line[:i]
		s.series[series] = v
		name, _, _ := strings.Cut(series, "{")
		s.families[name] = true
	}
	return s
}

// with returns the series of family name whose labels contain every
// label="value" of labels, by series.
func (s scrape) with(name string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	for series, v := range s.series {
		n, rest, _ := strings.Cut(series, "{")
		if n != name {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(rest, l)
		}
		if ok {
			out[series] = v
		}
	}
	return out
}

// scrapeURL reads the /metrics page at url (with the cluster user's token).
func (c *cluster) scrapeURL(url string) scrape {
	c.t.Helper()
	return parseScrape(c.t, c.mustGet(url))
}

// binaryVersion is what `quorumq version` prints after "quorumq ".
func binaryVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(mustBinary(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.TrimPrefix(string(out), "quorumq "))
}

// TestMetrics_ClusterNodes_ReportLeadershipLagBuildAndLatency: on each
// node of a 3-node process cluster /metrics has the families an operator
// watches, with values that agree: every node knows a leader, exactly one
// leads, the leader has a lag per follower and raft's commit time, each
// node its build, its data directory's size and the latency of the routes
// it served.
func TestMetrics_ClusterNodes_ReportLeadershipLagBuildAndLatency(t *testing.T) {
	c := mustStartCluster(t, 3)
	for i := range 5 {
		c.nodes[i%3].mustPut(c.nodes[i%3].QueueURL+"/put?queue=m", fmt.Sprintf("m%d", i))
	}
	version := binaryVersion(t)
	families := []string{
		"quorumq_has_leader", "quorumq_is_leader", "quorumq_leader_changes_total",
		"quorumq_raft_last_contact_seconds", "quorumq_build_info", "quorumq_data_dir_bytes",
		"quorumq_http_request_duration_seconds_bucket", "quorumq_http_requests_total",
		"quorumq_raft_commit_index", "quorumq_raft_applied_index", "quorumq_queue_depth",
		"quorumq_raft_boltdb_storeLogs", "quorumq_pubsub_connections", "quorumq_body_store_bytes",
	}
	var leader *node
	testwait.For(t, 60*time.Second, "every node with a leader, one leading, a lag per follower on it", func() bool {
		leader = nil
		for _, nd := range c.nodes {
			s := c.scrapeURL(nd.QueueURL + "/metrics")
			if s.series["quorumq_has_leader"] != 1 {
				return false
			}
			if s.series["quorumq_is_leader"] == 1 {
				if leader != nil {
					t.Fatalf("%s and %s both report quorumq_is_leader 1", leader.ID, nd.ID)
				}
				leader = nd
				if len(s.with("quorumq_replication_lag_entries")) != 2 {
					return false
				}
			}
		}
		return leader != nil
	})
	for _, nd := range c.nodes {
		s := c.scrapeURL(nd.QueueURL + "/metrics")
		for _, f := range families {
			if !s.families[f] {
				t.Errorf("%s: /metrics lacks %s", nd.ID, f)
			}
		}
		if got := s.with("quorumq_build_info", `version="`+version+`"`); len(got) != 1 {
			t.Errorf("%s: quorumq_build_info with version %q: %v", nd.ID, version, s.with("quorumq_build_info"))
		}
		if s.series["quorumq_data_dir_bytes"] <= 0 {
			t.Errorf("%s: quorumq_data_dir_bytes %v", nd.ID, s.series["quorumq_data_dir_bytes"])
		}
		if s.series["quorumq_leader_changes_total"] < 1 {
			t.Errorf("%s: quorumq_leader_changes_total %v, want at least 1", nd.ID, s.series["quorumq_leader_changes_total"])
		}
		if n := s.series[`quorumq_http_request_duration_seconds_count{route="put"}`]; n < 1 {
			t.Errorf("%s: %v puts in the latency histogram, want at least 1 (each node served one)", nd.ID, n)
		}
		if nd != leader && len(s.with("quorumq_replication_lag_entries")) != 0 {
			t.Errorf("%s: a follower reports replication lag", nd.ID)
		}
	}
	s := c.scrapeURL(leader.QueueURL + "/metrics")
	for series, lag := range s.with("quorumq_replication_lag_entries") {
		if lag < 0 || lag > s.series["quorumq_raft_commit_index"] {
			t.Errorf("leader %s: %s %v (commit index %v)", leader.ID, series, lag, s.series["quorumq_raft_commit_index"])
		}
	}
	if !s.families["quorumq_raft_commitTime"] {
		t.Errorf("leader %s: /metrics lacks raft's quorumq_raft_commitTime", leader.ID)
	}
	// The members report every 2 s: the first reports may predate the puts.
	testwait.For(t, 30*time.Second, "each member's applied index and lag on the leader's /cluster/status", func() bool {
		st, err := leader.status()
		if err != nil || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.AppliedIndex == 0 || m.Lag < 0 {
				return false
			}
		}
		return true
	})
}

// startToolProcess runs `quorumq <args>` until the test ends, printing its log
// if the test failed.
func startToolProcess(t *testing.T, name string, args ...string) *testkit.Process {
	t.Helper()
	p := testkit.NewProcess(testkit.ProcessConfig{Name: name, Argv: append([]string{mustBinary(t)}, args...), LogPath: filepath.Join(t.TempDir(), name+".log")})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("---- %s (tail) ----\n%s", name, p.LogTail(16<<10))
		}
	})
	return p
}

// TestMetrics_AnalyzeAndPsToHTTP_ServeTheirCountersOnMetricsAddr: analyze
// and ps_to_http started with --metrics-addr serve /metrics there, whose
// counters follow what they did: the numbers merged, the message posted.
func TestMetrics_AnalyzeAndPsToHTTP_ServeTheirCountersOnMetricsAddr(t *testing.T) {
	c := mustStartCluster(t, 3)
	rs := redistest.Start(t)

	analyzeAddr := testkit.Loopback(testport.Reserve(t))
	startToolProcess(t, "analyze", append([]string{"analyze", "moments", "--queue-addr=" + c.nodes[0].QueueURL, "--queue=nums",
		"--redis=" + rs.URL, "--key=m", "--metrics-addr=" + analyzeAddr}, c.toolArgs()...)...)
	c.nodes[1].mustPut(c.nodes[1].QueueURL+"/mput?queue=nums", "1\n2\n3\n4")
	testwait.For(t, 60*time.Second, "4 numbers merged, on analyze's /metrics", func() bool {
		code, page := c.get("http://" + analyzeAddr + "/metrics")
		if code != 200 {
			return false
		}
		s := parseScrape(t, page)
		return s.series[`quorumq_analyze_messages_merged_total{analysis="moments"}`] == 4 &&
			s.families["quorumq_reader_in_flight"] && s.families["go_goroutines"]
	})

	bridgeAddr := testkit.Loopback(testport.Reserve(t))
	startToolProcess(t, "ps_to_http", append([]string{"ps_to_http", "--pubsub-url=" + c.nodes[0].PubsubURL + "/sub?multipart=0",
		"--destination-post-url=" + c.nodes[2].QueueURL + "/put?queue=bridged", "--metrics-addr=" + bridgeAddr}, c.toolArgs()...)...)
	testwait.For(t, 60*time.Second, "ps_to_http subscribed, on its /metrics", func() bool {
		code, page := c.get("http://" + bridgeAddr + "/metrics")
		return code == 200 && parseScrape(t, page).series["quorumq_ps_to_http_connects_total"] == 1
	})
	posted := `quorumq_ps_to_http_messages_posted_total{destination="0",method="POST"}`
	testwait.For(t, 60*time.Second, "a published message posted, on ps_to_http's /metrics", func() bool {
		// Publish until one arrives: the bridge's subscription may reach
		// the other nodes' fan-out a moment after it connected.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, _, err := c.post(ctx, c.nodes[1].PubsubURL+"/pub", []byte("hello")); err != nil {
			return false
		}
		s := parseScrape(t, c.mustGet("http://"+bridgeAddr+"/metrics"))
		return s.series[posted] >= 1 && s.series["quorumq_ps_to_http_messages_received_total"] >= 1
	})
}
