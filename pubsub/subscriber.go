package pubsub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// SubscribeOptions are a subscription's parameters.
type SubscribeOptions struct {
	// Topic is the topic to follow; the caller validates and defaults it.
	Topic string
	// Multipart selects the multipart/x-mixed-replace stream (the default
	// of /sub); false is the newline stream of multipart=0. WebSocket
	// subscribers ignore it.
	Multipart bool
}

// Subscribe serves one /sub request: it takes the connection over, writes
// the response head and streams the topic's messages until the client goes
// away, the subscriber is kicked, r's context ends or the hub is closed. A
// request with an Upgrade: websocket header becomes a WebSocket subscriber.
//
// It returns an error only when it has written nothing, so the caller
// answers: ErrClosed, or an error wrapping http.ErrNotSupported when the
// connection cannot be taken over. Otherwise it returns nil once the
// subscriber is gone.
func (h *Hub) Subscribe(w http.ResponseWriter, r *http.Request, opts SubscribeOptions) error {
	if h.isClosed() {
		return ErrClosed
	}
	if isWebSocket(r) {
		return h.subscribeWebSocket(w, r, opts)
	}
	m := streamMode(opts.Multipart, r.ProtoAtLeast(1, 1))
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("pubsub: taking over the connection: %w", err)
	}
	if h.o.SendBuffer > 0 {
		setSendBuffer(conn, h.o.SendBuffer)
	}
	head := responseHead(r, m, h.o.Now())
	if r.Method == http.MethodHead {
		conn.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
		if _, err := conn.Write(head); err == nil {
			lingerClose(conn, nil, nil)
		}
		conn.Close()
		return nil
	}

	gone := make(chan struct{})
	s := h.newSubscriber(r, opts.Topic, m, &rawSink{conn: conn, timeout: h.o.WriteTimeout, gone: gone, closing: h.closing})
	s.queueRaw(head, streamStart(m))
	if !h.add(s) {
		s.finish()
		conn.Close()
		return nil
	}
	// Watch the connection: the client sends nothing after its request, so
	// EOF or an error means it is gone (extra bytes are discarded).
	go func() {
		defer close(gone)
		io.Copy(io.Discard, conn)
	}()
	h.log.Debug("subscriber connected", "id", s.id, "remote", s.remote, "topic", s.topic, "multipart", m.multipart())
	why := s.run(r.Context(), gone)
	s.finish()
	conn.Close()
	<-gone
	h.remove(s)
	h.log.Debug("subscriber gone", "id", s.id, "remote", s.remote, "why", why)
	return nil
}

func (h *Hub) newSubscriber(r *http.Request, topic string, m mode, conn sink) *subscriber {
	return &subscriber{
		hub:    h,
		id:     h.total.Add(1),
		topic:  topic,
		remote: r.RemoteAddr,
		since:  h.o.Now(),
		mode:   m,
		conn:   conn,
		wake:   make(chan struct{}, 1),
	}
}

// queueRaw queues bytes of the subscriber's own (the response head and
// the stream's start), before the subscriber is added: a batch of its own
// with one piece.
func (s *subscriber) queueRaw(raw ...[]byte) {
	data := bytes.Join(raw, nil)
	base := int64(len(data)) + 8 + batchOverhead
	s.hub.reserve(base + pieceCost)
	b := &batch{data: data, ends: []int{len(data)}, seq: s.hub.batchSeq.Add(1), base: base, hub: s.hub}
	b.refs.Store(1) // the piece's; no publisher holds it
	s.queue = append(s.queue, piece{b: b, hi: 1})
	s.pending += int64(len(data))
}

// subscriber is one subscription: a bounded queue of pieces of shared
// batches and the state its writer goroutine shares with publishers.
type subscriber struct {
	hub    *Hub
	id     uint64
	topic  string
	remote string
	since  time.Time
	mode   mode
	conn   sink

	wake chan struct{} // capacity 1: the queue has work for the writer

	mu sync.Mutex
	// queue holds what is not yet accepted by the kernel, in order; the
	// writer writes from its front without taking pieces off until they
	// are accepted, so a kick finds every reference here.
	queue   []piece
	pending int64 // the pieces' cost: the subscriber's pending bytes
	kicked  bool
	notice  []byte // the kick notice, until it is written
	done    bool   // the writer has returned
}

// piece is the part of a batch one subscriber has yet to be sent:
// messages [lo, hi), from byte pos of the batch's data on (pos may be
// inside message lo once the kernel took part of it; WebSocket pieces are
// written a message at a time, so there pos is always where lo starts).
type piece struct {
	b      *batch
	lo, hi int
	pos    int
}

