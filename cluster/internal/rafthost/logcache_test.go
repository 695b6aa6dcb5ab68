package rafthost

import (
	"testing"

	"github.com/hashicorp/raft"
)

func TestLogCache_BoundedInEntriesAndBytes(t *testing.T) {
	store := raft.NewInmemStore()
	c := newLogCache(store, 8, 1000)
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Data: make([]byte, 100*(i%3+1))})
	}
	for _, batch := range [][]*raft.Log{logs[:5], logs[5:6], logs[6:]} {
		if err := c.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
		if c.bytes > c.maxBytes {
			t.Fatalf("cache holds %d bytes, bound %d", c.bytes, c.maxBytes)
		}
	}
	cached := 0
	for i := uint64(1); i <= 20; i++ {
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i || len(l.Data) != int(100*(i%3+1)) {
			t.Fatalf("GetLog(%d) = %+v, %v", i, l, err)
		}
		if s := c.ring[i%8]; s != nil && s.Index == i {
			cached++
		}
	}
	// The newest entries stay cached, within both bounds.
	if cached == 0 || cached > 8 {
		t.Fatalf("%d entries cached", cached)
	}
	if s := c.ring[20%8]; s == nil || s.Index != 20 {
		t.Fatalf("the newest entry is not cached")
	}
	if err := c.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := c.GetLog(5, &l); err == nil {
		t.Fatalf("a deleted entry is still served")
	}
	if err := c.GetLog(15, &l); err != nil || l.Index != 15 {
		t.Fatalf("GetLog(15) after DeleteRange: %+v, %v", l, err)
	}
}
