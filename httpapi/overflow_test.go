package httpapi

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// Test_OverflowLog_AppendsAndReopens checks that items reach the file at
// once, one per line, that an existing file is appended to, and that
// Reopen follows a rotation.
func Test_OverflowLog_AppendsAndReopens(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "overflow.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := OpenOverflowLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Write([][]byte{[]byte("item1"), []byte("item2")}); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(nil); err != nil {
		t.Fatal(err)
	}
	mustRead(t, path, "old\nitem1\nitem2\n")

	rotated := filepath.Join(dir, "overflow.log.1")
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	l.Write([][]byte{[]byte("after-rename")}) // still the old file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Write([][]byte{[]byte("after-reopen")})
	mustRead(t, rotated, "old\nitem1\nitem2\nafter-rename\n")
	mustRead(t, path, "after-reopen\n")

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write([][]byte{[]byte("x")}); err == nil {
		t.Fatal("write after Close succeeded")
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen after Close succeeded")
	}
}

// Test_OverflowLog_Concurrent checks that concurrent writes never
// interleave inside an item.
func Test_OverflowLog_Concurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overflow.log")
	l, err := OpenOverflowLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	var want []string
	for w := 0; w < 8; w++ {
		for i := 0; i < 50; i++ {
			want = append(want, fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", 100)))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				l.Write([][]byte{[]byte(fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", 100)))})
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(path)
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("file holds %d lines, want %d intact ones", len(got), len(want))
	}
}

// Test_OverflowLog_OpenFails checks the error for an unusable path.
func Test_OverflowLog_OpenFails(t *testing.T) {
	if _, err := OpenOverflowLog(filepath.Join(t.TempDir(), "missing", "x.log")); err == nil {
		t.Fatal("no error")
	}
}

func mustRead(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(b, []byte(want)) {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, want)
	}
}
