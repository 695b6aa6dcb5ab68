package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/auth"
)

// queueAPI serves simplequeue's routes and quorumq's extensions over the
// replicated queue.
type queueAPI struct {
	o         Options
	m         *metrics
	log       *slog.Logger
	deadlines deadlineSlots
	// handovers settles the messages gets pop (handover.go).
	handovers *handovers
	// batch sends the proposals of batched requests to the leader
	// (batch.go); nil without Options.ForwardBatch.
	batch *batcher
}

// routes lists the queue routes in simplequeue's registration order, then
// the extensions: prefix globs (/getanything is /get), GET and POST alike,
// on the replicated queue, so the engine forwards what needs the leader.
func (q *queueAPI) routes() []route {
	r := func(name string, writes func(params) bool, needs func(params) (access, error), h handler) route {
		return route{name: name, path: "/" + name, match: glob, methods: getPost, style: simplequeueStyle,
			writes: writes, replicated: true, maxBody: q.o.MaxBodySize, needs: needs, handle: h}
	}
	produce, consume := queueAccess(auth.Produce), queueAccess(auth.Consume)
	admitted := func(rt route, admit func(*request) error) route { rt.admit = admit; return rt }
	// batched routes: their handlers read nothing of the local state and
	// propose only batchable commands, so a follower may run them and
	// send the commands in batches (batch.go).
	batched := func(rt route) route { rt.batch = true; return rt }
	return append([]route{
		// Node to node (see handover.go and batchwire.go), before the
		// globs: /internal/ is not one of their prefixes, so the order
		// changes nothing.
		{name: "internal_handover", path: pathHandover, match: exact, methods: postOnly, style: adminStyle,
			writes: always, replicated: true, maxBody: maxHandoverBody, handle: q.handoverRoute},
		// Not replicated: it is never forwarded, and a node that does not
		// lead answers NOT_LEADER for the follower to retry elsewhere.
		{name: "internal_propose", path: api.PathPropose, match: exact, methods: postOnly, style: adminStyle,
			writes: always, maxBody: q.o.MaxBodySize + maxBatchBytes, bodyName: "batch", handle: q.proposeRoute},
		batched(admitted(r("put", always, produce, q.put), q.admitPut)),
		r("get", always, consume, q.get),
		r("mget", always, consume, q.mget),
		batched(admitted(r("mput", always, produce, q.mput), q.admitMput)),
		r("dump", nil, consume, q.dump),
		r("stats", resetRequested, statsAccess, q.stats),
		batched(r("ack", always, anyQueueAccess, q.ack)),
		batched(r("nack", always, anyQueueAccess, q.nack)),
		batched(r("touch", always, anyQueueAccess, q.touch)),
		r("config", always, configAccess, q.config),
	}, q.adminRoutes()...)
}

// put is /put: store one message.
//
// The message is data= from the query string, else the raw POST body.
// Missing: 400 "missing data". Present but empty: 200 and nothing stored.
// Stored: 200 with an empty body and X-Message-Id. id=KEY makes a retry
// store nothing new (still 200); delay=DUR holds the message back.
func (q *queueAPI) put(r *request) (reply, error) {
	queue, err := r.p.queue()
	if err != nil {
		return reply{}, err
	}
	reqID, err := r.p.reqID()
	if err != nil {
		return reply{}, err
	}
	delay, _, err := r.p.duration("delay", MaxDelay)
	if err != nil {
		return reply{}, err
	}
	data, err := q.data(r)
	if err != nil || len(data) == 0 {
		return reply{}, err
	}
	if int64(len(data)) > q.o.MaxMsgSize {
		return reply{}, api.ErrTooLarge.Errorf("message is %d bytes, more than the limit of %d bytes", len(data), q.o.MaxMsgSize)
	}
	res, err := q.propose(r, fsm.Command{
		Op: fsm.OpPut, Queue: queue, Messages: [][]byte{data},
		Delay: delay, ReqID: reqID, Limits: q.o.Limits,
	})
	if err != nil {
		return reply{}, putError(queue, err)
	}
	q.stored(r, queue, res)
	rep := reply{}
	if len(res.IDs) == 1 {
		rep.msgID, rep.hasMsgID = res.IDs[0], true
	}
	return rep, nil
}

