package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LogStore is the kind of store raft keeps its log and stable state in,
// or LogStoreAuto, which ResolveLogStore turns into one of them. The zero
// value is LogStoreBoltDB.
type LogStore uint8

const (
	// LogStoreBoltDB is raft-boltdb: one bolt file, RaftDBFile.
	LogStoreBoltDB LogStore = iota
	// LogStoreWAL is raft-wal: segment files and a small bolt file for
	// metadata and stable state, in the directory RaftWALDir.
	LogStoreWAL
	// LogStoreAuto is the kind the data directory already holds, and
	// NewLogStore for a directory that holds none.
	LogStoreAuto
)

// NewLogStore is the kind LogStoreAuto gives a data directory without a
// raft log: raft-boltdb. raft-wal v0.4.0 is faster, but a long chaos run
// left a node that could not restart after kill -9 ("sealed segment has no
// index block", hashicorp/raft-wal#31, fixed in a later release than the
// one served here), so it stays a choice, not the default.
const NewLogStore = LogStoreBoltDB

const (
	// RaftWALDir is raft-wal's directory (log and stable store).
	RaftWALDir = "raft-wal"
	// logStoreFile records which kind of log store the directory holds.
	logStoreFile = "raft-log-store"
)

// ErrLogStoreMismatch means the data directory holds a raft log of
// another kind than the one asked for. Opening the asked kind would start
// an empty log beside the old one: the node would forget its term, vote and
// entries. Package cluster exports it under the same name.
var ErrLogStoreMismatch = errors.New("raft log store does not match the data directory")

// String is the kind's name on the command line and in the data
// directory: boltdb, wal or auto.
func (k LogStore) String() string {
	switch k {
	case LogStoreBoltDB:
		return "boltdb"
	case LogStoreWAL:
		return "wal"
	case LogStoreAuto:
		return "auto"
	}
	return fmt.Sprintf("LogStore(%d)", uint8(k))
}

// Valid reports whether k is one of the kinds above, auto included.
func (k LogStore) Valid() bool { return k <= LogStoreAuto }

// MarshalText writes String.
func (k LogStore) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name; any other text is an error.
func (k *LogStore) UnmarshalText(b []byte) error {
	switch string(b) {
	case "boltdb":
		*k = LogStoreBoltDB
	case "wal":
		*k = LogStoreWAL
	case "auto":
		*k = LogStoreAuto
	default:
		return fmt.Errorf("raft log store %q: want auto, boltdb or wal", b)
	}
	return nil
}

// Path is where a log store of kind k lives in dataDir: the bolt file or
// raft-wal's directory.
func (k LogStore) Path(dataDir string) string {
	if k == LogStoreWAL {
		return filepath.Join(dataDir, RaftWALDir)
	}
	return filepath.Join(dataDir, RaftDBFile)
}

// ResolveLogStore returns the kind of raft log dataDir holds, recording it
// on first use. want is a kind, which the directory must not contradict,
// or LogStoreAuto, which takes the directory's kind and NewLogStore for a
// directory without one. The record is what counts; a directory from
// before it existed is judged by its files (a raft.db means boltdb). The
// record is written before the store creates its files, so a crash in
// between leaves a directory that still refuses the other kind.
func ResolveLogStore(dataDir string, want LogStore) (LogStore, error) {
	if !want.Valid() {
		return 0, fmt.Errorf("raft log store %v: want auto, boltdb or wal", want)
	}
	path := filepath.Join(dataDir, logStoreFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var have LogStore
		if err := have.UnmarshalText(bytes.TrimSpace(b)); err != nil || have == LogStoreAuto {
			return 0, fmt.Errorf("%s: %q is not a raft log store", path, bytes.TrimSpace(b))
		}
		return checkLogStore(dataDir, have, want)
	case !errors.Is(err, fs.ErrNotExist):
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	kind := want
	if kind == LogStoreAuto {
		kind = NewLogStore
	}
	for _, have := range []LogStore{LogStoreBoltDB, LogStoreWAL} {
		if exists(have.Path(dataDir)) {
			if kind, err = checkLogStore(dataDir, have, want); err != nil {
				return 0, err
			}
			break
		}
	}
	if err := writeFileSync(path, []byte(kind.String()+"\n")); err != nil {
		return 0, fmt.Errorf("record raft log store: %w", err)
	}
	return kind, nil
}

// checkLogStore is the kind have of a directory, unless want contradicts it.
func checkLogStore(dataDir string, have, want LogStore) (LogStore, error) {
	if want == have || want == LogStoreAuto {
		return have, nil
	}
	return 0, fmt.Errorf("%w: %s holds a %s raft log, not %s; start with --raft-log-store=%s (or auto), or with an empty data directory",
		ErrLogStoreMismatch, dataDir, have, want, have)
}

// hasRaftState reports whether dataDir holds a raft log of either kind.
func hasRaftState(dataDir string) bool {
	return exists(LogStoreBoltDB.Path(dataDir)) || exists(LogStoreWAL.Path(dataDir))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
