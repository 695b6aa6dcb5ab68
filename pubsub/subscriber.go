package pubsub

import (
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
	start := streamStart(m)
	s.queue = [][]byte{head, start}
	s.queued = int64(len(head) + len(start))
	if !h.add(s) {
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

// subscriber is one subscription: a bounded queue of framed messages and
// the state its writer goroutine shares with publishers.
type subscriber struct {
	hub    *Hub
	id     uint64
	topic  string
	remote string
	since  time.Time
	mode   mode
	conn   sink

	wake chan struct{} // capacity 1: the queue has work for the writer

	mu       sync.Mutex
	queue    [][]byte // framed pieces not yet taken by the writer
	queued   int64    // bytes in queue (see cost)
	inflight int64    // bytes taken by the writer and not yet accepted
	// ownTail: the last piece of queue is a block of small frames copied
	// together, which later small frames may join.
	ownTail bool
	kicked  bool
	notice  []byte // the kick notice, until it is written
	done    bool   // the writer has returned
}

// Small frames are copied into blocks of up to blockSize bytes rather
// than queued one by one: a body of many tiny messages then costs about
// its own size in memory, not a slice per message.
const (
	smallFrame = 4 << 10
	blockSize  = 64 << 10
)

// wsOverhead is what a queued WebSocket message costs besides its payload
// (frame header and queue entry); messages are not merged there.
const wsOverhead = 32

// cost is what b adds to the pending bytes.
func (s *subscriber) cost(b []byte) int64 {
	if s.mode == modeWebSocket {
		return int64(len(b)) + wsOverhead
	}
	return int64(len(b))
}

// sink is a subscriber's connection as its writer sees it.
type sink interface {
	// write writes batch, giving back inflight bytes as they are
	// accepted. It returns errKicked as soon as it sees s kicked.
	write(s *subscriber, batch [][]byte) error
	// interrupt makes a write in progress return soon; called with s.mu
	// held.
	interrupt()
	// kick writes the notice and ends the stream.
	kick(s *subscriber, notice []byte)
	// closeNow closes the connection at once.
	closeNow()
}

var errKicked = errors.New("kicked")

// enqueue queues one framed message (shared with other subscribers: it is
// never modified) and reports whether it was queued. A message that would
// take the pending bytes past MaxPendingBytes kicks the subscriber
// instead, unless nothing is pending: one message larger than the limit
// still goes to a subscriber that keeps up.
func (s *subscriber) enqueue(b []byte) bool {
	s.mu.Lock()
	if s.kicked || s.done {
		s.mu.Unlock()
		return false
	}
	pending := s.queued + s.inflight
	if pending > 0 && pending+s.cost(b) > s.hub.o.MaxPendingBytes {
		s.kicked = true
		clear(s.queue)
		s.queue, s.queued, s.ownTail = nil, 0, false
		s.notice = kickNotice(pending)
		s.conn.interrupt()
		s.mu.Unlock()
		s.hub.kicked.Add(1)
		s.hub.log.Info("kicked slow subscriber", "id", s.id, "remote", s.remote, "topic", s.topic, "pending_bytes", pending)
		s.signal()
		return false
	}
	switch n := len(s.queue); {
	case s.mode == modeWebSocket || len(b) > smallFrame:
		s.queue = append(s.queue, b)
		s.ownTail = false
	case s.ownTail && len(s.queue[n-1])+len(b) <= blockSize:
		s.queue[n-1] = append(s.queue[n-1], b...)
	default:
		s.queue = append(s.queue, append([]byte(nil), b...))
		s.ownTail = true
	}
	s.queued += s.cost(b)
	s.mu.Unlock()
	s.signal()
	return true
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
	return s.queued + s.inflight + int64(len(s.notice)), s.kicked
}

// ended reports whether s takes no more messages: kicked, or its writer
// has returned.
func (s *subscriber) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kicked || s.done
}

// next hands the writer its next job: the queued pieces, or the notice
// once s is kicked.
func (s *subscriber) next() (batch [][]byte, notice []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kicked {
		return nil, s.notice
	}
	batch = s.queue
	s.queue, s.ownTail = nil, false
	s.inflight += s.queued
	s.queued = 0
	return batch, nil
}

// gaveBack records n bytes accepted by the connection. Once s is kicked
// the rest of the writer's batch is dropped, and it reports true.
func (s *subscriber) gaveBack(n int64) (kicked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight -= n
	if s.kicked {
		s.inflight = 0
	}
	return s.kicked
}

// finish marks the writer returned: nothing more is queued.
func (s *subscriber) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done = true
	clear(s.queue)
	s.queue, s.queued, s.inflight, s.notice = nil, 0, 0, nil
}

// closeNow ends the subscription from outside (Hub.Close).
func (s *subscriber) closeNow() { s.conn.closeNow() }

// run is the writer: it drains the queue to the connection until the
// client is gone, the subscriber is kicked, ctx ends or the hub closes,
// and says why it returned.
func (s *subscriber) run(ctx context.Context, gone <-chan struct{}) string {
	for {
		batch, notice := s.next()
		if notice != nil {
			s.conn.kick(s, notice)
			return "kicked"
		}
		if len(batch) > 0 {
			if err := s.conn.write(s, batch); err != nil && !errors.Is(err, errKicked) {
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

// rawSink is a hijacked HTTP connection.
type rawSink struct {
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

func (c *rawSink) write(s *subscriber, batch [][]byte) error {
	for len(batch) > 0 {
		var seg net.Buffers
		seg, batch = nextSegment(batch, segmentSize)
		for len(seg) > 0 {
			// The deadline is armed under s.mu so that a kick's interrupt
			// is never overwritten.
			s.mu.Lock()
			if s.kicked {
				s.inflight = 0
				s.mu.Unlock()
				return errKicked
			}
			c.conn.SetWriteDeadline(time.Now().Add(c.timeout))
			s.mu.Unlock()
			n, err := seg.WriteTo(c.conn)
			if s.gaveBack(n) {
				return errKicked
			}
			// A timeout after some progress only re-arms the deadline: the
			// limit is on time without progress.
			if err != nil && !(errors.Is(err, os.ErrDeadlineExceeded) && n > 0) {
				return fmt.Errorf("write: %w", err)
			}
		}
	}
	return nil
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

// nextSegment takes up to limit bytes off the front of bufs (splitting a
// larger piece) and returns them and the rest.
func nextSegment(bufs [][]byte, limit int) (seg net.Buffers, rest [][]byte) {
	if len(bufs[0]) >= limit {
		if len(bufs[0]) == limit {
			return net.Buffers{bufs[0]}, bufs[1:]
		}
		seg = net.Buffers{bufs[0][:limit]}
		bufs[0] = bufs[0][limit:]
		return seg, bufs
	}
	n, i := 0, 0
	for i < len(bufs) && n+len(bufs[i]) <= limit {
		n += len(bufs[i])
		i++
	}
	return net.Buffers(bufs[:i:i]), bufs[i:]
}
