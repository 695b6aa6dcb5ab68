package node_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/certs/certstest"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/testwait"
	"github.com/quorumq/quorumq/pubsub"
)

// startSecured starts n nodes with certificates of one cluster CA and one
// gossip key and tokens file, and returns them once all are ready, with a
// client that trusts the CA and sends the admin token.
func startSecured(t *testing.T, n int) ([]*node.Server, []node.Config, *nodetest.Secrets, *http.Client) {
	t.Helper()
	cfgs := nodetest.ClusterConfigs(t, n)
	sec := nodetest.Secure(t, cfgs)
	var nodes []*node.Server
	for _, c := range cfgs {
		nodes = append(nodes, nodetest.Start(t, c))
	}
	for _, s := range nodes {
		nodetest.WaitReady(t, s)
	}
	return nodes, cfgs, sec, nodetest.HTTPClient(t, sec.CA, sec.Admin)
}

// gossipSeeds are the configs' gossip addresses, a --join list.
func gossipSeeds(cfgs []node.Config) []string {
	var seeds []string
	for _, c := range cfgs {
		seeds = append(seeds, c.Cluster.GossipBind)
	}
	return seeds
}

func clusterStatus(t *testing.T, c *http.Client, base string) api.Status {
	t.Helper()
	resp, err := c.Get(base + "/cluster/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st api.Status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%s: %s %q: %v", base, resp.Status, b, err)
	}
	return st
}

func memberIDs(st api.Status) []string {
	var ids []string
	for _, m := range st.Members {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestCluster_Secured_FormsOverMutualTLSAndServesHTTPS: three nodes with
// certificates of one CA and one gossip key form a cluster of three
// voters; both ports answer HTTPS to a client that trusts the CA (a put
// on a follower is forwarded to the leader over mutual TLS), and plain
// HTTP gets no answer.
func TestCluster_Secured_FormsOverMutualTLSAndServesHTTPS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	nodes, _, _, c := startSecured(t, 3)
	testwait.For(t, time.Minute, "three voters", func() bool {
		st := clusterStatus(t, c, nodes[2].QueueURL())
		voters := 0
		for _, m := range st.Members {
			if m.Suffrage == "voter" {
				voters++
			}
		}
		return voters == 3
	})
	st := clusterStatus(t, c, nodes[0].QueueURL())
	var leader *node.Server
	for _, s := range nodes {
		if s.Node().ID() == st.LeaderID {
			leader = s
		}
	}
	if leader == nil {
		t.Fatalf("no leader in %+v", st)
	}
	var follower *node.Server
	for _, s := range nodes {
		if s != leader {
			follower = s
		}
	}
	// Forwarded to the leader over the cluster's mutual TLS.
	resp, err := c.Get(follower.QueueURL() + "/put?data=hello")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("put on a follower over HTTPS: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = c.Get(leader.QueueURL() + "/get")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hello" {
		t.Fatalf("get over HTTPS: %q", b)
	}
	// A publish on one node reaches a subscriber of another through the
	// fan-out over mutual TLS.
	sub, err := c.Get(nodes[0].PubsubURL() + "/sub?multipart=0&topic=t")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Body.Close()
	lines := bufio.NewReader(sub.Body)
	testwait.For(t, 30*time.Second, "the subscriber known on "+nodes[1].Node().ID(), func() bool {
		resp, err := c.Post(nodes[1].PubsubURL()+"/pub?topic=t", "text/plain", strings.NewReader("over-tls"))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(b), "to 1 clients")
	})
	for {
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("subscriber: %v", err)
		}
		if strings.TrimSpace(l) == "over-tls" {
			break
		}
	}

	for _, s := range nodes {
		if resp, err := http.Get("http://" + s.PubsubAddr + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("plain HTTP answered on %s", s.PubsubAddr)
			}
		}
	}
}

var joinErrors = regexp.MustCompile(`(?m)^quorumq_cluster_gossip_join_attempts_total\{result="error"\} (\d+)`)

