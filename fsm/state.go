package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/btree"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm/internal/bodystore"
)

// state is the whole replicated state. It is plain data with deterministic
// methods: no locks, no clock, no I/O. Every input it uses comes from the
// log (the entry's leader time included), so replaying the log rebuilds
// exactly the same state on every replica.
type state struct {
	// now is the latest leader time applied: max over all entries, so time
	// never runs backwards when a new leader's clock is behind.
	now int64
	// index is the raft index of the last entry applied.
	index uint64
	// nextID is the id the next stored message gets. Ids are global so that
	// /ack needs no queue name.
	nextID uint64

	queues map[string]*queue
	// inflight holds every leased message, by id.
	inflight *btree.BTreeG[lease]
	// infos holds the last error and dead-letter origin of the few
	// messages that have one (item.hasInfo), by id, so that an item stays
	// 24 bytes.
	infos *btree.BTreeG[infoEntry]
	// dedup remembers recent put request ids by key; dedupOrder expires them
	// oldest first (leader time only grows, so insertion order is expiry order).
	dedup      *btree.BTreeG[dedupEntry]
	dedupOrder deque[dedupRef]

	// bodies holds every stored message's body; items hold its location.
	// Not replicated as such: each replica writes the same bodies as it
	// applies the same entries.
	bodies *bodystore.Store

	// used is what all queues hold together (see usage.go): derived from
	// the queues, not part of the snapshot.
	used Usage

	// marks tell when stored messages were put (marks.go).
	marks []putMark

	// woken collects queues that gained ready messages during an apply, for
	// the FSM's local notifications. Not part of the replicated state.
	woken map[string]struct{}
	// ids is scratch for the results of the entry being applied (newIDs).
	ids []uint64
}

// newIDs returns a slice for n new message ids, from the entry's scratch
// when it has room. Each result gets its own capped part.
func (s *state) newIDs(n int) []uint64 {
	if len(s.ids) < n {
		return make([]uint64, n)
	}
	ids := s.ids[:n:n]
	s.ids = s.ids[n:]
	return ids
}

// item is one stored message: its index entry, 24 bytes. The body lives
// in the body store at loc.
type item struct {
	id  uint64
	loc bodystore.Loc
	// size is the body's length.
	size uint32
	// attempts counts deliveries in its low 31 bits; the top bit says the
	// message has an entry in state.infos (a last error, or the queue it
	// was dead-lettered from), which most messages never need.
	attempts uint32
}

const infoFlag = 1 << 31

// tries is how many times the message was delivered.
func (it item) tries() uint32 { return it.attempts &^ infoFlag }

func (it item) hasInfo() bool { return it.attempts&infoFlag != 0 }

type infoEntry struct {
	id   uint64
	info itemInfo
}

func lessInfo(a, b infoEntry) bool { return a.id < b.id }

// info returns the message's last error and dead-letter origin.
func (s *state) info(it item) itemInfo {
	if !it.hasInfo() {
		return itemInfo{}
	}
	e, _ := s.infos.Get(infoEntry{id: it.id})
	return e.info
}

// setInfo records the message's last error and dead-letter origin.
func (s *state) setInfo(it *item, inf itemInfo) {
	s.infos.ReplaceOrInsert(infoEntry{id: it.id, info: inf})
	it.attempts |= infoFlag
}

// body reads it's body. The state cannot go on without it: a body that
// cannot be read means the store is damaged, and this replica must stop
// rather than hand out something else.
func (s *state) body(it item) []byte {
	b, err := s.bodies.Read(it.loc, it.id, it.size)
	if err != nil {
		panic(fmt.Sprintf("fsm: message %d: %v", it.id, err))
	}
	return b
}

// store writes a new body and returns its item.
func (s *state) store(id uint64, data []byte) item {
	loc, err := s.bodies.Append(id, data)
	if err != nil {
		panic(fmt.Sprintf("fsm: message %d: %v", id, err))
	}
	return item{id: id, loc: loc, size: uint32(len(data))}
}

