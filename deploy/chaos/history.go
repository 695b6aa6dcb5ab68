package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

// Outcome is what a client knows about one request.
type Outcome string

const (
	// OK: the node answered 2xx; a write was committed and applied.
	OK Outcome = "ok"
	// Fail: the request certainly applied nothing: the connection could
	// not be made, or 503 NO_LEADER, NOT_LEADER, SHUTTING_DOWN or
	// UNAVAILABLE (the server's word that nothing was applied), or a
	// 4xx/507 refusal.
	Fail Outcome = "fail"
	// Unknown: the request may or may not have been applied: 503
	// OUTCOME_UNKNOWN, or the exchange failed after it was sent (timeout,
	// reset, the node was killed or paused).
	Unknown Outcome = "unknown"
)

// classify maps a client error to an outcome and a short code for the
// report (the X-Error-Code token, or the kind of transport failure).
func classify(err error) (Outcome, string) {
	if err == nil {
		return OK, ""
	}
	var he *client.HTTPError
	code := ""
	if errors.As(err, &he) {
		code = he.Code
		if code == "" {
			code = http3(he.Status)
		}
	}
	switch {
	case errors.Is(err, api.ErrOutcomeUnknown):
		if code == "" {
			code = transportCode(err)
		}
		return Unknown, code
	case errors.Is(err, api.ErrUnavailable):
		if code == "" {
			code = transportCode(err)
		}
		return Fail, code
	case he != nil:
		return Fail, code
	}
	// Anything else (a malformed answer): the request reached the node.
	return Unknown, "OTHER"
}

func http3(status int) string {
	b := []byte("HTTP000")
	b[4], b[5], b[6] = byte('0'+status/100%10), byte('0'+status/10%10), byte('0'+status%10)
	return string(b)
}

func transportCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT"
	case errors.Is(err, context.Canceled):
		return "CANCELED"
	}
	return "TRANSPORT"
}

// PutAttempt is one /put request of a producer.
type PutAttempt struct {
	Node    string        `json:"node"`
	Start   time.Duration `json:"start_ns"`
	End     time.Duration `json:"end_ns"`
	Outcome Outcome       `json:"outcome"`
	Code    string        `json:"code,omitempty"`
	MsgID   string        `json:"msg_id,omitempty"`
	// ServedBy is X-Served-By: the node that executed the request.
	ServedBy string `json:"served_by,omitempty"`
}

// PutRecord is one message a producer tried to store, with every attempt.
// Body and idempotency key are both Key.
type PutRecord struct {
	Key   string        `json:"key"`
	Queue string        `json:"queue"`
	Delay time.Duration `json:"delay_ns,omitempty"`
	// Attempts in order; the first one's Start is when the key was first
	// sent.
	Attempts []PutAttempt `json:"attempts"`
	// Final: OK if an attempt was acknowledged, Fail if every attempt
	// certainly applied nothing, else Unknown.
	Final Outcome `json:"final"`
	// MsgID is the X-Message-Id of the acknowledged attempt.
	MsgID string `json:"msg_id,omitempty"`
}

func (p *PutRecord) finish() {
	p.Final = Fail
	for _, a := range p.Attempts {
		switch a.Outcome {
		case OK:
			p.Final, p.MsgID = OK, a.MsgID
			return
		case Unknown:
			p.Final = Unknown
		}
	}
}

// Delivery is one message handed out to a consumer (or the final drain).
type Delivery struct {
	MsgID    string        `json:"msg_id"`
	Attempts int           `json:"attempts"`
	Body     string        `json:"body"`
	Queue    string        `json:"queue"`
	Start    time.Duration `json:"start_ns"` // the mget request was sent
	End      time.Duration `json:"end_ns"`   // its answer was read
	Consumer string        `json:"consumer"`
	Node     string        `json:"node"`
	ServedBy string        `json:"served_by,omitempty"`
	// Action is what the consumer did next: ack, nack, skip.
	Action string `json:"action"`
}

// Settle is an /ack or /nack of leased messages.
type Settle struct {
	Op      string        `json:"op"` // ack or nack
	MsgIDs  []string      `json:"msg_ids"`
	Delay   time.Duration `json:"delay_ns,omitempty"`
	Start   time.Duration `json:"start_ns"`
	End     time.Duration `json:"end_ns"`
	Outcome Outcome       `json:"outcome"`
	Code    string        `json:"code,omitempty"`
}

