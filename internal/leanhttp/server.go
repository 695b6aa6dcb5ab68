// Package leanhttp serves the plain HTTP/1.1 requests of a port itself and
// hands every other connection to net/http.
//
// net/http spends most of a small request's server-side CPU on machinery a
// queue's hot routes do not need: the MIME header reader, a background read
// per request (so the request's context ends when the client goes away), a
// deadline update per request and a flush per response. leanhttp reads a
// request head with its own parser into a plain *http.Request, calls the
// same http.Handler, and writes the answer the way net/http would (Date,
// Content-Length or chunked, Connection: close), flushing only when no
// further request is already buffered, so pipelined requests are answered
// in order and in one write.
//
// Anything it does not handle the same way as net/http goes to net/http
// with every byte already read, for the rest of the connection: a head it
// cannot parse (net/http then answers 400, 431 or 505 as before), request
// bodies that are chunked or announced with Expect, an Upgrade, HTTP
// versions other than 1.0 and 1.1, and any request the caller's Lean
// predicate refuses (a long-poll, whose context must end when its client
// goes away, needs net/http's background read).
package leanhttp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/quorumq/quorumq/internal/wait"
)

// Options configure a Server.
type Options struct {
	// HeaderTimeout bounds the reading of a request head once its first
	// byte has arrived; IdleTimeout the wait for that first byte on a
	// kept-alive connection. The same meaning as http.Server's
	// ReadHeaderTimeout and IdleTimeout. Both are required.
	HeaderTimeout time.Duration
	IdleTimeout   time.Duration
	// MaxHeaderBytes bounds a request head; a larger one goes to net/http,
	// which answers 431 past its own limit. Default (0):
	// http.DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// Lean reports whether a parsed request may be served here; false
	// hands the connection to net/http with the request. nil: all.
	Lean func(*http.Request) bool
	// BaseContext is the parent of every request's context. Default:
	// context.Background().
	BaseContext context.Context
	Log         *slog.Logger
}

func (o *Options) validate() error {
	switch {
	case o.HeaderTimeout <= 0:
		return errors.New("leanhttp: HeaderTimeout must be positive")
	case o.IdleTimeout <= 0:
		return errors.New("leanhttp: IdleTimeout must be positive")
	case o.MaxHeaderBytes < 0:
		return errors.New("leanhttp: MaxHeaderBytes must not be negative")
	}
	return nil
}

// Server serves h on the connections of a listener. Connections it hands
// over are served by Fallback, an http.Server with the same handler, which
// the Server runs on its own listener of handed-over connections.
type Server struct {
	h        http.Handler
	fallback *http.Server
	o        Options
	handoff  *handoffListener

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]bool // true: idle, waiting for a request
	closing  bool
	done     chan struct{} // closed when closing is set
	active   sync.WaitGroup
	fallErr  chan error
	fallOnce sync.Once
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = http.ErrServerClosed

// New returns a server of h. fallback serves the connections handed over;
// its Handler must be h (with the same wrapping) so that both paths answer
// alike.
func New(h http.Handler, fallback *http.Server, o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	if o.BaseContext == nil {
		o.BaseContext = context.Background()
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Server{h: h, fallback: fallback, o: o, conns: make(map[*conn]bool), done: make(chan struct{}), fallErr: make(chan error, 1)}, nil
}

// Serve accepts connections on ln until Shutdown or Close, which make it
// return ErrServerClosed. The listener's address is also the fallback's.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.ln = ln
	s.handoff = newHandoffListener(ln.Addr())
	s.mu.Unlock()
	go func() { s.fallErr <- s.fallback.Serve(s.handoff) }()

	var pause time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// The same back-off as net/http on EMFILE and the like.
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.o.Log.Warn("accept failed; retrying", "err", err, "in", pause)
				select {
				case <-time.After(pause):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return err
		}
		pause = 0
		cc := s.newConn(c)
		if cc == nil {
			c.Close()
			return ErrServerClosed
		}
		go cc.serve()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// newConn registers c as active (reading its first request counts as
// work: Shutdown closes it only once it is idle). nil once closing.
func (s *Server) newConn(c net.Conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil
	}
	cc := newConn(s, c)
	s.conns[cc] = false
	s.active.Add(1)
	return cc
}

// setIdle records whether cc waits for a request. It returns false when
// the server is closing and cc is idle: cc must then close.
func (s *Server) setIdle(cc *conn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[cc]; !ok {
		return false
	}
	s.conns[cc] = idle
	return !(idle && s.closing)
}

// forget removes cc, which is closed or handed over.
func (s *Server) forget(cc *conn) {
	s.mu.Lock()
	_, ok := s.conns[cc]
	delete(s.conns, cc)
	s.mu.Unlock()
	if ok {
		s.active.Done()
	}
}

// Shutdown stops accepting, closes idle connections, lets each request
// being served finish (its connection then closes), and shuts the fallback
// down, all within ctx; then Close.
func (s *Server) Shutdown(ctx context.Context) error {
	s.beginClose()
	s.closeIdle()
	err := wait.Group(ctx, &s.active)
	if ferr := s.fallback.Shutdown(ctx); err == nil {
		err = ferr
	}
	s.Close()
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.beginClose()
	s.mu.Lock()
	for cc := range s.conns {
		cc.rwc.Close()
	}
	s.mu.Unlock()
	return s.fallback.Close()
}

func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return
	}
	s.closing = true
	close(s.done)
	if s.ln != nil {
		s.ln.Close()
	}
	if s.handoff != nil {
		s.handoff.Close()
	}
}

// closeIdle closes the connections waiting for a request: their reads
// fail and serve returns.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc, idle := range s.conns {
		if idle {
			cc.rwc.Close()
		}
	}
}

// handOver gives c, whose first bytes are prefix, to the fallback.
func (s *Server) handOver(cc *conn, c net.Conn) {
	s.forget(cc)
	if !s.handoff.push(c) {
		c.Close()
	}
}

// handoffListener is the fallback's listener: Accept returns the
// connections Server hands over.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) push(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