// mput is /mput: store several messages, split on separator= (default
// MPutSep). Empty records are skipped. A record larger than MaxMsgSize
// fails the request with 413 before anything is stored. Records go in one
// put command while it stays under about 256 KiB encoded, otherwise in
// several, proposed in order: such a large /mput is not atomic. With id=KEY
// each of those commands carries its own key derived from KEY, so a retry
// stores only what is missing.
func (q *queueAPI) mput(r *request) (reply, error) {
	queue, err := r.p.queue()
	if err != nil {
		return reply{}, err
	}
	reqID, err := r.p.reqID()
	if err != nil {
		return reply{}, err
	}
	delay, _, err := r.p.duration("delay", MaxDelay)
	if err != nil {
		return reply{}, err
	}
	sep, err := q.mputSep(r.p)
	if err != nil {
		return reply{}, err
	}
	data, err := q.data(r)
	if err != nil {
		return reply{}, err
	}
	records := splitRecords(data, []byte(sep))
	for i, rec := range records {
		if int64(len(rec)) > q.o.MaxMsgSize {
			return reply{}, api.ErrTooLarge.Errorf("record %d is %d bytes, more than the limit of %d bytes", i+1, len(rec), q.o.MaxMsgSize)
		}
	}
	cmds := q.putCommands(queue, reqID, delay, records)
	for _, cmd := range cmds {
		res, err := q.propose(r, cmd)
		if err != nil {
			return reply{}, putError(queue, err)
		}
		q.stored(r, queue, res)
	}
	return reply{}, nil
}

// putCommands groups records into put commands of at most maxEntryBytes
// encoded (a single larger record gets a command of its own).
func (q *queueAPI) putCommands(queue, reqID string, delay time.Duration, records [][]byte) []fsm.Command {
	base := fsm.Command{Op: fsm.OpPut, Queue: queue, Delay: delay, ReqID: reqID, Limits: q.o.Limits}
	baseSize := fsm.EncodedSize(&base)
	perRecord := fsm.EncodedSize(&fsm.Command{Messages: [][]byte{nil}}) - fsm.EncodedSize(&fsm.Command{})
	// Commands take consecutive runs of records, so their Messages can be
	// sub-slices of records (capped, so no append reaches the next run).
	cmds := make([]fsm.Command, 0, 1)
	first, size := 0, baseSize
	for i, rec := range records {
		one := perRecord + len(rec)
		if i > first && size+one > maxEntryBytes {
			cur := base
			cur.Messages = records[first:i:i]
			cmds = append(cmds, cur)
			first, size = i, baseSize
		}
		size += one
	}
	if first < len(records) {
		cur := base
		cur.Messages = records[first:len(records):len(records)]
		cmds = append(cmds, cur)
	}
	if len(cmds) > 1 && reqID != "" {
		// Query values end at NUL, so these keys never collide with a client's.
		for i := range cmds {
			cmds[i].ReqID = reqID + "\x00" + strconv.Itoa(i)
		}
	}
	return cmds
}

// mputSep returns /mput's separator=, MPutSep when absent. A separator
// that libevent would cut at a NUL is a 400, like an empty one.
func (q *queueAPI) mputSep(p params) (string, error) {
	v, ok, err := p.noNUL("separator", "")
	switch {
	case err != nil:
		return "", err
	case !ok:
		return q.o.MPutSep, nil
	case v == "":
		return "", api.ErrBadRequest.Errorf("separator must not be empty")
	}
	return v, nil
}

// data returns the input of /put and /mput: data= from the query string
// if present (even empty), else a non-empty POST body. A data= that
// decodes to a NUL byte is a 400: libevent would store the part before
// it, and query values are C strings here too; binary data goes in a POST
// body.
func (q *queueAPI) data(r *request) ([]byte, error) {
	if v, ok, err := r.p.noNUL("data", "; send binary data as a POST body"); ok || err != nil {
		return []byte(v), err
	}
	if r.Method == http.MethodPost {
		body, err := r.body()
		if err != nil || len(body) > 0 {
			return body, err
		}
	}
	return nil, api.ErrBadRequest.Errorf("missing data")
}

