package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Queue is a client of the queue port (default 8081) of one or more nodes.
// It is safe for concurrent use.
type Queue struct {
	*nodes
}

// NewQueue returns a client for the queue ports at addrs, base URLs such
// as "http://127.0.0.1:8081" ("127.0.0.1:8081" is read as http). Any node
// answers any request; see the package documentation for failover.
func NewQueue(addrs []string, opts *Options) (*Queue, error) {
	n, err := newNodes(addrs, opts)
	if err != nil {
		return nil, err
	}
	return &Queue{n}, nil
}

// Message is one message handed out by Get or MGet.
type Message struct {
	// ID is the message id, for Ack, Nack and Touch ("" from a server
	// without ids).
	ID string
	// Attempts counts deliveries, this one included.
	Attempts int
	// Data is the message body.
	Data []byte
	// LastError is the reason of the last nack, or "lease expired".
	LastError string
}

// PutOptions are the optional parameters of Put.
type PutOptions struct {
	// ID is an idempotency key (id=, 1 to 256 bytes): a put with the same
	// key on the same queue within the server's window (2 minutes) stores
	// nothing new. With an ID, a put whose outcome is unknown is retried
	// by the client itself.
	ID string
	// Delay holds the message back (delay=).
	Delay time.Duration
}

// Put stores one message on queue ("" is the queue default) and returns
// its id (the original id for a duplicate ID; "" from a server without
// ids). The data is sent as the POST body, so it may hold any byte. An
// empty message is refused (the server would store nothing).
func (q *Queue) Put(ctx context.Context, queue string, data []byte, opts PutOptions) (string, error) {
	if len(data) == 0 {
		return "", fmt.Errorf("%w: empty message", api.ErrBadRequest)
	}
	v := queueValues(queue)
	setPut(v, opts.ID, opts.Delay)
	res, err := q.do(ctx, request{method: http.MethodPost, path: "/put", query: v, body: data, idempotent: opts.ID != ""})
	if err != nil {
		return "", err
	}
	return res.header.Get(api.HeaderMessageID), nil
}

// MPutOptions are the optional parameters of MPut.
type MPutOptions struct {
	// ID is an idempotency key for the whole batch (see PutOptions.ID).
	ID string
	// Delay holds the messages back.
	Delay time.Duration
	// Separator joins the messages in the body. "" picks one: a newline
	// unless a message contains one, else a byte string that no message
	// contains. An explicit separator found in a message is refused with
	// api.ErrBadRequest.
	Separator string
}

// MPut stores msgs on queue, in order, with one /mput request. Empty
// messages are refused (the server skips empty records). A batch larger
// than the node's --max-body-size (5 MiB by default) fails with
// api.ErrTooLarge; split it.
func (q *Queue) MPut(ctx context.Context, queue string, msgs [][]byte, opts MPutOptions) error {
	if len(msgs) == 0 {
		return nil
	}
	for i, m := range msgs {
		if len(m) == 0 {
			return fmt.Errorf("%w: message %d is empty", api.ErrBadRequest, i)
		}
	}
	sep := opts.Separator
	switch {
	case sep == "":
		sep = pickSeparator(msgs)
	case strings.IndexByte(sep, 0) >= 0:
		return fmt.Errorf("%w: the separator must not contain a NUL byte", api.ErrBadRequest)
	default:
		for i, m := range msgs {
			if bytes.Contains(m, []byte(sep)) {
				return fmt.Errorf("%w: message %d contains the separator %q", api.ErrBadRequest, i, sep)
			}
		}
	}
	v := queueValues(queue)
	setPut(v, opts.ID, opts.Delay)
	if sep != "\n" {
		v.Set("separator", sep)
	}
	body := bytes.Join(msgs, []byte(sep))
	_, err := q.do(ctx, request{method: http.MethodPost, path: "/mput", query: v, body: body, idempotent: opts.ID != ""})
	return err
}

// pickSeparator returns "\n" unless a message contains it, else the first
// of a few control bytes no message contains, else a longer string. Query
// values end at NUL, so a separator never holds one.
func pickSeparator(msgs [][]byte) string {
	free := func(sep string) bool {
		for _, m := range msgs {
			if bytes.Contains(m, []byte(sep)) {
				return false
			}
		}
		return true
	}
	for _, sep := range []string{"\n", "\x1e", "\x1f", "\x1d", "\x1c"} {
		if free(sep) {
			return sep
		}
	}
	for i := 0; ; i++ {
		if sep := fmt.Sprintf("\x1e%d\x1f", i); free(sep) {
			return sep
		}
	}
}

func setPut(v url.Values, id string, delay time.Duration) {
	if id != "" {
		v.Set("id", id)
	}
	if delay > 0 {
		v.Set("delay", api.FormatDuration(delay))
	}
}

func queueValues(queue string) url.Values {
	v := url.Values{}
	if queue != "" {
		v.Set("queue", queue)
	}
	return v
}

