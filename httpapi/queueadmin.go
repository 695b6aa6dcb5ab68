package httpapi

import (
	"io"
	"math"
	"strconv"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/auth"
)

// The queue administration routes: /queues, /purge, /redrive, and the
// paged forms of /dump.

// adminRoutes are the exact-path routes of queue administration, on the
// replicated queue: forwarded to the leader like /stats.
func (q *queueAPI) adminRoutes() []route {
	return []route{
		{name: "queues", path: "/queues", match: exact, methods: getOnly, style: simplequeueStyle,
			replicated: true, needs: roleAccess(auth.Monitor), handle: q.queues},
		{name: "purge", path: "/purge", match: exact, methods: postOnly, style: simplequeueStyle,
			writes: always, replicated: true, needs: queueAccess(auth.Admin), handle: q.purge},
		{name: "redrive", path: "/redrive", match: exact, methods: postOnly, style: simplequeueStyle,
			writes: always, replicated: true, needs: redriveAccess, handle: q.redrive},
	}
}

// redriveAccess: an admin's, and the queue messages go to (to=) must be
// in the token's scopes too.
func redriveAccess(p params) (access, error) {
	a, err := queueAccess(auth.Admin)(p)
	if err != nil {
		return a, err
	}
	a.also, _, err = p.strict("to", api.ErrInvalidQueueName)
	return a, err
}

// queues is /queues: every queue's counters and settings, sorted by name,
// with this node's clock (time_ms) and the age of each queue's oldest
// ready message against it. oldest_ms is that message's put time in the
// leader's log time, known to a second (fsm.PutTimeResolution); 0 when
// nothing is ready. Linearizable unless stale=1.
func (q *queueAPI) queues(r *request) (reply, error) {
	if err := q.consistentRead(r); err != nil {
		return reply{}, err
	}
	now := q.o.Now().UnixMilli()
	all := q.o.Queue.AllStats()
	out := api.QueueList{TimeMS: now, Queues: make([]api.QueueInfo, len(all))}
	for i, st := range all {
		qi := api.QueueInfo{
			Name: st.Name, Depth: st.Depth, InFlight: st.InFlight, Deferred: st.Deferred, Dead: st.Dead,
			Bytes: st.Bytes, Puts: st.Puts, Gets: st.Gets, Acks: st.Acks, Nacks: st.Nacks,
			Expired: st.Expired, Redelivered: st.Redelivered, Overflow: st.Overflow,
			DepthHighWater: st.DepthHighWater, Config: configOf(st.Name, st.Config),
		}
		if st.OldestPut > 0 {
			qi.OldestMS = st.OldestPut / 1e6
			qi.OldestAgeMS = max(now-qi.OldestMS, 0)
		}
		out.Queues[i] = qi
	}
	return jsonReply(out)
}

// adminQueue returns queue=NAME of /purge and /redrive, which has no
// default: a request that forgot it must not empty the default queue.
func adminQueue(p params) (string, error) {
	if !p.has("queue") {
		return "", api.ErrBadRequest.Errorf("missing queue=NAME: say which queue")
	}
	return p.queue()
}

// purge is POST /purge?queue=Q: removes the queue's ready and deferred
// messages for good (leased ones stay and may come back) and answers
// {"purged":N}. It proposes fsm.OpPurge until the queue has none left, at
// most fsm.MaxAdminBatch messages a command, and no more commands than
// the queue held at the start needs (messages put meanwhile may stay).
func (q *queueAPI) purge(r *request) (reply, error) {
	queue, err := adminQueue(r.p)
	if err != nil {
		return reply{}, err
	}
	purged := 0
	for rounds, limit := 0, 1; rounds < limit; rounds++ {
		res, err := q.propose(r, fsm.Command{Op: fsm.OpPurge, Queue: queue, Max: fsm.MaxAdminBatch})
		if err != nil {
			return reply{}, err
		}
		purged += res.Count
		if rounds == 0 {
			limit = 1 + (res.Left+fsm.MaxAdminBatch-1)/fsm.MaxAdminBatch
		}
		if res.Left == 0 || res.Count < fsm.MaxAdminBatch {
			break
		}
	}
	return jsonReply(api.Purged{Purged: purged})
}

