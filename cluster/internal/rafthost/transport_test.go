package rafthost

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// Replication never uses raft's pipeline, whose deadlock keeps a
// replication goroutine, and so raft.Shutdown, from ever ending: the
// transport refuses it, and raft falls back to one AppendEntries at a
// time.
func TestTransport_RefusesPipelinedReplication(t *testing.T) {
	tr := mustTransport(t, nil)
	_, err := tr.AppendEntriesPipeline("peer", tr.LocalAddr())
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline: %v, want ErrPipelineReplicationNotSupported", err)
	}
}
