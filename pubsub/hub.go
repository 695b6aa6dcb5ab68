package pubsub

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Defaults.
const (
	// DefaultMaxPendingBytes is the reference's slow-client limit (50 MiB).
	DefaultMaxPendingBytes = 50 << 20
	// DefaultWriteTimeout is libevent 1.4's write timeout: a subscriber
	// whose connection accepts nothing for this long is dropped.
	DefaultWriteTimeout = 50 * time.Second
	// DefaultSendBuffer is the kernel send buffer of a subscriber's
	// connection (32 KiB; Linux doubles it for its bookkeeping): 64 KiB
	// per round trip is 128 MB/s at 0.5 ms, and a first /pub to 2000
	// subscribers that never read fills their buffers in a quarter of
	// the CPU that 128 KiB took (see DESIGN.md).
	DefaultSendBuffer = 32 << 10
	// DefaultMaxBufferedBytes bounds what the node holds for all its
	// subscribers and the fan-out together (256 MiB): with the default
	// body size (5 MiB), dozens of the largest publishes framed in every
	// stream mode.
	DefaultMaxBufferedBytes = 256 << 20
)

// ErrClosed is returned by Subscribe once the hub is closed; on the wire it
// is api.ErrShuttingDown.
var ErrClosed = fmt.Errorf("pubsub: hub is closed: %w", api.ErrShuttingDown)

// Options configures a Hub. Start from DefaultOptions; NewHub only
// validates.
type Options struct {
	// MaxPendingBytes bounds the output queued for one subscriber; a
	// message that would take it past the limit kicks the subscriber
	// (--max-pending-bytes). Default DefaultMaxPendingBytes (50 MiB).
	MaxPendingBytes int64
	// MaxBufferedBytes bounds the output the node holds for all its
	// subscribers together, each publish's frames counted once however
	// many subscribers share them, plus the fan-out's records for other
	// nodes (--max-buffered-bytes). A publish that would take it past the
	// bound first kicks the subscribers furthest behind. Default
	// DefaultMaxBufferedBytes (256 MiB).
	MaxBufferedBytes int64
	// SendBuffer sets the kernel send buffer (SO_SNDBUF) of each /sub
	// connection (--subscriber-send-buffer); 0 leaves it to the kernel's
	// autotuning, which lets each stalled subscriber hold up to
	// net.ipv4.tcp_wmem's maximum (4 MiB by default) of kernel memory: a
	// few thousand of them exhaust the host's TCP memory. A subscriber's
	// throughput is at most about twice SendBuffer (Linux doubles it) per
	// round trip. Not applied
	// to WebSocket subscribers (the library takes the connection over).
	// Default DefaultSendBuffer (32 KiB).
	SendBuffer int
	// WriteTimeout drops a subscriber whose connection accepts no bytes for
	// this long. Default DefaultWriteTimeout (50 s).
	WriteTimeout time.Duration
	// WebSocketOrigins lists the host patterns (path.Match, such as
	// "*.example.com") of the cross-origin pages that may subscribe over
	// WebSocket. Clients that send no Origin header, and pages served from
	// the pubsub host itself, are always accepted. Default: none.
	WebSocketOrigins []string
	// Now is the clock for the Date header and connect times. Default
	// time.Now.
	Now func() time.Time
	// Logger receives connects and disconnects (debug) and kicks
	// (component=pubsub). Default slog.Default().
	Logger *slog.Logger
	// OnChange, when set, is called after a subscriber was added or
	// removed, outside the hub's locks, so that the cluster can gossip the
	// new subscriber set (TopicCounts). It must not block.
	OnChange func()
}

// DefaultOptions returns the options with every default set.
func DefaultOptions() Options {
	return Options{
		MaxPendingBytes:  DefaultMaxPendingBytes,
		MaxBufferedBytes: DefaultMaxBufferedBytes,
		SendBuffer:       DefaultSendBuffer,
		WriteTimeout:     DefaultWriteTimeout,
		Now:              time.Now,
		Logger:           slog.Default(),
	}
}

