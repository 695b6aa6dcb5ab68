//go:build linux

package rafthost

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rssFile is this process's RssFile: resident pages of mapped files.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// A file read through a shared map stays resident in the process until
// pageOutMapped lets it go; what it holds reads back the same.
func TestPageOutMapped_DropsTheMapsPagesKeepsTheirContents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	const size = 32 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	before := rssFile(t)
	readAll := func(when string) {
		for i := 0; i < size; i += 4096 {
			if m[i] != byte(i*7) {
				t.Fatalf("%s: byte %d reads %d, want %d", when, i, m[i], byte(i*7))
			}
		}
	}
	readAll("before")
	touched := rssFile(t)
	if touched-before < size/2 {
		t.Skipf("reading the map raised RssFile by %d bytes only (%d to %d)", touched-before, before, touched)
	}
	covered, err := pageOutMapped(path)
	if err != nil {
		t.Fatal(err)
	}
	if covered != size {
		t.Fatalf("covered %d bytes of mapping, want %d", covered, size)
	}
	after := rssFile(t)
	if after > touched-size/2 {
		t.Fatalf("RssFile %d before, %d after reading the map, %d after paging out", before, touched, after)
	}
	readAll("after paging out")
}