// TestCluster_Secured_RogueWithoutCertificateOrKeyNeverJoins: a node
// started without the cluster's certificate and gossip key, joining a
// secured cluster through every member, fails to join again and again and
// never appears in the cluster's status.
func TestCluster_Secured_RogueWithoutCertificateOrKeyNeverJoins(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	nodes, cfgs, _, c := startSecured(t, 3)
	seeds := gossipSeeds(cfgs)
	rc := nodetest.Config(t)
	rc.Cluster.NodeID = "rogue"
	rc.Cluster.Join = seeds
	rogue := nodetest.Start(t, rc)
	testwait.For(t, time.Minute, "three failed join rounds of the rogue", func() bool {
		return metric(t, http.DefaultClient, rogue, joinErrors) >= 3*len(seeds)
	})
	for _, s := range nodes {
		if ids := memberIDs(clusterStatus(t, c, s.QueueURL())); strings.Contains(fmt.Sprint(ids), "rogue") {
			t.Fatalf("%s lists the rogue: %v", s.Node().ID(), ids)
		}
	}
}

func writeKeys(t *testing.T, path string, keys ...[]byte) {
	t.Helper()
	if err := os.WriteFile(path, certs.EncodeGossipKeys(keys...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func newGossipKey(t *testing.T) []byte {
	t.Helper()
	k, err := certs.NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestCluster_Secured_GossipKeyRotationWithoutRestart: the documented
// rotation (add the new key, make it primary, remove the old one, each
// followed by a reload on every node) leaves a running cluster on the new
// key only: a node that has only the new key joins it, one that has only
// the old key no longer can.
func TestCluster_Secured_GossipKeyRotationWithoutRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	cfgs := nodetest.ClusterConfigs(t, 3)
	sec := nodetest.Secure(t, cfgs)
	ca := sec.CA
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	old, next := newGossipKey(t), newGossipKey(t)
	writeKeys(t, keyFile, old)
	var nodes []*node.Server
	for i := range cfgs {
		cfgs[i].GossipKeyFile = keyFile
		nodes = append(nodes, nodetest.Start(t, cfgs[i]))
	}
	for _, s := range nodes {
		nodetest.WaitReady(t, s)
	}
	for _, keys := range [][][]byte{{old, next}, {next, old}, {next}} {
		writeKeys(t, keyFile, keys...)
		for _, s := range nodes {
			if err := s.Reload(); err != nil {
				t.Fatalf("reload %s: %v", s.Node().ID(), err)
			}
		}
	}
	seeds := gossipSeeds(cfgs)
	c := nodetest.HTTPClient(t, ca, sec.Admin)
	join := func(id string, key []byte) *node.Server {
		cfg := nodetest.Config(t)
		cfg.Cluster.NodeID, cfg.Cluster.Join = id, seeds
		cfg.TLS = ca.Node(t, id)
		cfg.GossipKeyFile = filepath.Join(t.TempDir(), "gossip.key")
		cfg.AuthTokensFile = sec.TokensFile
		writeKeys(t, cfg.GossipKeyFile, key)
		return nodetest.Start(t, cfg)
	}
	join("n4", next)
	testwait.For(t, time.Minute, "n4 in the cluster's status", func() bool {
		return strings.Contains(fmt.Sprint(memberIDs(clusterStatus(t, c, nodes[0].QueueURL()))), "n4")
	})
	stale := join("n5", old)
	testwait.For(t, time.Minute, "three failed join rounds of n5", func() bool {
		return metric(t, c, stale, joinErrors) >= 3*len(seeds)
	})
	if ids := fmt.Sprint(memberIDs(clusterStatus(t, c, nodes[0].QueueURL()))); strings.Contains(ids, "n5") {
		t.Fatalf("a node with the retired key joined: %s", ids)
	}
}

var reconcileRounds = regexp.MustCompile(`(?m)^quorumq_cluster_reconcile_rounds_total (\d+)`)

// metric reads one counter of a node's /metrics (0 when absent).
func metric(t *testing.T, c *http.Client, s *node.Server, re *regexp.Regexp) int {
	t.Helper()
	resp, err := c.Get(s.QueueURL() + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := re.FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestCluster_Secured_MemberOfAnotherCANeverVotesNorReceivesData: a node
// with the gossip key but a certificate of another CA is seen in gossip,
// yet through many reconcile rounds of the leader (well past the time a
// genuine node needs to be promoted) it never becomes a voter and its log
// stays empty: raft cannot reach it over mutual TLS.
func TestCluster_Secured_MemberOfAnotherCANeverVotesNorReceivesData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	nodes, cfgs, _, c := startSecured(t, 3)
	seeds := gossipSeeds(cfgs)
	put, err := c.Get(nodes[0].QueueURL() + "/put?data=secret")
	if err != nil || put.StatusCode != http.StatusOK {
		t.Fatalf("put: %v %v", put, err)
	}
	put.Body.Close()

	otherCA := certstest.NewCA(t)
	rc := nodetest.Config(t)
	rc.Cluster.NodeID, rc.Cluster.Join = "rogue", seeds
	rc.TLS = otherCA.Node(t, "rogue")
	rc.GossipKeyFile = cfgs[0].GossipKeyFile
	rogue := nodetest.Start(t, rc)
	rogueClient := nodetest.HTTPClient(t, otherCA, "")

	var leader *node.Server
	testwait.For(t, time.Minute, "the rogue in gossip", func() bool {
		st := clusterStatus(t, c, nodes[0].QueueURL())
		for _, s := range nodes {
			if s.Node().ID() == st.LeaderID {
				leader = s
			}
		}
		return strings.Contains(fmt.Sprint(memberIDs(st)), "rogue")
	})
	// A genuine node is promoted within PromoteAfter (5 s) of reconcile
	// rounds every second; wait for three times that many.
	start := metric(t, c, leader, reconcileRounds)
	testwait.For(t, time.Minute, "15 reconcile rounds on the leader", func() bool {
		return metric(t, c, leader, reconcileRounds) >= start+15
	})
	for _, m := range clusterStatus(t, c, leader.QueueURL()).Members {
		if m.ID == "rogue" && m.Voter {
			t.Fatalf("the rogue became a voter: %+v", m)
		}
	}
	if st := clusterStatus(t, rogueClient, rogue.QueueURL()); st.AppliedIndex != 0 || st.CommitIndex != 0 {
		t.Fatalf("the rogue received the log: %+v", st)
	}
}

// do sends one request and returns its status and body.
func do(t *testing.T, c *http.Client, method, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCluster_Secured_TokensAndRoles: on every node of a secured cluster,
// a produce-only token can put but not get, a consume token can get;
// without a token a put, a /config change and /cluster/leave answer 401,
// and an admin's /cluster/leave from a page of another origin 403, and
// none of them changes anything; a routed topic is enqueued by the node
// itself; a token added to the file works after a reload, one removed no
// longer does.
func TestCluster_Secured_TokensAndRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	cfgs := nodetest.ClusterConfigs(t, 3)
	sec := nodetest.Secure(t, cfgs)
	for i := range cfgs {
		cfgs[i].Router.Routes = []pubsub.Route{{Topic: "clicks", Queue: "routed"}}
	}
	var nodes []*node.Server
	for _, c := range cfgs {
		nodes = append(nodes, nodetest.Start(t, c))
	}
	for _, s := range nodes {
		nodetest.WaitReady(t, s)
	}
	admin := nodetest.HTTPClient(t, sec.CA, sec.Admin)
	producer := nodetest.HTTPClient(t, sec.CA, sec.Producer)
	consumer := nodetest.HTTPClient(t, sec.CA, sec.Consumer)
	anonymous := nodetest.HTTPClient(t, sec.CA, "")

	for i, s := range nodes {
		q := s.QueueURL()
		if code, body := do(t, producer, "GET", q+"/put?queue=work&data=m"+strconv.Itoa(i)); code != http.StatusOK {
			t.Fatalf("%s: producer put: %d %s", s.Node().ID(), code, body)
		}
		if code, body := do(t, producer, "GET", q+"/get?queue=work"); code != http.StatusForbidden {
			t.Fatalf("%s: producer get: %d %s, want 403", s.Node().ID(), code, body)
		}
		if code, _ := do(t, anonymous, "GET", q+"/put?queue=work&data=anon"); code != http.StatusUnauthorized {
			t.Fatalf("%s: anonymous put: %d, want 401", s.Node().ID(), code)
		}
		if code, _ := do(t, anonymous, "GET", q+"/config?queue=work&max_depth=1"); code != http.StatusUnauthorized {
			t.Fatalf("%s: anonymous config change: %d, want 401", s.Node().ID(), code)
		}
		if code, _ := do(t, anonymous, "POST", q+"/cluster/leave"); code != http.StatusUnauthorized {
			t.Fatalf("%s: anonymous leave: %d, want 401", s.Node().ID(), code)
		}
		if code, _ := do(t, admin, "POST", q+"/cluster/leave", "Origin", "http://evil.example", "Content-Type", "text/plain"); code != http.StatusForbidden {
			t.Fatalf("%s: cross-origin leave: %d, want 403", s.Node().ID(), code)
		}
	}
	// Nothing changed: three members, the queue's limits untouched, the
	// three puts there and no more.
	if st := clusterStatus(t, admin, nodes[0].QueueURL()); len(st.Members) != 3 {
		t.Fatalf("members after refused leaves: %v", memberIDs(st))
	}
	if code, body := do(t, admin, "GET", nodes[0].QueueURL()+"/config?queue=work"); code != http.StatusOK || !strings.Contains(body, "max_depth:0") && !strings.Contains(body, `"max_depth":0`) {
		t.Fatalf("config after a refused change: %d %s", code, body)
	}
	for i := range nodes {
		if code, body := do(t, consumer, "GET", nodes[i].QueueURL()+"/get?queue=work"); code != http.StatusOK || body == "" {
			t.Fatalf("consumer get %d: %d %q", i, code, body)
		}
	}
	if code, body := do(t, consumer, "GET", nodes[0].QueueURL()+"/get?queue=work"); code != http.StatusOK || body != "" {
		t.Fatalf("a fourth message in the queue: %d %q", code, body)
	}

	// Route mode: the node enqueues as itself, with no token of its own.
	resp, err := producer.Post(nodes[1].PubsubURL()+"/pub?topic=clicks", "text/plain", strings.NewReader("click-1"))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("routed publish: %v %v", resp, err)
	}
	resp.Body.Close()
	if code, body := do(t, consumer, "GET", nodes[2].QueueURL()+"/get?queue=routed"); code != http.StatusOK || body != "click-1" {
		t.Fatalf("routed message: %d %q", code, body)
	}

	// Tokens change on reload: a new one works, a removed one is refused.
	fresh, err := certs.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	file := certs.TokenLine("admin", []string{"admin"}, sec.Admin) + certs.TokenLine("fresh", []string{"produce"}, fresh)
	if err := os.WriteFile(sec.TokensFile, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range nodes {
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if code, _ := do(t, nodetest.HTTPClient(t, sec.CA, fresh), "GET", nodes[2].QueueURL()+"/put?queue=work&data=fresh"); code != http.StatusOK {
		t.Fatalf("a token added on reload: %d", code)
	}
	if code, _ := do(t, producer, "GET", nodes[2].QueueURL()+"/put?queue=work&data=old"); code != http.StatusUnauthorized {
		t.Fatalf("a token removed on reload: %d, want 401", code)
	}
}
