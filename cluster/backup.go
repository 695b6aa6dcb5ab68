package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// Backup writes a consistent snapshot of the queue state to w: a raft
// snapshot taken now (or the newest one, when nothing was applied since),
// opened whole, with the body segments it refers to (the snapshot format
// with its segments, as a follower is sent it). Any node can; a
// follower's is its state as it has applied it.
func (n *Node) Backup(ctx context.Context, w io.Writer) error {
	rc, err := n.openSnapshot(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	// A client that goes away ends the copy.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	if _, err := io.Copy(w, rc); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("backup: %w", ctx.Err())
		}
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// openSnapshot takes a user snapshot and opens it.
func (n *Node) openSnapshot(ctx context.Context) (io.ReadCloser, error) {
	var fut raft.SnapshotFuture
	err := n.host.Await(ctx, func() raft.Future { fut = n.raft.Snapshot(); return fut })
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		// The newest snapshot already holds every applied entry.
		snaps, err := n.host.Snapshots().List()
		if err != nil || len(snaps) == 0 {
			return nil, api.ErrUnavailable.Errorf("backup: no snapshot to open (%v); retry", err)
		}
		_, rc, err := n.host.Snapshots().Open(snaps[0].ID)
		if err != nil {
			return nil, api.ErrUnavailable.Errorf("backup: open snapshot %s: %v; retry", snaps[0].ID, err)
		}
		return rc, nil
	}
	if err != nil {
		return nil, api.ErrUnavailable.Errorf("backup: take a snapshot: %v; retry", err)
	}
	_, rc, err := fut.Open()
	if err != nil {
		// A newer snapshot may have released its segments meanwhile.
		return nil, api.ErrUnavailable.Errorf("backup: open the snapshot: %v; retry", err)
	}
	return rc, nil
}

// Restore replaces the queue state of the cluster with the backup read
// from r. Only the leader can. The backup is first copied to the data
// directory and taken up by a scratch state machine there: raft stops the
// node if its state machine refuses a restore, so a damaged backup must be
// refused before raft sees it (api.ErrBadRequest, nothing changed). Then
// raft.Restore makes it the leader's state at a new index past a hole in
// the log, so that every follower is sent it as a snapshot, and an entry
// applied after it brings the state machines' applied index up to raft's.
func (n *Node) Restore(ctx context.Context, r io.Reader) (api.RestoreInfo, error) {
	var info api.RestoreInfo
	if !n.host.IsLeader() {
		return info, api.ErrNotLeader.Errorf("restore: this node is not the leader")
	}
	f, err := os.CreateTemp(n.opts.DataDir, restoreFilePattern)
	if err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	size, err := io.Copy(f, readerWithContext{ctx, r})
	if err != nil {
		return info, fmt.Errorf("restore: reading the backup: %w", err)
	}
	if size == 0 {
		return info, api.ErrBadRequest.Errorf("restore: empty body: send a backup (GET /backup)")
	}
	index, err := n.checkBackup(f)
	if err != nil {
		return info, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return info, fmt.Errorf("restore: %w", err)
	}
	n.log.Warn("restoring a backup: the cluster's queue state is replaced", "bytes", size, "backup_index", index)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: index, Size: size}
	if err := n.raft.Restore(meta, f, n.opts.ApplyTimeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return info, api.ErrNotLeader.Errorf("restore: leadership moved: %v; nothing was restored unless the new leader's state says so", err)
		}
		return info, fmt.Errorf("restore: %w", err)
	}
	// raft hands neither the restore's hole nor its no-op to the state
	// machine, whose applied index is still the backup's: a tick (which
	// only advances time) brings it up to raft's, so that reads and
	// readiness, which wait for it, go on.
	if _, err := n.Propose(ctx, fsm.Command{Op: fsm.OpTick}); err != nil {
		n.log.Warn("restore: tick after the restore failed; the next write brings the applied index up", "err", err)
	}
	info.Bytes, info.Index = size, n.fsm.AppliedIndex()
	n.log.Warn("restored a backup", "bytes", size, "index", info.Index)
	return info, nil
}

// checkBackup takes the backup in f up into a scratch state machine in the
// data directory and returns the index it was taken at.
func (n *Node) checkBackup(f *os.File) (uint64, error) {
	dir, err := os.MkdirTemp(n.opts.DataDir, restoreCheckPattern)
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(dir)
	scratch, err := fsm.Open(fsm.Options{Dir: dir})
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	defer scratch.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if err := scratch.Restore(io.NopCloser(f)); err != nil {
		return 0, api.ErrBadRequest.Errorf("restore: not a whole quorumq backup: %v", err)
	}
	return scratch.AppliedIndex(), nil
}

// Where a restore keeps the backup and its scratch state machine, in the
// data directory (the same disk as the state it replaces).
const (
	restoreFilePattern  = "restore-*.backup"
	restoreCheckPattern = "restore-check-*"
)

// removeRestoreLeftovers deletes what a restore cut short by a crash left
// in the data directory. The caller holds the directory's lock.
func removeRestoreLeftovers(dir string, log *slog.Logger) {
	for _, pattern := range []string{restoreFilePattern, restoreCheckPattern} {
		matches, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, m := range matches {
			if err := os.RemoveAll(m); err != nil {
				log.Warn("removing what a cut-short restore left", "path", m, "err", err)
				continue
			}
			log.Info("removed what a cut-short restore left", "path", m)
		}
	}
}

// readerWithContext ends a read once ctx has ended.
type readerWithContext struct {
	ctx context.Context
	r   io.Reader
}

func (r readerWithContext) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
