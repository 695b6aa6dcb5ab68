package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/internal/peer"
)

// Peer is another node's pubsub port.
type Peer struct {
	ID   string // node id
	Addr string // host:port of its pubsub port
}

// Directory tells the fan-out which nodes there are and where the
// subscribers are. In production it is the cluster node's gossiped
// subscriber sets.
type Directory interface {
	// SubscriberPeers returns the other alive nodes whose gossiped set
	// has at least one subscriber of topic.
	SubscriberPeers(topic string) []Peer
	// Peers returns every other alive node.
	Peers() []Peer
}

// Fan-out defaults.
const (
	// DefaultDeliverTimeout bounds how long a publish waits for the other
	// nodes, and how long a delivery may take or wait in its peer's queue
	// before it counts as failed.
	DefaultDeliverTimeout = time.Second
	// DefaultPeerQueue bounds the publishes waiting to be sent to one
	// peer; more count as failed (overflow).
	DefaultPeerQueue = 1024
	// DefaultPeerQueueBytes bounds the encoded messages waiting for one
	// peer (a publish larger than that still goes to an empty queue).
	DefaultPeerQueueBytes = 64 << 20
)

const (
	// maxBatchBytes and maxBatchRecords bound one /internal/deliver
	// request that carries several queued publishes of one topic. A
	// single larger publish travels alone.
	maxBatchBytes   = 1 << 20
	maxBatchRecords = 256
	// peerIdle: a peer's sender goroutine exits after this long without
	// work.
	peerIdle = time.Minute
	// learnedTTL is how long the topics a peer's /internal/clients answer
	// listed still route publishes to it, besides its gossiped set: far
	// longer than the gossip takes to catch up.
	learnedTTL = 30 * time.Second
	// maxAnswerMargin bounds the time kept, of a delivery's deadline, for
	// the receiver's answer to travel back (see answerMargin).
	maxAnswerMargin = 250 * time.Millisecond
)

// ErrFanoutClosed is the error of deliveries still queued when the fan-out
// is closed.
var ErrFanoutClosed = errors.New("pubsub: fan-out closed")

// errExpired: a delivery waited in its peer's queue past its deadline.
var errExpired = errors.New("not sent within the delivery timeout")

// FanoutOptions configures a Fanout. Start from DefaultFanoutOptions and
// set Hub, Directory, Peer and what else differs; NewFanout only validates.
type FanoutOptions struct {
	// Self is this node's id, sent to peers in api.HeaderFrom and set as
	// Client.Node on local subscribers by Clients.
	Self string
	// Hub is this node's hub: failed deliveries are counted there
	// (RecordRemoteFailure) and Clients lists its subscribers. Required.
	Hub *Hub
	// Directory finds the peers. Required.
	Directory Directory
	// Timeout bounds a publish's wait for the other nodes, each delivery
	// (queueing included), and each peer's answer to /clients
	// (--fanout-timeout). Positive.
	Timeout time.Duration
	// QueueLen bounds the publishes waiting for one peer (--fanout-queue).
	// Positive.
	QueueLen int
	// QueueBytes bounds their encoded size (--fanout-queue-bytes); a
	// publish larger than that still goes to an empty queue. Positive.
	QueueBytes int
	// Peer carries the requests to the other nodes. Required.
	Peer *peer.Client
	// Registerer receives the fan-out's metrics. nil: not registered.
	Registerer prometheus.Registerer
	// Logger (component=pubsub). Required.
	Logger *slog.Logger
}

// DefaultFanoutOptions returns the defaults: Timeout DefaultDeliverTimeout
// (1 s), QueueLen DefaultPeerQueue (1024), QueueBytes
// DefaultPeerQueueBytes (64 MiB), Logger slog.Default(), no metrics.
func DefaultFanoutOptions() FanoutOptions {
	return FanoutOptions{
		Timeout:    DefaultDeliverTimeout,
		QueueLen:   DefaultPeerQueue,
		QueueBytes: DefaultPeerQueueBytes,
		Logger:     slog.Default(),
	}
}

