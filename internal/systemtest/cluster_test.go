package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

// TestCluster_StartTogether_FormsOneCluster_20Runs: three nodes started at
// the same moment with --bootstrap-expect=3 form exactly one cluster, 20
// times in a row: one node leads, all three name it, and every node's
// configuration has the three as voters. Secured (every other secured
// test starts a cluster too), 5 times.
func TestCluster_StartTogether_FormsOneCluster_20Runs(t *testing.T) {
	inModes(t, testCluster_StartTogether_FormsOneCluster_20Runs)
}

func testCluster_StartTogether_FormsOneCluster_20Runs(t *testing.T, m mode) {
	runs := 20
	if m.secure {
		runs = 5
	}
	if testing.Short() {
		runs = 3
	}
	var total time.Duration
	formed := 0
	for run := 1; run <= runs; run++ {
		ok := t.Run(fmt.Sprintf("run%02d", run), func(t *testing.T) {
			start := time.Now()
			c := mustStartCluster(t, 3, withMode(t, m), withFastRaft())
			c.waitForVoters(c.nodes, "node1", "node2", "node3")
			eventually(t, leaderTimeout, "exactly one leader", func() error {
				l, err := c.leader()
				if err != nil {
					return err
				}
				var leaders []string
				for _, nd := range c.nodes {
					st, err := nd.status()
					if err != nil {
						return err
					}
					if st.State == "leader" {
						leaders = append(leaders, nd.ID)
					}
				}
				if len(leaders) != 1 || leaders[0] != l.ID {
					return fmt.Errorf("nodes in state leader: %v; all name %s", leaders, l.ID)
				}
				return nil
			})
			d := time.Since(start)
			total += d
			formed++
			t.Logf("formed in %v", d.Round(time.Millisecond))
			// SIGKILL: this test is about forming; stopping is tested elsewhere.
			for _, nd := range c.nodes {
				nd.Kill()
			}
		})
		if !ok {
			break
		}
	}
	if formed > 0 {
		t.Logf("%d clusters formed, on average in %v", formed, (total / time.Duration(formed)).Round(time.Millisecond))
	}
}

// TestCluster_WritesViaFollowers_Land: a put sent to a follower is
// forwarded to the leader and committed: 200, stored once and in order,
// visible through every node, and a get through another follower pops it.
func TestCluster_WritesViaFollowers_Land(t *testing.T) {
	inModes(t, testCluster_WritesViaFollowers_Land)
}

func testCluster_WritesViaFollowers_Land(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	l := c.waitForLeader()
	fs := c.followers()
	var want []string
	for i := range 10 {
		for _, f := range fs {
			msg := fmt.Sprintf("%s-%02d", f.ID, i)
			res := f.mustPut(f.QueueURL+"/put", msg)
			if by := res.header.Get("X-Served-By"); i == 0 && !servedBy(by, l) {
				t.Errorf("put via %s: X-Served-By %q, want the leader %s", f.ID, by, l.ID)
			}
			want = append(want, msg)
		}
	}
	l.mustPut(l.QueueURL+"/put", "via-leader")
	want = append(want, "via-leader")
	wantDump := strings.Join(want, "\n") + "\n"
	for _, nd := range c.nodes {
		if got := nd.mustGet(nd.QueueURL + "/dump"); got != wantDump {
			t.Fatalf("/dump via %s:\n got  %s\n want %s", nd.ID, abbrev(got), abbrev(wantDump))
		}
	}
	for _, f := range fs {
		waitSameData(t, f, l, "default")
	}
	if got := fs[1].mustGet(fs[1].QueueURL + "/get"); got != want[0] {
		t.Fatalf("/get via %s: %q, want %q", fs[1].ID, got, want[0])
	}
	if got := l.mustGet(l.QueueURL + "/dump"); got != strings.Join(want[1:], "\n")+"\n" {
		t.Fatalf("/dump after the get: %s", abbrev(got))
	}
}

