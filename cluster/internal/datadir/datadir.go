// Package datadir owns the layout of a node's data directory: where each
// kind of raft log store lives, the record of which kind it holds, the
// directory lock, and the small files beside raft's: the node id, the
// leave marker and the subscriber-set epoch. Each small file is written
// through a temporary file and fsynced, so a crash leaves either the old or
// the new content.
package datadir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
)

const (
	nodeIDFile = "node-id"
	// RaftDBFile is raft-boltdb's file (log and stable store).
	RaftDBFile = "raft.db"
	// leftFile marks a data directory whose node left the cluster for good.
	leftFile = "left"
	// subsEpochFile holds the epoch of the subscriber-set versions.
	subsEpochFile = "subs-epoch"
	// bodiesDir holds the state machine's body store (package fsm).
	bodiesDir = "bodies"
)

// Bodies is where the state machine of the node in dataDir keeps message
// bodies.
func Bodies(dataDir string) string { return filepath.Join(dataDir, bodiesDir) }

// Errors; package cluster exports them under the same names.
var (
	// ErrNodeIDMismatch means the data directory belongs to another node id.
	// Reusing a data directory under a new id (or an id on a wiped directory)
	// could let one server vote twice (raft-patterns §9.3).
	ErrNodeIDMismatch = errors.New("node id does not match the data directory")
	// ErrLeft means the data directory belongs to a node that left the
	// cluster for good: its log is history the cluster no longer counts on,
	// so it must not come back as a member.
	ErrLeft = errors.New("this node left the cluster")
)

// ResolveNodeID returns the node id for dataDir, persisting it on first
// start. The id lives in the data directory so that a wiped directory gets a
// fresh id: a server that forgot its log and votes must not rejoin under its
// old name (raft-patterns §9.3).
func ResolveNodeID(dataDir, want string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		have := string(bytes.TrimSpace(b))
		if !api.ValidNodeID(have) {
			return "", fmt.Errorf("%s holds an invalid node id %q", path, have)
		}
		if want != "" && want != have {
			return "", fmt.Errorf("%w: %s belongs to node %q, not %q; use that id or a fresh data directory",
				ErrNodeIDMismatch, dataDir, have, want)
		}
		return have, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read node id: %w", err)
	}

	// No id yet. Raft state without an id means the file was removed by
	// hand: inventing a new id would leave this server outside the
	// configuration stored in its own log.
	if hasRaftState(dataDir) {
		return "", fmt.Errorf("%w: %s has raft state but no %s file; restore the file or start from an empty directory",
			ErrNodeIDMismatch, dataDir, nodeIDFile)
	}
	id := want
	if id == "" {
		if id, err = generateNodeID(); err != nil {
			return "", err
		}
	}
	if err := writeFileSync(path, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("persist node id: %w", err)
	}
	return id, nil
}

// generateNodeID returns "<hostname>-<6 random hex>". The random part makes a
// recreated container with the same hostname a new server.
func generateNodeID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	host = sanitizeID(host)
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("generate node id: %w", err)
	}
	if len(host) > 64 {
		host = host[:64]
	}
	return host + "-" + hex.EncodeToString(r[:]), nil
}

// sanitizeID maps characters outside [A-Za-z0-9._-] to '-'.
func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '-'
	}, s)
}

// writeFileSync writes data to path through a temporary file, fsyncs it,
// renames it into place and fsyncs the directory, so a crash leaves either
// no file or the whole one.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// CheckNotLeft refuses a data directory whose node left the cluster.
func CheckNotLeft(dataDir string) error {
	b, err := os.ReadFile(filepath.Join(dataDir, leftFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read leave marker: %w", err)
	}
	return fmt.Errorf("%w (%s); start with an empty --data-dir to join again as a new node",
		ErrLeft, strings.TrimSpace(string(b)))
}

// MarkLeft records in dataDir that this node left the cluster for good.
func MarkLeft(dataDir, id string, at time.Time) error {
	msg := fmt.Sprintf("node %s left the cluster at %s\n", id, at.UTC().Format(time.RFC3339))
	return writeFileSync(filepath.Join(dataDir, leftFile), []byte(msg))
}

// NextSubsEpoch reads the last epoch from dataDir, stores the next one
// (fsynced) and returns it. Versions are epoch<<32 | sequence, so every
// version of a run is above every version of the runs before, whatever
// the clock does.
func NextSubsEpoch(dataDir string) (uint32, error) {
	path := filepath.Join(dataDir, subsEpochFile)
	var last uint64
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		last, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return 0, err
	}
	if last >= 1<<32-1 {
		return 0, fmt.Errorf("%s: epoch %d exhausted", path, last)
	}
	next := uint32(last + 1)
	if err := writeFileSync(path, []byte(strconv.FormatUint(uint64(next), 10)+"\n")); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return next, nil
}
