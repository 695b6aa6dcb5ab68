package pubsub

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// subscribeWebSocket serves a /sub request that asks for a WebSocket
// upgrade (RFC 6455). A failed handshake is answered by the library.
func (h *Hub) subscribeWebSocket(w http.ResponseWriter, r *http.Request, opts SubscribeOptions) error {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  h.o.WebSocketOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		h.log.Debug("websocket handshake refused", "remote", r.RemoteAddr, "err", err)
		return nil
	}
	// Frames from the client are read and dropped whatever their size;
	// the library answers pings and the close handshake meanwhile.
	c.SetReadLimit(-1)
	ctx := r.Context()
	gone := make(chan struct{})
	s := h.newSubscriber(r, opts.Topic, modeWebSocket, &wsSink{c: c, ctx: ctx, timeout: h.o.WriteTimeout})
	if !h.add(s) {
		c.CloseNow()
		return nil
	}
	go func() {
		defer close(gone)
		for {
			_, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			io.Copy(io.Discard, rd)
		}
	}()
	h.log.Debug("subscriber connected", "id", s.id, "remote", s.remote, "topic", s.topic, "websocket", true)
	why := s.run(ctx, gone)
	s.finish()
	c.CloseNow()
	<-gone
	h.remove(s)
	h.log.Debug("subscriber gone", "id", s.id, "remote", s.remote, "why", why)
	return nil
}

// wsSink is a WebSocket connection: one message per published message.
type wsSink struct {
	c       *websocket.Conn
	ctx     context.Context
	timeout time.Duration

	// Guarded by the subscriber's mu: the write in progress, and the
	// timer that cancels it after a kick.
	cancel context.CancelFunc
	grace  *time.Timer
}

// wsKickGrace is how long a kicked WebSocket subscriber's write in
// progress may go on: cancelling it at once would close the connection
// (the library does) and lose the notice for a client that is reading,
// waiting longer would keep the message's batch in memory for a client
// that is not.
const wsKickGrace = 2 * time.Second

// write sends each queued message as one text frame, or one binary frame
// when it is not valid UTF-8. A message not written within the write
// timeout ends the connection (the library closes it).
func (c *wsSink) write(s *subscriber) error {
	for {
		msg := s.nextMessage()
		if msg == nil {
			return nil // empty, or kicked: the writer's loop sees which
		}
		typ := websocket.MessageText
		if !utf8.Valid(msg) {
			typ = websocket.MessageBinary
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
		s.mu.Lock()
		if s.kicked {
			s.mu.Unlock()
			cancel()
			return errKicked
		}
		c.cancel = cancel
		s.mu.Unlock()
		err := c.c.Write(ctx, typ, msg)
		s.mu.Lock()
		c.cancel = nil
		if c.grace != nil {
			c.grace.Stop()
			c.grace = nil
		}
		s.mu.Unlock()
		cancel()
		if s.sentMessage() {
			return errKicked
		}
		if err != nil {
			return fmt.Errorf("websocket write: %w", err)
		}
	}
}

// interrupt lets the message being written finish within wsKickGrace,
// then cancels it (which closes the connection).
func (c *wsSink) interrupt() {
	if c.cancel != nil && c.grace == nil {
		c.grace = time.AfterFunc(wsKickGrace, c.cancel)
	}
}

// kick sends the notice as a text message, then closes with 1008.
func (c *wsSink) kick(s *subscriber, notice []byte) {
	ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
	err := c.c.Write(ctx, websocket.MessageText, notice)
	cancel()
	s.mu.Lock()
	s.notice = nil
	s.mu.Unlock()
	if err == nil {
		c.c.Close(websocket.StatusPolicyViolation, "too slow")
	}
}

func (c *wsSink) closeNow() { c.c.CloseNow() }
