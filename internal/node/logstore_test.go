package node_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
)

// startStoppable starts a node and returns it with a stop function that
// may be called early; the test's end calls it otherwise.
func startStoppable(t *testing.T, cfg node.Config) (*node.Server, func()) {
	t.Helper()
	s, err := node.Start(cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	nodetest.WaitReady(t, s)
	return s, stop
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServe_WALLogStore_KeepsAcknowledgedPutsAcrossRestart: a node serving
// with --raft-log-store=wal answers 200 to puts, and after a restart on
// the same data directory hands every one of them out in order. Started
// again with boltdb, the directory is refused with ErrLogStoreMismatch.
func TestServe_WALLogStore_KeepsAcknowledgedPutsAcrossRestart(t *testing.T) {
	cfg := nodetest.Config(t)
	cfg.Cluster.LogStore = cluster.LogStoreWAL
	s, stop := startStoppable(t, cfg)
	msgs := []string{"one", "two", "three"}
	for _, m := range msgs {
		if code, body := httpGet(t, s.QueueURL()+"/put?data="+m); code != http.StatusOK {
			t.Fatalf("put %s: %d %q", m, code, body)
		}
	}
	stop()

	s2, stop2 := startStoppable(t, cfg)
	for _, m := range msgs {
		if code, body := httpGet(t, s2.QueueURL()+"/get"); code != http.StatusOK || body != m {
			t.Fatalf("get after restart: %d %q, want 200 %q", code, body, m)
		}
	}
	stop2()

	bolt := cfg
	bolt.Cluster.LogStore = cluster.LogStoreBoltDB
	_, err := node.Start(bolt)
	if !errors.Is(err, cluster.ErrLogStoreMismatch) {
		t.Fatalf("start with boltdb on a wal data dir: err = %v, want ErrLogStoreMismatch", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "--raft-log-store=wal") {
		t.Errorf("error %q: want one line naming --raft-log-store=wal", msg)
	}
}
