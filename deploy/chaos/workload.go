package chaos

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/wait"
)

// Queue names of the workload.
const (
	// WorkQueue carries the producers' idempotent puts, consumed with
	// leases and acks.
	WorkQueue = "work"
	// linQueuePrefix starts the queues of the linearizability workload:
	// one per window, lin-000, lin-001, ...
	linQueuePrefix = "lin-"
)

// WorkloadConfig sizes the workload. Start from DefaultWorkloadConfig.
type WorkloadConfig struct {
	// TLS and Token, on a secured cluster, are the clients' CA and token.
	TLS   *tls.Config
	Token string

	Producers  int     // goroutines putting unique keys with id=KEY
	Consumers  int     // goroutines leasing, then acking, nacking or skipping
	LinClients int     // goroutines doing put/pop on the lin queues
	PutRate    float64 // puts per second, all producers together
	// DelayedFraction of the puts carry delay=, one of Delays.
	DelayedFraction float64
	Delays          []time.Duration
	// GiveUp: a producer stops retrying a key this long after its first
	// attempt. Keep it well inside the server's dedup window (2 min), or
	// a late retry could legitimately be stored twice.
	GiveUp time.Duration
	// Lease of the consumers' mgets.
	Lease time.Duration
	// SkipFraction of the consumers' batches are neither acked nor
	// nacked (the lease runs out); NackFraction are nacked, half of
	// them with NackDelay.
	SkipFraction, NackFraction float64
	NackDelay                  time.Duration
	// LinWindow: the lin clients move to a fresh queue every LinWindow,
	// which keeps each history porcupine checks small.
	LinWindow time.Duration
	// LinPause is the mean pause between two ops of a lin client.
	LinPause time.Duration
	// AttemptTimeout bounds one request.
	AttemptTimeout time.Duration

	// BigMGetClients goroutines send large /mgets, items= one of
	// BigMGetItems (far more than a queue holds), BigMGetPause apart
	// (mean), alternately on WorkQueue (leased, then acked) and on the
	// current lin queue (destructive, checked by porcupine).
	BigMGetClients int
	BigMGetItems   []int
	BigMGetPause   time.Duration
	// MGetCap is the most messages one /mget answer may hold, the cap
	// the nodes apply to items=; 0: none expected. The lin model lowers
	// an mget's items= to it.
	MGetCap int

	// StalledSubs /sub connections per node (on StallTopic) never read
	// and have a receive buffer of StalledRcvBuf bytes, while Publishers
	// publish PubRate messages of PubSize bytes a second (all together)
	// on StallTopic, each /pub to a random member.
	StalledSubs   int
	StalledRcvBuf int
	Publishers    int
	PubRate       float64
	PubSize       int
	// SlowClients connections per node send a request head, then its
	// body one byte every SlowByteEvery; IdleClients per node connect and
	// send nothing. Both are split between the queue and the pubsub port
	// and reconnected when closed.
	SlowClients, IdleClients int
	SlowByteEvery            time.Duration
	// LatencyBound: no /pub, put or lin request may take longer than this
	// while no fault is in effect (checks pub-latency-bounded and
	// clients-served).
	LatencyBound time.Duration
}

// DefaultWorkloadConfig returns the workload of a chaos run.
func DefaultWorkloadConfig() WorkloadConfig {
	return WorkloadConfig{
		Producers:       4,
		Consumers:       3,
		LinClients:      3,
		PutRate:         80,
		DelayedFraction: 0.1,
		Delays:          []time.Duration{500 * time.Millisecond, 2 * time.Second, 5 * time.Second},
		GiveUp:          45 * time.Second,
		Lease:           3 * time.Second,
		SkipFraction:    0.08,
		NackFraction:    0.08,
		NackDelay:       time.Second,
		LinWindow:       10 * time.Second,
		LinPause:        60 * time.Millisecond,
		AttemptTimeout:  6 * time.Second,
		BigMGetClients:  1,
		BigMGetItems:    []int{99999999, 5000},
		BigMGetPause:    time.Second,
		MGetCap:         1000,
		StalledSubs:     3,
		StalledRcvBuf:   4096,
		Publishers:      2,
		PubRate:         20,
		PubSize:         4096,
		SlowClients:     12,
		IdleClients:     12,
		SlowByteEvery:   time.Second,
		LatencyBound:    5 * time.Second,
	}
}

