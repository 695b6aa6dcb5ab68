package rafthost

import (
	"io"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/fsm"
)

// raftFSM adapts the queue state machine, which knows nothing of raft, to
// raft.BatchingFSM. raft calls it from one goroutine, so the batch buffer
// is reused.
type raftFSM struct {
	f   *fsm.FSM
	buf []fsm.Committed
}

var _ raft.BatchingFSM = (*raftFSM)(nil)

func (a *raftFSM) ApplyBatch(logs []*raft.Log) []any {
	a.buf = a.buf[:0]
	for _, l := range logs {
		a.buf = append(a.buf, fsm.Committed{Index: l.Index, Command: l.Type == raft.LogCommand, Data: l.Data})
	}
	out := a.f.Apply(a.buf)
	clear(a.buf) // do not keep the entries' data alive
	return out
}

func (a *raftFSM) Apply(l *raft.Log) any { return a.ApplyBatch([]*raft.Log{l})[0] }

// Snapshot freezes the state; Persist encodes it while Apply goes on.
func (a *raftFSM) Snapshot() (raft.FSMSnapshot, error) { return raftSnapshot{a.f.Snapshot()}, nil }

func (a *raftFSM) Restore(rc io.ReadCloser) error { return a.f.Restore(rc) }

type raftSnapshot struct{ s *fsm.Snapshot }

func (s raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.s.Encode(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (raftSnapshot) Release() {}
