package systemtest

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testport"
)

// TestNoLeader_MajorityLost_503AndStatusNameTheDownVoters: with two of
// three nodes killed, a write to the survivor answers 503 saying that 2 of
// 3 voters are unreachable, which, and that a majority must be up; `quorumq
// status` on the survivor says the same.
func TestNoLeader_MajorityLost_503AndStatusNameTheDownVoters(t *testing.T) {
	c := mustStartCluster(t, 3, withServeArgs("--forward-timeout=1s"))
	survivor, dead := c.nodes[0], c.nodes[1:]
	for _, nd := range dead {
		nd.kill9()
	}
	down := ids(dead)
	slices.Sort(down)
	want := "no leader: 2 of 3 voters unreachable (" + strings.Join(down, ", ") + "); a majority (2) must be up"
	var last string
	eventually(t, readyTimeout, "a 503 naming the unreachable voters", func() error {
		code, body := survivor.get(survivor.QueueURL + "/put?data=x")
		last = body
		if code != 503 || !strings.HasPrefix(body, want) {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	t.Logf("the survivor answers: %s", strings.TrimSpace(last))
	mustStatusSay(t, survivor.QueueURL, want)
}

// TestNoLeader_SeedsUnreachable_503AndStatusSayNotJoined: a node whose
// --join seeds do not answer says so, instead of a bare "no leader".
func TestNoLeader_SeedsUnreachable_503AndStatusSayNotJoined(t *testing.T) {
	seed := testkit.Loopback(testport.Reserve(t)) // nobody listens there
	nd := newNode(t, open, "--join="+seed, "--bootstrap-expect=3", "--forward-timeout=500ms")
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	want := "not joined: join seeds " + seed + " unreachable; start one of them or check --join"
	eventually(t, readyTimeout, "a 503 saying the node has not joined", func() error {
		code, body := nd.get(nd.QueueURL + "/put?data=x")
		if code != 503 || !strings.HasPrefix(body, want) {
			return fmt.Errorf("%d %q", code, body)
		}
		return nil
	})
	mustStatusSay(t, nd.QueueURL, want)
}

// mustStatusSay runs `quorumq status` against addr and requires want in
// its output.
func mustStatusSay(t *testing.T, addr, want string) {
	t.Helper()
	out, err := exec.Command(mustBinary(t), "status", "--addr="+addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("quorumq status: %v\n%s\nwant %q in it", err, out, want)
	}
}