// forget releases the body, and any info, of a message removed for good.
func (s *state) forget(it item) {
	s.unmark(it.id)
	s.bodies.Release(it.loc, it.size)
	if it.hasInfo() {
		s.infos.Delete(infoEntry{id: it.id})
	}
}

type itemInfo struct {
	lastError string
	deadFrom  string // queue it was dead-lettered from
}

type queue struct {
	name string
	cfg  QueueConfig

	ready deque[item]
	// byDeadline orders this queue's leases for expiry; the leases themselves
	// live in state.inflight.
	byDeadline *btree.BTreeG[timedRef]
	// deferred holds messages waiting for their release time.
	deferred *btree.BTreeG[deferredItem]

	inflightN int64
	bytes     int64

	puts, gets     uint64
	depthHighWater int64
	overflow       uint64
	dead           uint64
	// acks, nacks, expired (lease expiries) and redelivered (deliveries of
	// a message delivered before) only grow: OpResetStats leaves them.
	acks, nacks, expired, redelivered uint64
}

type lease struct {
	id       uint64
	queue    string
	deadline int64
	it       item
	// handover marks a pop taken under a handover lease (Command.Handover):
	// only OpHandoverAck and OpHandoverNack settle it, and at its deadline
	// it goes back to the head without counting against MaxAttempts. It is
	// not counted in its queue's inflightN or bytes: it was popped.
	handover bool
}

type timedRef struct {
	at int64
	id uint64
}

type deferredItem struct {
	at int64
	it item
}

type dedupEntry struct {
	key     string
	expires int64
	ids     []uint64
}

type dedupRef struct {
	key     string
	expires int64
}

const btreeDegree = 32

func lessLease(a, b lease) bool      { return a.id < b.id }
func lessTimed(a, b timedRef) bool   { return a.at < b.at || (a.at == b.at && a.id < b.id) }
func lessDedup(a, b dedupEntry) bool { return a.key < b.key }
func lessDeferred(a, b deferredItem) bool {
	return a.at < b.at || (a.at == b.at && a.it.id < b.it.id)
}

func newState(bodies *bodystore.Store) *state {
	return &state{
		bodies:   bodies,
		nextID:   1,
		queues:   make(map[string]*queue),
		inflight: btree.NewG(btreeDegree, lessLease),
		infos:    btree.NewG(btreeDegree, lessInfo),
		dedup:    btree.NewG(btreeDegree, lessDedup),
		woken:    make(map[string]struct{}),
	}
}

func newQueue(name string) *queue {
	return &queue{
		name:       name,
		byDeadline: btree.NewG(btreeDegree, lessTimed),
		deferred:   btree.NewG(btreeDegree, lessDeferred),
	}
}

func (q *queue) held() int64 { return int64(q.ready.Len()) + q.inflightN + int64(q.deferred.Len()) }

// limits returns the queue's own limits if any are set, else the put's.
func (q *queue) limits(fromPut Limits) Limits {
	if q.cfg.Limits != (Limits{}) {
		return q.cfg.Limits
	}
	return fromPut
}

func (s *state) apply(e *Entry) []Result {
	if e.Now > s.now {
		s.now = e.Now
	}
	out := make([]Result, len(e.Commands))
	// One array holds the new ids of every put of the entry.
	n := 0
	for i := range e.Commands {
		if e.Commands[i].Op == OpPut {
			n += len(e.Commands[i].Messages)
		}
	}
	if n > 1 {
		s.ids = make([]uint64, n)
	}
	for i := range e.Commands {
		out[i] = s.applyCommand(&e.Commands[i])
	}
	s.ids = nil
	return out
}