// GetOptions are the optional parameters of Get and MGet.
type GetOptions struct {
	// Lease takes the message on lease instead of popping it: it comes
	// back unless acked before the lease ends. 0: the queue's default
	// lease (pop when it has none); api.NoLease: pop.
	Lease time.Duration
	// Wait long-polls up to Wait for a message when the queue is empty
	// (the server caps it at 5 minutes).
	Wait time.Duration
}

func (o GetOptions) values(queue string) url.Values {
	v := queueValues(queue)
	if lease, ok := api.LeaseParam(o.Lease); ok {
		v.Set("lease", lease)
	}
	if o.Wait > 0 {
		v.Set("wait", api.FormatDuration(o.Wait))
	}
	return v
}

// Get hands out the oldest ready message of queue, or nil when there is
// none (after Wait, if given). A get pops or leases through the log, so a
// failure after the request was sent is api.ErrOutcomeUnknown and is not
// retried: a leased message comes back when its lease ends, a popped one
// may be lost.
func (q *Queue) Get(ctx context.Context, queue string, opts GetOptions) (*Message, error) {
	res, err := q.do(ctx, request{method: http.MethodPost, path: "/get", query: opts.values(queue), extra: max(opts.Wait, 0)})
	if err != nil || len(res.body) == 0 {
		return nil, err
	}
	m := &Message{
		ID:        res.header.Get(api.HeaderMessageID),
		Data:      res.body,
		LastError: res.header.Get(api.HeaderLastError),
	}
	if a := res.header.Get(api.HeaderAttempts); a != "" {
		if m.Attempts, err = strconv.Atoi(a); err != nil {
			return nil, fmt.Errorf("quorumq: /get: bad X-Attempts %q", a)
		}
	}
	return m, nil
}

// MGet hands out up to n messages of queue (format=json), oldest first;
// none is an empty slice. Retries as Get.
func (q *Queue) MGet(ctx context.Context, queue string, n int, opts GetOptions) ([]Message, error) {
	if n <= 0 {
		return nil, fmt.Errorf("%w: number of items must be > 0", api.ErrBadRequest)
	}
	v := opts.values(queue)
	v.Set("items", strconv.Itoa(n))
	v.Set("format", "json")
	res, err := q.do(ctx, request{method: http.MethodPost, path: "/mget", query: v, extra: max(opts.Wait, 0)})
	if err != nil {
		return nil, err
	}
	return decodeMessages(res.body)
}

// decodeMessages reads {"messages":[...]}: data is the body as a JSON
// string, or base64 when "encoding" is "base64".
func decodeMessages(body []byte) ([]Message, error) {
	var out api.Messages
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("quorumq: /mget: decoding the answer: %v", err)
	}
	msgs := make([]Message, len(out.Messages))
	for i, jm := range out.Messages {
		m := Message{ID: jm.ID, Attempts: int(jm.Attempts), LastError: jm.LastError}
		var err error
		if m.Data, err = decodeData("/mget", jm.ID, jm.Data, jm.Encoding); err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// decodeData reads a message body of a JSON answer of path.
func decodeData(path, id, data, encoding string) ([]byte, error) {
	b, err := api.DecodeData(data, encoding)
	if err != nil {
		return nil, fmt.Errorf("quorumq: %s: message %s: %v", path, id, err)
	}
	return b, nil
}

// Ack finishes leased messages: all ids apply or none does (api.ErrNotInFlight
// names the first id that is not leased). Not retried after an unknown
// outcome: a second ack of an applied one answers api.ErrNotInFlight.
func (q *Queue) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	v := url.Values{"id": {strings.Join(ids, ",")}}
	_, err := q.do(ctx, request{method: http.MethodPost, path: "/ack", query: v})
	return err
}

// NackOptions are the optional parameters of Nack.
type NackOptions struct {
	// Delay makes the message ready again after Delay (default at once).
	Delay time.Duration
	// Reason is recorded as the message's last error.
	Reason string
	// NewData, when not empty, replaces the message's data, atomically
	// with the nack.
	NewData []byte
}

// Nack gives a leased message back. Not retried after an unknown outcome.
func (q *Queue) Nack(ctx context.Context, id string, opts NackOptions) error {
	v := url.Values{"id": {id}}
	if opts.Delay > 0 {
		v.Set("delay", api.FormatDuration(opts.Delay))
	}
	if opts.Reason != "" {
		v.Set("reason", opts.Reason)
	}
	var body []byte
	if len(opts.NewData) > 0 {
		body = opts.NewData
	}
	_, err := q.do(ctx, request{method: http.MethodPost, path: "/nack", query: v, body: body})
	return err
}

// Touch extends the lease of a message to now+lease (0: the queue's
// default lease). Setting a lease twice is harmless, so it is retried.
func (q *Queue) Touch(ctx context.Context, id string, lease time.Duration) error {
	v := url.Values{"id": {id}}
	if lease > 0 {
		v.Set("lease", api.FormatDuration(lease))
	}
	_, err := q.do(ctx, request{method: http.MethodPost, path: "/touch", query: v, idempotent: true})
	return err
}