func (o Options) validate() error {
	var errs []error
	if o.MaxPendingBytes <= 0 {
		errs = append(errs, fmt.Errorf("MaxPendingBytes %d is not positive", o.MaxPendingBytes))
	}
	if o.MaxBufferedBytes <= 0 {
		errs = append(errs, fmt.Errorf("MaxBufferedBytes %d is not positive", o.MaxBufferedBytes))
	}
	if o.SendBuffer < 0 {
		errs = append(errs, fmt.Errorf("SendBuffer %d is negative", o.SendBuffer))
	}
	if o.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("WriteTimeout %s is not positive", o.WriteTimeout))
	}
	if o.Now == nil {
		errs = append(errs, errors.New("Now is required"))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("Logger is required"))
	}
	return errors.Join(errs...)
}

// Hub is this node's subscribers by topic. Its methods are safe for
// concurrent use.
type Hub struct {
	o   Options
	log *slog.Logger

	mu     sync.RWMutex
	topics map[string]*topic
	closed bool
	// subs is every connected subscriber, kicked ones too. Its own lock is
	// taken last, never held while taking another: a publish that must
	// shed subscribers lists them while holding its topic's lock.
	subsMu sync.Mutex
	subs   map[uint64]*subscriber
	// closing is closed by Close: every writer returns.
	closing chan struct{}
	wg      sync.WaitGroup // subscriber goroutines

	total    atomic.Uint64 // subscribes; the last value is the newest id
	current  atomic.Int64
	received atomic.Uint64
	sent     atomic.Uint64
	kicked   atomic.Uint64

	remoteFailures atomic.Uint64
	remoteDropped  atomic.Uint64
	remoteReceived atomic.Uint64
	remoteSent     atomic.Uint64

	budget   budget
	batchSeq atomic.Uint64
	overruns atomic.Uint64
}

// topic is one topic's subscribers in connect order. mu also serializes
// publishes, so every subscriber of a topic sees messages in one order.
type topic struct {
	mu   sync.Mutex
	subs []*subscriber
}

// NewHub returns an empty hub.
func NewHub(opts Options) (*Hub, error) {
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	return &Hub{
		o:       opts,
		log:     opts.Logger.With("component", "pubsub"),
		topics:  make(map[string]*topic),
		subs:    make(map[uint64]*subscriber),
		closing: make(chan struct{}),
		budget:  budget{limit: opts.MaxBufferedBytes},
	}, nil
}

// Publish sends msgs, in order, to every local subscriber of topic, and
// returns how many of them were sent the last message (the reference's
// <C>: kicked subscribers are not counted). It only queues the messages
// and never waits for a subscriber; it does not keep msgs.
//
// messages_received grows by len(msgs); messages_sent by the number of
// (message, subscriber) pairs queued.
func (h *Hub) Publish(topicName string, msgs [][]byte) (delivered int) {
	h.received.Add(uint64(len(msgs)))
	return h.publish(topicName, msgs)
}

// Deliver is Publish for messages published on another node and delivered
// here by the cluster fan-out: they count in RemoteReceived, not in
// MessagesReceived, so that summing messages_received over the nodes
// counts every publish once. messages_sent counts as for Publish.
func (h *Hub) Deliver(topicName string, msgs [][]byte) (delivered int) {
	h.remoteReceived.Add(uint64(len(msgs)))
	return h.publish(topicName, msgs)
}

