package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
)

// ConnLimits bounds every connection of the node's two HTTP ports, so
// that careless or hostile clients cannot hold the node's file
// descriptors and goroutines: a deadline on each part of a request that
// the client controls, and a cap on open connections.
type ConnLimits struct {
	// HeaderTimeout bounds reading a request's headers, and a new
	// connection that sends nothing (--header-read-timeout). Default 10s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a request's body, from the moment its
	// handler starts (--body-read-timeout): a client that sends its body
	// slower is answered 400 and its connection is closed. The deadline is
	// lifted once the body is read, so long-polls (wait=) and /sub
	// streams are never cut by it. Default 60s: a body of the default
	// largest size (5 MiB) then needs about 90 KB/s.
	BodyTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no new request
	// (--idle-timeout). It must be longer than the other nodes keep an
	// idle connection to this one (httpapi.ForwardIdleTimeout, the peer
	// client's IdleTimeout), or a request sent just as this node closes
	// the connection would be lost. Default 120s.
	IdleTimeout time.Duration
	// MaxConns caps the open connections of each port, /sub streams
	// included (--max-conns). A connection over the cap is answered a
	// short 503 (over TLS after the handshake) and closed at once,
	// rather than left waiting in the kernel's backlog; it is counted in
	// quorumq_http_connections_refused_total. Default DefaultMaxConns().
	MaxConns int
}

const (
	// DefaultHeaderTimeout, DefaultBodyTimeout and DefaultIdleTimeout are
	// ConnLimits' defaults.
	DefaultHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout   = 60 * time.Second
	DefaultIdleTimeout   = 120 * time.Second
	// maxMaxConns is DefaultMaxConns where the open-file limit allows it.
	maxMaxConns = 10000
)

// DefaultConnLimits returns ConnLimits' defaults.
func DefaultConnLimits() ConnLimits {
	return ConnLimits{
		HeaderTimeout: DefaultHeaderTimeout,
		BodyTimeout:   DefaultBodyTimeout,
		IdleTimeout:   DefaultIdleTimeout,
		MaxConns:      DefaultMaxConns(),
	}
}

// DefaultMaxConns is the default cap of open connections per port:
// 10000, or a quarter of the process's open-file limit when that is
// lower, so that both ports at their cap still leave room for raft,
// gossip, node-to-node calls and the data files. (Go raises the soft
// limit to the hard one at start, which is what is read here.)
func DefaultMaxConns() int {
	n, ok := openFileLimit()
	if !ok {
		return maxMaxConns
	}
	return int(max(min(n/4, maxMaxConns), 64))
}

func (l ConnLimits) validate() error {
	switch {
	case l.HeaderTimeout <= 0:
		return fmt.Errorf("header-read-timeout=%v: must be positive", l.HeaderTimeout)
	case l.BodyTimeout <= 0:
		return fmt.Errorf("body-read-timeout=%v: must be positive", l.BodyTimeout)
	case l.IdleTimeout <= 0:
		return fmt.Errorf("idle-timeout=%v: must be positive", l.IdleTimeout)
	case l.MaxConns <= 0:
		return fmt.Errorf("max-conns=%d: must be positive", l.MaxConns)
	}
	return nil
}

// connMetrics are the connection counters of both ports, by port.
type connMetrics struct {
	open         *prometheus.GaugeVec
	refused      *prometheus.CounterVec
	bodyTimeouts *prometheus.CounterVec
}

func newConnMetrics(reg prometheus.Registerer) *connMetrics {
	m := &connMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "quorumq_http_connections",
			Help: "Open connections of an HTTP port (port: queue, pubsub), /sub streams included.",
		}, []string{"port"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_http_connections_refused_total",
			Help: "Connections answered 503 and closed because the port had --max-conns open.",
		}, []string{"port"}),
		bodyTimeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumq_http_body_read_timeouts_total",
			Help: "Requests whose body did not arrive within --body-read-timeout.",
		}, []string{"port"}),
	}
	reg.MustRegister(m.open, m.refused, m.bodyTimeouts)
	return m
}

// capListener caps the open connections accepted from its listener. It
// wraps the TCP listener, under TLS if any, so that a refusal costs no
// more than it must.
type capListener struct {
	net.Listener
	max  int64
	open atomic.Int64
	// refusal is the 503 sent to a connection over the cap.
	refusal []byte
	// tls, when set, is the port's server configuration: a refused client
	// gets its 503 after the handshake, in a language it understands.
	tls *tls.Config
	// refusing bounds the refusals in progress; past it a connection is
	// closed without an answer.
	refusing chan struct{}
	gauge    prometheus.Gauge
	refused  prometheus.Counter
	log      *slog.Logger
}

