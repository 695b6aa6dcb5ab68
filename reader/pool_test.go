package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

// TestPool_PickAndMarkDown: BalanceLeader picks the leader while it is
// up; a node that cannot be reached is skipped for a jittered while, then
// picked again; an answer, even an error other than 503, keeps a node up.
func TestPool_PickAndMarkDown(t *testing.T) {
	p, err := newPool([]string{"http://a:1", "http://b:1", "c:1"}, BalanceLeader, true, nodeOptions(Config{HTTPClient: http.DefaultClient}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	for i, n := range p.nodes {
		n.id = fmt.Sprintf("n%d", i+1)
	}
	p.leaderID = "n2"
	if n := p.pick(); n.url != "http://b:1" {
		t.Fatalf("picked %s, want the leader", n.url)
	}
	refused := fmt.Errorf("quorumq: POST http://b:1/mget: %w: dial tcp: connection refused", api.ErrUnavailable)
	p.observe(context.Background(), p.nodes[1], nil, refused)
	if p.leaderID != "" {
		t.Errorf("the unreachable leader is still the leader")
	}
	seen := map[string]bool{}
	for range 10 {
		seen[p.pick().url] = true
	}
	if seen["http://b:1"] || !seen["http://a:1"] || !seen["http://c:1"] {
		t.Errorf("picked %v while b is down", seen)
	}
	if d := p.nodes[1].downUntil.Sub(now); d < nodeDownMin/2 || d > nodeDownMin {
		t.Errorf("down for %v after one failure", d)
	}
	// Repeated failures double the pause, up to the cap.
	for range 20 {
		p.observe(context.Background(), p.nodes[1], nil, refused)
	}
	if d := p.nodes[1].downUntil.Sub(now); d < nodeDownMax/2 || d > nodeDownMax {
		t.Errorf("down for %v after many failures", d)
	}
	// A 409 is an answer: the node is up.
	p.observe(context.Background(), p.nodes[1], nil, &client.HTTPError{Status: 409})
	if p.nodes[1].down(now) {
		t.Errorf("b still down after an answer")
	}
	// The leader is learned from X-Served-By.
	p.observe(context.Background(), p.nodes[0], &client.CallInfo{ServedBy: "n3"}, nil)
	if n := p.pick(); n.url != "http://c:1" {
		t.Errorf("picked %s, want n3 named by X-Served-By", n.url)
	}
	// All down: the one that comes back first.
	for _, n := range p.nodes {
		p.observe(context.Background(), n, nil, refused)
	}
	p.nodes[2].downUntil = now.Add(time.Millisecond)
	if n := p.pick(); n.url != "http://c:1" {
		t.Errorf("all down: picked %s", n.url)
	}
	// The caller's own cancellation says nothing about the node.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := p.nodes[0].failures
	p.observe(ctx, p.nodes[0], nil, errors.Join(api.ErrOutcomeUnknown, context.Canceled))
	if p.nodes[0].failures != before {
		t.Errorf("a cancelled call counted as a node failure")
	}
}

// TestPool_Discovery: members are added from /cluster/status, a member
// reached through a configured address under another name is not added
// twice, and a discovered member that left is dropped.
func TestPool_Discovery(t *testing.T) {
	tc := newTestCluster(t, 3)
	// n1 configured as localhost: the members list it as 127.0.0.1.
	local := strings.Replace(tc.nodes[0].srv.URL, "127.0.0.1", "localhost", 1)
	p, err := newPool([]string{local}, BalanceLeader, true, nodeOptions(Config{HTTPClient: http.DefaultClient}), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	p.refresh(context.Background())
	got := map[string]string{}
	for _, n := range p.info() {
		got[n.ID] = n.URL
	}
	if len(got) != 3 || got["n1"] != local || got["n2"] != tc.nodes[1].srv.URL || got["n3"] != tc.nodes[2].srv.URL {
		t.Fatalf("nodes %v", p.info())
	}
	if p.leader() != "n1" {
		t.Errorf("leader %q", p.leader())
	}
	// n3 leaves the cluster.
	tc.nodes = tc.nodes[:2]
	p.refresh(context.Background())
	if n := len(p.info()); n != 2 {
		t.Errorf("nodes after n3 left: %+v", p.info())
	}
}