// maxPubSize bounds PubSize (the nodes' default largest body is larger).
const maxPubSize = 1 << 20

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c WorkloadConfig) Validate() error {
	frac := func(x float64) bool { return x >= 0 && x <= 1 }
	var err error
	switch {
	case c.Producers < 1 || c.Consumers < 1 || c.LinClients < 1:
		err = fmt.Errorf("%d producers, %d consumers, %d lin clients: want at least 1 of each", c.Producers, c.Consumers, c.LinClients)
	case !(c.PutRate > 0):
		err = fmt.Errorf("put rate %v must be positive", c.PutRate)
	case !frac(c.DelayedFraction) || !frac(c.SkipFraction) || !frac(c.NackFraction):
		err = errors.New("the fractions must be between 0 and 1")
	case c.DelayedFraction > 0 && len(c.Delays) == 0:
		err = errors.New("delayed puts need Delays")
	case c.GiveUp <= 0 || c.Lease <= 0 || c.NackDelay <= 0 || c.LinWindow <= 0 || c.LinPause <= 0 || c.AttemptTimeout <= 0:
		err = errors.New("give-up, lease, nack delay, lin window, lin pause and attempt timeout must be positive")
	case c.BigMGetClients < 0 || c.StalledSubs < 0 || c.Publishers < 0 || c.SlowClients < 0 || c.IdleClients < 0 || c.MGetCap < 0:
		err = fmt.Errorf("big mget clients %d, stalled subscribers %d, publishers %d, slow clients %d, idle clients %d and mget cap %d must not be negative",
			c.BigMGetClients, c.StalledSubs, c.Publishers, c.SlowClients, c.IdleClients, c.MGetCap)
	case c.BigMGetClients > 0 && (len(c.BigMGetItems) == 0 || slices.Min(c.BigMGetItems) <= 0 || c.BigMGetPause <= 0):
		err = fmt.Errorf("big mgets need items= values above 0 (have %v) and a positive pause", c.BigMGetItems)
	case c.Publishers > 0 && (!(c.PubRate > 0) || c.PubSize < 1 || c.PubSize > maxPubSize):
		err = fmt.Errorf("publishers need a positive rate (have %v) and a message size in [1, %d] (have %d)", c.PubRate, maxPubSize, c.PubSize)
	case c.StalledSubs > 0 && c.StalledRcvBuf < 1:
		err = fmt.Errorf("stalled receive buffer %d must be positive", c.StalledRcvBuf)
	case c.SlowClients > 0 && c.SlowByteEvery <= 0:
		err = fmt.Errorf("slow byte interval %v must be positive", c.SlowByteEvery)
	case c.LatencyBound <= 0:
		err = fmt.Errorf("latency bound %v must be positive", c.LatencyBound)
	default:
		return nil
	}
	return fmt.Errorf("%w: workload: %v", ErrInvalid, err)
}

// Workload drives producers, consumers and lin clients against a cluster,
// spreading requests over all its members (followers forward), and
// records everything in a History. Each request goes to one node only
// (client MaxAttempts 1): the workload does its own retries, so that every
// attempt and its outcome is recorded.
type Workload struct {
	cfg  WorkloadConfig
	seed uint64
	h    *History
	c    *testkit.Cluster

	clientsMu sync.Mutex
	clients   map[string]*client.Queue
	pubsubs   map[string]*client.Pubsub

	stopProducing, stopConsuming, stopLin, stopPub atomic.Bool
	hard                                           context.Context // aborts everything
	prod, cons, lin, pub                           sync.WaitGroup
	pubPad                                         string // the filler of a published message
}

// NewWorkload prepares a workload; Start runs it.
func NewWorkload(cfg WorkloadConfig, seed uint64, c *testkit.Cluster, h *History) *Workload {
	return &Workload{cfg: cfg, seed: seed, c: c, h: h, clients: map[string]*client.Queue{}, pubsubs: map[string]*client.Pubsub{},
		pubPad: strings.Repeat("x", cfg.PubSize)}
}