func (h *Hub) publish(topicName string, msgs [][]byte) (delivered int) {
	if len(msgs) == 0 {
		return 0
	}
	h.mu.RLock()
	t := h.topics[topicName]
	h.mu.RUnlock()
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// Frame the messages once per stream mode in use, into one batch each,
	// within the node's budget (which may kick subscribers to make room),
	// and hand every subscriber a piece: O(subscribers) work under the
	// topic's lock, whatever the number of messages.
	var used [numModes]int
	for _, s := range t.subs {
		used[s.mode]++
	}
	var (
		batches [numModes]*batch
		counts  [numModes]int
		lens    [numModes]int
		bases   [numModes]int64
		total   int64
	)
	for m := range numModes {
		if used[m] > 0 {
			counts[m], lens[m], bases[m] = batchSize(msgs, m, h.o.MaxPendingBytes)
			total += bases[m] + int64(used[m])*pieceCost
		}
	}
	h.reserve(total)
	for m := range numModes {
		if used[m] > 0 {
			batches[m] = h.newBatch(msgs, m, counts[m], lens[m], bases[m])
		}
	}
	var (
		sent   uint64
		pieces [numModes]int64
	)
	dropped := false
	for _, s := range t.subs {
		queued, all := s.enqueue(batches[s.mode])
		sent += uint64(queued)
		if queued > 0 {
			pieces[s.mode]++
		}
		if all {
			delivered++
		} else {
			dropped = true
		}
	}
	h.sent.Add(sent)
	// Wake the writers only now: once awake, each competes with the
	// publisher for the CPU.
	for _, s := range t.subs {
		s.signal()
	}
	// Give back the piece costs reserved for subscribers that took
	// nothing, and the publisher's own references.
	for m, b := range batches {
		if b == nil {
			continue
		}
		h.budget.release(pieceCost * (int64(used[m]) - pieces[m]))
		b.done()
	}
	if dropped {
		// Kicked and finished subscribers get nothing more: stop framing
		// for them. They stay in /clients until their connection closes.
		t.subs = slices.DeleteFunc(t.subs, (*subscriber).ended)
	}
	return delivered
}

// Stats are the hub's counters.
type Stats struct {
	// CurrentConnections is the number of subscribers connected now,
	// kicked ones included until their connection is closed.
	CurrentConnections int64
	// TotalConnections counts subscribes since start.
	TotalConnections uint64
	// MessagesReceived counts messages published (Publish).
	MessagesReceived uint64
	// MessagesSent counts (message, subscriber) pairs queued.
	MessagesSent uint64
	// KickedClients counts subscribers kicked for being too slow.
	KickedClients uint64
	// RemoteFailures counts deliveries to another node that failed (the
	// cluster fan-out reports them with RecordRemoteFailure).
	RemoteFailures uint64
	// RemoteDropped counts the messages those failed deliveries carried:
	// messages that did not reach the subscribers of some node.
	RemoteDropped uint64
	// RemoteReceived counts messages published on other nodes and
	// delivered to this node's subscribers (Deliver).
	RemoteReceived uint64
	// RemoteSent counts the messages of this node's publishes that other
	// nodes answered as delivered (RecordRemoteSent). Summed over the
	// nodes it equals the sum of RemoteReceived, but for the window
	// described in DESIGN.md ("Counters").
	RemoteSent uint64
	// BufferedBytes is what the node holds now for its subscribers and
	// the fan-out, against Options.MaxBufferedBytes.
	BufferedBytes int64
	// BufferOverruns counts publishes that took BufferedBytes past the
	// bound because kicking every subscriber holding anything did not
	// make room (a publish larger than the bound itself).
	BufferOverruns uint64
}

// Stats returns the counters.
func (h *Hub) Stats() Stats {
	return Stats{
		CurrentConnections: h.current.Load(),
		TotalConnections:   h.total.Load(),
		MessagesReceived:   h.received.Load(),
		MessagesSent:       h.sent.Load(),
		KickedClients:      h.kicked.Load(),
		RemoteFailures:     h.remoteFailures.Load(),
		RemoteDropped:      h.remoteDropped.Load(),
		RemoteReceived:     h.remoteReceived.Load(),
		RemoteSent:         h.remoteSent.Load(),
		BufferedBytes:      h.budget.used.Load(),
		BufferOverruns:     h.overruns.Load(),
	}
}

// ResetStats zeroes MessagesReceived and MessagesSent, as /stats?reset
// does, and returns the counters as they were just before: no message is
// lost between reading and zeroing.
func (h *Hub) ResetStats() Stats {
	st := h.Stats()
	st.MessagesReceived = h.received.Swap(0)
	st.MessagesSent = h.sent.Swap(0)
	return st
}