// redrive is POST /redrive?queue=DLQ[&to=Q][&max=N]: moves up to N
// (default all) ready messages of DLQ, in order, each to the queue it was
// dead-lettered from, or all to Q, with attempts reset to 0; messages
// without an origin stay when to= is not given. Answers
// {"moved":N,"left":M}, M the ready messages left in DLQ. It proposes
// fsm.OpRedrive commands of at most fsm.MaxAdminBatch messages each,
// skipping those that stayed, for no more rounds than the queue held at
// the start needs.
func (q *queueAPI) redrive(r *request) (reply, error) {
	queue, err := adminQueue(r.p)
	if err != nil {
		return reply{}, err
	}
	to, _, err := r.p.strict("to", api.ErrInvalidQueueName)
	if err != nil {
		return reply{}, err
	}
	if to != "" {
		if err := api.CheckQueueName(to); err != nil {
			return reply{}, err
		}
		if to == queue {
			return reply{}, api.ErrBadRequest.Errorf("invalid to=%s: must name another queue than queue=", api.Quote(to))
		}
	}
	want, hasMax, err := r.p.uint("max", math.MaxInt32)
	if err != nil {
		return reply{}, err
	}
	if hasMax && want == 0 {
		return reply{}, api.ErrBadRequest.Errorf("invalid max=0: want 1 or more, or leave it out for all")
	}
	moved, skip, left := 0, 0, 0
	for rounds, limit := 0, 1; rounds < limit; rounds++ {
		batch := fsm.MaxAdminBatch
		if hasMax {
			batch = min(batch, int(want)-moved)
		}
		res, err := q.propose(r, fsm.Command{Op: fsm.OpRedrive, Queue: queue, To: to, Max: batch, Skip: skip})
		if err != nil {
			return reply{}, err
		}
		moved, skip, left = moved+res.Count, skip+res.Stayed, res.Left
		if rounds == 0 {
			limit = 1 + (res.Count+res.Left+fsm.MaxAdminBatch-1)/fsm.MaxAdminBatch
		}
		if (hasMax && moved >= int(want)) || res.Count+res.Stayed == 0 || skip >= left {
			break
		}
	}
	return jsonReply(api.Redriven{Moved: moved, Left: left})
}

// The paged /dump.
const (
	dumpJSONLimit    = 100
	dumpJSONMaxLimit = 1000
)

// pagedDump reports whether /dump was asked for a page or for JSON:
// without limit, offset, after and format it answers as it always did.
func pagedDump(p params) bool {
	return p.has("limit") || p.has("offset") || p.has("after") || p.has("format")
}

// dumpOptions reads /dump's limit=, offset= and after=. With format=json
// limit defaults to dumpJSONLimit and is lowered to dumpJSONMaxLimit; as
// text it has no default.
func dumpOptions(p params, asJSON bool) (fsm.DumpOptions, error) {
	var o fsm.DumpOptions
	limit, ok, err := p.uint("limit", math.MaxInt32)
	switch {
	case err != nil:
		return o, err
	case ok && limit == 0:
		return o, api.ErrBadRequest.Errorf("invalid limit=0: want 1 or more")
	case !ok && asJSON:
		limit = dumpJSONLimit
	}
	if asJSON {
		limit = min(limit, dumpJSONMaxLimit)
	}
	o.Limit = int(limit)
	offset, _, err := p.uint("offset", math.MaxInt32)
	if err != nil {
		return o, err
	}
	o.Offset = int(offset)
	o.After, o.HasAfter, err = p.uint("after", math.MaxUint64)
	return o, err
}

// dumpPage answers a paged /dump: {"queue","total","offset","messages"}
// with format=json (data as /mget's JSON spells it), else each message's
// data and a newline, as the plain /dump.
func (q *queueAPI) dumpPage(r *request, queue string) (reply, error) {
	format, _ := r.p.get("format")
	asJSON := format == "json"
	o, err := dumpOptions(r.p, asJSON)
	if err != nil {
		return reply{}, err
	}
	if err := q.consistentRead(r); err != nil {
		return reply{}, err
	}
	if !asJSON {
		return reply{stream: func(w io.Writer) error {
			_, err := q.o.Queue.DumpEach(queue, o, func(m fsm.DumpMessage) error {
				if _, err := w.Write(m.Data); err != nil {
					return err
				}
				_, err := w.Write(newline)
				return err
			})
			return err
		}}, nil
	}
	msgs := make([]api.Message, 0, min(o.Limit, 64))
	total, err := q.o.Queue.DumpEach(queue, o, func(m fsm.DumpMessage) error {
		jm := api.Message{ID: strconv.FormatUint(m.ID, 10), Attempts: m.Attempts, DeadFrom: m.DeadFrom, Error: m.LastError}
		jm.Data, jm.Encoding = api.EncodeData(m.Data)
		msgs = append(msgs, jm)
		return nil
	})
	if err != nil {
		return reply{}, err
	}
	return jsonReply(api.DumpPage{Queue: queue, Total: total, Offset: o.Offset, Messages: msgs})
}