// Start launches every goroutine; ctx aborts them all (in-flight requests
// then end with an unknown outcome).
func (w *Workload) Start(ctx context.Context) {
	w.hard = ctx
	for i := range w.cfg.Producers {
		w.prod.Add(1)
		go w.producer(i)
	}
	for i := range w.cfg.Consumers {
		w.cons.Add(1)
		go w.consumer(i)
	}
	for i := range w.cfg.LinClients {
		w.lin.Add(1)
		go w.linClient(i)
	}
	for i := range w.cfg.BigMGetClients {
		w.lin.Add(1)
		go w.bigMGetClient(i)
	}
	for i := range w.cfg.Publishers {
		w.pub.Add(1)
		go w.publisher(i)
	}
}

// StopProducers stops new keys and waits until every key in progress is
// acknowledged or given up.
func (w *Workload) StopProducers() { w.stopProducing.Store(true); w.prod.Wait() }

// StopConsumers stops the consumers and waits for them.
func (w *Workload) StopConsumers() { w.stopConsuming.Store(true); w.cons.Wait() }

// StopLin stops the lin clients and the big mget clients and waits for
// them.
func (w *Workload) StopLin() { w.stopLin.Store(true); w.lin.Wait() }

// StopPublishers stops the publishers and waits for them.
func (w *Workload) StopPublishers() { w.stopPub.Store(true); w.pub.Wait() }

// rng returns the random source of goroutine kind/i, derived from the seed.
func (w *Workload) rng(kind, i int) *rand.Rand {
	return rand.New(rand.NewPCG(w.seed, uint64(kind)<<32|uint64(i)))
}

// pick returns a member node at random (running or not: a request to a
// killed node fails to connect, as it would for a real client).
func (w *Workload) pick(r *rand.Rand) (*testkit.Node, *client.Queue) {
	ms := w.c.Members()
	nd := ms[r.IntN(len(ms))]
	return nd, w.clientFor(nd)
}

func (w *Workload) clientFor(nd *testkit.Node) *client.Queue {
	w.clientsMu.Lock()
	defer w.clientsMu.Unlock()
	if q, ok := w.clients[nd.ID]; ok {
		return q
	}
	q, err := client.NewQueue([]string{nd.QueueURL}, w.clientOptions())
	if err != nil {
		panic(err) // a URL we built
	}
	w.clients[nd.ID] = q
	return q
}

func (w *Workload) pubsubFor(nd *testkit.Node) *client.Pubsub {
	w.clientsMu.Lock()
	defer w.clientsMu.Unlock()
	if p, ok := w.pubsubs[nd.ID]; ok {
		return p
	}
	p, err := client.NewPubsub([]string{nd.PubsubURL}, w.clientOptions())
	if err != nil {
		panic(err) // a URL we built
	}
	w.pubsubs[nd.ID] = p
	return p
}

func (w *Workload) sleep(d time.Duration) bool { return wait.Sleep(w.hard, d) == nil }

// jitter returns a duration uniformly in [d/2, 3d/2).
func jitter(r *rand.Rand, d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + time.Duration(r.Int64N(int64(d)))
}

// producer puts keys p<i>-<seq> (body = key, id=key) on WorkQueue, each
// retried with the same key after any failure until acknowledged or
// GiveUp after its first attempt.
func (w *Workload) producer(i int) {
	defer w.prod.Done()
	r := w.rng(1, i)
	pace := time.Duration(float64(w.cfg.Producers) / w.cfg.PutRate * float64(time.Second))
	for seq := 0; !w.stopProducing.Load() && w.hard.Err() == nil; seq++ {
		rec := &PutRecord{Key: fmt.Sprintf("p%d-%06d", i, seq), Queue: WorkQueue}
		if r.Float64() < w.cfg.DelayedFraction {
			rec.Delay = w.cfg.Delays[r.IntN(len(w.cfg.Delays))]
		}
		w.putUntilAcked(r, rec)
		w.h.addPut(rec)
		if !w.sleep(jitter(r, pace)) {
			return
		}
	}
}