// servedBy reports whether an X-Served-By value names nd (by id or by one
// of its addresses).
func servedBy(v string, nd *node) bool {
	return v != "" && (v == nd.ID || strings.Contains(v, nd.QueueAddr) || strings.Contains(v, nd.RaftAddr))
}

// TestCluster_Redirect_307ToLeaderQueueURL: with redirect=1 a follower
// answers 307 whose Location is the leader's queue URL with the same path
// and parameters, and stores nothing itself; following it stores the
// message once. The leader serves redirect=1 requests itself.
func TestCluster_Redirect_307ToLeaderQueueURL(t *testing.T) {
	inModes(t, testCluster_Redirect_307ToLeaderQueueURL)
}

func testCluster_Redirect_307ToLeaderQueueURL(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	l := c.waitForLeader()
	f := c.followers()[0]
	ctx := context.Background()

	reqURL := f.QueueURL + "/put?queue=redir&redirect=1"
	res, err := c.doNoRedirect(ctx, http.MethodPost, reqURL, []byte("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.code != http.StatusTemporaryRedirect {
		t.Fatalf("put?redirect=1 via %s: %d %q, want 307", f.ID, res.code, res.body)
	}
	loc := mustLocation(t, reqURL, res)
	// On a secured cluster the leader's queue URL is https.
	if loc.Scheme+"://"+loc.Host != l.QueueURL || loc.Path != "/put" || loc.Query().Get("queue") != "redir" {
		t.Fatalf("Location %s: want %s/put with queue=redir", loc, l.QueueURL)
	}
	if got := l.mustGet(l.QueueURL + "/dump?queue=redir"); got != "" {
		t.Fatalf("the 307 stored something: %q", got)
	}
	c.mustPut(loc.String(), "m1")
	if got := l.mustGet(l.QueueURL + "/dump?queue=redir"); got != "m1\n" {
		t.Fatalf("after following the redirect: %q", got)
	}

	// A read redirects too; on the leader, redirect=1 is served there.
	getURL := f.QueueURL + "/get?queue=redir&redirect=1"
	res, err = c.doNoRedirect(ctx, http.MethodGet, getURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.code != http.StatusTemporaryRedirect {
		t.Fatalf("get?redirect=1 via %s: %d %q, want 307", f.ID, res.code, res.body)
	}
	if loc := mustLocation(t, getURL, res); loc.Scheme+"://"+loc.Host != l.QueueURL || loc.Path != "/get" {
		t.Fatalf("get Location %s", loc)
	}
	res, err = c.doNoRedirect(ctx, http.MethodGet, l.QueueURL+"/get?queue=redir&redirect=1", nil)
	if err != nil || res.code != http.StatusOK || res.body != "m1" {
		t.Fatalf("get?redirect=1 on the leader: %d %q %v, want 200 m1", res.code, res.body, err)
	}
}

func mustLocation(t *testing.T, reqURL string, res response) *url.URL {
	t.Helper()
	base, _ := url.Parse(reqURL)
	loc, err := base.Parse(res.header.Get("Location"))
	if err != nil || res.header.Get("Location") == "" {
		t.Fatalf("307 with Location %q: %v", res.header.Get("Location"), err)
	}
	return loc
}

// TestCluster_KillLeader_NewLeaderWithin3s_NoAckedWriteLost: with writers
// putting through every node, a kill -9 of the leader is followed by a
// write acknowledged by the new leader within 3 s (500 ms raft timeouts);
// every acknowledged message is stored exactly once; and the old node,
// restarted on its data, rejoins and holds the same data as the leader.
func TestCluster_KillLeader_NewLeaderWithin3s_NoAckedWriteLost(t *testing.T) {
	inModes(t, testCluster_KillLeader_NewLeaderWithin3s_NoAckedWriteLost)
}

func testCluster_KillLeader_NewLeaderWithin3s_NoAckedWriteLost(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m), withFastRaft())
	old := c.waitForLeader()
	w := startWrites(t, 8, c.nodes...)
	w.waitAcked(200, 60*time.Second)

	killedAt := time.Now()
	old.kill9()
	goneAt := time.Now() // no request sent from now on can reach the old leader
	nl := c.waitForNewLeader(old)
	t.Logf("new leader %s named by all survivors %v after the kill", nl.ID, time.Since(killedAt).Round(time.Millisecond))

	first := waitFirstAckAfter(t, w, goneAt)
	failover := first.ackedAt.Sub(killedAt)
	t.Logf("kill -9 to first acknowledged write: %v (%q via %s, served by %q)", failover.Round(time.Millisecond), first.msg, first.via, first.servedBy)
	if failover > 3*time.Second {
		t.Errorf("failover took %v, want at most 3s", failover.Round(time.Millisecond))
	}
	w.waitAcked(w.acked()+200, 60*time.Second)
	w.halt()

	l := c.waitForLeader()
	w.verify(l.mustGet(l.QueueURL + "/dump"))

	old.restart()
	l = c.waitForLeader() // old among the nodes that agree
	c.waitForVoters(c.nodes, "node1", "node2", "node3")
	waitSameData(t, old, l, "default")
}