// Fanout is the cluster half of a publish: it sends the messages published
// on this node, once, to every other node whose gossiped subscriber set has
// subscribers of the topic, over plain HTTP between pubsub ports (POST
// /internal/deliver, one hop: receivers never forward).
//
// Each peer has one queue (bounded by QueueLen and QueueBytes) and one
// sender goroutine, so the publishes of this node reach a peer in the
// order they were made; publishes of one topic waiting together go in one
// request. A publish waits for the
// peers' answers at most Timeout; a delivery that fails, is refused, is
// not answered in time, waits in its queue past its deadline or finds the
// queue full is counted (Hub.RecordRemoteFailure, metrics) and never
// retried: pubsub is at most once.
type Fanout struct {
	o   FanoutOptions
	log *slog.Logger
	m   *fanoutMetrics

	ctx    context.Context // cancelled by Close: aborts requests in flight
	cancel context.CancelFunc

	mu     sync.Mutex
	peers  map[string]*peerQueue
	closed bool
	done   chan struct{}
	wg     sync.WaitGroup

	// learned is, per peer id, what its last /internal/clients answer
	// listed: a publish also goes to a peer listed with subscribers of
	// its topic, so that what Clients lists is reached before the gossip
	// tells (listed means reached).
	learnMu sync.Mutex
	learned map[string]learnedTopics
}

// learnedTopics are the topics of a peer's subscribers, as listed at at.
type learnedTopics struct {
	at     time.Time
	topics map[string]struct{}
}

// delivery is one publish on its way to one peer.
type delivery struct {
	topic    string
	record   []byte // AppendDeliveryRecord of the messages, shared by all peers
	msgs     int
	deadline time.Time
	result   chan deliveryResult // capacity 1
	// res holds the record's bytes in the hub's budget, shared by the
	// deliveries of one publish; nil in tests that build deliveries.
	res *reservation
}

// finish answers d and gives back its share of the budget.
func (d *delivery) finish(r deliveryResult) {
	if d.res != nil {
		d.res.release()
	}
	d.result <- r
}

type deliveryResult struct {
	delivered int
	err       error
}

// peerQueue is one peer's queue. Its fields are guarded by mu; the queue
// itself is found and retired under Fanout.mu.
type peerQueue struct {
	id   string
	wake chan struct{} // capacity 1

	mu    sync.Mutex
	addr  string // latest address a publish found for the peer
	items []*delivery
	bytes int // encoded size of items
}