// admitPut and admitMput are the admission (route.admit) of /put and
// /mput: they refuse
// a request whose messages would take this node past its budget of
// queued bytes (Options.MaxQueuedBytes), before anything is forwarded or
// proposed. It runs on the node the client asked, against that node's
// own view, and again on the leader when the request is forwarded there.
// The request's cost is its data's length plus fsm.MessageOverhead per
// record (for /mput, at most one record more than separators, so that a
// body of tiny records is counted for the disk and index it will take),
// and its records count against MaxQueuedMessages. Errors of the data
// itself (400, 413) come out here as they would from the handler.
func (q *queueAPI) admitPut(r *request) error {
	if q.unbudgeted() {
		return nil
	}
	data, err := q.data(r)
	if err != nil || len(data) == 0 {
		return err
	}
	return q.checkBudget(int64(len(data)), 1)
}

func (q *queueAPI) admitMput(r *request) error {
	if q.unbudgeted() {
		return nil
	}
	sep, err := q.mputSep(r.p)
	if err != nil {
		return err
	}
	data, err := q.data(r)
	if err != nil || len(data) == 0 {
		return err
	}
	return q.checkBudget(int64(len(data)), int64(bytes.Count(data, []byte(sep)))+1)
}

func (q *queueAPI) unbudgeted() bool {
	return q.o.MaxQueuedBytes == Unlimited && q.o.MaxQueuedMessages == Unlimited
}

// checkBudget refuses records of size bytes in all when the node's
// usage plus their cost would pass MaxQueuedBytes, or its messages plus
// records MaxQueuedMessages.
func (q *queueAPI) checkBudget(size, records int64) error {
	usage := q.o.Queue.Usage()
	if lim := q.o.MaxQueuedMessages; lim != Unlimited && usage.Messages+records > lim {
		return api.ErrQueueFull.Errorf("node is full: its queues hold %d messages and this request brings %d more, "+
			"over the %d its memory budget indexes (--memory-budget, %d bytes each); nothing was stored, retry once readers have drained some",
			usage.Messages, records, lim, fsm.IndexBytesPerMessage)
	}
	if q.o.MaxQueuedBytes == Unlimited {
		return nil
	}
	used := usage.Cost()
	need := size + records*fsm.MessageOverhead
	if used+need <= q.o.MaxQueuedBytes {
		return nil
	}
	return api.ErrQueueFull.Errorf("node is full: its queues hold %s (message bodies plus %d bytes each) and this request needs %s more, "+
		"over the node's budget of %s of queued bytes (--max-queued-bytes); nothing was stored, retry once readers have drained some",
		api.FormatBytes(used), fsm.MessageOverhead, api.FormatBytes(need), api.FormatBytes(q.o.MaxQueuedBytes))
}

// putError names the queue in the business errors of a put.
func putError(queue string, err error) error {
	var final *finalError
	switch {
	case errors.As(err, &final):
		return final.err // the leader's own words (its budget)
	case errors.Is(err, api.ErrQueueFull):
		return api.ErrQueueFull.Errorf("queue %q is full", queue)
	case errors.Is(err, api.ErrTooManyQueues):
		return api.ErrTooManyQueues.Errorf("cannot create queue %q: the cluster already holds %d queues", queue, fsm.MaxQueues)
	}
	return err
}

// stored accounts for a successful put of r: metrics, and evicted
// messages to the overflow log. The leader accounts for the puts a
// follower batched (proposeForwarded), as for those it relays.
func (q *queueAPI) stored(r *request, queue string, res fsm.Result) {
	if r != nil && r.batched {
		return
	}
	if !res.Duplicate && len(res.IDs) > 0 {
		q.m.putCounter(queue).Add(float64(len(res.IDs)))
	}
	if len(res.Evicted) > 0 && q.o.Overflow != nil {
		if err := q.o.Overflow.Write(res.Evicted); err != nil {
			q.log.Error("writing evicted messages to the overflow log", "queue", queue, "messages", len(res.Evicted), "err", err)
		}
	}
}