// TestCluster_FourthNode_JoinsAsNonvoter_PromotedAfterCatchUp: a node that
// joins a running cluster appears in the leader's configuration as a
// non-voter before it is a voter, is promoted once caught up, ends as the
// fourth voter on every node, and holds the leader's data.
func TestCluster_FourthNode_JoinsAsNonvoter_PromotedAfterCatchUp(t *testing.T) {
	inModes(t, testCluster_FourthNode_JoinsAsNonvoter_PromotedAfterCatchUp)
}

func testCluster_FourthNode_JoinsAsNonvoter_PromotedAfterCatchUp(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	l := c.waitForLeader()
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("bulk-%04d", i))
	}
	l.mustPut(l.QueueURL+"/mput", strings.Join(lines, "\n"))
	for i := range 100 {
		c.mustPut(c.nodes[i%3].QueueURL+"/put", fmt.Sprintf("single-%03d", i))
	}

	n4 := c.addNode()
	var nonvoterSince time.Time
	start := time.Now()
	eventually(t, 2*readyTimeout, "node4 promoted to voter", func() error {
		st, err := l.status()
		if err != nil {
			return err
		}
		m, ok := testkit.Member(st, n4.ID)
		switch {
		case !ok:
			return fmt.Errorf("%s is not in the leader's configuration", n4.ID)
		case !m.Voter:
			if nonvoterSince.IsZero() {
				nonvoterSince = time.Now()
				t.Logf("%s is a non-voter %v after its start", n4.ID, time.Since(start).Round(time.Millisecond))
			}
			return fmt.Errorf("%s is a non-voter", n4.ID)
		case nonvoterSince.IsZero():
			t.Fatalf("%s appeared in the leader's configuration as a voter without being a non-voter first", n4.ID)
		}
		return nil
	})
	t.Logf("%s promoted %v after it was seen as a non-voter", n4.ID, time.Since(nonvoterSince).Round(time.Millisecond))
	n4.mustBeReady(readyTimeout)
	c.waitForVoters(c.nodes, "node1", "node2", "node3", "node4")
	waitSameData(t, n4, l, "default")
}

// TestCluster_LateJoiner_InstalledSnapshot: once the leader has compacted
// its log (low --raft-snapshot-threshold and --raft-trailing-logs), a new
// node can only catch up by installing a snapshot: one at or past the
// leader's compaction point appears in its data directory, it took the
// snapshot up with the body segments it brought (several: 32 KiB each),
// and its data matches the leader's.
func TestCluster_LateJoiner_InstalledSnapshot(t *testing.T) {
	inModes(t, testCluster_LateJoiner_InstalledSnapshot)
}

