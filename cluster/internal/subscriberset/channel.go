// Package subscriberset is the gossip channel of the pubsub subscriber
// sets: it tells every node which topics have subscribers on which node,
// so that a publish is sent only to the nodes that need it (cluster's
// DESIGN.md, "Flows"; raft-patterns §11.4). It holds this node's
// versioned set and the latest set of every other alive member; the
// versions, the digest, the wire codec and the broadcast queue are here,
// memberlist and NodeMeta are the caller's.
package subscriberset

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/internal/wait"
)

// namespace is the Prometheus namespace of the channel's metrics.
const namespace = "quorumq"

const (
	// ChannelType is the channel's type byte in gossip messages and
	// push/pull frames.
	ChannelType byte = 1
	// debounce coalesces bursts of subscribes and disconnects into one
	// new version: the set is read and announced this long after the first
	// change of a burst.
	debounce = 50 * time.Millisecond
	// maxBroadcast is the largest entry broadcast with its topics: it
	// leaves room in a ~1400-byte packet for memberlist's own messages. A
	// larger set is broadcast thin and fetched over HTTP.
	maxBroadcast = 512
	// maxStateEntry is the largest entry carried whole in push/pull
	// state; larger ones travel thin, so that push/pull stays far below
	// memberlist's 20 MiB limit whatever the sets hold.
	maxStateEntry = 64 << 10
	// retransmitMult is memberlist's default RetransmitMult: each
	// broadcast goes out 4 × log10(N+1) times, rounded up.
	retransmitMult = 4
	// metaFetchDelay: a version learned from NodeMeta is fetched after
	// this pause, because the full broadcast usually arrives in the same
	// or the next gossip packet and makes the fetch unnecessary.
	metaFetchDelay = 250 * time.Millisecond
	// fetchTimeout bounds one GET /internal/subs; fetchAttempts
	// failed attempts in a row (250 ms, 500 ms apart) give up until the
	// next version is heard of; push/pull repairs the rest.
	fetchTimeout  = 2 * time.Second
	fetchAttempts = 3
	fetchBackoff  = 250 * time.Millisecond
)

// Config is what a Channel needs from its node.
type Config struct {
	Self  string
	Epoch uint32
	Log   *slog.Logger
	// Fetch returns the entry served at http://addr/internal/subs.
	Fetch func(ctx context.Context, addr string) ([]byte, error)
	// Announce puts this node's version and digest into NodeMeta and
	// gossips it (UpdateNode). It may block; the channel calls it from
	// its own goroutine.
	Announce func(version uint64, digest [8]byte)
	// NextEpoch persists and returns a new epoch, for when a run has used
	// up 2^32 versions.
	NextEpoch func() (uint32, error)
}

// Channel is the subscriber-set gossip channel: this node's own
// versioned set, and the latest set of every other alive member.
//
// Peers come and go with memberlist's events (MemberAlive, MemberGone): a member is
// added when it joins, and dropped, with its set, when memberlist declares
// it dead or gone; entries of nodes not currently alive are ignored. A
// version learned without its topics (NodeMeta, a thin broadcast, a thin
// push/pull entry) starts one fetch over HTTP from that node.
type Channel struct {
	cfg   Config
	log   *slog.Logger
	queue *memberlist.TransmitLimitedQueue
	// numNodes is the alive members, this node included, for the
	// broadcast queue's retransmit count. Atomic: the queue calls it with
	// its own lock held.
	numNodes atomic.Int32
	dirty    chan struct{} // capacity 1: the local set may have changed
	announce chan struct{} // capacity 1: NodeMeta is behind the local version

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	srcMu  sync.Mutex
	source func() map[string]int

	flushMu sync.Mutex // one flush at a time: the loop's or Flush's

	mu      sync.Mutex
	stopped bool
	epoch   uint32 // written under flushMu and mu
	seq     uint32 // written under flushMu and mu
	local   entry
	enc     []byte // local, encoded
	peers   map[string]*peerState

	metrics channelMetrics
}

// peerState is an alive member as the channel sees it.
type peerState struct {
	addr string // pubsub address from its NodeMeta; "" when unknown
	// entry is its latest full entry (Version 0: none yet); enc its
	// encoding. Entries are replaced, never modified.
	entry entry
	enc   []byte
	// want is the highest version heard of; above entry.Version a fetch
	// is due.
	want     uint64
	fetching bool
}

