package rafthost

import (
	"errors"
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"go.etcd.io/bbolt"

	"github.com/quorumq/quorumq/cluster/internal/datadir"
)

// logStore is where raft keeps its log and its stable state (term, vote):
// raft-boltdb or raft-wal, both one store for the two.
type logStore interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

// openLogStore opens the store of kind at path (LogStore.Path).
func openLogStore(kind datadir.LogStore, path string, hcl hclog.Logger) (logStore, error) {
	if kind == datadir.LogStoreWAL {
		return openWAL(path, hcl.Named("wal"))
	}
	return openBolt(path)
}

func openBolt(path string) (logStore, error) {
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: path,
		BoltOptions: &bbolt.Options{
			Timeout: boltOpenTimeout,
			// The freelist is rebuilt by a scan on open instead of being
			// written on every commit (raft-patterns §4.3).
			NoFreelistSync: true,
		},
		NoSync: false, // a 200 means fsynced on a quorum: never turn this off
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		err = fmt.Errorf("%w (is another process using %s?)", err, path)
	}
	return store, err
}

// openWAL opens raft-wal in dir. Every append is one write and one fsync
// of the tail segment, as durable as bolt's commit (a 200 still means
// fsynced on a quorum).
func openWAL(dir string, hcl hclog.Logger) (logStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	// raft-wal's Close leaves its metadata bolt file open, and with it
	// bolt's file lock: a node reopened in the same process would wait on
	// that lock forever (the open has no timeout). Owning the meta store
	// lets Close release it.
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(dir, wal.WithMetaStore(meta), wal.WithLogger(hcl))
	if err != nil {
		meta.Close()
		return nil, err
	}
	return &walStore{WAL: w, meta: meta}, nil
}

// walStore is raft-wal with a Close that also closes its metadata file.
// Embedding keeps *wal.WAL's IsMonotonic, which tells raft to drop the
// whole log after installing a snapshot: raft-wal refuses gaps.
type walStore struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

// Close closes the segments, then the metadata file. Raft must be shut
// down first.
func (s *walStore) Close() error {
	return errors.Join(s.WAL.Close(), s.meta.Close())
}

// monotonic keeps IsMonotonic visible through a wrapper that hides it
// (Options.WrapLogStore); without it raft would leave a gap after a
// snapshot install, which raft-wal refuses.
type monotonic struct{ raft.LogStore }

// IsMonotonic implements raft.MonotonicLogStore.
func (monotonic) IsMonotonic() bool { return true }

// isMonotonic reports whether s asks raft for a log without gaps.
func isMonotonic(s raft.LogStore) bool {
	m, ok := s.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
