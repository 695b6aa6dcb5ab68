package pubsub

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// batch is one publish framed for one stream mode: the frames of its
// messages back to back in data, built once and shared, read-only, by
// every subscriber of that mode. Each subscriber's queue holds a piece of
// it (a run of its messages), so that a publish costs O(subscribers), not
// O(messages × subscribers), and its bytes are in memory once however
// many subscribers have yet to read them.
type batch struct {
	data []byte
	// ends[i] is where message i ends in data. Only the messages some
	// subscriber could take are framed (see frameable); total counts
	// them all.
	ends  []int
	total int
	// ws: the messages are not framed (WebSocket); each costs wsOverhead
	// more in its subscriber's pending bytes.
	ws bool
	// seq orders batches by age: the smaller, the older.
	seq uint64
	// base is what the batch itself holds of the node's budget; every
	// piece of it holds pieceCost more.
	base int64
	// refs counts the pieces in the subscribers' queues, plus one while
	// the publish hands them out. At zero the batch leaves the budget.
	refs atomic.Int64
	hub  *Hub
}

// Accounting constants of the budget: what a batch costs besides its
// frames and offsets, and what each subscriber's piece of it costs (its
// queue entry, with the slack of the queue's growth).
const (
	batchOverhead = 128
	pieceCost     = 64
)

// batchSize is the size of a batch of msgs framed in m: how many of
// them are framed, their data length, and the budget the batch takes
// before any subscriber holds a piece of it. No subscriber can take more
// of a publish than the messages that fit in limit (MaxPendingBytes)
// with nothing pending, or the first one when it alone is larger: one
// that would is kicked at that message. So only those are framed, and a
// body of many empty messages, which framing makes up to 60 times
// larger, costs at most about the limit per mode.
func batchSize(msgs [][]byte, m mode, limit int64) (count, dataLen int, base int64) {
	var cost int64
	for _, msg := range msgs {
		n := frameLen(len(msg), m)
		cost += int64(n)
		if m == modeWebSocket {
			cost += wsOverhead
		}
		if cost > limit && count > 0 {
			break
		}
		dataLen += n
		count++
	}
	return count, dataLen, int64(dataLen) + 8*int64(count) + batchOverhead
}

// newBatch frames the first count of msgs in m. The caller has reserved
// base in the budget; the batch starts with the caller's reference.
func (h *Hub) newBatch(msgs [][]byte, m mode, count, dataLen int, base int64) *batch {
	b := &batch{
		data:  make([]byte, 0, dataLen),
		ends:  make([]int, count),
		total: len(msgs),
		ws:    m == modeWebSocket,
		seq:   h.batchSeq.Add(1),
		base:  base,
		hub:   h,
	}
	for i, msg := range msgs[:count] {
		b.data = appendFrame(b.data, msg, m)
		b.ends[i] = len(b.data)
	}
	b.refs.Store(1)
	return b
}

// start is where message i begins in data.
func (b *batch) start(i int) int {
	if i == 0 {
		return 0
	}
	return b.ends[i-1]
}

// cost is what messages [lo, hi) add to a subscriber's pending bytes.
func (b *batch) cost(lo, hi int) int64 {
	c := int64(b.ends[hi-1] - b.start(lo))
	if b.ws {
		c += int64(hi-lo) * wsOverhead
	}
	return c
}

// fit returns how many of the batch's first (framed) messages a
// subscriber with pending bytes may take within limit: the largest k whose cost keeps
// pending within limit, but at least one when nothing is pending (one
// message larger than the limit still goes to a subscriber that keeps
// up).
func (b *batch) fit(pending, limit int64) int {
	// Binary search over prefix lengths: the cost of a prefix grows with
	// its length. Invariant: the prefix of lo messages fits, none longer
	// than hi does.
	n := len(b.ends)
	lo, hi := 0, n
	for lo < hi {
		mid := int(uint(lo+hi+1) >> 1)
		if pending+b.cost(0, mid) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 && pending == 0 && n > 0 {
		return 1
	}
	return lo
}

// release gives back n pieces' references.
func (b *batch) release(n int64) {
	if n == 0 {
		return
	}
	left := b.refs.Add(-n)
	// The caller's own reference carries no piece cost.
	b.hub.budget.release(pieceCost * n)
	if left == 0 {
		b.hub.budget.release(b.base)
	}
}

// done drops the publisher's own reference once the pieces are handed out.
func (b *batch) done() {
	if b.refs.Add(-1) == 0 {
		b.hub.budget.release(b.base)
	}
}

// budget is the node-wide bound on what pubsub holds for delivery: the
// batches the subscribers still hold pieces of (and those pieces), and
// the fan-out's records waiting for or travelling to other nodes.
type budget struct {
	limit int64
	used  atomic.Int64
	// mu serializes reservations, so that two publishes do not both take
	// the last room.
	mu sync.Mutex
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// reserve takes n bytes of the budget. When they do not fit, the
// subscribers furthest behind (holding the oldest batches, the most
// pending bytes first among equals) are kicked until they do. If they
// still do not fit, with nobody left to kick, the bytes are taken anyway
// (the publish goes to whom it can reach) and the overrun is counted:
// one publish is bounded by the body size.
func (h *Hub) reserve(n int64) {
	b := &h.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used.Load()+n > b.limit {
		h.shed(n)
	}
	if used := b.used.Add(n); used > b.limit {
		h.overruns.Add(1)
		h.log.Warn("pubsub buffers over the node's budget: a publish larger than what kicking freed",
			"buffered_bytes", used, "max_buffered_bytes", b.limit, "publish_bytes", n)
	}
}

// shed kicks the subscribers furthest behind until n more bytes fit in
// the budget or nobody holding anything is left. Called with budget.mu
// held; takes only the subscribers' locks.
func (h *Hub) shed(n int64) {
	type behind struct {
		s       *subscriber
		oldest  uint64
		pending int64
	}
	var cands []behind
	for _, s := range h.snapshot() {
		if seq, pending, ok := s.oldest(); ok {
			cands = append(cands, behind{s, seq, pending})
		}
	}
	slices.SortFunc(cands, func(a, b behind) int {
		if c := cmp.Compare(a.oldest, b.oldest); c != 0 {
			return c
		}
		return cmp.Compare(b.pending, a.pending)
	})
	for _, c := range cands {
		if h.budget.used.Load()+n <= h.budget.limit {
			return
		}
		c.s.kick("the node's pubsub buffers are full and it is furthest behind")
	}
}

// reservation is budget held for bytes outside the subscribers (a fan-out
// record), shared by several holders: the last release gives it back.
type reservation struct {
	hub  *Hub
	n    int64
	refs atomic.Int64
}

// hold reserves n bytes (see reserve) for one holder.
func (h *Hub) hold(n int64) *reservation {
	h.reserve(n)
	r := &reservation{hub: h, n: n}
	r.refs.Store(1)
	return r
}

func (r *reservation) retain() { r.refs.Add(1) }

func (r *reservation) release() {
	if r.refs.Add(-1) == 0 {
		r.hub.budget.release(r.n)
	}
}
