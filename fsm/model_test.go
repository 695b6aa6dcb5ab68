package fsm

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
)

// model is a deliberately naive re-statement of the queue semantics: plain
// slices and maps, sorting where order matters. The property test checks the
// real state machine against it command by command.
type model struct {
	now    int64
	nextID uint64
	queues map[string]*mqueue
	dedup  map[string]mdedup
}

type mmsg struct {
	id       uint64
	attempts uint32
	data     []byte
	lastErr  string
	deadFrom string
	hasInfo  bool
	// putAt is the leader time of its put.
	putAt int64
}

type mlease struct {
	queue    string
	deadline int64
	msg      mmsg
	handover bool
}

type mdeferred struct {
	at  int64
	msg mmsg
}

type mdedup struct {
	expires int64
	ids     []uint64
}

type mqueue struct {
	cfg            QueueConfig
	ready          []mmsg
	inflight       map[uint64]mlease
	deferred       []mdeferred
	puts, gets     uint64
	hw             int64
	bytes          int64
	overflow, dead uint64
	acks, nacks    uint64
	expired, redel uint64
}

func newModel() *model {
	return &model{nextID: 1, queues: map[string]*mqueue{}, dedup: map[string]mdedup{}}
}

func (m *model) queue(name string, create bool) (*mqueue, error) {
	if q := m.queues[name]; q != nil {
		return q, nil
	}
	if !api.ValidName(name) {
		return nil, api.ErrInvalidQueueName
	}
	if !create {
		return nil, nil
	}
	q := &mqueue{inflight: map[uint64]mlease{}}
	m.queues[name] = q
	return q, nil
}

func (q *mqueue) held() int64 { return int64(len(q.ready)) + q.leased() + int64(len(q.deferred)) }

// leased counts the leases that are not handovers (a handover was popped).
func (q *mqueue) leased() int64 {
	var n int64
	for _, l := range q.inflight {
		if !l.handover {
			n++
		}
	}
	return n
}

func (q *mqueue) raise() {
	if d := int64(len(q.ready)); d > q.hw {
		q.hw = d
	}
}

func (m *model) apply(e *Entry) []Result {
	if e.Now > m.now {
		m.now = e.Now
	}
	var out []Result
	for i := range e.Commands {
		out = append(out, m.command(&e.Commands[i]))
	}
	return out
}

func (m *model) command(c *Command) Result {
	switch c.Op {
	case OpPut:
		return m.put(c)
	case OpGet:
		return m.get(c)
	case OpAck, OpNack, OpTouch:
		return m.settle(c)
	case OpHandoverAck, OpHandoverNack:
		return m.settleHandover(c)
	case OpConfigure:
		cfg := c.Config
		if c.ConfigFields != 0 {
			cfg = QueueConfig{}
			if q := m.queues[c.Queue]; q != nil {
				cfg = q.cfg
			}
			if c.ConfigFields&ConfigDefaultLease != 0 {
				cfg.DefaultLease = c.Config.DefaultLease
			}
			if c.ConfigFields&ConfigMaxAttempts != 0 {
				cfg.MaxAttempts = c.Config.MaxAttempts
			}
			if c.ConfigFields&ConfigDeadLetter != 0 {
				cfg.DeadLetter = c.Config.DeadLetter
			}
			if c.ConfigFields&ConfigMaxDepth != 0 {
				cfg.Limits.MaxDepth = c.Config.Limits.MaxDepth
			}
			if c.ConfigFields&ConfigMaxBytes != 0 {
				cfg.Limits.MaxBytes = c.Config.Limits.MaxBytes
			}
			if c.ConfigFields&ConfigPolicy != 0 {
				cfg.Limits.Policy = c.Config.Limits.Policy
			}
		}
		if cfg.DefaultLease < 0 || cfg.Limits.MaxDepth < 0 || cfg.Limits.MaxBytes < 0 || cfg.Limits.Policy > OverflowEvictOldest ||
			(cfg.DeadLetter != "" && (!api.ValidName(cfg.DeadLetter) || cfg.DeadLetter == c.Queue)) {
			return Result{Err: api.ErrInvalidCommand}
		}
		q, err := m.queue(c.Queue, true)
		if err != nil {
			return Result{Err: err}
		}
		q.cfg = cfg
		return Result{}
	case OpResetStats:
		if q := m.queues[c.Queue]; q != nil {
			q.puts, q.gets, q.hw = 0, 0, 0
		}
		return Result{}
	case OpPurge:
		return m.purge(c)
	case OpRedrive:
		return m.redrive(c)
	case OpTick:
		names := make([]string, 0, len(m.queues))
		for n := range m.queues {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			m.sweep(n)
		}
		m.expireDedup()
		return Result{}
	}
	return Result{Err: api.ErrInvalidCommand}
}