func (s *state) applyCommand(c *Command) Result {
	switch c.Op {
	case OpPut:
		return s.put(c)
	case OpGet:
		return s.get(c)
	case OpAck, OpNack, OpTouch:
		return s.settle(c)
	case OpHandoverAck, OpHandoverNack:
		return s.settleHandover(c)
	case OpConfigure:
		return s.configure(c)
	case OpResetStats:
		if q := s.queues[c.Queue]; q != nil {
			q.puts, q.gets, q.depthHighWater = 0, 0, 0
		}
		return Result{}
	case OpTick:
		s.sweepAll()
		return Result{}
	case OpPurge:
		return s.purge(c)
	case OpRedrive:
		return s.redrive(c)
	}
	return Result{Err: api.ErrInvalidCommand}
}

// queueFor returns the named queue, creating it if create is set.
func (s *state) queueFor(name string, create bool) (*queue, error) {
	if q := s.queues[name]; q != nil {
		return q, nil
	}
	if !api.ValidName(name) {
		return nil, api.ErrInvalidQueueName
	}
	if !create {
		return nil, nil
	}
	if len(s.queues) >= MaxQueues {
		return nil, api.ErrTooManyQueues
	}
	q := newQueue(name)
	s.queues[name] = q
	return q, nil
}

func (s *state) put(c *Command) Result {
	if len(c.Messages) == 0 || c.Delay < 0 || c.Limits.Policy > OverflowEvictOldest {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := s.queueFor(c.Queue, true)
	if err != nil {
		return Result{Err: err}
	}
	s.expireDedup()
	var key string
	if c.ReqID != "" {
		key = c.Queue + "\x00" + c.ReqID
		if d, ok := s.dedup.Get(dedupEntry{key: key}); ok {
			return Result{IDs: slices.Clone(d.ids), Duplicate: true}
		}
	}
	s.sweep(q)
	lim := q.limits(c.Limits)
	if lim.Policy == OverflowReject {
		var size int64
		for _, m := range c.Messages {
			size += int64(len(m))
		}
		if (lim.MaxDepth > 0 && q.held()+int64(len(c.Messages)) > lim.MaxDepth) ||
			(lim.MaxBytes > 0 && q.bytes+size > lim.MaxBytes) {
			return Result{Err: api.ErrQueueFull}
		}
	}
	res := Result{IDs: s.newIDs(len(c.Messages))}
	for i, m := range c.Messages {
		id := s.nextID
		s.nextID++
		res.IDs[i] = id
		q.puts++
		q.bytes += int64(len(m))
		if c.Delay > 0 {
			if lim.Policy == OverflowEvictOldest && lim.MaxBytes > 0 && int64(len(m)) > lim.MaxBytes {
				// Alone too big for the queue: evicted as it arrives.
				q.bytes -= int64(len(m))
				q.overflow++
				res.Evicted = append(res.Evicted, m)
				continue
			}
			it := s.store(id, m)
			s.mark(id)
			q.deferred.ReplaceOrInsert(deferredItem{at: s.now + int64(c.Delay), it: it})
			if lim.Policy == OverflowEvictOldest {
				for lim.over(q) && q.ready.Len() > 0 {
					res.Evicted = append(res.Evicted, s.evictHead(q))
				}
			}
			continue
		}
		q.ready.PushBack(s.store(id, m))
		s.mark(id)
		q.raiseHighWater()
		// simplequeue checks its limits after every record, evicting from
		// the head. The new record is kept unless it alone exceeds the byte
		// limit; leased and deferred messages cannot be evicted, so they can
		// keep the queue above its limits for a while.
		if lim.Policy == OverflowEvictOldest {
			for lim.over(q) && q.ready.Len() > 1 {
				res.Evicted = append(res.Evicted, s.evictHead(q))
			}
			if lim.MaxBytes > 0 && int64(len(m)) > lim.MaxBytes {
				res.Evicted = append(res.Evicted, s.evictHead(q))
			}
		}
	}
	if q.ready.Len() > 0 {
		s.wake(q)
	}
	s.storedPut(c.Messages, res.Evicted)
	if key != "" {
		s.rememberDedup(key, res.IDs)
	}
	return res
}

func (l Limits) over(q *queue) bool {
	return (l.MaxDepth > 0 && q.held() > l.MaxDepth) || (l.MaxBytes > 0 && q.bytes > l.MaxBytes)
}

// evictHead drops q's oldest ready message and returns its body.
func (s *state) evictHead(q *queue) []byte {
	old := q.ready.PopFront()
	q.bytes -= int64(old.size)
	q.overflow++
	data := s.body(old)
	s.forget(old)
	return data
}

func (q *queue) raiseHighWater() {
	if d := int64(q.ready.Len()); d > q.depthHighWater {
		q.depthHighWater = d
	}
}

func (s *state) get(c *Command) Result {
	if c.Max <= 0 || c.MaxBytes < 0 || c.MaxIDBytes < 0 || c.Handover < 0 {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := s.queueFor(c.Queue, false)
	if err != nil || q == nil {
		return Result{Err: err}
	}
	s.sweep(q)
	leaseFor := c.Lease
	if leaseFor == 0 {
		leaseFor = q.cfg.DefaultLease
	}
	handover := leaseFor <= 0 && c.Handover > 0
	if handover {
		leaseFor = c.Handover
	}
	n := min(c.Max, q.ready.Len())
	if n == 0 {
		return Result{}
	}
	res := Result{Messages: make([]Message, 0, min(n, getPrealloc)), Handover: handover}
	var size int64
	var idBytes int
	for len(res.Messages) < n {
		it := q.ready.Front()
		if len(res.Messages) > 0 {
			// The caps never refuse the first message: a get always makes
			// progress, however large the message at the head is.
			size += int64(it.size)
			idBytes += 1 + decimalLen(it.id) // a comma, then the id
			if (c.MaxBytes > 0 && size > c.MaxBytes) || (c.MaxIDBytes > 0 && idBytes > c.MaxIDBytes) {
				break
			}
		} else {
			size, idBytes = int64(it.size), decimalLen(it.id)
		}
		q.ready.PopFront()
		it.attempts++
		q.gets++
		if it.tries() > 1 {
			q.redelivered++
		}
		m := Message{ID: it.id, Attempts: it.tries(), Data: s.body(it)}
		if it.hasInfo() {
			m.LastError = s.info(it).lastError
		}
		res.Messages = append(res.Messages, m)
		if leaseFor > 0 {
			deadline := s.now + int64(leaseFor)
			s.inflight.ReplaceOrInsert(lease{id: it.id, queue: q.name, deadline: deadline, it: it, handover: handover})
			q.byDeadline.ReplaceOrInsert(timedRef{at: deadline, id: it.id})
		}
		if leaseFor > 0 && !handover {
			q.inflightN++
		} else {
			// Popped: a handover counts as gone (depth, bytes, limits) from
			// the take, as a pop always did, and is counted back in only
			// if it returns.
			q.bytes -= int64(it.size)
			s.dropped(it.size)
			if leaseFor <= 0 {
				s.forget(it)
			}
		}
	}
	return res
}

// getPrealloc bounds the slice a get allocates before it knows how many
// messages the caps let through.
const getPrealloc = 1024

// decimalLen is the number of decimal digits of v.
func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

// settleHandover applies OpHandoverAck and OpHandoverNack: each id still
// under a handover lease (in c.Queue when it is set) is finished, or given
// back to the head of its queue with the delivery uncounted; other ids are
// skipped. Count is how many were settled.
func (s *state) settleHandover(c *Command) Result {
	if len(c.IDs) == 0 {
		return Result{Err: api.ErrInvalidCommand}
	}
	// Expire first, as settle does: a handover whose lease ran out was
	// already given back by the sweep and is skipped.
	swept := map[string]bool{}
	for _, id := range c.IDs {
		if l, ok := s.inflight.Get(lease{id: id}); ok && !swept[l.queue] {
			swept[l.queue] = true
			s.sweep(s.queues[l.queue])
		}
	}
	leases := make([]lease, 0, len(c.IDs))
	for _, id := range c.IDs {
		l, ok := s.inflight.Get(lease{id: id})
		if !ok || !l.handover || (c.Queue != "" && l.queue != c.Queue) {
			continue
		}
		// Duplicate ids: the first settles it, the rest find it gone.
		s.dropLease(s.queues[l.queue], l)
		leases = append(leases, l)
	}
	if c.Op == OpHandoverNack {
		// Back to the head oldest first, as nacks and expiries go.
		slices.SortFunc(leases, func(a, b lease) int { return cmp.Compare(b.id, a.id) })
	}
	for _, l := range leases {
		if c.Op == OpHandoverAck {
			s.forget(l.it)
			continue
		}
		q := s.queues[l.queue]
		it := l.it
		it.attempts-- // the answer was never written: not a delivery
		q.bytes += int64(it.size)
		s.kept(it.size)
		q.ready.PushFront(it)
		q.raiseHighWater()
		s.wake(q)
	}
	return Result{Count: len(leases)}
}

// settle applies ack, nack and touch. All ids must be in flight (and in
// c.Queue when it is set), otherwise nothing changes.
func (s *state) settle(c *Command) Result {
	if len(c.IDs) == 0 || (c.Op == OpNack && (c.Delay < 0 || (c.HasData && len(c.IDs) != 1))) {
		return Result{Err: api.ErrInvalidCommand}
	}
	// Expire first, so that an id whose lease ran out is reported as such.
	swept := map[string]bool{}
	for _, id := range c.IDs {
		if l, ok := s.inflight.Get(lease{id: id}); ok && !swept[l.queue] {
			swept[l.queue] = true
			s.sweep(s.queues[l.queue])
		}
	}
	leases := make([]lease, 0, len(c.IDs))
	seen := make(map[uint64]bool, len(c.IDs))
	for _, id := range c.IDs {
		if seen[id] {
			return Result{Err: api.ErrInvalidCommand, IDs: []uint64{id}}
		}
		seen[id] = true
		l, ok := s.inflight.Get(lease{id: id})
		// A handover is a pop on its way to the client, not a lease the
		// client holds: its ack, nack and touch stay refused as a popped
		// message's always were.
		if !ok || l.handover || (c.Queue != "" && l.queue != c.Queue) {
			return Result{Err: api.ErrNotInFlight, IDs: []uint64{id}}
		}
		if c.Op == OpTouch && c.Lease <= 0 && s.queues[l.queue].cfg.DefaultLease <= 0 {
			return Result{Err: api.ErrInvalidCommand, IDs: []uint64{id}}
		}
		leases = append(leases, l)
	}
	// Messages returning to the head go back oldest first.
	slices.SortFunc(leases, func(a, b lease) int { return cmp.Compare(b.id, a.id) })
	for _, l := range leases {
		q := s.queues[l.queue]
		if c.Op == OpTouch {
			d := c.Lease
			if d <= 0 {
				d = q.cfg.DefaultLease
			}
			q.byDeadline.Delete(timedRef{at: l.deadline, id: l.id})
			l.deadline = s.now + int64(d)
			q.byDeadline.ReplaceOrInsert(timedRef{at: l.deadline, id: l.id})
			s.inflight.ReplaceOrInsert(l)
			continue
		}
		s.dropLease(q, l)
		it := l.it
		switch c.Op {
		case OpAck:
			q.acks++
			q.bytes -= int64(it.size)
			s.dropped(it.size)
			s.forget(it)
		case OpNack:
			q.nacks++
			if c.HasData {
				q.bytes += int64(len(c.Data)) - int64(it.size)
				s.replaced(it.size, len(c.Data))
				s.bodies.Release(it.loc, it.size) // the message stays: only its body changes
				nit := s.store(it.id, c.Data)
				it.loc, it.size = nit.loc, nit.size
			}
			if c.Reason != "" {
				s.setInfo(&it, itemInfo{lastError: c.Reason, deadFrom: s.info(it).deadFrom})
			}
			s.requeue(q, it, c.Delay, true)
		}
	}
	return Result{Count: len(leases)}
}

func (s *state) dropLease(q *queue, l lease) {
	s.inflight.Delete(l)
	q.byDeadline.Delete(timedRef{at: l.deadline, id: l.id})
	if !l.handover {
		q.inflightN--
	}
}

// requeue returns a message that was handed out: to the dead-letter path if
// it used up its attempts, else deferred by delay, else to the head of the
// queue (it is older than anything still waiting) or, for deferred releases,
// the tail.
func (s *state) requeue(q *queue, it item, delay time.Duration, head bool) {
	if q.cfg.MaxAttempts > 0 && it.tries() >= q.cfg.MaxAttempts {
		s.deadLetter(q, it)
		return
	}
	if delay > 0 {
		q.deferred.ReplaceOrInsert(deferredItem{at: s.now + int64(delay), it: it})
		return
	}
	if head {
		q.ready.PushFront(it)
	} else {
		q.ready.PushBack(it)
	}
	q.raiseHighWater()
	s.wake(q)
}

func (s *state) deadLetter(q *queue, it item) {
	q.dead++
	q.bytes -= int64(it.size)
	s.dropped(it.size)
	if q.cfg.DeadLetter == "" || q.cfg.DeadLetter == q.name {
		s.forget(it)
		return
	}
	dlq, err := s.queueFor(q.cfg.DeadLetter, true)
	if err != nil {
		s.forget(it)
		return // too many queues: counted in dead, like having no dead-letter queue
	}
	lastErr := s.info(it).lastError
	if lastErr == "" {
		lastErr = "lease expired"
	}
	s.setInfo(&it, itemInfo{lastError: lastErr, deadFrom: q.name})
	dlq.ready.PushBack(it)
	dlq.puts++
	dlq.bytes += int64(it.size)
	s.kept(it.size)
	dlq.raiseHighWater()
	s.wake(dlq)
}

// sweep moves q's expired leases back to the head and its due deferred
// messages to the tail, as of s.now.
func (s *state) sweep(q *queue) {
	var expired []lease
	for {
		t, ok := q.byDeadline.Min()
		if !ok || t.at > s.now {
			break
		}
		l, _ := s.inflight.Get(lease{id: t.id})
		s.dropLease(q, l)
		expired = append(expired, l)
	}
	if len(expired) > 0 {
		slices.SortFunc(expired, func(a, b lease) int { return cmp.Compare(b.id, a.id) })
		for _, l := range expired {
			it := l.it
			if l.handover {
				// Its answer may or may not have been written (the
				// confirmation was lost): deliver it again, the attempt
				// counted, but never dead-letter a pop for it.
				s.setInfo(&it, itemInfo{lastError: HandoverExpired, deadFrom: s.info(it).deadFrom})
				q.bytes += int64(it.size)
				s.kept(it.size)
				q.ready.PushFront(it)
				q.raiseHighWater()
				s.wake(q)
				continue
			}
			q.expired++
			if inf := s.info(it); inf.lastError == "" {
				s.setInfo(&it, itemInfo{lastError: "lease expired", deadFrom: inf.deadFrom})
			}
			s.requeue(q, it, 0, true)
		}
	}
	for {
		d, ok := q.deferred.Min()
		if !ok || d.at > s.now {
			break
		}
		q.deferred.DeleteMin()
		q.ready.PushBack(d.it)
		q.raiseHighWater()
		s.wake(q)
	}
}

func (s *state) sweepAll() {
	for _, name := range s.queueNames() {
		s.sweep(s.queues[name])
	}
	s.expireDedup()
}

func (s *state) configure(c *Command) Result {
	cfg := c.Config
	if c.ConfigFields != 0 {
		cfg = QueueConfig{}
		if q := s.queues[c.Queue]; q != nil {
			cfg = q.cfg
		}
		cfg.merge(c.Config, c.ConfigFields)
	}
	if cfg.DefaultLease < 0 || cfg.Limits.MaxDepth < 0 || cfg.Limits.MaxBytes < 0 ||
		cfg.Limits.Policy > OverflowEvictOldest ||
		(cfg.DeadLetter != "" && (!api.ValidName(cfg.DeadLetter) || cfg.DeadLetter == c.Queue)) {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := s.queueFor(c.Queue, true)
	if err != nil {
		return Result{Err: err}
	}
	q.cfg = cfg
	return Result{}
}

func (cfg *QueueConfig) merge(from QueueConfig, fields ConfigField) {
	if fields&ConfigDefaultLease != 0 {
		cfg.DefaultLease = from.DefaultLease
	}
	if fields&ConfigMaxAttempts != 0 {
		cfg.MaxAttempts = from.MaxAttempts
	}
	if fields&ConfigDeadLetter != 0 {
		cfg.DeadLetter = from.DeadLetter
	}
	if fields&ConfigMaxDepth != 0 {
		cfg.Limits.MaxDepth = from.Limits.MaxDepth
	}
	if fields&ConfigMaxBytes != 0 {
		cfg.Limits.MaxBytes = from.Limits.MaxBytes
	}
	if fields&ConfigPolicy != 0 {
		cfg.Limits.Policy = from.Limits.Policy
	}
}

func (s *state) wake(q *queue) { s.woken[q.name] = struct{}{} }

func (s *state) takeWoken(buf []string) []string {
	for name := range s.woken {
		buf = append(buf, name)
		delete(s.woken, name)
	}
	return buf
}

func (s *state) expireDedup() {
	for s.dedupOrder.Len() > 0 {
		ref := s.dedupOrder.Front()
		if ref.expires > s.now && s.dedupOrder.Len() <= DedupMaxKeys {
			return
		}
		s.dedupOrder.PopFront()
		if d, ok := s.dedup.Get(dedupEntry{key: ref.key}); ok && d.expires == ref.expires {
			s.dedup.Delete(d)
		}
	}
}

func (s *state) rememberDedup(key string, ids []uint64) {
	exp := s.now + int64(DedupWindow)
	s.dedup.ReplaceOrInsert(dedupEntry{key: key, expires: exp, ids: ids})
	s.dedupOrder.PushBack(dedupRef{key: key, expires: exp})
	if s.dedupOrder.Len() > DedupMaxKeys {
		s.expireDedup()
	}
}

func (s *state) queueNames() []string {
	names := make([]string, 0, len(s.queues))
	for name := range s.queues {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

func (s *state) stats(name string) QueueStats {
	q := s.queues[name]
	if q == nil {
		return QueueStats{}
	}
	return QueueStats{
		Name:           q.name,
		Puts:           q.puts,
		Gets:           q.gets,
		Depth:          int64(q.ready.Len()),
		DepthHighWater: q.depthHighWater,
		Bytes:          q.bytes,
		Overflow:       q.overflow,
		InFlight:       q.inflightN,
		Deferred:       int64(q.deferred.Len()),
		Dead:           q.dead,
		Acks:           q.acks,
		Nacks:          q.nacks,
		Expired:        q.expired,
		Redelivered:    q.redelivered,
		OldestPut:      s.oldestPut(q),
		Config:         q.cfg,
		Exists:         true,
	}
}

func (s *state) pending(name string, now int64) (bool, int64) {
	q := s.queues[name]
	if q == nil {
		return false, 0
	}
	if q.ready.Len() > 0 {
		return true, 0
	}
	next := q.nextDue()
	if next != 0 && next <= now {
		return true, 0
	}
	return false, next
}

func (q *queue) nextDue() int64 {
	var next int64
	if t, ok := q.byDeadline.Min(); ok {
		next = t.at
	}
	if d, ok := q.deferred.Min(); ok && (next == 0 || d.at < next) {
		next = d.at
	}
	return next
}

func (s *state) nextDue() int64 {
	var next int64
	for _, q := range s.queues {
		if t := q.nextDue(); t != 0 && (next == 0 || t < next) {
			next = t
		}
	}
	return next
}

func (s *state) readyView(name string) (dequeView[item], bool) {
	q := s.queues[name]
	if q == nil {
		return dequeView[item]{}, false
	}
	return q.ready.View(), true
}