type channelMetrics struct {
	updates *prometheus.CounterVec // newer entries learned, by source
	fetches *prometheus.CounterVec // GET /internal/subs, by result
}

func New(cfg Config) *Channel {
	c := &Channel{
		cfg:      cfg,
		log:      cfg.Log,
		dirty:    make(chan struct{}, 1),
		announce: make(chan struct{}, 1),
		epoch:    cfg.Epoch,
		peers:    map[string]*peerState{},
		metrics: channelMetrics{
			updates: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: namespace, Subsystem: "pubsub", Name: "subscriber_set_updates_total",
				Help: "Newer subscriber sets of other nodes learned, by source (broadcast, push_pull, fetch).",
			}, []string{"source"}),
			fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
				Namespace: namespace, Subsystem: "pubsub", Name: "subscriber_set_fetches_total",
				Help: "GET /internal/subs requests to other nodes, by result (ok, error).",
			}, []string{"result"}),
		},
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.local = entry{Node: cfg.Self, Version: uint64(cfg.Epoch) << 32, Full: true, Topics: map[string]int{}}
	c.enc = c.local.encode(nil)
	c.numNodes.Store(1)
	c.queue = &memberlist.TransmitLimitedQueue{
		NumNodes:       func() int { return int(c.numNodes.Load()) },
		RetransmitMult: retransmitMult,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// start runs the flush and announce loops until stop.
func (c *Channel) Start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.wg.Add(2)
	go c.runFlush()
	go c.runAnnounce()
}

// stop ends the loops and the fetches and waits for them.
func (c *Channel) Stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// SetSource sets the function that reports this node's subscribers by
// topic (counts of zero are ignored).
func (c *Channel) SetSource(f func() map[string]int) {
	c.srcMu.Lock()
	c.source = f
	c.srcMu.Unlock()
	c.Changed()
}

// changed notes that the local set may have changed. It never blocks.
func (c *Channel) Changed() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

func (c *Channel) runFlush() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.dirty:
		}
		t := time.NewTimer(debounce)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.flush()
	}
}

// flush reads the local set and, if it changed, gives it the next version
// and queues its broadcast; the NodeMeta update follows in runAnnounce.
func (c *Channel) flush() {
	if c.flushLocal() {
		select {
		case c.announce <- struct{}{}:
		default:
		}
	}
}

// Flush is flush without the debounce, announcing in the caller's
// goroutine (shutdown).
func (c *Channel) Flush() {
	if c.flushLocal() && c.cfg.Announce != nil {
		v, d := c.LocalVersion()
		c.cfg.Announce(v, d)
	}
}

// flushLocal makes the new local entry and queues its broadcast; it
// reports whether the set changed.
func (c *Channel) flushLocal() bool {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.srcMu.Lock()
	src := c.source
	c.srcMu.Unlock()
	topics := map[string]int{}
	if src != nil {
		for t, k := range src() {
			if k > 0 {
				topics[t] = k
			}
		}
	}
	c.mu.Lock()
	same := maps.Equal(topics, c.local.Topics)
	c.mu.Unlock()
	if same {
		return false
	}
	// epoch and seq are written only here, under flushMu.
	epoch, seq := c.epoch, c.seq
	if seq == math.MaxUint32 {
		e, err := c.cfg.NextEpoch()
		if err != nil {
			c.log.Error("subscriber set not announced: no new version epoch", "err", err)
			return false
		}
		epoch, seq = e, 0
	} else {
		seq++
	}
	e := entry{Node: c.cfg.Self, Version: uint64(epoch)<<32 | uint64(seq), Full: true, Topics: topics}
	enc := e.encode(nil)
	c.mu.Lock()
	c.epoch, c.seq, c.local, c.enc = epoch, seq, e, enc
	c.mu.Unlock()
	c.queueBroadcast(e, enc)
	return true
}

// queueBroadcast queues e under the name subs/<node>, replacing an older
// broadcast of the same node: whole when it fits comfortably in a
// packet, else thin.
func (c *Channel) queueBroadcast(e entry, enc []byte) {
	msg := enc
	if !e.Full || len(enc) > maxBroadcast {
		t := e.thin()
		msg = t.encode(nil)
	}
	c.queue.QueueBroadcast(&broadcast{name: "subs/" + e.Node, msg: msg})
}