// getParams are the parameters /get and /mget share.
type getParams struct {
	queue string
	lease time.Duration // fsm.Command.Lease
	wait  time.Duration
}

func (q *queueAPI) getParams(p params) (getParams, error) {
	var g getParams
	var err error
	if g.queue, err = p.queue(); err != nil {
		return g, err
	}
	lease, ok, err := p.duration("lease", MaxLease)
	if err != nil {
		return g, err
	}
	g.lease = api.LeaseOf(lease, ok)
	wait, _, err := p.duration("wait", time.Duration(1<<63-1))
	if err != nil {
		return g, err
	}
	g.wait = min(wait, q.o.MaxWait)
	return g, nil
}

// get is /get: pop (or with lease=DUR lease) the oldest ready message.
// Empty queue: 200 with an empty body, answered without writing the log.
// A message comes with X-Message-Id and X-Attempts. A popped message is
// taken under a handover (handover.go): it is gone once its answer is
// written, and back at the head if it cannot be.
func (q *queueAPI) get(r *request) (reply, error) {
	g, err := q.getParams(r.p)
	if err != nil {
		return reply{}, err
	}
	res, err := q.take(r, q.getCommand(g, 1), g.wait)
	if err != nil || len(res.Messages) == 0 {
		return reply{}, err
	}
	m := res.Messages[0]
	q.m.deliveredCounter(g.queue).Inc()
	h := http.Header{
		api.HeaderMessageID: {strconv.FormatUint(m.ID, 10)},
		api.HeaderAttempts:  {strconv.FormatUint(uint64(m.Attempts), 10)},
	}
	if m.LastError != "" {
		h[api.HeaderLastError] = []string{headerSafe(m.LastError)}
	}
	rep := reply{header: h, body: m.Data}
	if res.Handover {
		q.taken(r, &rep, res.Messages)
	}
	return rep, nil
}

// getCommand is the get of /get and /mget: at most max messages and
// MaxGetBytes of them, popped under a handover of HandoverLease unless
// they are leased.
func (q *queueAPI) getCommand(g getParams, max int) fsm.Command {
	return fsm.Command{Op: fsm.OpGet, Queue: g.queue, Max: max, Lease: g.lease,
		MaxBytes: q.o.MaxGetBytes, Handover: q.o.HandoverLease}
}

// headerSafe replaces bytes a header value cannot carry (control
// characters, including line breaks) with spaces.
func headerSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
}

// mget is /mget: hand out up to items= messages (default 1, lowered to
// MaxMGet), joined with separator= (default MGetSep) by simplequeue's
// "index < items-1" rule, or as JSON with format=json. A text answer with
// messages carries X-Message-Ids, which stays within maxIDsHeader: the
// get stops before the ids of its messages would not fit (format=json has
// the ids in the body and no such cut). The messages also stop before
// their bytes pass MaxGetBytes; the first one always goes. A shorter
// answer ends with a separator, as on a short queue.
func (q *queueAPI) mget(r *request) (reply, error) {
	items := 1
	if v, ok := r.p.get("items"); ok {
		items = atoi(v)
	}
	if items <= 0 {
		return reply{}, api.ErrBadRequest.Errorf("number of items must be > 0")
	}
	items = min(items, q.o.MaxMGet)
	sep := q.o.MGetSep
	if v, ok := r.p.get("separator"); ok {
		sep = v
	}
	format, _ := r.p.get("format")
	g, err := q.getParams(r.p)
	if err != nil {
		return reply{}, err
	}
	cmd := q.getCommand(g, items)
	if format != "json" {
		cmd.MaxIDBytes = maxIDsHeader
	}
	res, err := q.take(r, cmd, g.wait)
	if err != nil {
		return reply{}, err
	}
	msgs := res.Messages
	if len(msgs) > 0 {
		q.m.deliveredCounter(g.queue).Add(float64(len(msgs)))
	}
	var rep reply
	if format == "json" {
		rep = reply{contentType: typeJSON, body: messagesJSON(msgs)}
	} else {
		rep = reply{body: joinItems(msgs, sep, items)}
		if len(msgs) > 0 {
			ids := make([]byte, 0, 8*len(msgs))
			for i, m := range msgs {
				if i > 0 {
					ids = append(ids, ',')
				}
				ids = strconv.AppendUint(ids, m.ID, 10)
			}
			rep.header = http.Header{api.HeaderMessageIDs: {string(ids)}}
		}
	}
	if res.Handover {
		q.taken(r, &rep, msgs)
	}
	return rep, nil
}