func (m *model) expireDedup() {
	for k, d := range m.dedup {
		if d.expires <= m.now {
			delete(m.dedup, k)
		}
	}
}

func (m *model) put(c *Command) Result {
	if len(c.Messages) == 0 || c.Delay < 0 || c.Limits.Policy > OverflowEvictOldest {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := m.queue(c.Queue, true)
	if err != nil {
		return Result{Err: err}
	}
	m.expireDedup()
	key := ""
	if c.ReqID != "" {
		key = c.Queue + "\x00" + c.ReqID
		if d, ok := m.dedup[key]; ok {
			return Result{IDs: slices.Clone(d.ids), Duplicate: true}
		}
	}
	m.sweep(c.Queue)
	lim := c.Limits
	if q.cfg.Limits != (Limits{}) {
		lim = q.cfg.Limits
	}
	if lim.Policy == OverflowReject {
		var size int64
		for _, b := range c.Messages {
			size += int64(len(b))
		}
		if (lim.MaxDepth > 0 && q.held()+int64(len(c.Messages)) > lim.MaxDepth) || (lim.MaxBytes > 0 && q.bytes+size > lim.MaxBytes) {
			return Result{Err: api.ErrQueueFull}
		}
	}
	res := Result{IDs: []uint64{}}
	for _, b := range c.Messages {
		msg := mmsg{id: m.nextID, data: b, putAt: m.now}
		m.nextID++
		res.IDs = append(res.IDs, msg.id)
		q.puts++
		q.bytes += int64(len(b))
		evict := func() {
			old := q.ready[0]
			q.ready = q.ready[1:]
			q.bytes -= int64(len(old.data))
			q.overflow++
			res.Evicted = append(res.Evicted, old.data)
		}
		over := func() bool {
			return (lim.MaxDepth > 0 && q.held() > lim.MaxDepth) || (lim.MaxBytes > 0 && q.bytes > lim.MaxBytes)
		}
		if c.Delay > 0 {
			if lim.Policy == OverflowEvictOldest && lim.MaxBytes > 0 && int64(len(b)) > lim.MaxBytes {
				q.bytes -= int64(len(b))
				q.overflow++
				res.Evicted = append(res.Evicted, b)
				continue
			}
			q.deferred = append(q.deferred, mdeferred{at: m.now + int64(c.Delay), msg: msg})
			if lim.Policy == OverflowEvictOldest {
				for over() && len(q.ready) > 0 {
					evict()
				}
			}
			continue
		}
		q.ready = append(q.ready, msg)
		q.raise()
		if lim.Policy == OverflowEvictOldest {
			for over() && len(q.ready) > 1 {
				evict()
			}
			if lim.MaxBytes > 0 && int64(len(b)) > lim.MaxBytes {
				evict()
			}
		}
	}
	if key != "" {
		m.dedup[key] = mdedup{expires: m.now + int64(DedupWindow), ids: res.IDs}
	}
	return res
}

func (m *model) get(c *Command) Result {
	if c.Max <= 0 || c.MaxBytes < 0 || c.MaxIDBytes < 0 || c.Handover < 0 {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := m.queue(c.Queue, false)
	if err != nil || q == nil {
		return Result{Err: err}
	}
	m.sweep(c.Queue)
	lease := c.Lease
	if lease == 0 {
		lease = q.cfg.DefaultLease
	}
	handover := lease <= 0 && c.Handover > 0
	if handover {
		lease = c.Handover
	}
	res := Result{}
	var ids []string
	var size int64
	for len(res.Messages) < c.Max && len(q.ready) > 0 {
		msg := q.ready[0]
		if len(res.Messages) > 0 {
			joined := strings.Join(append(slices.Clone(ids), strconv.FormatUint(msg.id, 10)), ",")
			if (c.MaxBytes > 0 && size+int64(len(msg.data)) > c.MaxBytes) || (c.MaxIDBytes > 0 && len(joined) > c.MaxIDBytes) {
				break
			}
		}
		ids = append(ids, strconv.FormatUint(msg.id, 10))
		size += int64(len(msg.data))
		q.ready = q.ready[1:]
		msg.attempts++
		q.gets++
		if msg.attempts > 1 {
			q.redel++
		}
		res.Messages = append(res.Messages, Message{ID: msg.id, Attempts: msg.attempts, Data: msg.data, LastError: msg.lastErr})
		if lease > 0 {
			q.inflight[msg.id] = mlease{queue: c.Queue, deadline: m.now + int64(lease), msg: msg, handover: handover}
		}
		if lease <= 0 || handover {
			q.bytes -= int64(len(msg.data))
		}
	}
	if len(res.Messages) > 0 {
		res.Handover = handover
	} else {
		res.Messages = nil
	}
	return res
}

func (m *model) settleHandover(c *Command) Result {
	if len(c.IDs) == 0 {
		return Result{Err: api.ErrInvalidCommand}
	}
	for _, id := range c.IDs {
		if l, ok := m.findLease(id); ok {
			m.sweep(l.queue)
		}
	}
	var ls []mlease
	for _, id := range c.IDs {
		l, ok := m.findLease(id)
		if !ok || !l.handover || (c.Queue != "" && l.queue != c.Queue) {
			continue
		}
		delete(m.queues[l.queue].inflight, id)
		ls = append(ls, l)
	}
	if c.Op == OpHandoverNack {
		sort.Slice(ls, func(i, j int) bool { return ls[i].msg.id > ls[j].msg.id })
	}
	for _, l := range ls {
		q := m.queues[l.queue]
		if c.Op == OpHandoverAck {
			continue
		}
		msg := l.msg
		msg.attempts--
		q.bytes += int64(len(msg.data))
		q.ready = append([]mmsg{msg}, q.ready...)
		q.raise()
	}
	return Result{Count: len(ls)}
}

func (m *model) findLease(id uint64) (mlease, bool) {
	for _, q := range m.queues {
		if l, ok := q.inflight[id]; ok {
			return l, true
		}
	}
	return mlease{}, false
}

func (m *model) settle(c *Command) Result {
	if len(c.IDs) == 0 || (c.Op == OpNack && (c.Delay < 0 || (c.HasData && len(c.IDs) != 1))) {
		return Result{Err: api.ErrInvalidCommand}
	}
	swept := map[string]bool{}
	for _, id := range c.IDs {
		if l, ok := m.findLease(id); ok && !swept[l.queue] {
			swept[l.queue] = true
			m.sweep(l.queue)
		}
	}
	seen := map[uint64]bool{}
	var ls []mlease
	for _, id := range c.IDs {
		if seen[id] {
			return Result{Err: api.ErrInvalidCommand, IDs: []uint64{id}}
		}
		seen[id] = true
		l, ok := m.findLease(id)
		if !ok || l.handover || (c.Queue != "" && l.queue != c.Queue) {
			return Result{Err: api.ErrNotInFlight, IDs: []uint64{id}}
		}
		if c.Op == OpTouch && c.Lease <= 0 && m.queues[l.queue].cfg.DefaultLease <= 0 {
			return Result{Err: api.ErrInvalidCommand, IDs: []uint64{id}}
		}
		ls = append(ls, l)
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].msg.id > ls[j].msg.id })
	for _, l := range ls {
		q := m.queues[l.queue]
		id := l.msg.id
		switch c.Op {
		case OpTouch:
			d := c.Lease
			if d <= 0 {
				d = q.cfg.DefaultLease
			}
			l.deadline = m.now + int64(d)
			q.inflight[id] = l
		case OpAck:
			q.acks++
			delete(q.inflight, id)
			q.bytes -= int64(len(l.msg.data))
		case OpNack:
			q.nacks++
			delete(q.inflight, id)
			msg := l.msg
			if c.HasData {
				q.bytes += int64(len(c.Data)) - int64(len(msg.data))
				msg.data = c.Data
			}
			if c.Reason != "" {
				msg.lastErr, msg.hasInfo = c.Reason, true
			}
			m.requeue(l.queue, msg, c.Delay)
		}
	}
	return Result{Count: len(ls)}
}

