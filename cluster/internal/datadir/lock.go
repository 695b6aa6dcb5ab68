package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockFile is the file whose lock marks a data directory in use.
const lockFile = "lock"

// ErrInUse means another process (or another node in this process) has
// the data directory open. Package cluster exports it under the same name.
var ErrInUse = errors.New("data directory is in use")

// Lock takes dataDir's lock, so that a second node on the same directory
// fails at once instead of sharing or waiting on its files. raft-boltdb's
// open has a timeout of its own, but raft-wal opens its metadata file with
// none and would wait forever. The lock lasts until Unlock or the process
// ends.
func Lock(dataDir string) (*DirLock, error) {
	path := filepath.Join(dataDir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := lockExclusive(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s is locked (%v); is another node using it?", ErrInUse, dataDir, err)
	}
	return &DirLock{f: f}, nil
}

// DirLock is a held data-directory lock.
type DirLock struct{ f *os.File }

// Unlock releases the lock. Closing the file drops it.
func (l *DirLock) Unlock() error { return l.f.Close() }