// LinOp is one operation on a linearizability queue: a /put of a unique
// value, a plain (destructive) /get, or a destructive /mget of many.
type LinOp struct {
	Client int    `json:"client"`
	Queue  string `json:"queue"`
	Op     string `json:"op"`    // put, get or mget
	Value  string `json:"value"` // put: the value; get: what came back ("" empty)
	// Items is the items= of an mget, Values what it returned, oldest
	// first.
	Items  int      `json:"items,omitempty"`
	Values []string `json:"values,omitempty"`
	// Redelivered are values a get or mget handed out again (X-Attempts
	// above 1): popped before, their answer's confirmation was lost, and
	// the node gave them back when their handover lease ended (README,
	// "Bounded, lossless pops"). They are not in Value or Values.
	Redelivered []string      `json:"redelivered,omitempty"`
	Start       time.Duration `json:"start_ns"`
	End         time.Duration `json:"end_ns"`
	Outcome     Outcome       `json:"outcome"`
	Code        string        `json:"code,omitempty"`
	Node        string        `json:"node"`
	// ServedBy is X-Served-By: the node that executed the request.
	ServedBy string `json:"served_by,omitempty"`
}

// MGetRecord is one large /mget (WorkloadConfig.BigMGetClients): on
// WorkQueue with a lease (its messages are also Deliveries), on a lin
// queue destructive (also a LinOp).
type MGetRecord struct {
	Client   int           `json:"client"`
	Queue    string        `json:"queue"`
	Items    int           `json:"items"` // items= asked for
	Returned int           `json:"returned"`
	Bytes    int           `json:"bytes"` // of the returned bodies
	Start    time.Duration `json:"start_ns"`
	End      time.Duration `json:"end_ns"`
	Outcome  Outcome       `json:"outcome"`
	Code     string        `json:"code,omitempty"`
	Node     string        `json:"node"`
}

// PubRecord is one /pub of a publisher to the stalled subscribers'
// topic.
type PubRecord struct {
	Client  int           `json:"client"`
	Node    string        `json:"node"`
	Start   time.Duration `json:"start_ns"`
	End     time.Duration `json:"end_ns"`
	Outcome Outcome       `json:"outcome"`
	Code    string        `json:"code,omitempty"`
	// Subscribers is the <C> of the answer: subscribers cluster-wide
	// that were sent the message.
	Subscribers int `json:"subscribers"`
	// Probe: one of the /pubs to every member after the final heal.
	Probe bool `json:"probe,omitempty"`
}

// Latency is how long the request took.
func (p PubRecord) Latency() time.Duration { return p.End - p.Start }

