package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/node/nodetest"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestStatus_PrintsMembersOfARealNode runs `quorumq status` against an
// in-process single node and checks the table names it as leader.
func TestStatus_PrintsMembersOfARealNode(t *testing.T) {
	srv := nodetest.Start(t, nodetest.Config(t))
	var out, errOut bytes.Buffer
	testwait.For(t, 30*time.Second, "status naming a leader", func() bool {
		out.Reset()
		errOut.Reset()
		code := run([]string{"status", "--addr=http://" + srv.QueueAddr}, &out, &errOut)
		return code == 0 && strings.Contains(out.String(), "(leader)")
	})
	if !strings.Contains(out.String(), "is leader") || !strings.Contains(out.String(), "MEMBER") {
		t.Fatalf("status output:\n%s", out.String())
	}
}