// messagesJSON renders {"messages":[...]}, data as api.EncodeData
// writes it.
func messagesJSON(msgs []fsm.Message) []byte {
	out := api.Messages{Messages: make([]api.Message, len(msgs))}
	for i, m := range msgs {
		jm := api.Message{ID: strconv.FormatUint(m.ID, 10), Attempts: m.Attempts, LastError: m.LastError}
		jm.Data, jm.Encoding = api.EncodeData(m.Data)
		out.Messages[i] = jm
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(out) // cannot fail: strings and numbers only
	return buf.Bytes()
}

// take hands out up to cmd.Max messages. When nothing is ready it answers
// at once without writing the log, or, with wait > 0, waits for a message,
// still without writing the log: it sleeps on the queue's change
// notification, a timer to the earliest lease expiry or delayed message,
// the end of the wait, or the client going away, then checks again. A get
// that finds nothing (another reader was faster) waits again.
func (q *queueAPI) take(r *request, cmd fsm.Command, wait time.Duration) (fsm.Result, error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	confirmed := false
	for {
		changed := q.o.Queue.Changed(cmd.Queue) // before Pending: no lost wake-up
		ready, next := q.o.Queue.Pending(cmd.Queue, q.o.Now().UnixNano())
		if ready {
			res, err := q.propose(r, cmd)
			if err != nil || len(res.Messages) > 0 {
				return res, err
			}
		} else if !confirmed {
			// An empty answer must not come from state that lags the log:
			// a leader elected a moment ago applies its predecessor's
			// entries only after it wins. A read index (no log write)
			// brings the local state up to date once per request; after
			// that, waiting on Changed only ever sees newer state.
			if err := q.consistentRead(r); err != nil {
				return fsm.Result{}, err
			}
			confirmed = true
			continue
		}
		if deadline == nil {
			return fsm.Result{}, nil
		}
		var due <-chan time.Time
		var dueTimer *time.Timer
		if next > 0 {
			d := max(time.Duration(next-q.o.Now().UnixNano()), time.Millisecond)
			dueTimer = time.NewTimer(d)
			due = dueTimer.C
		}
		select {
		case <-changed:
		case <-due:
		case <-deadline:
			return fsm.Result{}, nil
		case <-r.Context().Done():
			return fsm.Result{}, nil
		}
		if dueTimer != nil {
			dueTimer.Stop()
		}
	}
}

// dump is /dump: every ready message followed by "\n", in queue order,
// without removing anything. Linearizable unless stale=1. Binary safe.
// With limit=, offset=, after= or format= it answers a page instead
// (dumpPage).
func (q *queueAPI) dump(r *request) (reply, error) {
	queue, err := r.p.queue()
	if err != nil {
		return reply{}, err
	}
	if pagedDump(r.p) {
		return q.dumpPage(r, queue)
	}
	if err := q.consistentRead(r); err != nil {
		return reply{}, err
	}
	return reply{stream: func(w io.Writer) error {
		return q.o.Queue.Dump(queue, func(data []byte) error {
			if _, err := w.Write(data); err != nil {
				return err
			}
			_, err := w.Write(newline)
			return err
		})
	}}, nil
}

var newline = []byte{'\n'}

// resetRequested reports /stats?reset=1 (exactly "1"), which is a write.
func resetRequested(p params) bool {
	v, _ := p.get("reset")
	return v == "1"
}

// stats is /stats. reset=1 zeroes puts, gets and depth_high_water and
// answers an empty body. Otherwise the six simplequeue counters, as text
// (exactly six "name:value" lines) or with format=json as one line of
// JSON with the six keys in the reference format; extended=1 adds
// in_flight, deferred, dead, lease, max_attempts, dead_letter, acks,
// nacks, expired and redelivered. Linearizable unless stale=1.
// See the package documentation for how the counters differ from
// simplequeue's.
func (q *queueAPI) stats(r *request) (reply, error) {
	queue, err := r.p.queue()
	if err != nil {
		return reply{}, err
	}
	if resetRequested(r.p) {
		_, err := q.propose(r, fsm.Command{Op: fsm.OpResetStats, Queue: queue})
		return reply{}, err
	}
	if err := q.consistentRead(r); err != nil {
		return reply{}, err
	}
	extended, err := r.p.flag("extended")
	if err != nil {
		return reply{}, err
	}
	st := q.o.Queue.Stats(queue)
	if format, _ := r.p.get("format"); format == "json" {
		return reply{body: statsJSON(st, extended)}, nil
	}
	return reply{body: statsText(st)}, nil
}

func statsText(st fsm.QueueStats) []byte {
	b := make([]byte, 0, 96)
	b = append(b, "puts:"...)
	b = strconv.AppendUint(b, st.Puts, 10)
	b = append(b, "\ngets:"...)
	b = strconv.AppendUint(b, st.Gets, 10)
	b = append(b, "\ndepth:"...)
	b = strconv.AppendInt(b, st.Depth, 10)
	b = append(b, "\ndepth_high_water:"...)
	b = strconv.AppendInt(b, st.DepthHighWater, 10)
	b = append(b, "\nbytes:"...)
	b = strconv.AppendInt(b, st.Bytes, 10)
	b = append(b, "\noverflow:"...)
	b = strconv.AppendUint(b, st.Overflow, 10)
	return append(b, '\n')
}

// statsJSON writes simplequeue's JSON layout: a space after each colon, no
// space after commas, one line ending in "\n"; the six keys, or with
// extended all of them.
func statsJSON(st fsm.QueueStats, extended bool) []byte {
	b := make([]byte, 0, 256)
	b = append(b, `{"puts": `...)
	b = strconv.AppendUint(b, st.Puts, 10)
	b = append(b, `,"gets": `...)
	b = strconv.AppendUint(b, st.Gets, 10)
	b = append(b, `,"depth": `...)
	b = strconv.AppendInt(b, st.Depth, 10)
	b = append(b, `,"depth_high_water": `...)
	b = strconv.AppendInt(b, st.DepthHighWater, 10)
	b = append(b, `,"bytes": `...)
	b = strconv.AppendInt(b, st.Bytes, 10)
	b = append(b, `,"overflow": `...)
	b = strconv.AppendUint(b, st.Overflow, 10)
	if !extended {
		return append(b, "}\n"...)
	}
	b = append(b, `,"in_flight": `...)
	b = strconv.AppendInt(b, st.InFlight, 10)
	b = append(b, `,"deferred": `...)
	b = strconv.AppendInt(b, st.Deferred, 10)
	b = append(b, `,"dead": `...)
	b = strconv.AppendUint(b, st.Dead, 10)
	b = append(b, `,"lease": `...)
	b = strconv.AppendQuote(b, api.FormatDuration(st.Config.DefaultLease))
	b = append(b, `,"max_attempts": `...)
	b = strconv.AppendUint(b, uint64(st.Config.MaxAttempts), 10)
	b = append(b, `,"dead_letter": `...)
	b = strconv.AppendQuote(b, st.Config.DeadLetter) // queue names need no JSON escaping
	b = append(b, `,"acks": `...)
	b = strconv.AppendUint(b, st.Acks, 10)
	b = append(b, `,"nacks": `...)
	b = strconv.AppendUint(b, st.Nacks, 10)
	b = append(b, `,"expired": `...)
	b = strconv.AppendUint(b, st.Expired, 10)
	b = append(b, `,"redelivered": `...)
	b = strconv.AppendUint(b, st.Redelivered, 10)
	return append(b, "}\n"...)
}