// wsOverhead is what a queued WebSocket message costs besides its payload
// (its frame header), as before batches were shared.
const wsOverhead = 32

// sink is a subscriber's connection as its writer sees it.
type sink interface {
	// write sends what s has queued until its queue is empty, giving back
	// pending bytes as they are accepted. It returns errKicked as soon as
	// it sees s kicked.
	write(s *subscriber) error
	// interrupt makes a write in progress return soon; called with s.mu
	// held.
	interrupt()
	// kick writes the notice and ends the stream.
	kick(s *subscriber, notice []byte)
	// closeNow closes the connection at once.
	closeNow()
}

var errKicked = errors.New("kicked")

// enqueue queues the first messages of b that fit within MaxPendingBytes
// and reports how many it queued and whether that was all of them. The
// caller wakes the writer (signal) once it has handed out the batch. When
// one does not fit the subscriber is kicked (spec 3.5): the messages
// queued before it are discarded with the rest, as when the reference
// queued them one by one.
func (s *subscriber) enqueue(b *batch) (queued int, all bool) {
	s.mu.Lock()
	if s.kicked || s.done {
		s.mu.Unlock()
		return 0, false
	}
	n := b.total
	k := b.fit(s.pending, s.hub.o.MaxPendingBytes)
	if k > 0 {
		b.refs.Add(1)
		s.queue = append(s.queue, piece{b: b, lo: 0, hi: k})
		s.pending += b.cost(0, k)
	}
	if k < n {
		s.kickLocked("too slow")
		return k, false
	}
	s.mu.Unlock()
	return n, true
}

// kick kicks s (unless it is already kicked or gone).
func (s *subscriber) kick(why string) {
	s.mu.Lock()
	if s.kicked || s.done {
		s.mu.Unlock()
		return
	}
	s.kickLocked(why)
}

// kickLocked kicks s, whose lock is held, and unlocks it: its pending
// output is discarded (its batches released at once, a write in progress
// interrupted) and replaced by the notice; kicked_clients grows by one.
func (s *subscriber) kickLocked(why string) {
	pending := s.pending
	s.kicked = true
	s.notice = kickNotice(pending)
	s.dropQueueLocked()
	s.conn.interrupt()
	s.mu.Unlock()
	s.hub.kicked.Add(1)
	s.hub.log.Info("kicked slow subscriber", "id", s.id, "remote", s.remote, "topic", s.topic, "pending_bytes", pending, "why", why)
	s.signal()
}

// dropQueueLocked releases every piece.
func (s *subscriber) dropQueueLocked() {
	for i := range s.queue {
		s.queue[i].b.release(1)
	}
	clear(s.queue)
	s.queue, s.pending = nil, 0
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// state returns the pending bytes and whether s was kicked.
func (s *subscriber) state() (pending int64, kicked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending + int64(len(s.notice)), s.kicked
}

// oldest returns the age of the oldest batch s holds a piece of, and its
// pending bytes; ok is false when it holds nothing (or is kicked).
func (s *subscriber) oldest() (seq uint64, pending int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked || s.done || len(s.queue) == 0 {
		return 0, 0, false
	}
	return s.queue[0].b.seq, s.pending, true
}

// ended reports whether s takes no more messages: kicked, or its writer
// has returned.
func (s *subscriber) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kicked || s.done
}

// ready tells the writer what to do: write (something is queued), or
// send the notice once s is kicked.
func (s *subscriber) ready() (work bool, notice []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked {
		return false, s.notice
	}
	return len(s.queue) > 0, nil
}

// segmentLocked appends to bufs the next bytes to write, up to limit, from the
// front of the queue (without taking them off: see advance). Called with
// s.mu held.
func (s *subscriber) segmentLocked(bufs net.Buffers, limit int) net.Buffers {
	for i := range s.queue {
		if limit <= 0 {
			break
		}
		p := &s.queue[i]
		end := min(p.b.ends[p.hi-1], p.pos+limit)
		bufs = append(bufs, p.b.data[p.pos:end])
		limit -= end - p.pos
	}
	return bufs
}

// advance records n bytes accepted by the connection: pieces written
// whole are released. Once s is kicked it only reports so.
func (s *subscriber) advance(n int) (kicked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked {
		return true
	}
	s.pending -= int64(n)
	done := 0
	for n > 0 {
		p := &s.queue[done]
		left := p.b.ends[p.hi-1] - p.pos
		if n < left {
			p.pos += n
			break
		}
		n -= left
		p.b.release(1)
		done++
	}
	s.popLocked(done)
	return false
}

// nextMessage returns the first queued message (WebSocket), nil when the
// queue is empty or s is kicked.
func (s *subscriber) nextMessage() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked || len(s.queue) == 0 {
		return nil
	}
	p := &s.queue[0]
	return p.b.data[p.pos:p.b.ends[p.lo]]
}