// NewFanout returns a fan-out; Close stops it.
func NewFanout(opts FanoutOptions) (*Fanout, error) {
	o := opts
	var errs []error
	if o.Hub == nil {
		errs = append(errs, errors.New("FanoutOptions.Hub is required"))
	}
	if o.Directory == nil {
		errs = append(errs, errors.New("FanoutOptions.Directory is required"))
	}
	if o.Peer == nil {
		errs = append(errs, errors.New("FanoutOptions.Peer is required"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("Timeout %s is not positive", o.Timeout))
	}
	if o.QueueLen <= 0 {
		errs = append(errs, fmt.Errorf("QueueLen %d is not positive", o.QueueLen))
	}
	if o.QueueBytes <= 0 {
		errs = append(errs, fmt.Errorf("QueueBytes %d is not positive", o.QueueBytes))
	}
	if o.Logger == nil {
		errs = append(errs, errors.New("FanoutOptions.Logger is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("pubsub: %w", err)
	}
	f := &Fanout{
		o:       o,
		log:     o.Logger.With("component", "pubsub"),
		m:       newFanoutMetrics(),
		peers:   map[string]*peerQueue{},
		done:    make(chan struct{}),
		learned: map[string]learnedTopics{},
	}
	if o.Registerer != nil {
		if err := f.m.register(o.Registerer); err != nil {
			return nil, fmt.Errorf("pubsub: fan-out metrics: %w", err)
		}
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f, nil
}

// Publish sends msgs, in order, to topic's subscribers on the other nodes,
// and returns how many remote subscribers were sent the last message. It
// waits for the peers' answers until Timeout or ctx ends, whichever comes
// first; err names the peers that did not confirm (their deliveries are
// counted as failed by the peer's sender, or here on overflow). It does
// not keep msgs.
func (f *Fanout) Publish(ctx context.Context, topic string, msgs [][]byte) (int, error) {
	peers := f.withLearned(topic, f.o.Directory.SubscriberPeers(topic))
	if len(peers) == 0 {
		return 0, nil
	}
	deadline := time.Now().Add(f.o.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	record := AppendDeliveryRecord(nil, msgs)
	// The record counts in the node's budget until the last peer is done
	// with it; this publish holds it while it enqueues.
	res := f.o.Hub.hold(int64(len(record)))
	defer res.release()
	type pending struct {
		peer string
		d    *delivery
	}
	waiting := make([]pending, 0, len(peers))
	var errs []error
	for _, p := range peers {
		if p.ID == f.o.Self || p.Addr == "" {
			continue
		}
		res.retain()
		d := &delivery{topic: topic, record: record, msgs: len(msgs), deadline: deadline, result: make(chan deliveryResult, 1), res: res}
		if err := f.enqueue(p, d); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", p.ID, err))
			continue
		}
		waiting = append(waiting, pending{p.ID, d})
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	total := 0
	for i, w := range waiting {
		select {
		case r := <-w.d.result:
			if r.err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", w.peer, r.err))
			} else {
				total += r.delivered
			}
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		// Out of time: the senders still finish these deliveries (and
		// count those that fail), but this reply cannot count them.
		for _, late := range waiting[i:] {
			select {
			case r := <-late.d.result:
				if r.err == nil {
					total += r.delivered
					continue
				}
				errs = append(errs, fmt.Errorf("node %s: %w", late.peer, r.err))
			default:
				errs = append(errs, fmt.Errorf("node %s: no answer within %s", late.peer, f.o.Timeout))
			}
		}
		break
	}
	return total, errors.Join(errs...)
}

// enqueue queues d for p, starting p's sender if needed. A full queue
// counts the delivery as failed.
func (f *Fanout) enqueue(p Peer, d *delivery) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrFanoutClosed
	}
	q := f.peers[p.ID]
	if q == nil {
		q = &peerQueue{id: p.ID, wake: make(chan struct{}, 1)}
		f.peers[p.ID] = q
		f.wg.Add(1)
		go f.runPeer(q)
	}
	q.mu.Lock()
	q.addr = p.Addr
	if len(q.items) >= f.o.QueueLen || (q.bytes > 0 && q.bytes+len(d.record) > f.o.QueueBytes) {
		q.mu.Unlock()
		err := fmt.Errorf("queue full (%d publishes, %d bytes)", len(q.items), q.bytes)
		f.failed(p.ID, d, "overflow", err)
		return err
	}
	q.items = append(q.items, d)
	q.bytes += len(d.record)
	f.m.queued.WithLabelValues(p.ID).Set(float64(len(q.items)))
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// take removes the next batch from q: the first delivery and those right
// behind it with the same topic, within maxBatchRecords and maxBatchBytes.
func (f *Fanout) take(q *peerQueue) (batch []*delivery, addr string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, ""
	}
	size := 0
	n := 0
	for n < len(q.items) && n < maxBatchRecords {
		d := q.items[n]
		if n > 0 && (d.topic != q.items[0].topic || size+len(d.record) > maxBatchBytes) {
			break
		}
		size += len(d.record)
		n++
	}
	batch = append([]*delivery(nil), q.items[:n]...)
	q.bytes -= size
	clear(q.items[:n])
	q.items = q.items[n:]
	if len(q.items) == 0 {
		q.items = nil // let the backing array go
	}
	f.m.queued.WithLabelValues(q.id).Set(float64(len(q.items)))
	return batch, q.addr
}

// runPeer is q's sender: one request at a time, in queue order.
func (f *Fanout) runPeer(q *peerQueue) {
	defer f.wg.Done()
	idle := time.NewTimer(peerIdle)
	defer idle.Stop()
	for {
		if batch, addr := f.take(q); len(batch) > 0 {
			f.send(q.id, addr, batch)
			continue
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(peerIdle)
		select {
		case <-q.wake:
		case <-idle.C:
			if f.retire(q) {
				return
			}
		case <-f.done:
			f.drain(q)
			return
		}
	}
}

// retire forgets an idle peer; false if work arrived meanwhile.
func (f *Fanout) retire(q *peerQueue) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 || f.closed {
		return false
	}
	delete(f.peers, q.id)
	f.m.queued.DeleteLabelValues(q.id)
	return true
}

// drain fails what is left in q once the fan-out is closed.
func (f *Fanout) drain(q *peerQueue) {
	q.mu.Lock()
	items := q.items
	q.items, q.bytes = nil, 0
	q.mu.Unlock()
	for _, d := range items {
		f.failed(q.id, d, "closed", ErrFanoutClosed)
	}
}

// answerMargin is the part of a delivery's time kept for the receiver's
// answer to come back: the receiver is told to deliver only within the
// rest (api.HeaderDeliverWithin), so that what it delivers is answered
// before the sender stops waiting, and both count the same.
func (f *Fanout) answerMargin() time.Duration {
	return min(f.o.Timeout/4, maxAnswerMargin)
}

// send delivers batch (one topic) to the peer at addr and answers each
// delivery. Deliveries too close to their deadline for an answer to come
// back in time are not sent. The receiver may deliver until the earliest
// deadline less the margin; the request is given until the latest.
func (f *Fanout) send(peer, addr string, batch []*delivery) {
	now := time.Now()
	margin := f.answerMargin()
	live := batch[:0]
	var earliest, latest time.Time
	for _, d := range batch {
		if !now.Add(margin).Before(d.deadline) {
			f.failed(peer, d, "expired", errExpired)
			continue
		}
		live = append(live, d)
		if d.deadline.After(latest) {
			latest = d.deadline
		}
		if earliest.IsZero() || d.deadline.Before(earliest) {
			earliest = d.deadline
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(f.ctx, latest)
	counts, err := f.post(ctx, addr, live, earliest.Sub(now)-margin)
	cancel()
	if err != nil {
		if f.ctx.Err() == nil {
			f.log.Debug("delivery to node failed", "peer", peer, "addr", addr, "publishes", len(live), "err", err)
		}
		for _, d := range live {
			f.failed(peer, d, "error", err)
		}
		return
	}
	for i, d := range live {
		f.o.Hub.RecordRemoteSent(d.msgs)
		f.m.deliveries.WithLabelValues(peer, "ok").Inc()
		f.m.messages.WithLabelValues(peer, "ok").Add(float64(d.msgs))
		d.finish(deliveryResult{delivered: counts[i]})
	}
}

// post is one POST /internal/deliver; it returns the receiver's count for
// each delivery.
func (f *Fanout) post(ctx context.Context, addr string, live []*delivery, within time.Duration) ([]int, error) {
	body := live[0].record
	if len(live) > 1 {
		size := 0
		for _, d := range live {
			size += len(d.record)
		}
		body = make([]byte, 0, size)
		for _, d := range live {
			body = append(body, d.record...)
		}
	}
	start := time.Now()
	counts, err := f.o.Peer.Deliver(ctx, addr, peer.Delivery{
		Topic: live[0].topic, From: f.o.Self, ContentType: DeliverContentType, Body: body, Records: len(live), Within: within,
	})
	f.m.requestSeconds.Observe(time.Since(start).Seconds())
	return counts, err
}

// failed counts a delivery that did not reach peer and answers it.
func (f *Fanout) failed(peer string, d *delivery, result string, err error) {
	f.o.Hub.RecordRemoteFailure(d.msgs)
	f.m.deliveries.WithLabelValues(peer, result).Inc()
	f.m.messages.WithLabelValues(peer, result).Add(float64(d.msgs))
	d.finish(deliveryResult{err: err})
}

// Clients lists every subscriber of the cluster: this node's first, in
// connect order, then each other alive node's (GET /internal/clients,
// asked in parallel, each within Timeout), by node id. Client.Node is set
// on every entry. A node that does not answer in time is left out and
// logged; the listing is never refused for it.
func (f *Fanout) Clients(ctx context.Context) ([]Client, error) {
	out := f.o.Hub.Clients()
	for i := range out {
		out[i].Node = f.o.Self
	}
	peers := f.o.Directory.Peers()
	if len(peers) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	lists := make([][]Client, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		if p.ID == f.o.Self || p.Addr == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := f.fetchClients(ctx, p.Addr)
			if err != nil {
				f.m.clientFetches.WithLabelValues(p.ID, "error").Inc()
				f.log.Warn("/clients: node left out of the listing", "peer", p.ID, "addr", p.Addr, "err", err)
				return
			}
			f.m.clientFetches.WithLabelValues(p.ID, "ok").Inc()
			for j := range cs {
				cs[j].Node = p.ID
			}
			f.learn(p.ID, cs)
			lists[i] = cs
		}()
	}
	wg.Wait()
	for _, cs := range lists {
		out = append(out, cs...)
	}
	return out, nil
}

// learn records the topics of a peer's listed subscribers (kicked ones
// take no more messages), replacing what its previous answer listed.
func (f *Fanout) learn(peer string, cs []Client) {
	topics := map[string]struct{}{}
	for _, c := range cs {
		if !c.Kicked {
			topics[c.Topic] = struct{}{}
		}
	}
	f.learnMu.Lock()
	defer f.learnMu.Unlock()
	if len(topics) == 0 {
		delete(f.learned, peer)
		return
	}
	f.learned[peer] = learnedTopics{at: time.Now(), topics: topics}
}

// withLearned adds to peers (the gossiped answer for topic) the alive
// peers that a recent /internal/clients answer listed with subscribers of
// topic. Sending to a peer that has none by now is harmless: it delivers
// to nobody.
func (f *Fanout) withLearned(topic string, peers []Peer) []Peer {
	var extra []string
	f.learnMu.Lock()
	for id, l := range f.learned {
		if time.Since(l.at) > learnedTTL {
			delete(f.learned, id)
			continue
		}
		if _, ok := l.topics[topic]; ok && !slices.ContainsFunc(peers, func(p Peer) bool { return p.ID == id }) {
			extra = append(extra, id)
		}
	}
	f.learnMu.Unlock()
	if len(extra) == 0 {
		return peers
	}
	for _, p := range f.o.Directory.Peers() {
		if slices.Contains(extra, p.ID) {
			peers = append(peers, p)
		}
	}
	return peers
}

func (f *Fanout) fetchClients(ctx context.Context, addr string) ([]Client, error) {
	b, err := f.o.Peer.Clients(ctx, addr)
	if err != nil {
		return nil, err
	}
	return DecodeClients(b)
}

// Close stops the senders: deliveries still queued fail with
// ErrFanoutClosed and requests in flight are aborted. Publish then
// reaches no peer.
func (f *Fanout) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return
	}
	f.closed = true
	close(f.done)
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// fanoutMetrics are the fan-out's instruments.
type fanoutMetrics struct {
	deliveries     *prometheus.CounterVec
	messages       *prometheus.CounterVec
	requestSeconds prometheus.Histogram
	queued         *prometheus.GaugeVec
	clientFetches  *prometheus.CounterVec
}

func newFanoutMetrics() *fanoutMetrics {
	results := "ok, error (request failed, refused or not answered in time), expired (waited in the peer's queue past the timeout), overflow (peer's queue full), closed (node shutting down)"
	return &fanoutMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_pubsub_fanout_deliveries_total",
			Help: "Publishes of this node sent to another node, by peer and result: " + results + ".",
		}, []string{"peer", "result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_pubsub_fanout_messages_total",
			Help: "Messages in those publishes, by peer and result.",
		}, []string{"peer", "result"}),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quorumq_pubsub_fanout_request_seconds",
			Help:    "Duration of POST /internal/deliver requests (each carries one or more publishes), answered or not.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 15), // 0.1 ms .. ~1.6 s
		}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quorumq_pubsub_fanout_queued",
			Help: "Publishes waiting to be sent to another node, by peer.",
		}, []string{"peer"}),
		clientFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_pubsub_clients_fetches_total",
			Help: "GET /internal/clients requests made for a cluster-wide /clients, by peer and result (ok, error).",
		}, []string{"peer", "result"}),
	}
}

func (m *fanoutMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.deliveries, m.messages, m.requestSeconds, m.queued, m.clientFetches} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// firstLine is the start of a peer's error answer, for a log line.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b[:min(len(b), 200)]), "\n")
	return strings.TrimSpace(s)
}