// Stats are a queue's counters and settings (/stats?format=json&extended=1).
type Stats struct {
	// simplequeue's six counters (see the README for how they count).
	Puts           uint64 `json:"puts"`
	Gets           uint64 `json:"gets"`
	Depth          int64  `json:"depth"`
	DepthHighWater int64  `json:"depth_high_water"`
	Bytes          int64  `json:"bytes"`
	Overflow       uint64 `json:"overflow"`
	// InFlight counts leased messages, Deferred delayed ones, Dead the
	// messages that used up max_attempts.
	InFlight int64  `json:"in_flight"`
	Deferred int64  `json:"deferred"`
	Dead     uint64 `json:"dead"`
	// Settings.
	Lease       time.Duration `json:"-"`
	MaxAttempts uint32        `json:"max_attempts"`
	DeadLetter  string        `json:"dead_letter"`
}

// Stats reads queue's counters. The read is linearizable (it goes through
// the leader).
func (q *Queue) Stats(ctx context.Context, queue string) (*Stats, error) {
	v := queueValues(queue)
	v.Set("format", "json")
	v.Set("extended", "1")
	res, err := q.do(ctx, request{method: http.MethodGet, path: "/stats", query: v, idempotent: true})
	if err != nil {
		return nil, err
	}
	var st struct {
		Stats
		Lease string `json:"lease"`
	}
	if err := json.Unmarshal(res.body, &st); err != nil {
		return nil, fmt.Errorf("quorumq: /stats: decoding the answer: %v", err)
	}
	if st.Lease != "" {
		if st.Stats.Lease, err = api.ParseDuration(st.Lease); err != nil {
			return nil, fmt.Errorf("quorumq: /stats: bad lease %q", st.Lease)
		}
	}
	return &st.Stats, nil
}

// QueueConfig is a queue's replicated settings (/config).
type QueueConfig struct {
	Queue       string
	Lease       time.Duration // default lease (0: gets pop)
	MaxAttempts uint32        // 0: unlimited
	DeadLetter  string        // "": dead messages are dropped
	MaxDepth    int64         // 0: the node's --max-depth
	MaxBytes    int64         // 0: the node's --max-bytes
	Overflow    string        // reject or evict-oldest
}

// ConfigChange lists the settings to change; nil fields stay as they are.
// The zero value changes nothing (Config then only reads).
type ConfigChange struct {
	Lease       *time.Duration
	MaxAttempts *uint32
	DeadLetter  *string
	MaxDepth    *int64
	MaxBytes    *int64
	Overflow    *string
}

// Ptr returns a pointer to v, for ConfigChange fields.
func Ptr[T any](v T) *T { return &v }

// Config changes queue's settings (only the fields set in changes,
// atomically) and returns the resulting settings; with no change it reads
// them. A change sets values, so it is retried like a read.
func (q *Queue) Config(ctx context.Context, queue string, changes ConfigChange) (*QueueConfig, error) {
	v := queueValues(queue)
	if changes.Lease != nil {
		v.Set("lease", api.FormatDuration(*changes.Lease))
	}
	if changes.MaxAttempts != nil {
		v.Set("max_attempts", strconv.FormatUint(uint64(*changes.MaxAttempts), 10))
	}
	if changes.DeadLetter != nil {
		v.Set("dead_letter", *changes.DeadLetter)
	}
	if changes.MaxDepth != nil {
		v.Set("max_depth", strconv.FormatInt(*changes.MaxDepth, 10))
	}
	if changes.MaxBytes != nil {
		v.Set("max_bytes", strconv.FormatInt(*changes.MaxBytes, 10))
	}
	if changes.Overflow != nil {
		v.Set("overflow", *changes.Overflow)
	}
	method := http.MethodGet
	if len(v) > len(queueValues(queue)) {
		method = http.MethodPost
	}
	res, err := q.do(ctx, request{method: method, path: "/config", query: v, idempotent: true})
	if err != nil {
		return nil, err
	}
	var c api.QueueConfig
	if err := json.Unmarshal(res.body, &c); err != nil {
		return nil, fmt.Errorf("quorumq: /config: decoding the answer: %v", err)
	}
	return queueConfig("/config", c)
}

// queueConfig reads the settings of a /config or /queues answer of path.
func queueConfig(path string, c api.QueueConfig) (*QueueConfig, error) {
	out := &QueueConfig{Queue: c.Queue, MaxAttempts: c.MaxAttempts, DeadLetter: c.DeadLetter, MaxDepth: c.MaxDepth, MaxBytes: c.MaxBytes, Overflow: c.Overflow}
	if c.Lease != "" {
		var err error
		if out.Lease, err = api.ParseDuration(c.Lease); err != nil {
			return nil, fmt.Errorf("quorumq: %s: bad lease %q", path, c.Lease)
		}
	}
	return out, nil
}

// Status reads /cluster/status from the preferred node (the next one if it
// cannot be reached).
func (q *Queue) Status(ctx context.Context) (*api.Status, error) {
	res, err := q.do(ctx, request{method: http.MethodGet, path: "/cluster/status", idempotent: true})
	if err != nil {
		return nil, err
	}
	var st api.Status
	if err := json.Unmarshal(res.body, &st); err != nil {
		return nil, fmt.Errorf("quorumq: /cluster/status: decoding the answer: %v", err)
	}
	return &st, nil
}