func testCluster_LateJoiner_InstalledSnapshot(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m), withServeArgs("--raft-snapshot-threshold=32", "--raft-trailing-logs=8",
		"--raft-snapshot-interval=200ms", "--body-segment-size=32KiB"))
	l := c.waitForLeader()
	for i := range 150 { // one log entry each, 75 KB of bodies in all
		l.mustPut(l.QueueURL+"/put", fmt.Sprintf("m%03d-%s", i, strings.Repeat("x", 350+2*i)))
	}
	for range 10 {
		l.mustGet(l.QueueURL + "/get")
	}
	var compacted uint64
	eventually(t, readyTimeout, "a snapshot on the leader covering the writes", func() error {
		st, err := l.status()
		if err != nil {
			return err
		}
		// 160 commands: a snapshot past 100 leaves the first 90 entries
		// in no log, so a new node cannot replay from the start.
		if compacted = snapshotIndex(l.DataDir); compacted < 100 {
			return fmt.Errorf("leader snapshot at index %d, commit index %d", compacted, st.CommitIndex)
		}
		return nil
	})
	t.Logf("leader %s has a snapshot at index %d (log kept from about %d on)", l.ID, compacted, compacted-8)

	n4 := c.addNode()
	n4.mustBeReady(readyTimeout)
	c.waitForVoters(c.nodes, "node1", "node2", "node3", "node4")
	waitSameData(t, n4, l, "default")
	if got := snapshotIndex(n4.DataDir); got < compacted {
		t.Fatalf("%s has no snapshot at or past the leader's compaction point %d (highest: %d): it did not install one", n4.ID, compacted, got)
	} else {
		t.Logf("%s holds a snapshot at index %d", n4.ID, got)
	}
	if got := n4.metric(`quorumq_snapshot_restores_total{kind="segments"}`); got < 1 {
		t.Fatalf("%s took up %v snapshots with their body segments, want at least 1", n4.ID, got)
	}
	// The data directory is the evidence, not the log: no quorumq line
	// reports an install, and raft's own "Installed remote snapshot" is
	// INFO while raft logs at WARN.
}

// TestCluster_Leave_ShrinksConfiguration: POST /cluster/leave on a follower
// removes it from the cluster for good: the process exits 0, every
// remaining node's configuration has only the two others as voters, and
// the two keep acknowledging writes.
func TestCluster_Leave_ShrinksConfiguration(t *testing.T) {
	inModes(t, testCluster_Leave_ShrinksConfiguration)
}

func testCluster_Leave_ShrinksConfiguration(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	l := c.waitForLeader()
	f := c.followers()[0]
	res, err := f.do(context.Background(), http.MethodPost, f.QueueURL+"/cluster/leave", nil)
	if err != nil || res.code != http.StatusOK {
		t.Fatalf("POST /cluster/leave on %s: %d %q %v", f.ID, res.code, res.body, err)
	}
	rest := without(c.nodes, f)
	c.waitForVoters(rest, ids(rest)...)
	eventually(t, leaderTimeout, f.ID+" gone from the members", func() error {
		for _, nd := range rest {
			st, err := nd.status()
			if err != nil {
				return err
			}
			if m, ok := testkit.Member(st, f.ID); ok && (m.Voter || m.Status != "left") {
				return fmt.Errorf("%s lists %s as %+v", nd.ID, f.ID, m)
			}
		}
		return nil
	})
	for _, nd := range rest {
		nd.mustPut(nd.QueueURL+"/put", "after-leave-via-"+nd.ID)
	}
	if got := l.mustGet(l.QueueURL + "/dump"); got != "after-leave-via-"+rest[0].ID+"\nafter-leave-via-"+rest[1].ID+"\n" {
		t.Fatalf("dump after the leave: %q", got)
	}
	if code := f.waitExit(stopTimeout); code != 0 {
		t.Fatalf("%s exited with status %d after leaving", f.ID, code)
	}
	// Its data directory says it left (what the chaos nemesis reads when
	// the answer to a leave is lost); the others' do not.
	if !f.DirLeft() {
		t.Fatalf("%s's data directory is not marked left", f.ID)
	}
	for _, nd := range rest {
		if nd.DirLeft() {
			t.Fatalf("%s's data directory is marked left", nd.ID)
		}
	}
}

