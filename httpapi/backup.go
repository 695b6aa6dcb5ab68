package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/auth"
)

// Backuper is implemented by a Cluster that can back up and restore the
// queue state (GET /backup, POST /restore).
type Backuper interface {
	// Backup writes a consistent snapshot of the queue state to w. It
	// fails before writing anything when it cannot take one.
	Backup(ctx context.Context, w io.Writer) error
	// Restore replaces the queue state of the whole cluster with a backup
	// read from r. Only the leader can (api.ErrNotLeader); a backup that
	// does not read whole is api.ErrBadRequest and changes nothing.
	Restore(ctx context.Context, r io.Reader) (api.RestoreInfo, error)
}

// Defaults of the restore's bounds.
const (
	// DefaultMaxRestoreBytes bounds a POST /restore body
	// (--max-restore-size).
	DefaultMaxRestoreBytes = 64 << 30
	// DefaultRestoreTimeout bounds a whole POST /restore (the upload, the
	// check and the replication) and a whole GET /backup
	// (--restore-timeout).
	DefaultRestoreTimeout = 30 * time.Minute
)

// backupRoutes are GET /backup and POST /restore, admin's on both ports.
// A follower answers 307 to the leader: /restore always (raft restores on
// the leader only), /backup unless stale=1 (the leader's state is the
// newest; a follower's is as it has applied it).
func (a *adminAPI) backupRoutes(o *Options) []route {
	admin := roleAccess(auth.Admin)
	scheme := "http://"
	if o.PeerTLS != nil {
		scheme = "https://"
	}
	b := &backupAPI{cluster: a.cluster, scheme: scheme, maxBytes: o.MaxRestoreBytes, timeout: o.RestoreTimeout}
	return []route{
		{name: "backup", path: api.PathBackup, methods: getOnly, style: adminStyle, needs: admin, handle: b.backup},
		{name: "restore", path: api.PathRestore, methods: postOnly, style: adminStyle, needs: admin, handle: b.restore},
	}
}

type backupAPI struct {
	cluster  Cluster
	scheme   string
	maxBytes int64
	timeout  time.Duration
}

func (b *backupAPI) backuper() (Backuper, error) {
	bk, ok := b.cluster.(Backuper)
	if !ok {
		return nil, api.ErrNotSupported.Errorf("backup and restore are not supported by this node")
	}
	return bk, nil
}

// backup is GET /backup[?stale=1]: the snapshot, streamed as
// application/octet-stream.
func (b *backupAPI) backup(r *request) (reply, error) {
	bk, err := b.backuper()
	if err != nil {
		return reply{}, err
	}
	stale, err := r.p.stale()
	if err != nil {
		return reply{}, err
	}
	return reply{serve: func(w http.ResponseWriter, hr *http.Request) error {
		if !stale && !b.cluster.IsLeader() {
			return b.redirect(w, hr)
		}
		// A backup takes as long as the state is large, but a client that
		// stops reading must not hold the snapshot open for ever: the
		// whole download is bounded like a restore.
		deadline := time.Now().Add(b.timeout)
		http.NewResponseController(w).SetWriteDeadline(deadline)
		ctx, cancel := context.WithDeadline(hr.Context(), deadline)
		defer cancel()
		cw := &committedWriter{w: w}
		err := bk.Backup(ctx, cw)
		if err != nil && cw.started {
			// The status is sent: the client sees a cut body (and its
			// length check fails).
			return nil
		}
		return err
	}}, nil
}

// committedWriter sends the 200 and its headers with the first byte, so
// that a Backup that fails before writing anything is answered as an
// error.
type committedWriter struct {
	w       http.ResponseWriter
	started bool
}

func (c *committedWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.started = true
		h := c.w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="quorumq.backup"`)
		h.Set(api.HeaderNoSniff, noSniff)
		c.w.WriteHeader(http.StatusOK)
	}
	return c.w.Write(p)
}

// restore is POST /restore: the body is a backup, streamed to the
// cluster, at most maxBytes, within timeout.
func (b *backupAPI) restore(r *request) (reply, error) {
	bk, err := b.backuper()
	if err != nil {
		return reply{}, err
	}
	return reply{serve: func(w http.ResponseWriter, hr *http.Request) error {
		if !b.cluster.IsLeader() {
			return b.redirect(w, hr)
		}
		if hr.ContentLength > b.maxBytes {
			return api.ErrTooLarge.Errorf("backup is %d bytes, more than the limit of %d bytes (--max-restore-size)", hr.ContentLength, b.maxBytes)
		}
		deadline := time.Now().Add(b.timeout)
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(deadline)
		rc.SetWriteDeadline(deadline)
		ctx, cancel := context.WithDeadline(hr.Context(), deadline)
		defer cancel()
		body := http.MaxBytesReader(w, hr.Body, b.maxBytes)
		info, err := bk.Restore(ctx, body)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return api.ErrTooLarge.Errorf("backup is more than the limit of %d bytes (--max-restore-size)", b.maxBytes)
		case err != nil:
			return err
		}
		out, _ := json.Marshal(info)
		h := w.Header()
		h.Set("Content-Type", typeJSON)
		h.Set("Content-Length", strconv.Itoa(len(out)+1))
		w.WriteHeader(http.StatusOK)
		w.Write(append(out, '\n'))
		return nil
	}}, nil
}

// redirect answers 307 to the leader (307 repeats the method and the
// body).
func (b *backupAPI) redirect(w http.ResponseWriter, r *http.Request) error {
	leader, ok := b.cluster.Leader()
	if !ok || leader.QueueAddr == "" || leader.ID == b.cluster.ID() {
		return api.ErrNoLeader.Errorf("no leader known to this node; retry")
	}
	redirectToLeader(w, r, b.scheme, leader)
	return nil
}