func (c *Channel) runAnnounce() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.announce:
		}
		if c.cfg.Announce == nil {
			continue
		}
		v, d := c.LocalVersion()
		c.cfg.Announce(v, d)
	}
}

// LocalVersion returns the version and digest of this node's set.
func (c *Channel) LocalVersion() (uint64, [8]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local.Version, digest(c.local.Topics)
}

// LocalBytes returns this node's entry, encoded (GET /internal/subs).
func (c *Channel) LocalBytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enc
}

// The gossip channel (memberlist delegate calls, framed by the caller).

func (c *Channel) NotifyMsg(msg []byte) {
	e, err := decodeEntry(msg)
	if err != nil {
		c.log.Debug("ignoring subscriber-set broadcast", "err", err)
		return
	}
	if c.merge(e, "broadcast") {
		// Pass on what taught us something, as serf does: the owner's
		// own retransmissions may not reach everyone in a larger cluster.
		c.queue.QueueBroadcast(&broadcast{name: "subs/" + e.Node, msg: append([]byte(nil), msg...)})
	}
}

func (c *Channel) Broadcasts(overhead, limit int) [][]byte {
	return c.queue.GetBroadcasts(overhead, limit)
}

// LocalState carries every known entry, this node's included: whole up to
// maxStateEntry, thin above.
func (c *Channel) LocalState(bool) []byte {
	c.mu.Lock()
	entries := []entry{sizedForState(c.local, c.enc)}
	for _, id := range slices.Sorted(maps.Keys(c.peers)) {
		if p := c.peers[id]; p.entry.Version > 0 {
			entries = append(entries, sizedForState(p.entry, p.enc))
		}
	}
	c.mu.Unlock()
	return encodeState(entries)
}

func sizedForState(e entry, enc []byte) entry {
	if len(enc) > maxStateEntry {
		return e.thin()
	}
	return e
}

func (c *Channel) MergeRemoteState(buf []byte, _ bool) {
	entries, err := decodeState(buf)
	if err != nil {
		c.log.Debug("subscriber-set state partly unreadable", "err", err)
	}
	for _, e := range entries {
		c.merge(e, "push_pull")
	}
}

// merge applies an entry heard from anywhere: entry-wise, the higher
// version wins. An entry of this node, or of a node that is not an alive
// member, is ignored. A thin entry above the known version starts a fetch.
// It reports whether the entry taught us something.
func (c *Channel) merge(e entry, source string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Node == c.cfg.Self {
		return false
	}
	p := c.peers[e.Node]
	if p == nil || e.Version <= p.entry.Version {
		return false
	}
	if !e.Full {
		if e.Version <= p.want {
			return false
		}
		p.want = e.Version
		c.fetchLocked(e.Node, p, 0)
		return true
	}
	p.entry, p.enc = e, e.encode(nil)
	p.want = max(p.want, e.Version)
	c.metrics.updates.WithLabelValues(source).Inc()
	return true
}

// Membership (memberlist's events, serialized by memberlist).