// TestCluster_LeaderLeave_AfterPause_DeadPeer_ConfirmedAndExits: a leader
// paused for a moment (as the chaos schedule does) with one follower dead,
// then asked to leave, may lead again while it waits to be removed (the
// others could not elect without it). It hands leadership over again, so
// the leave is confirmed by the new leader rather than running into its
// bound; the request is answered, the process exits 0, and with the dead
// follower back the two others hold the data without it.
func TestCluster_LeaderLeave_AfterPause_DeadPeer_ConfirmedAndExits(t *testing.T) {
	c := mustStartCluster(t, 3, withServeArgs("--shutdown-timeout=10s"))
	l := c.waitForLeader()
	l.mustPut(l.QueueURL+"/put", "before")
	dead := c.followers()[0]
	dead.kill9()
	if err := l.Pause(); err != nil {
		t.Fatal(err)
	}
	// Long enough for the remaining follower to time out the leader and
	// try an election it cannot win alone.
	time.Sleep(time.Second)
	if err := l.Resume(); err != nil {
		t.Fatal(err)
	}
	res, err := l.do(context.Background(), http.MethodPost, l.QueueURL+"/cluster/leave", nil)
	if err != nil || res.code != http.StatusOK {
		t.Fatalf("POST /cluster/leave on %s: %d %q %v", l.ID, res.code, res.body, err)
	}
	if code := l.waitExit(stopTimeout); code != 0 {
		t.Fatalf("%s exited with status %d after leaving", l.ID, code)
	}
	log := l.LogTail(1 << 20)
	if !strings.Contains(log, "leave: removed from the configuration") {
		t.Fatalf("%s's leave was not confirmed; its log ends:\n%s", l.ID, l.LogTail(4<<10))
	}
	// With the dead follower back, the two form the cluster without the
	// node that left, with what was acknowledged before.
	dead.restart()
	rest := without(c.nodes, l)
	c.waitForVoters(rest, ids(rest)...)
	nl := c.waitForLeaderOf(rest, l)
	if got := nl.mustGet(nl.QueueURL + "/dump"); got != "before\n" {
		t.Fatalf("dump after the leave: %q", got)
	}
}

// TestCluster_SIGTERM_NodeComesBackAsMember: SIGTERM stops the leader
// gracefully without leaving: it exits 0, another node leads, the stopped
// node stays a voter in the configuration while it is down, and restarted
// on its data it rejoins as a voter and catches up on what it missed.
func TestCluster_SIGTERM_NodeComesBackAsMember(t *testing.T) {
	inModes(t, testCluster_SIGTERM_NodeComesBackAsMember)
}

func testCluster_SIGTERM_NodeComesBackAsMember(t *testing.T, m mode) {
	c := mustStartCluster(t, 3, withMode(t, m))
	old := c.waitForLeader()
	old.mustPut(old.QueueURL+"/put", "before")
	stoppedAt := time.Now()
	old.terminate()
	c.waitForNewLeader(old)
	t.Logf("SIGTERM to a new leader named by the others: %v", time.Since(stoppedAt).Round(time.Millisecond))
	c.waitForVoters(c.running(), "node1", "node2", "node3")
	for _, nd := range c.running() {
		nd.mustPut(nd.QueueURL+"/put", "while-down-via-"+nd.ID)
	}

	old.restart()
	l := c.waitForLeader() // old among the nodes that agree
	c.waitForVoters(c.nodes, "node1", "node2", "node3")
	waitSameData(t, old, l, "default")
	if got := len(dumpItems(l.mustGet(l.QueueURL + "/dump"))); got != 3 {
		t.Fatalf("%d messages stored, want 3", got)
	}
}
