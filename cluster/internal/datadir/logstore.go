package datadir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LogStore is the kind of store raft keeps its log and stable state in.
// The zero value is LogStoreBoltDB.
type LogStore uint8

const (
	// LogStoreBoltDB is raft-boltdb: one bolt file, RaftDBFile.
	LogStoreBoltDB LogStore = iota
	// LogStoreWAL is raft-wal: segment files and a small bolt file for
	// metadata and stable state, in the directory RaftWALDir.
	LogStoreWAL
)

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
// directory: boltdb or wal.
func (k LogStore) String() string {
	switch k {
	case LogStoreBoltDB:
		return "boltdb"
	case LogStoreWAL:
		return "wal"
	}
	return fmt.Sprintf("LogStore(%d)", uint8(k))
}

// Valid reports whether k is one of the kinds above.
func (k LogStore) Valid() bool { return k == LogStoreBoltDB || k == LogStoreWAL }

// MarshalText writes String.
func (k LogStore) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind's name; any other text is an error.
func (k *LogStore) UnmarshalText(b []byte) error {
	switch string(b) {
	case "boltdb":
		*k = LogStoreBoltDB
	case "wal":
		*k = LogStoreWAL
	default:
		return fmt.Errorf("raft log store %q: want boltdb or wal", b)
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

// ResolveLogStore checks that dataDir holds no raft log of another kind
// than want, and records want in it on first use. The record is what
// counts; a directory from before it existed is judged by its files (a
// raft.db means boltdb). The record is written before the store creates
// its files, so a crash in between leaves a directory that still refuses
// the other kind.
func ResolveLogStore(dataDir string, want LogStore) error {
	if !want.Valid() {
		return fmt.Errorf("raft log store %v: want boltdb or wal", want)
	}
	path := filepath.Join(dataDir, logStoreFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var have LogStore
		if err := have.UnmarshalText(bytes.TrimSpace(b)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return checkLogStore(dataDir, have, want)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, have := range []LogStore{LogStoreBoltDB, LogStoreWAL} {
		if have != want && exists(have.Path(dataDir)) {
			return checkLogStore(dataDir, have, want)
		}
	}
	if err := writeFileSync(path, []byte(want.String()+"\n")); err != nil {
		return fmt.Errorf("record raft log store: %w", err)
	}
	return nil
}

func checkLogStore(dataDir string, have, want LogStore) error {
	if have == want {
		return nil
	}
	return fmt.Errorf("%w: %s holds a %s raft log, not %s; start with --raft-log-store=%s, or with an empty data directory",
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