// sentMessage records the first queued message written (WebSocket).
func (s *subscriber) sentMessage() (kicked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked {
		return true
	}
	p := &s.queue[0]
	s.pending -= p.b.cost(p.lo, p.lo+1)
	p.pos = p.b.ends[p.lo]
	p.lo++
	if p.lo == p.hi {
		p.b.release(1)
		s.popLocked(1)
	}
	return false
}

// popLocked takes the first n pieces (already released) off the queue.
func (s *subscriber) popLocked(n int) {
	if n == 0 {
		return
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
}

// finish marks the writer returned: nothing more is queued.
func (s *subscriber) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	s.dropQueueLocked()
	s.notice = nil
}

// closeNow ends the subscription from outside (Hub.Close).
func (s *subscriber) closeNow() { s.conn.closeNow() }

// run is the writer: it drains the queue to the connection until the
// client is gone, the subscriber is kicked, ctx ends or the hub closes,
// and says why it returned.
func (s *subscriber) run(ctx context.Context, gone <-chan struct{}) string {
	for {
		work, notice := s.ready()
		if notice != nil {
			s.conn.kick(s, notice)
			return "kicked"
		}
		if work {
			if err := s.conn.write(s); err != nil && !errors.Is(err, errKicked) {
				return err.Error()
			}
			continue
		}
		select {
		case <-s.wake:
		case <-gone:
			return "closed by the client"
		case <-ctx.Done():
			return "server shutting down"
		case <-s.hub.closing:
			return "hub closed"
		}
	}
}

// setSendBuffer sets conn's kernel send buffer, through TLS and any
// other wrapper that tells what it wraps (NetConn); a connection that is
// not TCP keeps its own.
func setSendBuffer(conn net.Conn, n int) {
	for {
		w, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = w.NetConn()
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetWriteBuffer(n)
	}
}

// rawSink is a hijacked HTTP connection.
type rawSink struct {
	seg     net.Buffers // the writer's segment, reused
	conn    net.Conn
	timeout time.Duration
	gone    <-chan struct{} // closed when the client has gone
	closing <-chan struct{} // Hub.closing
}

// segmentSize bounds one write call, so that pending bytes go down as the
// client reads rather than once per batch.
const segmentSize = 256 << 10

// aLongTimeAgo is a deadline in the past: it interrupts a blocked write.
var aLongTimeAgo = time.Unix(1, 0)

func (c *rawSink) write(s *subscriber) error {
	for {
		// The deadline is armed under s.mu so that a kick's interrupt
		// is never overwritten.
		s.mu.Lock()
		if s.kicked {
			s.mu.Unlock()
			return errKicked
		}
		c.seg = s.segmentLocked(c.seg[:0], segmentSize)
		if len(c.seg) == 0 {
			s.mu.Unlock()
			return nil
		}
		c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
		s.mu.Unlock()
		seg := c.seg
		n, err := seg.WriteTo(c.conn)
		clear(c.seg) // hold no batch between writes
		if s.advance(int(n)) {
			return errKicked
		}
		// A timeout after some progress only re-arms the deadline: the
		// limit is on time without progress.
		if err != nil && !(errors.Is(err, os.ErrDeadlineExceeded) && n > 0) {
			return fmt.Errorf("write: %w", err)
		}
	}
}

func (c *rawSink) interrupt() { c.conn.SetWriteDeadline(aLongTimeAgo) }

// kick writes the notice raw, then closes the sending side and gives the
// client a moment to read it before the connection is closed.
func (c *rawSink) kick(s *subscriber, notice []byte) {
	c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.conn.Write(notice)
	s.mu.Lock()
	s.notice = nil
	s.mu.Unlock()
	if err == nil {
		lingerClose(c.conn, c.gone, c.closing)
	}
}

func (c *rawSink) closeNow() { c.conn.Close() }

// lingerTimeout is how long a closing connection waits for the client to
// close its side after ours is shut, so that unread input does not turn
// the close into a reset that loses the last bytes we sent.
const lingerTimeout = 2 * time.Second

// lingerClose shuts the sending side of conn and waits until the client
// has closed its side, lingerTimeout passes or stop is closed. gone is
// closed by the goroutine that reads conn; without one (nil) it reads
// here. The caller closes conn.
func lingerClose(conn net.Conn, gone, stop <-chan struct{}) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	if gone == nil {
		conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, conn)
		return
	}
	t := time.NewTimer(lingerTimeout)
	defer t.Stop()
	select {
	case <-gone:
	case <-t.C:
	case <-stop:
	}
}
