package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/node"
)

// TestStatus_PrintsMembersOfARealNode runs `quorumq status` against an
// in-process single node and checks the table names it as leader.
func TestStatus_PrintsMembersOfARealNode(t *testing.T) {
	srv, err := node.Start(node.Config{
		DataDir:    t.TempDir(),
		QueueAddr:  "127.0.0.1:0",
		PubsubAddr: "127.0.0.1:0",
		RaftAddr:   "127.0.0.1:0",
		GossipAddr: "127.0.0.1:0",
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	var out, errOut bytes.Buffer
	deadline := time.Now().Add(20 * time.Second)
	for {
		out.Reset()
		errOut.Reset()
		code := run([]string{"status", "--addr=http://" + srv.QueueAddr}, &out, &errOut)
		if code == 0 && strings.Contains(out.String(), "(leader)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: code %d, out %q, err %q", code, out.String(), errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "is leader") || !strings.Contains(out.String(), "MEMBER") {
		t.Fatalf("status output:\n%s", out.String())
	}
}
