package systemtest

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/testwait"
)

// runTool runs `quorumq args...` to completion (within two minutes) and
// returns its stdout, its stderr and its exit status.
func runTool(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mustBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("quorumq %s: %v", args[0], err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// mustRunTool is runTool that requires exit status 0.
func mustRunTool(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := runTool(t, args...)
	if code != 0 {
		t.Fatalf("quorumq %s: exit status %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

// queueAddrs is the --queue-addrs of nodes.
func queueAddrs(nodes []*node) string {
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.QueueURL)
	}
	return "--queue-addrs=" + strings.Join(addrs, ",")
}

// backupState is what the test compares before and after a restore: the
// ready messages of each queue and the deferred count of the queue that
// holds deferred messages.
type backupState struct {
	jobs, dead []string
	deferred   int64
}

// fillForBackup puts ready messages (a large one among them, so that
// bodies span segments), deferred ones, and dead-lettered ones.
func fillForBackup(t *testing.T, nd *node) backupState {
	t.Helper()
	var jobs []string
	for i := range 40 {
		jobs = append(jobs, fmt.Sprintf("job-%02d", i))
	}
	jobs = append(jobs, "big-"+strings.Repeat("x", 200<<10))
	for _, m := range jobs {
		nd.mustPut(nd.QueueURL+"/put?queue=jobs", m)
	}
	for i := range 3 {
		nd.mustPut(nd.QueueURL+"/put?queue=later&delay=1h", fmt.Sprintf("later-%d", i))
	}
	nd.mustGet(nd.QueueURL + "/config?queue=work&max_attempts=1&dead_letter=work.dead")
	var dead []string
	for i := range 3 {
		m := fmt.Sprintf("doomed-%d", i)
		dead = append(dead, m)
		nd.mustPut(nd.QueueURL+"/put?queue=work", m)
		res := nd.mustGetStatus(nd.QueueURL + "/get?queue=work&lease=30s")
		id := res.header.Get("X-Message-Id")
		if res.code != http.StatusOK || id == "" {
			t.Fatalf("get from work: %d %q", res.code, res.body)
		}
		nd.mustPut(nd.QueueURL+"/nack?id="+id, "")
	}
	return backupState{jobs: jobs, dead: dead, deferred: 3}
}

// waitState waits until nd holds want, read with stale=1 (what nd itself
// has applied).
func waitState(t *testing.T, nd *node, want backupState) {
	t.Helper()
	testwait.For(t, 60*time.Second, nd.ID+" holding the backup's messages", func() bool {
		qc := nd.queueCounts("later", true)
		return slices.Equal(nd.dumpLines("jobs", true), want.jobs) &&
			slices.Equal(nd.dumpLines("work.dead", true), want.dead) && qc.Deferred == want.deferred
	})
}

// TestBackup_RestoreIntoWipedAndFreshClusters_EveryMessageOnEveryNode:
// a backup of a 3-node cluster (ready, deferred and dead-lettered
// messages, taken through a follower, which redirects to the leader),
// restored into the same cluster after its queues were emptied and into a
// fresh cluster that held other messages, brings back every message on
// every node, and a node restarted after the restore still holds them.
func TestBackup_RestoreIntoWipedAndFreshClusters_EveryMessageOnEveryNode(t *testing.T) {
	a := mustStartCluster(t, 3)
	want := fillForBackup(t, a.nodes[0])
	file := filepath.Join(t.TempDir(), "q.backup")
	follower := a.followers()[0]
	mustRunTool(t, "backup", queueAddrs([]*node{follower}), "--out="+file)
	if fi, err := os.Stat(file); err != nil || fi.Size() < 200<<10 {
		t.Fatalf("backup file: %v %v", fi, err)
	}

	// Wipe the cluster's queues: consume every ready message, and let the
	// deferred ones be (they are replaced too).
	for _, q := range []string{"jobs", "work.dead"} {
		for {
			res := a.nodes[1].mustGetStatus(a.nodes[1].QueueURL + "/mget?items=100&queue=" + q)
			if res.code != http.StatusOK || res.body == "" {
				break
			}
		}
	}
	a.nodes[2].mustPut(a.nodes[2].QueueURL+"/put?queue=jobs", "after-the-backup")
	if got := a.nodes[0].dumpLines("jobs", false); !slices.Equal(got, []string{"after-the-backup"}) {
		t.Fatalf("jobs holds %d messages after the wipe", len(got))
	}
	out := mustRunTool(t, "restore", queueAddrs([]*node{a.followers()[1]}), "--in="+file)
	if !strings.Contains(out, "restored") {
		t.Errorf("restore said %q", out)
	}
	for _, nd := range a.nodes {
		waitState(t, nd, want)
	}

	// A node restarted after the restore holds it still, and the cluster
	// goes on taking writes.
	f := a.followers()[0]
	f.kill9()
	f.restart()
	waitState(t, f, want)
	leader := a.waitForLeader()
	leader.kill9()
	leader.restart()
	waitState(t, leader, want)
	a.waitForLeader().mustPut(a.nodes[0].QueueURL+"/put?queue=jobs", "after-the-restore")
	for _, nd := range a.nodes {
		waitState(t, nd, backupState{jobs: append(slices.Clone(want.jobs), "after-the-restore"), dead: want.dead, deferred: want.deferred})
	}

	// A fresh cluster that held other messages takes the same backup.
	b := mustStartCluster(t, 3)
	b.nodes[0].mustPut(b.nodes[0].QueueURL+"/put?queue=jobs", "of-the-fresh-cluster")
	mustRunTool(t, "restore", queueAddrs(b.nodes), "--in="+file)
	for _, nd := range b.nodes {
		waitState(t, nd, want)
	}
	bf := b.followers()[0]
	bf.kill9()
	bf.restart()
	waitState(t, bf, want)
}

// TestBackup_DamagedBackup_RefusedNothingChanged: a restore of a file
// that is not a whole backup is a 400 and the cluster keeps its state.
func TestBackup_DamagedBackup_RefusedNothingChanged(t *testing.T) {
	c := mustStartCluster(t, 3)
	l := c.waitForLeader()
	l.mustPut(l.QueueURL+"/put?queue=jobs", "kept")
	file := filepath.Join(t.TempDir(), "q.backup")
	mustRunTool(t, "backup", queueAddrs(c.nodes), "--out="+file)
	whole, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.backup")
	if err := os.WriteFile(cut, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runTool(t, "restore", queueAddrs(c.nodes), "--in="+cut)
	if code != 1 || !strings.Contains(errs, "400") {
		t.Fatalf("restore of half a backup: exit %d, %s", code, errs)
	}
	for _, nd := range c.nodes {
		if got := nd.dumpLines("jobs", false); !slices.Equal(got, []string{"kept"}) {
			t.Fatalf("%s holds %q after a refused restore", nd.ID, got)
		}
	}
}

// TestBackup_Secured_MonitorTokenRefusedAdminServed: on a secured cluster
// GET /backup and POST /restore need the admin role: a monitor token gets
// 403 on every node, the admin token a backup.
func TestBackup_Secured_MonitorTokenRefusedAdminServed(t *testing.T) {
	sec := mustSecurity(t)
	monitor, err := certs.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := os.ReadFile(sec.TokensFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, certs.TokenLine("watcher", []string{"monitor"}, monitor)...)
	if err := os.WriteFile(sec.TokensFile, tokens, 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustStartCluster(t, 3, withSecurity(sec))
	mon := newUser(t, sec)
	mon.token = monitor
	for _, nd := range c.nodes {
		for _, port := range []string{nd.QueueURL, nd.PubsubURL} {
			if res := mon.mustGetStatus(port + "/backup"); res.code != http.StatusForbidden {
				t.Errorf("GET %s/backup with a monitor token: %d %s", port, res.code, res.body)
			}
			code, body, err := mon.post(context.Background(), port+"/restore", []byte("QQSNAP"))
			if err != nil || code != http.StatusForbidden {
				t.Errorf("POST %s/restore with a monitor token: %d %s %v", port, code, body, err)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "q.backup")
	_, errs, code := runTool(t, "backup", queueAddrs(c.nodes), "--out="+file, "--tls-ca="+sec.CAFile, "--token="+monitor)
	if code != 1 || !strings.Contains(errs, "403") {
		t.Errorf("quorumq backup with a monitor token: exit %d, %s", code, errs)
	}
	c.nodes[0].mustPut(c.nodes[0].QueueURL+"/put?queue=jobs", "secret")
	mustRunTool(t, append([]string{"backup", queueAddrs(c.nodes), "--out=" + file}, c.toolArgs()...)...)
	mustRunTool(t, append([]string{"restore", queueAddrs(c.nodes), "--in=" + file}, c.toolArgs()...)...)
	for _, nd := range c.nodes {
		testwait.For(t, 30*time.Second, nd.ID+" holding the message after the restore", func() bool {
			return slices.Equal(nd.dumpLines("jobs", true), []string{"secret"})
		})
	}
}

// TestBackup_TwiceAndFromAFollower_EachRestores: a second backup with
// nothing applied since the first (the newest snapshot is opened again)
// and a follower's own backup (--stale, no redirect) both restore whole.
func TestBackup_TwiceAndFromAFollower_EachRestores(t *testing.T) {
	c := mustStartCluster(t, 3)
	l := c.waitForLeader()
	want := backupState{jobs: []string{"a", "b", "c"}}
	for _, m := range want.jobs {
		l.mustPut(l.QueueURL+"/put?queue=jobs", m)
	}
	dir := t.TempDir()
	first, second, stale := filepath.Join(dir, "1.backup"), filepath.Join(dir, "2.backup"), filepath.Join(dir, "stale.backup")
	mustRunTool(t, "backup", queueAddrs([]*node{l}), "--out="+first)
	mustRunTool(t, "backup", queueAddrs([]*node{l}), "--out="+second)
	f := c.followers()[0]
	testwait.For(t, 30*time.Second, f.ID+" applying the puts", func() bool {
		return slices.Equal(f.dumpLines("jobs", true), want.jobs)
	})
	mustRunTool(t, "backup", queueAddrs([]*node{f}), "--stale", "--out="+stale)
	for _, file := range []string{first, second, stale} {
		l.mustPut(l.QueueURL+"/put?queue=jobs", "not in the backup")
		mustRunTool(t, "restore", queueAddrs(c.nodes), "--in="+file)
		for _, nd := range c.nodes {
			waitState(t, nd, want)
		}
	}
}
