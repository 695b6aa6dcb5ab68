package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
)

// backupCluster is a fakeCluster that also implements Backuper.
type backupCluster struct {
	fakeCluster
	backup   func(w io.Writer) error
	restored string
}

func (c *backupCluster) Backup(_ context.Context, w io.Writer) error { return c.backup(w) }

func (c *backupCluster) Restore(_ context.Context, r io.Reader) (api.RestoreInfo, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return api.RestoreInfo{}, err
	}
	c.restored = string(b)
	return api.RestoreInfo{Bytes: int64(len(b)), Index: 7}, nil
}

func serveRecorded(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	return rec
}

func TestBackup_LeaderStreamsFollowerRedirectsUnlessStale(t *testing.T) {
	bc := &backupCluster{backup: func(w io.Writer) error { _, err := io.WriteString(w, "QQSNAP-state"); return err }}
	e := newEnv(t, func(o *Options) { o.Cluster = bc })
	rec := serveRecorded(e.h, "GET", "/backup", "")
	if rec.Code != 200 || rec.Body.String() != "QQSNAP-state" || rec.Header().Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("backup on the leader: %d %q %v", rec.Code, rec.Body, rec.Header())
	}

	bc.leader = func() (api.Leader, bool) { return api.Leader{ID: "n2", QueueAddr: "10.0.0.2:8081"}, true }
	for _, tc := range []struct{ method, target, want string }{
		{"GET", "/backup?token=secret", "http://10.0.0.2:8081/backup"},
		{"POST", "/restore", "http://10.0.0.2:8081/restore"},
	} {
		rec := serveRecorded(e.h, tc.method, tc.target, "x")
		if rec.Code != 307 || rec.Header().Get("Location") != tc.want {
			t.Errorf("%s %s on a follower: %d Location %q, want 307 %s", tc.method, tc.target, rec.Code, rec.Header().Get("Location"), tc.want)
		}
	}
	if rec := serveRecorded(e.h, "GET", "/backup?stale=1", ""); rec.Code != 200 || rec.Body.String() != "QQSNAP-state" {
		t.Errorf("stale backup on a follower: %d %q", rec.Code, rec.Body)
	}
}

func TestBackup_FailureBeforeTheFirstByte_IsAnError(t *testing.T) {
	bc := &backupCluster{backup: func(io.Writer) error { return api.ErrUnavailable.Errorf("no snapshot yet; retry") }}
	e := newEnv(t, func(o *Options) { o.Cluster = bc })
	rec := serveRecorded(e.h, "GET", "/backup", "")
	if rec.Code != 503 || rec.Body.String() != "no snapshot yet; retry\n" {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
}

func TestRestore_TakesTheBodyBoundedBySize(t *testing.T) {
	bc := &backupCluster{backup: func(io.Writer) error { return errors.New("unused") }}
	e := newEnv(t, func(o *Options) { o.Cluster = bc; o.MaxRestoreBytes = 10 })
	rec := serveRecorded(e.h, "POST", "/restore", "QQSNAP")
	if rec.Code != 200 || rec.Body.String() != `{"bytes":6,"index":7}`+"\n" || bc.restored != "QQSNAP" {
		t.Fatalf("restore: %d %q (restored %q)", rec.Code, rec.Body, bc.restored)
	}
	rec = serveRecorded(e.h, "POST", "/restore", strings.Repeat("x", 11))
	if rec.Code != 413 {
		t.Fatalf("restore of 11 bytes over a limit of 10: %d %q", rec.Code, rec.Body)
	}
	if rec := serveRecorded(e.h, "GET", "/restore", ""); rec.Code != 405 {
		t.Fatalf("GET /restore: %d", rec.Code)
	}
}

func TestBackup_WithoutBackuper_NotSupported(t *testing.T) {
	e := newEnv(t)
	e.want(e.get("/backup"), 501, "backup and restore are not supported by this node\n")
}