// MemberAlive records a joined or updated member and fetches its set if
// its NodeMeta names a newer version than the one known. metaOK is false
// when the member's NodeMeta did not decode: it is then a member without
// a pubsub address.
func (c *Channel) MemberAlive(name, pubsubAddr string, version uint64, metaOK bool) {
	if name == c.cfg.Self {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.peers[name]
	if p == nil {
		p = &peerState{}
		c.peers[name] = p
		c.numNodes.Store(int32(len(c.peers) + 1))
	}
	if !metaOK {
		return
	}
	p.addr = pubsubAddr
	if version > p.entry.Version && version > p.want {
		p.want = version
		c.fetchLocked(name, p, metaFetchDelay)
	}
}

// MemberGone drops a member declared dead or gone, with its set: nothing
// can be delivered to it. If it comes back, its NodeMeta, broadcasts and
// push/pull bring its set back.
func (c *Channel) MemberGone(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.peers[name]; ok {
		delete(c.peers, name)
		c.numNodes.Store(int32(len(c.peers) + 1))
	}
}

// fetchLocked starts the fetch loop for p unless one runs.
func (c *Channel) fetchLocked(id string, p *peerState, delay time.Duration) {
	if p.fetching || c.stopped || c.cfg.Fetch == nil {
		return
	}
	p.fetching = true
	c.wg.Add(1)
	go c.runFetch(id, p, delay)
}

// runFetch fetches p's entry until the version wanted is known, p is gone
// or fetchAttempts attempts in a row failed.
func (c *Channel) runFetch(id string, p *peerState, delay time.Duration) {
	defer c.wg.Done()
	if wait.Sleep(c.ctx, delay) != nil {
		return
	}
	failures := 0
	for {
		c.mu.Lock()
		if c.peers[id] != p {
			c.mu.Unlock()
			return // gone (and maybe back as another *peerState with its own fetch)
		}
		if c.ctx.Err() != nil || p.want <= p.entry.Version || p.addr == "" || failures >= fetchAttempts {
			p.fetching = false
			c.mu.Unlock()
			return
		}
		addr, want := p.addr, p.want
		c.mu.Unlock()
		if err := c.fetchOnce(id, addr, want); err != nil {
			failures++
			c.metrics.fetches.WithLabelValues("error").Inc()
			c.log.Debug("fetch subscriber set", "member", id, "addr", addr, "attempt", failures, "err", err)
			if failures < fetchAttempts && wait.Sleep(c.ctx, fetchBackoff<<(failures-1)) != nil {
				return
			}
			continue
		}
		c.metrics.fetches.WithLabelValues("ok").Inc()
		failures = 0
	}
}

// fetchOnce asks the node at addr for its entry and merges it. The answer
// must be that node's, whole, and at least the version wanted.
func (c *Channel) fetchOnce(id, addr string, want uint64) error {
	ctx, cancel := context.WithTimeout(c.ctx, fetchTimeout)
	defer cancel()
	b, err := c.cfg.Fetch(ctx, addr)
	if err != nil {
		return err
	}
	e, err := decodeEntry(b)
	switch {
	case err != nil:
		return err
	case e.Node != id:
		return fmt.Errorf("%s answered for node %q", addr, e.Node)
	case !e.Full:
		return fmt.Errorf("%s answered without topics", addr)
	case e.Version < want:
		return fmt.Errorf("%s answered version %d, want %d", addr, e.Version, want)
	}
	c.merge(e, "fetch")
	return nil
}

// Queries.

// Peer is another alive node as the subscriber-set gossip knows
// it.
type Peer struct {
	ID         string
	PubsubAddr string
	// Version is the version of the set in Topics; 0 while none is known.
	Version uint64
	// Topics maps topic → subscribers connected to that node (a copy;
	// only from PubsubPeers).
	Topics map[string]int
}

// PeersWith returns the alive members whose known set has subscribers of
// topic, sorted by id, without their topics (the fan-out's hot path); with
// topic "" every alive member with a pubsub address, with its topics.
func (c *Channel) PeersWith(topic string) []Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Peer
	for id, p := range c.peers {
		if p.addr == "" || (topic != "" && p.entry.Topics[topic] <= 0) {
			continue
		}
		sp := Peer{ID: id, PubsubAddr: p.addr, Version: p.entry.Version}
		if topic == "" {
			sp.Topics = maps.Clone(p.entry.Topics)
		}
		out = append(out, sp)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// known returns the version of the set known for id (0: none, or not an
// alive member).
func (c *Channel) known(id string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.peers[id]; p != nil {
		return p.entry.Version
	}
	return 0
}

// collectors are the channel's metrics: the counters plus gauges read at
// scrape time.
func (c *Channel) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		c.metrics.updates,
		c.metrics.fetches,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pubsub", Name: "subscriber_set_version",
			Help: "Version of this node's own subscriber set (epoch << 32 | sequence).",
		}, func() float64 { v, _ := c.LocalVersion(); return float64(v) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "pubsub", Name: "subscriber_sets_known",
			Help: "Other alive nodes whose subscriber set this node knows.",
		}, func() float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			k := 0
			for _, p := range c.peers {
				if p.entry.Version > 0 {
					k++
				}
			}
			return float64(k)
		}),
	}
}

// broadcast is a queued subscriber-set broadcast. It is a
// NamedBroadcast: a newer one of the same node replaces it in the queue.
type broadcast struct {
	name string
	msg  []byte
}

var _ memberlist.NamedBroadcast = (*broadcast)(nil)

func (b *broadcast) Name() string    { return b.name }
func (b *broadcast) Message() []byte { return b.msg }
func (b *broadcast) Finished()       {}
func (b *broadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(memberlist.NamedBroadcast)
	return ok && o.Name() == b.name
}
