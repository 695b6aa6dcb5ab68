package rafthost

import (
	"io"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/crashpoint"
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
func (a *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := a.f.Snapshot()
	if err != nil {
		return nil, err
	}
	return raftSnapshot{s}, nil
}

func (a *raftFSM) Restore(rc io.ReadCloser) error { return a.f.Restore(rc) }

type raftSnapshot struct{ s *fsm.Snapshot }

// Persist writes the snapshot, which refers to the body store's segments
// (synced first); once raft's store has it, those segments are kept for it.
func (s raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.s.Encode(sink); err != nil {
		sink.Cancel()
		return err
	}
	crashpoint.Hit("snapshot-written")
	if err := sink.Close(); err != nil {
		return err
	}
	s.s.Keep()
	return nil
}

func (s raftSnapshot) Release() { s.s.Release() }

// snapshotStore is raft's file snapshot store, except that a snapshot is
// opened with the body store's segments it refers to appended
// (fsm.OpenSnapshot): what a follower is sent is whole, and this node's own
// restart stops reading before them.
type snapshotStore struct {
	*raft.FileSnapshotStore
	f *fsm.FSM
}

func (s snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	out, extra, err := s.f.OpenSnapshot(rc)
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	m := *meta
	m.Size += extra
	return &m, out, nil
}
