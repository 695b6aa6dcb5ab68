package cluster

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveRestoreLeftovers_OnlyWhatARestoreLeaves(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"restore-123.backup", "restore-check-9/seg-1", "raft.db", "snapshots/1-2-3/state.bin"} {
		path := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removeRestoreLeftovers(dir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for p, kept := range map[string]bool{"restore-123.backup": false, "restore-check-9": false, "raft.db": true, "snapshots/1-2-3/state.bin": true} {
		if _, err := os.Stat(filepath.Join(dir, p)); (err == nil) != kept {
			t.Errorf("%s: kept %v, want %v", p, err == nil, kept)
		}
	}
}