func (m *model) requeue(name string, msg mmsg, delay time.Duration) {
	q := m.queues[name]
	if q.cfg.MaxAttempts > 0 && msg.attempts >= q.cfg.MaxAttempts {
		q.dead++
		q.bytes -= int64(len(msg.data))
		if q.cfg.DeadLetter == "" || q.cfg.DeadLetter == name {
			return
		}
		dlq, _ := m.queue(q.cfg.DeadLetter, true)
		if msg.lastErr == "" {
			msg.lastErr = "lease expired"
		}
		msg.hasInfo, msg.deadFrom = true, name
		dlq.ready = append(dlq.ready, msg)
		dlq.puts++
		dlq.bytes += int64(len(msg.data))
		dlq.raise()
		return
	}
	if delay > 0 {
		q.deferred = append(q.deferred, mdeferred{at: m.now + int64(delay), msg: msg})
		return
	}
	q.ready = append([]mmsg{msg}, q.ready...)
	q.raise()
}

func (m *model) sweep(name string) {
	q := m.queues[name]
	var expired []mlease
	for id, l := range q.inflight {
		if l.deadline <= m.now {
			expired = append(expired, l)
			delete(q.inflight, id)
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].msg.id > expired[j].msg.id })
	for _, l := range expired {
		msg := l.msg
		if l.handover {
			msg.lastErr, msg.hasInfo = HandoverExpired, true
			q.bytes += int64(len(msg.data))
			q.ready = append([]mmsg{msg}, q.ready...)
			q.raise()
			continue
		}
		q.expired++
		if msg.lastErr == "" {
			msg.lastErr, msg.hasInfo = "lease expired", true
		}
		m.requeue(name, msg, 0)
	}
	sort.SliceStable(q.deferred, func(i, j int) bool {
		a, b := q.deferred[i], q.deferred[j]
		return a.at < b.at || (a.at == b.at && a.msg.id < b.msg.id)
	})
	for len(q.deferred) > 0 && q.deferred[0].at <= m.now {
		q.ready = append(q.ready, q.deferred[0].msg)
		q.deferred = q.deferred[1:]
		q.raise()
	}
}