// HostileConn is one connection of a hostile client: a stalled
// subscriber, a slow-body sender or an idle connection.
type HostileConn struct {
	Kind HostileKind `json:"kind"`
	Node string      `json:"node"`
	Port string      `json:"port"` // queue or pubsub
	// Start is when it was connected (and, for a stalled subscriber, the
	// subscription answered 200); End when it was seen closed, or the
	// end of the run.
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	Ended ConnEnd       `json:"ended"`
	// EndSeenLate: a stalled subscriber found closed only when it was
	// read at the end of the run; the node closed it earlier, when is
	// not known (End is the end of the run).
	EndSeenLate bool `json:"end_seen_late,omitempty"`
	// BodyBytes is what a slow-body client sent of its body.
	BodyBytes int `json:"body_bytes,omitempty"`
	// Answer is the first line the node sent (a slow or idle client's,
	// read once it was closed; a stalled subscriber's status line).
	Answer string `json:"answer,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Lasted is how long the connection stayed open.
func (c HostileConn) Lasted() time.Duration { return c.End - c.Start }

// History is everything the workload saw. Safe for concurrent use while
// it is recorded; the checker reads it once recording is over.
type History struct {
	start time.Time

	mu         sync.Mutex
	Puts       []*PutRecord
	Deliveries []Delivery
	Settles    []Settle
	Lin        []LinOp
	// Mgets counts consumer mget requests by outcome.
	Mgets map[Outcome]int
	// BigMGets are the large mgets, Pubs the publishes to the stalled
	// subscribers, Hostile the hostile clients' connections.
	BigMGets []MGetRecord
	Pubs     []PubRecord
	Hostile  []HostileConn
}

// NewHistory starts the clock of a history.
func NewHistory() *History {
	return &History{start: time.Now(), Mgets: map[Outcome]int{}}
}

// Now is the time since the history started (monotonic).
func (h *History) Now() time.Duration { return time.Since(h.start) }

// Started returns the wall-clock start of the history.
func (h *History) Started() time.Time { return h.start }

func (h *History) addPut(p *PutRecord) {
	h.mu.Lock()
	h.Puts = append(h.Puts, p)
	h.mu.Unlock()
}

func (h *History) addDeliveries(ds []Delivery) {
	h.mu.Lock()
	h.Deliveries = append(h.Deliveries, ds...)
	h.mu.Unlock()
}

func (h *History) addSettle(s Settle) {
	h.mu.Lock()
	h.Settles = append(h.Settles, s)
	h.mu.Unlock()
}

func (h *History) addLin(op LinOp) {
	h.mu.Lock()
	h.Lin = append(h.Lin, op)
	h.mu.Unlock()
}

func (h *History) addBigMGet(m MGetRecord) {
	h.mu.Lock()
	h.BigMGets = append(h.BigMGets, m)
	h.mu.Unlock()
}

func (h *History) addPub(p PubRecord) {
	h.mu.Lock()
	h.Pubs = append(h.Pubs, p)
	h.mu.Unlock()
}

func (h *History) addHostile(c HostileConn) {
	h.mu.Lock()
	h.Hostile = append(h.Hostile, c)
	h.mu.Unlock()
}

func (h *History) countMget(o Outcome) {
	h.mu.Lock()
	h.Mgets[o]++
	h.mu.Unlock()
}

// WriteJSONL writes the history as JSON lines, one record per line with a
// "type" field, for inspection after a run.
func (h *History) WriteJSONL(enc *json.Encoder) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.Puts {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			*PutRecord
		}{"put", p}); err != nil {
			return err
		}
	}
	for _, d := range h.Deliveries {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			Delivery
		}{"delivery", d}); err != nil {
			return err
		}
	}
	for _, s := range h.Settles {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			Settle
		}{"settle", s}); err != nil {
			return err
		}
	}
	for _, l := range h.Lin {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			LinOp
		}{"lin", l}); err != nil {
			return err
		}
	}
	for _, m := range h.BigMGets {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			MGetRecord
		}{"big-mget", m}); err != nil {
			return err
		}
	}
	for _, p := range h.Pubs {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			PubRecord
		}{"pub", p}); err != nil {
			return err
		}
	}
	for _, c := range h.Hostile {
		if err := enc.Encode(struct {
			Type string `json:"type"`
			HostileConn
		}{"hostile", c}); err != nil {
			return err
		}
	}
	return nil
}

// ReadHistory reads a history written by WriteJSONL (history.jsonl of a
// run), to check it again.
func ReadHistory(r io.Reader) (*History, error) {
	h := &History{Mgets: map[Outcome]int{}}
	dec := json.NewDecoder(r)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return h, nil
		} else if err != nil {
			return nil, err
		}
		var t struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, err
		}
		var err error
		switch t.Type {
		case "put":
			var p PutRecord
			err = json.Unmarshal(raw, &p)
			h.Puts = append(h.Puts, &p)
		case "delivery":
			var d Delivery
			err = json.Unmarshal(raw, &d)
			h.Deliveries = append(h.Deliveries, d)
		case "settle":
			var s Settle
			err = json.Unmarshal(raw, &s)
			h.Settles = append(h.Settles, s)
		case "lin":
			var l LinOp
			err = json.Unmarshal(raw, &l)
			h.Lin = append(h.Lin, l)
		case "big-mget":
			var m MGetRecord
			err = json.Unmarshal(raw, &m)
			h.BigMGets = append(h.BigMGets, m)
		case "pub":
			var p PubRecord
			err = json.Unmarshal(raw, &p)
			h.Pubs = append(h.Pubs, p)
		case "hostile":
			var c HostileConn
			err = json.Unmarshal(raw, &c)
			h.Hostile = append(h.Hostile, c)
		default:
			err = fmt.Errorf("unknown record type %q", t.Type)
		}
		if err != nil {
			return nil, err
		}
	}
}
