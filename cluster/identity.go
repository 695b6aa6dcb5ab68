package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	nodeIDFile = "node-id"
	raftDBFile = "raft.db"
	// leftFile marks a data directory whose node left the cluster for good.
	leftFile = "left"
)

// resolveNodeID returns the node id for dataDir, persisting it on first
// start. The id lives in the data directory so that a wiped directory gets a
// fresh id: a server that forgot its log and votes must not rejoin under its
// old name (raft-patterns §9.3).
func resolveNodeID(dataDir, want string) (string, error) {
	path := filepath.Join(dataDir, nodeIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		have := string(bytes.TrimSpace(b))
		if !validNodeID(have) {
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
	if _, err := os.Stat(filepath.Join(dataDir, raftDBFile)); err == nil {
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

// checkNotLeft refuses a data directory whose node left the cluster.
func checkNotLeft(dataDir string) error {
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

// markLeft records in dataDir that this node left the cluster for good.
func markLeft(dataDir, id string, at time.Time) error {
	msg := fmt.Sprintf("node %s left the cluster at %s\n", id, at.UTC().Format(time.RFC3339))
	return writeFileSync(filepath.Join(dataDir, leftFile), []byte(msg))
}