func (m *model) stats(name string) QueueStats {
	q := m.queues[name]
	if q == nil {
		return QueueStats{}
	}
	var oldest int64
	if len(q.ready) > 0 {
		oldest = q.ready[0].putAt
	}
	return QueueStats{
		Name: name, Acks: q.acks, Nacks: q.nacks, Expired: q.expired, Redelivered: q.redel, OldestPut: oldest,
		Puts: q.puts, Gets: q.gets, Depth: int64(len(q.ready)), DepthHighWater: q.hw,
		Bytes: q.bytes, Overflow: q.overflow, InFlight: q.leased(),
		Deferred: int64(len(q.deferred)), Dead: q.dead, Config: q.cfg, Exists: true,
	}
}

func (m *model) pending(name string, now int64) (bool, int64) {
	q := m.queues[name]
	if q == nil {
		return false, 0
	}
	if len(q.ready) > 0 {
		return true, 0
	}
	var next int64
	for _, l := range q.inflight {
		if next == 0 || l.deadline < next {
			next = l.deadline
		}
	}
	for _, d := range q.deferred {
		if next == 0 || d.at < next {
			next = d.at
		}
	}
	if next != 0 && next <= now {
		return true, 0
	}
	return false, next
}

// inflightIDs lists leased ids, for generating acks that hit.
func (m *model) inflightIDs() []uint64 {
	var ids []uint64
	for _, q := range m.queues {
		for id := range q.inflight {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (m *model) purge(c *Command) Result {
	if c.Max < 0 {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := m.queue(c.Queue, false)
	if err != nil || q == nil {
		return Result{Err: err}
	}
	m.sweep(c.Queue)
	limit := adminBatch(c.Max)
	n := 0
	for ; n < limit && len(q.ready) > 0; n++ {
		q.bytes -= int64(len(q.ready[0].data))
		q.ready = q.ready[1:]
	}
	sort.SliceStable(q.deferred, func(i, j int) bool {
		a, b := q.deferred[i], q.deferred[j]
		return a.at < b.at || (a.at == b.at && a.msg.id < b.msg.id)
	})
	for ; n < limit && len(q.deferred) > 0; n++ {
		q.bytes -= int64(len(q.deferred[0].msg.data))
		q.deferred = q.deferred[1:]
	}
	return Result{Count: n, Left: len(q.ready) + len(q.deferred)}
}

func (m *model) redrive(c *Command) Result {
	if c.Max < 0 || c.Skip < 0 || (c.To != "" && (!api.ValidName(c.To) || c.To == c.Queue)) {
		return Result{Err: api.ErrInvalidCommand}
	}
	q, err := m.queue(c.Queue, false)
	if err != nil || q == nil {
		return Result{Err: err}
	}
	m.sweep(c.Queue)
	limit := adminBatch(c.Max)
	var kept []mmsg
	moved, stayed := 0, 0
	for i, msg := range q.ready {
		if i < c.Skip || moved == limit || moved+stayed == MaxAdminBatch {
			kept = append(kept, msg)
			continue
		}
		to := c.To
		if to == "" {
			to = msg.deadFrom
		}
		if to == "" || to == c.Queue {
			stayed++
			kept = append(kept, msg)
			continue
		}
		dest, _ := m.queue(to, true)
		moved++
		q.bytes -= int64(len(msg.data))
		msg.attempts, msg.lastErr, msg.deadFrom, msg.hasInfo = 0, "", "", false
		dest.ready = append(dest.ready, msg)
		dest.puts++
		dest.bytes += int64(len(msg.data))
		dest.raise()
	}
	q.ready = kept
	return Result{Count: moved, Stayed: stayed, Left: len(q.ready)}
}
