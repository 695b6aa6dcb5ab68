package node

import (
	"math"
	"runtime/debug"

	"golang.org/x/sys/unix"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/sysmem"
)

// The memory budget: what the node's index of queued messages, the body
// store's read cache and its buffers are sized from (--memory-budget). The
// bodies themselves are on disk.
const (
	// FallbackMemoryBudget is the budget where neither GOMEMLIMIT nor the
	// memory available to the process is known.
	FallbackMemoryBudget = 1 << 30
	// bodyCacheShare is the part of the budget the body store's read
	// cache may hold, within [minBodyCache, maxBodyCache]: reads go in
	// order through a queue, a block at a time, so a few blocks per
	// queue being read are what it needs.
	bodyCacheShare = 32
	minBodyCache   = 8 << 20
	maxBodyCache   = 256 << 20
)

// goMemLimit returns the Go runtime's soft memory limit (GOMEMLIMIT or
// debug.SetMemoryLimit), 0 when none is set.
func goMemLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l
	}
	return 0
}

// DefaultMemoryBudget is GOMEMLIMIT when it is set, otherwise half of the
// memory this process may use (sysmem.Limit: the machine's, or a lower
// cgroup limit), or FallbackMemoryBudget where that is unknown.
func DefaultMemoryBudget() int64 {
	if l := goMemLimit(); l > 0 {
		return l
	}
	m, err := sysmem.Limit()
	if err != nil {
		return FallbackMemoryBudget
	}
	return int64(m.Bytes / 2)
}

// BodyCacheBytes is the read cache the body store may hold: a 32nd of the
// memory budget, at least 8 MiB and at most 256 MiB.
func (c Config) BodyCacheBytes() int64 {
	return min(max(c.MemoryBudget/bodyCacheShare, minBodyCache), maxBodyCache)
}

// indexShare is the part of the memory budget the index of stored
// messages may take (fsm.IndexBytesPerMessage each): half, the rest left
// to caches, buffers, raft and the collector's headroom.
const indexShare = 2

// resolveBudgets fills in the budgets left to Start (0): the messages the
// memory budget can index, and half of the disk space free for the data
// directory at start for the queued bytes.
func (c *Config) resolveBudgets() {
	if c.HTTP.MaxQueuedMessages == 0 {
		c.HTTP.MaxQueuedMessages = c.MemoryBudget / indexShare / fsm.IndexBytesPerMessage
	}
	if c.HTTP.MaxQueuedBytes == 0 {
		c.HTTP.MaxQueuedBytes = diskBudget(c.Cluster.DataDir)
	}
}

// diskBudget is half of the space free for unprivileged users on the file
// system holding dir: the other half is for the raft log, which holds the
// same bodies until a snapshot lets it go, and snapshots being received.
func diskBudget(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Bavail == 0 {
		return httpapi.FallbackMaxQueuedBytes
	}
	return int64(st.Bavail) * int64(st.Bsize) / 2
}

// runtimeShare is the part of the memory budget the Go runtime's soft
// limit is set to: the limit counts only what Go allocates and the
// collector may overshoot it a little, while the budget is for the whole
// process (stacks, the mapped binary, buffers outside the heap).
const runtimeShare = 80

// applyMemoryBudget makes the Go runtime aware of the budget: its soft
// limit becomes 80 % of the budget, unless GOMEMLIMIT is lower already,
// so the collector works harder before the process passes the budget
// rather than after.
func (c Config) applyMemoryBudget() {
	if c.MemoryBudget <= 0 {
		return
	}
	limit := c.MemoryBudget / 100 * runtimeShare
	if l := goMemLimit(); l == 0 || limit < l {
		debug.SetMemoryLimit(limit)
	}
}