// RecordRemoteFailure counts one failed delivery of messages to another
// node.
func (h *Hub) RecordRemoteFailure(messages int) {
	h.remoteFailures.Add(1)
	h.remoteDropped.Add(uint64(messages))
}

// RecordRemoteSent counts messages another node answered as delivered.
func (h *Hub) RecordRemoteSent(messages int) {
	h.remoteSent.Add(uint64(messages))
}

// Client describes one subscriber, for /clients.
type Client struct {
	ID          uint64    // the total_connections value at its subscribe
	RemoteAddr  string    // ip:port
	ConnectedAt time.Time // Options.Now at subscribe
	// PendingBytes is the output not yet accepted by the kernel.
	PendingBytes int64
	Topic        string
	WebSocket    bool
	Kicked       bool
	// Node is the node the subscriber is connected to. The hub leaves it
	// empty (this node); a cluster-wide listing fills it in.
	Node string
}

// Clients lists the connected subscribers in connect order.
func (h *Hub) Clients() []Client {
	subs := h.snapshot()
	slices.SortFunc(subs, func(a, b *subscriber) int { return cmp.Compare(a.id, b.id) })
	out := make([]Client, len(subs))
	for i, s := range subs {
		pending, kicked := s.state()
		out[i] = Client{
			ID: s.id, RemoteAddr: s.remote, ConnectedAt: s.since,
			PendingBytes: pending, Topic: s.topic,
			WebSocket: s.mode == modeWebSocket, Kicked: kicked,
		}
	}
	return out
}

// TopicCounts returns, for each topic with subscribers, how many are
// connected and not kicked: this node's subscriber set as the cluster
// gossips it.
func (h *Hub) TopicCounts() map[string]int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[string]int, len(h.topics))
	for name, t := range h.topics {
		t.mu.Lock()
		k := 0
		for _, s := range t.subs {
			if !s.ended() {
				k++
			}
		}
		t.mu.Unlock()
		if k > 0 {
			out[name] = k
		}
	}
	return out
}

// snapshot returns every connected subscriber, in no order.
func (h *Hub) snapshot() []*subscriber {
	h.subsMu.Lock()
	defer h.subsMu.Unlock()
	out := make([]*subscriber, 0, len(h.subs))
	for _, s := range h.subs {
		out = append(out, s)
	}
	return out
}

// changed tells Options.OnChange that the subscribers changed.
func (h *Hub) changed() {
	if h.o.OnChange != nil {
		h.o.OnChange()
	}
}

// Close disconnects every subscriber and refuses new ones; it returns once
// their goroutines have finished. Publish still works and reaches nobody.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.wg.Wait()
		return
	}
	h.closed = true
	close(h.closing)
	h.mu.Unlock()
	for _, s := range h.snapshot() {
		s.closeNow()
	}
	h.wg.Wait()
}

func (h *Hub) isClosed() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.closed
}

// add registers s, last in its topic. It returns false once the hub is
// closed.
func (h *Hub) add(s *subscriber) bool {
	if !h.addLocked(s) {
		return false
	}
	h.changed()
	return true
}

func (h *Hub) addLocked(s *subscriber) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	t := h.topics[s.topic]
	if t == nil {
		t = &topic{}
		h.topics[s.topic] = t
	}
	t.mu.Lock()
	t.subs = append(t.subs, s)
	t.mu.Unlock()
	h.subsMu.Lock()
	h.subs[s.id] = s
	h.subsMu.Unlock()
	h.current.Add(1)
	h.wg.Add(1)
	return true
}

// remove unregisters s; its connection is closed.
func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	if t := h.topics[s.topic]; t != nil {
		t.mu.Lock()
		t.subs = slices.DeleteFunc(t.subs, func(x *subscriber) bool { return x == s })
		empty := len(t.subs) == 0
		t.mu.Unlock()
		if empty {
			delete(h.topics, s.topic)
		}
	}
	h.mu.Unlock()
	h.subsMu.Lock()
	delete(h.subs, s.id)
	h.subsMu.Unlock()
	h.current.Add(-1)
	h.changed()
	h.wg.Done()
}
