package rafthost

import (
	"sync"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest log entries in memory in front of the log
// store, so that replication and read-index checks rarely read the disk,
// like raft.LogCache, but bounded in bytes as well as in entries: 512
// entries of small puts are a few hundred KiB, 512 /mput entries of 256 KiB
// are 128 MiB, more than a node with a small memory budget can spare.
type logCache struct {
	raft.LogStore
	mu       sync.RWMutex
	ring     []*raft.Log // entry i in slot i % len(ring)
	low      uint64      // no entry below it is cached
	bytes    int
	maxBytes int
}

func newLogCache(store raft.LogStore, entries, maxBytes int) *logCache {
	return &logCache{LogStore: store, ring: make([]*raft.Log, entries), maxBytes: maxBytes}
}

// IsMonotonic passes the store's answer on (raft.MonotonicLogStore).
func (c *logCache) IsMonotonic() bool { return isMonotonic(c.LogStore) }

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.RLock()
	l := c.ring[idx%uint64(len(c.ring))]
	c.mu.RUnlock()
	if l != nil && l.Index == idx {
		*log = *l
		return nil
	}
	return c.LogStore.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs writes to the store, then caches the entries, dropping the
// oldest cached ones while the cache holds more than maxBytes.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	if len(logs) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := uint64(len(c.ring))
	for _, l := range logs {
		slot := l.Index % n
		if old := c.ring[slot]; old != nil {
			c.bytes -= len(old.Data)
		}
		c.ring[slot] = l
		c.bytes += len(l.Data)
	}
	last := logs[len(logs)-1].Index
	if last >= n {
		c.low = max(c.low, last-n+1)
	}
	for c.bytes > c.maxBytes && c.low < last {
		if old := c.ring[c.low%n]; old != nil && old.Index == c.low {
			c.bytes -= len(old.Data)
			c.ring[c.low%n] = nil
		}
		c.low++
	}
	return nil
}

func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	clear(c.ring)
	c.bytes = 0
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}
