package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/cluster/internal/datadir"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/testwait"
)

// A three-node cluster on raft-wal keeps every acknowledged message when
// all of its nodes stop and start again in the same process: each reopens
// its own log, they elect a leader, and every node holds the messages in
// order and takes new writes.
func TestCluster_WAL_FullRestart_KeepsAcknowledgedMessages(t *testing.T) {
	nodes, _ := startCluster(t, 3, func(_ int, o *Options) { o.LogStore = LogStoreWAL })
	var want []string
	for i := range 20 {
		msg := fmt.Sprintf("m-%d", i)
		proposeOn(t, nodes, putCmd("q", msg))
		want = append(want, msg)
	}
	for _, n := range nodes {
		if _, err := os.Stat(filepath.Join(n.opts.DataDir, datadir.RaftDBFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: raft.db beside raft-wal: %v", n.ID(), err)
		}
		if got := metricValue(t, n.Node, "quorumq_raft_log_store_info", map[string]string{"kind": "wal"}); got != 1 {
			t.Fatalf("%s: quorumq_raft_log_store_info{kind=wal} = %v, want 1", n.ID(), got)
		}
	}
	// Every node has the messages before they stop (a put is acknowledged
	// once a quorum has it; the third may still be behind).
	for _, n := range nodes {
		testwait.For(t, 10*time.Second, n.ID()+" applies every put", func() bool {
			return slices.Equal(dump(t, n.f, "q"), want)
		})
	}
	stopAll(t, nodes)

	opts := make([]Options, len(nodes))
	for i, n := range nodes {
		opts[i] = n.opts
	}
	restarted := startNodes(t, opts)
	waitFormed(t, restarted, formTimeout)
	proposeOn(t, restarted, putCmd("q", "after"))
	want = append(want, "after")
	for _, n := range restarted {
		testwait.For(t, 10*time.Second, n.ID()+" holds every acknowledged message", func() bool {
			return slices.Equal(dump(t, n.f, "q"), want)
		})
	}
}

// A data directory keeps the log store it was created with: opening it
// with the other kind fails with ErrLogStoreMismatch, in both directions,
// creates no store of the other kind, and leaves the directory as it was
// (it opens again with its own kind, state intact).
func TestNode_LogStoreMismatch_RefusedBothWays(t *testing.T) {
	for _, tc := range []struct{ have, want LogStore }{
		{LogStoreBoltDB, LogStoreWAL},
		{LogStoreWAL, LogStoreBoltDB},
	} {
		t.Run(tc.have.String()+" opened as "+tc.want.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(t, dir)
			opts.LogStore = tc.have
			f := fsm.New()
			n, err := openWith(opts, f)
			if err != nil {
				t.Fatal(err)
			}
			mustLead(t, n)
			mustPropose(t, n, putCmd("q", "kept"))
			if err := n.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}

			other := opts
			other.LogStore = tc.want
			_, err = openWith(other, fsm.New())
			if !errors.Is(err, ErrLogStoreMismatch) {
				t.Fatalf("Open as %v: err = %v, want ErrLogStoreMismatch", tc.want, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "--raft-log-store="+tc.have.String()) {
				t.Errorf("error %q: want one line naming --raft-log-store=%v", msg, tc.have)
			}
			if _, err := os.Stat(tc.want.Path(dir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s store created beside the %s one: %v", tc.want, tc.have, err)
			}

			f2 := fsm.New()
			n2 := mustOpen(t, opts, f2)
			mustLead(t, n2)
			testwait.For(t, 5*time.Second, "log replayed", n2.Ready)
			if got := dump(t, f2, "q"); !slices.Equal(got, []string{"kept"}) {
				t.Fatalf("queue after reopening as %v = %v, want [kept]", tc.have, got)
			}
		})
	}
}
