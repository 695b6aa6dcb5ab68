package datadir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kind is recorded on first use; the same kind opens again, the other
// is refused.
func TestLogStore_RecordedOnFirstUse_OtherKindRefused(t *testing.T) {
	dir := t.TempDir()
	if kind, err := ResolveLogStore(dir, LogStoreWAL); err != nil || kind != LogStoreWAL {
		t.Fatalf("first use: %v, %v; want wal", kind, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, logStoreFile))
	if err != nil || strings.TrimSpace(string(b)) != "wal" {
		t.Fatalf("record = %q, %v; want wal", b, err)
	}
	if _, err := ResolveLogStore(dir, LogStoreWAL); err != nil {
		t.Fatalf("same kind again: %v", err)
	}
	if _, err := ResolveLogStore(dir, LogStoreBoltDB); !errors.Is(err, ErrLogStoreMismatch) {
		t.Fatalf("other kind: err = %v, want ErrLogStoreMismatch", err)
	}
}

// A directory from before the record is judged by its files: raft.db
// means boltdb, raft-wal/ means wal. The matching kind adds the record.
func TestLogStore_DirectoryWithoutRecord_JudgedByItsFiles(t *testing.T) {
	for _, have := range []LogStore{LogStoreBoltDB, LogStoreWAL} {
		t.Run(have.String(), func(t *testing.T) {
			dir := t.TempDir()
			var err error
			if have == LogStoreWAL {
				err = os.Mkdir(have.Path(dir), 0o750)
			} else {
				err = os.WriteFile(have.Path(dir), nil, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			other := LogStoreWAL
			if have == LogStoreWAL {
				other = LogStoreBoltDB
			}
			if _, err := ResolveLogStore(dir, other); !errors.Is(err, ErrLogStoreMismatch) {
				t.Fatalf("other kind: err = %v, want ErrLogStoreMismatch", err)
			}
			if _, err := os.Stat(filepath.Join(dir, logStoreFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused directory got a record: %v", err)
			}
			if kind, err := ResolveLogStore(dir, have); err != nil || kind != have {
				t.Fatalf("own kind: %v, %v", kind, err)
			}
			if kind, err := ResolveLogStore(dir, LogStoreAuto); err != nil || kind != have {
				t.Fatalf("auto: %v, %v; want %v", kind, err, have)
			}
			if _, err := ResolveLogStore(dir, other); !errors.Is(err, ErrLogStoreMismatch) {
				t.Fatalf("other kind after the record: err = %v, want ErrLogStoreMismatch", err)
			}
		})
	}
}

// auto takes the kind a directory holds, by its record or by its files
// (TestLogStore_DirectoryWithoutRecord_JudgedByItsFiles), records it, and
// gives a directory without a raft log NewLogStore (boltdb).
func TestLogStore_Auto_KeepsTheDirectorysKind_NewDirectoryGetsBoltDB(t *testing.T) {
	fresh := t.TempDir()
	if kind, err := ResolveLogStore(fresh, LogStoreAuto); err != nil || kind != NewLogStore || NewLogStore != LogStoreBoltDB {
		t.Fatalf("new directory: %v, %v; want %v (boltdb)", kind, err, NewLogStore)
	}
	if kind, err := ResolveLogStore(fresh, LogStoreAuto); err != nil || kind != LogStoreBoltDB {
		t.Fatalf("again: %v, %v; want boltdb", kind, err)
	}
	if _, err := ResolveLogStore(fresh, LogStoreWAL); !errors.Is(err, ErrLogStoreMismatch) {
		t.Fatalf("wal after auto chose boltdb: err = %v, want ErrLogStoreMismatch", err)
	}

	wal := t.TempDir()
	if _, err := ResolveLogStore(wal, LogStoreWAL); err != nil {
		t.Fatal(err)
	}
	if kind, err := ResolveLogStore(wal, LogStoreAuto); err != nil || kind != LogStoreWAL {
		t.Fatalf("recorded wal: %v, %v; want wal", kind, err)
	}

	for _, bad := range []string{"auto\n", "rocksdb\n", ""} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, logStoreFile), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ResolveLogStore(dir, LogStoreAuto); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("record %q: err = %v, want one line", bad, err)
		}
	}
}

// The text form is auto, boltdb or wal; anything else is an error that
// names the choices.
func TestLogStore_Text(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want LogStore
		ok   bool
	}{
		{"boltdb", LogStoreBoltDB, true},
		{"wal", LogStoreWAL, true},
		{"auto", LogStoreAuto, true},
		{"", 0, false},
		{"WAL", 0, false},
		{"bolt", 0, false},
		{"rocksdb", 0, false},
	} {
		var k LogStore
		err := k.UnmarshalText([]byte(tc.in))
		switch {
		case tc.ok && (err != nil || k != tc.want):
			t.Errorf("%q: %v, %v; want %v", tc.in, k, err, tc.want)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "want auto, boltdb or wal")):
			t.Errorf("%q: err = %v, want one naming auto, boltdb and wal", tc.in, err)
		}
		if tc.ok {
			if b, _ := k.MarshalText(); string(b) != tc.in {
				t.Errorf("%v marshals to %q", k, b)
			}
		}
	}
}
