package fsm

import (
	"github.com/google/btree"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm/internal/bodystore"
)

// adminBatch is the number of messages a purge or redrive of max may
// handle in one command.
func adminBatch(max int) int {
	if max <= 0 || max > MaxAdminBatch {
		return MaxAdminBatch
	}
	return max
}

// adminQueue returns the queue a purge or redrive works on, swept, and
// the messages the command may handle; no queue when it was never
// written. ok false: the command is invalid.
func (s *state) adminQueue(c *Command, ok bool) (*queue, int, error) {
	if !ok || c.Max < 0 {
		return nil, 0, api.ErrInvalidCommand
	}
	q, err := s.queueFor(c.Queue, false)
	if err != nil || q == nil {
		return nil, 0, err
	}
	s.sweep(q)
	return q, adminBatch(c.Max), nil
}

// purge applies OpPurge: ready messages go first, from the head, then
// deferred ones, soonest first; leases stay and may come back.
func (s *state) purge(c *Command) Result {
	q, limit, err := s.adminQueue(c, true)
	if err != nil || q == nil {
		return Result{Err: err}
	}
	n := 0
	for ; n < limit && q.ready.Len() > 0; n++ {
		s.removeStored(q, q.ready.PopFront())
	}
	for ; n < limit; n++ {
		d, ok := q.deferred.DeleteMin()
		if !ok {
			break
		}
		s.removeStored(q, d.it)
	}
	return Result{Count: n, Left: q.ready.Len() + q.deferred.Len()}
}

// removeStored drops a message q held (ready or deferred) for good.
func (s *state) removeStored(q *queue, it item) {
	q.bytes -= int64(it.size)
	s.dropped(it.size)
	s.forget(it)
}

// redrive applies OpRedrive. Only index entries move: the bodies stay
// where they are in the body store, and the node's usage does not change.
func (s *state) redrive(c *Command) Result {
	q, limit, err := s.adminQueue(c, c.Skip >= 0 && (c.To == "" || (api.ValidName(c.To) && c.To != c.Queue)))
	if err != nil || q == nil {
		return Result{Err: err}
	}
	type move struct {
		pos  int
		dest *queue
	}
	var moves []move
	stayed, pos := 0, min(c.Skip, q.ready.Len())
	for ; pos < q.ready.Len() && len(moves) < limit && len(moves)+stayed < MaxAdminBatch; pos++ {
		it := q.ready.At(pos)
		to := c.To
		if to == "" {
			to = s.info(it).deadFrom
		}
		var dest *queue
		if to != "" && to != q.name {
			dest, _ = s.queueFor(to, true) // too many queues: it stays
		}
		if dest == nil {
			stayed++
			continue
		}
		moves = append(moves, move{pos, dest})
	}
	if len(moves) == 0 {
		return Result{Stayed: stayed, Left: q.ready.Len()}
	}
	// Take the head up to the last message that moves, then give back
	// the ones that stay, in their order.
	taken := make([]item, pos)
	for i := range taken {
		taken[i] = q.ready.PopFront()
	}
	mi := 0
	var kept []item
	for i, it := range taken {
		if mi < len(moves) && moves[mi].pos == i {
			s.moveReady(q, moves[mi].dest, it)
			mi++
			continue
		}
		kept = append(kept, it)
	}
	for i := len(kept) - 1; i >= 0; i-- {
		q.ready.PushFront(kept[i])
	}
	return Result{Count: len(moves), Stayed: stayed, Left: q.ready.Len()}
}

// moveReady puts it, taken from from's ready messages, at the tail of
// dest's as a fresh message: no attempts, no last error, no origin.
func (s *state) moveReady(from, dest *queue, it item) {
	if it.hasInfo() {
		s.infos.Delete(infoEntry{id: it.id})
	}
	it.attempts = 0
	from.bytes -= int64(it.size)
	dest.bytes += int64(it.size)
	dest.puts++
	dest.ready.PushBack(it)
	dest.raiseHighWater()
	s.wake(dest)
}

// AllStats returns the counters and settings of every queue, sorted by
// name.
func (f *FSM) AllStats() []QueueStats {
	f.mu.RLock()
	defer f.mu.RUnlock()
	names := f.st.queueNames()
	out := make([]QueueStats, len(names))
	for i, name := range names {
		out[i] = f.st.stats(name)
	}
	return out
}

// DumpOptions choose a page of a queue's ready messages.
type DumpOptions struct {
	// After, when HasAfter, keeps only the messages with larger ids (ids
	// grow in put order: a reader that follows a queue passes the last id
	// it saw).
	After    uint64
	HasAfter bool
	// Offset skips that many messages (of those After keeps) from the head.
	Offset int
	// Limit caps the messages of the page; 0 or less: no cap.
	Limit int
}

// DumpMessage is one message of a DumpPage.
type DumpMessage struct {
	ID uint64
	// Attempts counts its deliveries so far.
	Attempts uint32
	Data     []byte
	// DeadFrom is the queue it was dead-lettered from; LastError the
	// reason of its last nack, or "lease expired".
	DeadFrom, LastError string
}

// DumpPage is a page of a queue's ready messages, in queue order.
type DumpPage struct {
	// Total is the queue's depth.
	Total    int64
	Messages []DumpMessage
}

// DumpEach calls fn with the page of queue's ready messages o chooses, in
// queue order, without removing any, and returns the queue's depth. Like
// Dump it reads a copy-on-write view, so it does not hold up Apply while
// fn writes to a slow client; the scan for After looks at every message
// before the page.
func (f *FSM) DumpEach(queue string, o DumpOptions, fn func(m DumpMessage) error) (total int64, err error) {
	f.mu.Lock()
	v, ok := f.st.readyView(queue)
	var pin *bodystore.Pin
	var infos *btree.BTreeG[infoEntry]
	if ok {
		// The view's bodies must outlive their messages' acks meanwhile.
		pin, err = f.bodies.Pin()
		infos = f.st.infos.Clone()
	}
	f.mu.Unlock()
	if !ok || err != nil {
		return 0, err
	}
	defer pin.Release()
	skip, start := max(o.Offset, 0), 0
	if !o.HasAfter {
		skip, start = 0, skip // positions, reached at once
	}
	n := 0
	for i := start; i < v.Len() && (o.Limit <= 0 || n < o.Limit); i++ {
		it := v.At(i)
		if o.HasAfter && it.id <= o.After {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		body, err := f.bodies.Read(it.loc, it.id, it.size)
		if err != nil {
			return int64(v.Len()), err
		}
		m := DumpMessage{ID: it.id, Attempts: it.tries(), Data: body}
		if it.hasInfo() {
			e, _ := infos.Get(infoEntry{id: it.id})
			m.DeadFrom, m.LastError = e.info.deadFrom, e.info.lastError
		}
		if err := fn(m); err != nil {
			return int64(v.Len()), err
		}
		n++
	}
	return int64(v.Len()), nil
}

// DumpPage returns the page of queue's ready messages o chooses (see
// DumpEach).
func (f *FSM) DumpPage(queue string, o DumpOptions) (DumpPage, error) {
	page := DumpPage{Messages: []DumpMessage{}}
	var err error
	page.Total, err = f.DumpEach(queue, o, func(m DumpMessage) error {
		page.Messages = append(page.Messages, m)
		return nil
	})
	return page, err
}