func (w *Workload) putUntilAcked(r *rand.Rand, rec *PutRecord) {
	var first time.Duration
	for attempt := 0; ; attempt++ {
		nd, q := w.pick(r)
		ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
		var info client.CallInfo
		ctx = client.WithCallInfo(ctx, &info)
		start := w.h.Now()
		if attempt == 0 {
			first = start
		}
		id, err := q.Put(ctx, WorkQueue, []byte(rec.Key), client.PutOptions{ID: rec.Key, Delay: rec.Delay})
		end := w.h.Now()
		cancel()
		out, code := classify(err)
		rec.Attempts = append(rec.Attempts, PutAttempt{Node: nd.ID, Start: start, End: end, Outcome: out, Code: code, MsgID: id, ServedBy: info.ServedBy})
		if out == OK || refusal(code) {
			break
		}
		if end-first > w.cfg.GiveUp || w.hard.Err() != nil {
			break
		}
		if !w.sleep(jitter(r, min(50*time.Millisecond<<min(attempt, 5), time.Second))) {
			break
		}
	}
	rec.finish()
}

// refusal reports whether an error code says retrying is pointless (the
// request was refused as such: 4xx, 507).
func refusal(code string) bool {
	switch code {
	case "BAD_REQUEST", "INVALID_QUEUE_NAME", "TOO_LARGE", "QUEUE_FULL", "TOO_MANY_QUEUES", "HTTP400", "HTTP413", "HTTP507":
		return true
	}
	return false
}

// consumer leases up to 5 messages at a time from WorkQueue, "processes"
// them briefly, then acks them all, nacks each (at once or after
// NackDelay) or skips them so that their lease runs out.
func (w *Workload) consumer(i int) {
	defer w.cons.Done()
	r := w.rng(2, i)
	name := fmt.Sprintf("c%d", i)
	for !w.stopConsuming.Load() && w.hard.Err() == nil {
		nd, q := w.pick(r)
		wait := time.Second
		ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout+wait)
		var info client.CallInfo
		ctx = client.WithCallInfo(ctx, &info)
		start := w.h.Now()
		msgs, err := q.MGet(ctx, WorkQueue, 1+r.IntN(5), client.GetOptions{Lease: w.cfg.Lease, Wait: wait})
		end := w.h.Now()
		cancel()
		out, _ := classify(err)
		w.h.countMget(out)
		if err != nil {
			w.sleep(jitter(r, 100*time.Millisecond))
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		action := "ack"
		switch x := r.Float64(); {
		case x < w.cfg.SkipFraction:
			action = "skip"
		case x < w.cfg.SkipFraction+w.cfg.NackFraction:
			action = "nack"
		}
		ds := make([]Delivery, len(msgs))
		ids := make([]string, len(msgs))
		for k, m := range msgs {
			ds[k] = Delivery{MsgID: m.ID, Attempts: m.Attempts, Body: string(m.Data), Queue: WorkQueue,
				Start: start, End: end, Consumer: name, Node: nd.ID, ServedBy: info.ServedBy, Action: action}
			ids[k] = m.ID
		}
		w.h.addDeliveries(ds)
		if !w.sleep(time.Duration(r.IntN(30)) * time.Millisecond) { // processing
			return
		}
		switch action {
		case "ack":
			w.settle(r, "ack", ids, 0)
		case "nack":
			for _, id := range ids {
				var d time.Duration
				if r.IntN(2) == 0 {
					d = w.cfg.NackDelay
				}
				w.settle(r, "nack", []string{id}, d)
			}
		}
	}
}

// settle sends one ack (of all ids) or nack and records it.
func (w *Workload) settle(r *rand.Rand, op string, ids []string, delay time.Duration) Settle {
	_, q := w.pick(r)
	ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
	defer cancel()
	s := Settle{Op: op, MsgIDs: ids, Delay: delay, Start: w.h.Now()}
	var err error
	if op == "ack" {
		err = q.Ack(ctx, ids...)
	} else {
		err = q.Nack(ctx, ids[0], client.NackOptions{Delay: delay, Reason: "chaos"})
	}
	s.End = w.h.Now()
	s.Outcome, s.Code = classify(err)
	w.h.addSettle(s)
	return s
}

