package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/quorumq/quorumq/api"
)

// QueueInfo is one queue as GET /queues lists it.
type QueueInfo struct {
	Name string
	// Depth counts ready messages, InFlight leased ones, Deferred delayed
	// ones; Dead the messages that used up max_attempts; Bytes the bodies
	// of every message the queue holds.
	Depth, InFlight, Deferred int64
	Dead                      uint64
	Bytes                     int64
	// Puts, Gets and DepthHighWater are reset by /stats?reset=1; Acks,
	// Nacks, Expired (leases that ran out), Redelivered (deliveries of a
	// message delivered before) and Overflow never are.
	Puts, Gets, Acks, Nacks, Expired, Redelivered, Overflow uint64
	DepthHighWater                                          int64
	// Oldest is when the next ready message was put (in the leader's
	// clock, to a second; zero when nothing is ready), OldestAge how long
	// ago that was on the answering node's clock.
	Oldest    time.Time
	OldestAge time.Duration
	Config    QueueConfig
}

// Queues lists every queue with its counters and settings, sorted by
// name. The read is linearizable (it goes through the leader).
func (q *Queue) Queues(ctx context.Context) ([]QueueInfo, error) {
	res, err := q.do(ctx, request{method: http.MethodGet, path: "/queues", idempotent: true})
	if err != nil {
		return nil, err
	}
	var out api.QueueList
	if err := json.Unmarshal(res.body, &out); err != nil {
		return nil, fmt.Errorf("quorumq: /queues: decoding the answer: %v", err)
	}
	infos := make([]QueueInfo, len(out.Queues))
	for i, w := range out.Queues {
		cfg, err := queueConfig("/queues", w.Config)
		if err != nil {
			return nil, err
		}
		infos[i] = QueueInfo{
			Name: w.Name, Depth: w.Depth, InFlight: w.InFlight, Deferred: w.Deferred, Dead: w.Dead, Bytes: w.Bytes,
			Puts: w.Puts, Gets: w.Gets, Acks: w.Acks, Nacks: w.Nacks, Expired: w.Expired, Redelivered: w.Redelivered,
			Overflow: w.Overflow, DepthHighWater: w.DepthHighWater,
			OldestAge: time.Duration(w.OldestAgeMS) * time.Millisecond, Config: *cfg,
		}
		if w.OldestMS > 0 {
			infos[i].Oldest = time.UnixMilli(w.OldestMS)
		}
	}
	return infos, nil
}

// DumpOptions choose a page of DumpPage.
type DumpOptions struct {
	// Limit caps the messages (0: the server's default, 100; it lowers
	// more than 1000 to 1000).
	Limit int
	// Offset skips that many ready messages from the head (of those After
	// keeps).
	Offset int
	// After, when set, keeps only messages put after the one with this id
	// (ids grow in put order): pass the last id of a page to follow a
	// queue.
	After string
}

// DumpPage is a page of a queue's ready messages.
type DumpPage struct {
	Queue string
	// Total is the queue's depth.
	Total    int64
	Offset   int
	Messages []DumpMessage
}

// DumpMessage is one message of a DumpPage.
type DumpMessage struct {
	ID string
	// Attempts counts its deliveries so far.
	Attempts int
	Data     []byte
	// DeadFrom is the queue it was dead-lettered from; Error the reason
	// of its last nack, or "lease expired".
	DeadFrom, Error string
}

// DumpPage reads a page of queue's ready messages ("" is the queue
// default) without removing any. The read is linearizable.
func (q *Queue) DumpPage(ctx context.Context, queue string, o DumpOptions) (*DumpPage, error) {
	v := queueValues(queue)
	v.Set("format", "json")
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		v.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.After != "" {
		v.Set("after", o.After)
	}
	res, err := q.do(ctx, request{method: http.MethodGet, path: "/dump", query: v, idempotent: true})
	if err != nil {
		return nil, err
	}
	var w api.DumpPage
	if err := json.Unmarshal(res.body, &w); err != nil {
		return nil, fmt.Errorf("quorumq: /dump: decoding the answer: %v", err)
	}
	page := &DumpPage{Queue: w.Queue, Total: w.Total, Offset: w.Offset, Messages: make([]DumpMessage, len(w.Messages))}
	for i, m := range w.Messages {
		data, err := decodeData("/dump", m.ID, m.Data, m.Encoding)
		if err != nil {
			return nil, err
		}
		page.Messages[i] = DumpMessage{ID: m.ID, Attempts: int(m.Attempts), Data: data, DeadFrom: m.DeadFrom, Error: m.Error}
	}
	return page, nil
}

// adminQueueValues names the queue of Purge and Redrive, which the server
// wants spelled out: "" is sent as the queue default.
func adminQueueValues(queue string) url.Values {
	if queue == "" {
		queue = api.DefaultQueue
	}
	return url.Values{"queue": {queue}}
}

// Purge removes queue's ready and deferred messages for good (leased ones
// stay and may come back) and returns how many went. It needs the admin
// role. Not retried after an unknown outcome: a second purge would take
// messages put meanwhile.
func (q *Queue) Purge(ctx context.Context, queue string) (int, error) {
	res, err := q.do(ctx, request{method: http.MethodPost, path: "/purge", query: adminQueueValues(queue)})
	if err != nil {
		return 0, err
	}
	var out api.Purged
	if err := json.Unmarshal(res.body, &out); err != nil {
		return 0, fmt.Errorf("quorumq: /purge: decoding the answer: %v", err)
	}
	return out.Purged, nil
}

// RedriveOptions are the optional parameters of Redrive.
type RedriveOptions struct {
	// To sends every message to this queue instead of the one it was
	// dead-lettered from (then messages without an origin move too).
	To string
	// Max moves at most this many messages (0: all).
	Max int
}

// Redrive moves the ready messages of queue (a dead-letter queue), in
// order, back to the queue each was dead-lettered from, or to o.To, with
// their attempts reset; messages without an origin stay unless o.To is
// set. It returns how many moved and how many ready messages are left in
// queue. It needs the admin role. Not retried after an unknown outcome.
func (q *Queue) Redrive(ctx context.Context, queue string, o RedriveOptions) (moved, left int, err error) {
	v := adminQueueValues(queue)
	if o.To != "" {
		v.Set("to", o.To)
	}
	if o.Max > 0 {
		v.Set("max", strconv.Itoa(o.Max))
	}
	res, err := q.do(ctx, request{method: http.MethodPost, path: "/redrive", query: v})
	if err != nil {
		return 0, 0, err
	}
	var out api.Redriven
	if err := json.Unmarshal(res.body, &out); err != nil {
		return 0, 0, fmt.Errorf("quorumq: /redrive: decoding the answer: %v", err)
	}
	return out.Moved, out.Left, nil
}