// maxRefusing bounds the refusals in progress per port, each at most
// refuseTimeout long.
const (
	maxRefusing   = 64
	refuseTimeout = time.Second
)

func newCapListener(ln net.Listener, port string, max int, tlsConf *tls.Config, m *connMetrics, log *slog.Logger) *capListener {
	body := fmt.Sprintf("too many connections: this port has its limit of %d open (--max-conns); retry\n", max)
	refusal := "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		api.HeaderNoSniff + ": nosniff\r\n" +
		api.HeaderErrorCode + ": " + api.ErrUnavailable.Token + "\r\n" +
		"Retry-After: 1\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	return &capListener{
		Listener: ln, max: int64(max), refusal: []byte(refusal), tls: tlsConf,
		refusing: make(chan struct{}, maxRefusing),
		gauge:    m.open.WithLabelValues(port), refused: m.refused.WithLabelValues(port),
		log: log.With("port", port),
	}
}

// Accept returns the next connection under the cap; connections over it
// are refused here and never reach the HTTP server.
func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refuse(c)
			continue
		}
		l.gauge.Inc()
		return &cappedConn{Conn: c, l: l}, nil
	}
}

// refuse answers c a 503 and closes it, in the background so that the
// accept loop goes on; when maxRefusing refusals are already in
// progress it just closes c.
func (l *capListener) refuse(c net.Conn) {
	l.refused.Inc()
	select {
	case l.refusing <- struct{}{}:
	default:
		c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseTimeout))
		conn := c
		if l.tls != nil {
			tc := tls.Server(c, l.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn = tc
		}
		if _, err := conn.Write(l.refusal); err != nil {
			return
		}
		// Half-close and read what the client sent, until it closes or
		// the deadline: closing with unread input would reset the
		// connection, and the client might lose the 503.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(conn, 64<<10))
	}()
}

// cappedConn gives its place under the cap back when closed, once,
// whoever closes it: the HTTP server, or the pubsub hub after /sub took
// the connection over.
type cappedConn struct {
	net.Conn
	l    *capListener
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		c.l.gauge.Dec()
	})
	return err
}

// NetConn is the connection under the wrapper, for those that set
// socket options (the pubsub hub's send buffer of a /sub stream).
func (c *cappedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite keeps half-closing available to the pubsub hub (lingering
// close) through the wrapper.
func (c *cappedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// withBodyTimeout bounds the reading of each request's body by d: a
// read deadline on the connection while the handler reads the body,
// lifted once it has been read whole. Not http.Server.ReadTimeout:
// that deadline stays on the connection while the handler runs, and
// net/http's background read (which watches for the client going away)
// hitting it cancels the request's context, which would end every
// long-poll (wait=) at the timeout. Requests without a body (GET, and
// the /sub that takes its connection over, which also clears deadlines)
// get no deadline. A body still being read when the request's context
// ends (the node shuts down, or the client is gone) is cut at once, so a
// client trickling its body cannot hold a shutdown for the whole timeout.
func withBodyTimeout(h http.Handler, d time.Duration, timeouts prometheus.Counter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				b := &deadlineBody{ReadCloser: r.Body, rc: rc, timeouts: timeouts}
				r.Body = b
				stop := context.AfterFunc(r.Context(), b.cut)
				defer func() {
					stop()
					b.finish()
				}()
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline when the body has been read whole,
// and counts the reads that ran into it.
type deadlineBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	timeouts prometheus.Counter

	// mu orders the deadline changes of Read, cut and finish: once the
	// handler has returned, the connection may be reading its next
	// request, whose deadlines are not ours to change.
	mu       sync.Mutex
	done     bool // read whole, or ran into the deadline
	finished bool // the handler returned
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == nil {
		return n, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.done || b.finished:
	case errors.Is(err, io.EOF):
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.done = true
		b.timeouts.Inc()
	}
	return n, err
}

// cut ends a body still being read: the request's context is done.
func (b *deadlineBody) cut() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done && !b.finished {
		b.rc.SetReadDeadline(time.Now())
	}
}

// finish marks the handler as returned.
func (b *deadlineBody) finish() {
	b.mu.Lock()
	b.finished = true
	b.mu.Unlock()
}