// LinQueue returns the lin queue of window k.
func LinQueue(k int) string { return fmt.Sprintf("%s%03d", linQueuePrefix, k) }

// linClient puts unique values (plain /put, no id) and pops (plain /get)
// on the current window's lin queue. After an operation with an unknown
// outcome it sits the rest of the window out: each client then leaves at
// most one never-ending operation per window, which keeps porcupine's
// search small.
func (w *Workload) linClient(i int) {
	defer w.lin.Done()
	r := w.rng(3, i)
	blocked := -1 // window in which this client had an unknown outcome
	for n := 0; !w.stopLin.Load() && w.hard.Err() == nil; n++ {
		k := int(w.h.Now() / w.cfg.LinWindow)
		if k == blocked {
			w.sleep(min(time.Duration(k+1)*w.cfg.LinWindow-w.h.Now(), 200*time.Millisecond))
			continue
		}
		op := w.linOp(r, i, LinQueue(k), n)
		if op.Outcome == Unknown {
			blocked = k
		}
		w.sleep(jitter(r, w.cfg.LinPause))
	}
}

// bigMGetClient sends large mgets: items= far larger than a queue holds,
// alternately on WorkQueue (leased, then all acked: its deliveries are
// checked with the consumers') and on the current lin queue
// (destructive: porcupine checks that it took every message, in order).
// Like a lin client it sits a window out after an unknown outcome there.
func (w *Workload) bigMGetClient(i int) {
	defer w.lin.Done()
	r := w.rng(6, i)
	id := w.cfg.LinClients + 1 + i // after the lin clients and the drain
	blocked := -1
	for n := 0; !w.stopLin.Load() && w.hard.Err() == nil; n++ {
		items := w.cfg.BigMGetItems[r.IntN(len(w.cfg.BigMGetItems))]
		if k := int(w.h.Now() / w.cfg.LinWindow); n%2 == 1 && k != blocked {
			if w.bigMGetLin(r, id, LinQueue(k), items) == Unknown {
				blocked = k
			}
		} else {
			w.bigMGetWork(r, i, id, items)
		}
		w.sleep(jitter(r, w.cfg.BigMGetPause))
	}
}

// bigMGetWork leases up to items messages of WorkQueue and acks them all.
func (w *Workload) bigMGetWork(r *rand.Rand, i, id, items int) {
	nd, q := w.pick(r)
	ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
	var info client.CallInfo
	ctx = client.WithCallInfo(ctx, &info)
	rec := MGetRecord{Client: id, Queue: WorkQueue, Items: items, Node: nd.ID, Start: w.h.Now()}
	msgs, err := q.MGet(ctx, WorkQueue, items, client.GetOptions{Lease: w.cfg.Lease})
	rec.End = w.h.Now()
	cancel()
	rec.Outcome, rec.Code = classify(err)
	rec.Returned = len(msgs)
	for _, m := range msgs {
		rec.Bytes += len(m.Data)
	}
	w.h.addBigMGet(rec)
	if len(msgs) == 0 {
		return
	}
	name := fmt.Sprintf("big%d", i)
	ds := make([]Delivery, len(msgs))
	ids := make([]string, len(msgs))
	for k, m := range msgs {
		ds[k] = Delivery{MsgID: m.ID, Attempts: m.Attempts, Body: string(m.Data), Queue: WorkQueue,
			Start: rec.Start, End: rec.End, Consumer: name, Node: nd.ID, ServedBy: info.ServedBy, Action: "ack"}
		ids[k] = m.ID
	}
	w.h.addDeliveries(ds)
	// Acks in chunks keep each request's query string small.
	for len(ids) > 0 {
		n := min(len(ids), 200)
		w.settle(r, "ack", ids[:n], 0)
		ids = ids[n:]
	}
}

// bigMGetLin pops up to items messages of a lin queue with one mget.
func (w *Workload) bigMGetLin(r *rand.Rand, id int, queue string, items int) Outcome {
	nd, q := w.pick(r)
	op := LinOp{Client: id, Queue: queue, Op: linMGet, Items: items, Node: nd.ID}
	ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
	defer cancel()
	var info client.CallInfo
	ctx = client.WithCallInfo(ctx, &info)
	op.Start = w.h.Now()
	msgs, err := q.MGet(ctx, queue, items, client.GetOptions{Lease: api.NoLease})
	op.End = w.h.Now()
	op.Outcome, op.Code = classify(err)
	op.ServedBy = info.ServedBy
	rec := MGetRecord{Client: id, Queue: queue, Items: items, Node: nd.ID, Start: op.Start, End: op.End,
		Outcome: op.Outcome, Code: op.Code, Returned: len(msgs)}
	for _, m := range msgs {
		if m.Attempts > 1 {
			op.Redelivered = append(op.Redelivered, string(m.Data))
		} else {
			op.Values = append(op.Values, string(m.Data))
		}
		rec.Bytes += len(m.Data)
	}
	w.h.addLin(op)
	w.h.addBigMGet(rec)
	return op.Outcome
}

// publisher publishes PubSize-byte messages on StallTopic, each /pub to
// a random member, at its share of PubRate.
func (w *Workload) publisher(i int) {
	defer w.pub.Done()
	r := w.rng(7, i)
	pace := time.Duration(float64(w.cfg.Publishers) / w.cfg.PubRate * float64(time.Second))
	for seq := 0; !w.stopPub.Load() && w.hard.Err() == nil; seq++ {
		ms := w.c.Members()
		w.publish(i, ms[r.IntN(len(ms))], seq, false)
		if !w.sleep(jitter(r, pace)) {
			return
		}
	}
}

// publish sends one /pub of one message to nd and records it.
func (w *Workload) publish(i int, nd *testkit.Node, seq int, probe bool) PubRecord {
	ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
	defer cancel()
	head := fmt.Sprintf("pub%d-%d-", i, seq)
	body := head + w.pubPad[:max(w.cfg.PubSize-len(head), 0)]
	rec := PubRecord{Client: i, Node: nd.ID, Probe: probe, Start: w.h.Now()}
	n, err := w.pubsubFor(nd).Pub(ctx, StallTopic, [][]byte{[]byte(body)})
	rec.End = w.h.Now()
	rec.Outcome, rec.Code = classify(err)
	rec.Subscribers = n
	w.h.addPub(rec)
	return rec
}

// ProbePubs publishes once on every member (as client -1), to see that
// each node still answers /pub within the bound while the stalled
// subscribers hang on it.
func (w *Workload) ProbePubs() []PubRecord {
	var out []PubRecord
	for seq, nd := range w.c.Members() {
		out = append(out, w.publish(-1, nd, seq, true))
	}
	return out
}

func (w *Workload) linOp(r *rand.Rand, client_ int, queue string, n int) LinOp {
	nd, q := w.pick(r)
	op := LinOp{Client: client_, Queue: queue, Node: nd.ID}
	ctx, cancel := context.WithTimeout(w.hard, w.cfg.AttemptTimeout)
	defer cancel()
	var info client.CallInfo
	ctx = client.WithCallInfo(ctx, &info)
	var err error
	if r.IntN(2) == 0 {
		op.Op, op.Value = linPut, fmt.Sprintf("v%d-%d", client_, n)
		op.Start = w.h.Now()
		_, err = q.Put(ctx, queue, []byte(op.Value), client.PutOptions{})
	} else {
		op.Op = linGet
		op.Start = w.h.Now()
		var m *client.Message
		m, err = q.Get(ctx, queue, client.GetOptions{})
		switch {
		case m != nil && m.Attempts > 1:
			op.Redelivered = []string{string(m.Data)}
		case m != nil:
			op.Value = string(m.Data)
		}
	}
	op.End = w.h.Now()
	op.Outcome, op.Code = classify(err)
	op.ServedBy = info.ServedBy
	w.h.addLin(op)
	return op
}

// clientOptions are the options of a client of one node: one attempt
// bounded by the workload's AttemptTimeout.
func (w *Workload) clientOptions() *client.Options {
	o := client.DefaultOptions()
	o.MaxAttempts, o.Timeout, o.AttemptTimeout = 1, w.cfg.AttemptTimeout, w.cfg.AttemptTimeout
	o.TLS, o.Token = w.cfg.TLS, w.cfg.Token
	return &o
}
