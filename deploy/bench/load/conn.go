package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// httpConn is a minimal HTTP/1.1 client for one kept-alive connection,
// written so that a request-response exchange costs one write, usually
// one read and no allocation: requests are prebuilt bytes, and the
// response is parsed in place in a reused buffer. It understands what a
// quorumq node sends (Content-Length or chunked bodies, Connection:
// close) and records the few headers the load modes need.
type httpConn struct {
	addr    string
	timeout time.Duration
	tls     *tls.Config // nil: plain TCP
	c       net.Conn
	buf     []byte // read buffer; buf[r:w] is unread
	r, w    int
}

// response is what do reports. The byte slices stay valid until the next
// exchange on the connection.
type response struct {
	status  int
	bodyLen int
	body    []byte // up to maxKeptBody bytes of the body
	msgID   []byte // X-Message-Id
	msgIDs  []byte // X-Message-Ids
	close   bool   // the server will close the connection
}

const (
	readBufSize = 64 << 10
	maxKeptBody = 64 << 10
)

var (
	errMalformed = errors.New("malformed HTTP response")
	errTooLarge  = errors.New("HTTP response header too large")
)

// newHTTPConn returns a connection to addr, over TLS verified with
// tlsConf when it is not nil.
func newHTTPConn(addr string, timeout time.Duration, tlsConf *tls.Config) *httpConn {
	return &httpConn{addr: addr, timeout: timeout, tls: tlsConf, buf: make([]byte, readBufSize)}
}

func (h *httpConn) dial() error {
	c, err := dialNode(h.addr, h.timeout, h.tls)
	if err != nil {
		return err
	}
	h.c, h.r, h.w = c, 0, 0
	return nil
}

// dialNode connects to addr without Nagle's delay and, with tlsConf,
// completes a TLS handshake that verifies the node's certificate for
// addr's host, both within timeout.
func dialNode(addr string, timeout time.Duration, tlsConf *tls.Config) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	if tlsConf == nil {
		return c, nil
	}
	conf := tlsConf.Clone()
	if conf.ServerName == "" {
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(c, conf)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS with %s: %w", addr, err)
	}
	return tc, nil
}

func (h *httpConn) Close() {
	if h.c != nil {
		h.c.Close()
		h.c = nil
	}
}

// do sends req (a complete HTTP/1.1 request) and reads the response into
// res. A connection that fails is closed; the next do dials again.
func (h *httpConn) do(req []byte, res *response) error {
	if h.c == nil {
		if err := h.dial(); err != nil {
			return err
		}
	}
	if h.timeout > 0 {
		// One deadline for the whole exchange; cheaper than one per call.
		h.c.SetDeadline(time.Now().Add(h.timeout))
	}
	if _, err := h.c.Write(req); err != nil {
		h.Close()
		return err
	}
	if err := h.readResponse(res); err != nil {
		h.Close()
		return err
	}
	if res.close {
		h.Close()
	}
	return nil
}

// fill reads more bytes into the buffer, compacting it first if needed.
func (h *httpConn) fill() error {
	if h.r > 0 && h.w == len(h.buf) {
		n := copy(h.buf, h.buf[h.r:h.w])
		h.r, h.w = 0, n
	}
	if h.w == len(h.buf) {
		return errTooLarge
	}
	n, err := h.c.Read(h.buf[h.w:])
	h.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// line returns the next CRLF-terminated line without the CRLF.
func (h *httpConn) line() ([]byte, error) {
	for {
		if i := bytes.IndexByte(h.buf[h.r:h.w], '\n'); i >= 0 {
			l := h.buf[h.r : h.r+i]
			h.r += i + 1
			return bytes.TrimSuffix(l, []byte{'\r'}), nil
		}
		if h.r > 0 {
			n := copy(h.buf, h.buf[h.r:h.w])
			h.r, h.w = 0, n
		}
		if err := h.fill(); err != nil {
			return nil, err
		}
	}
}

func (h *httpConn) readResponse(res *response) error {
	*res = response{body: res.body[:0], msgID: res.msgID[:0], msgIDs: res.msgIDs[:0]}
	// Header lines are parsed as they come and copied out where kept, so
	// the buffer may be compacted in between.
	status, err := h.line()
	if err != nil {
		return err
	}
	// "HTTP/1.1 200 OK"
	if len(status) < 12 || !bytes.HasPrefix(status, []byte("HTTP/1.")) {
		return fmt.Errorf("%w: status line %q", errMalformed, status)
	}
	code, err := strconv.Atoi(string(status[9:12])) // three digits: no allocation
	if err != nil {
		return fmt.Errorf("%w: status line %q", errMalformed, status)
	}
	http10 := status[7] == '0'
	res.status = code
	length, chunked := -1, false
	keepAlive := !http10
	for {
		l, err := h.line()
		if err != nil {
			return err
		}
		if len(l) == 0 {
			break
		}
		colon := bytes.IndexByte(l, ':')
		if colon <= 0 {
			return fmt.Errorf("%w: header %q", errMalformed, l)
		}
		name, value := l[:colon], bytes.TrimSpace(l[colon+1:])
		switch {
		case asciiEqualFold(name, "content-length"):
			n, ok := parseUint(value)
			if !ok {
				return fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
			length = n
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			switch {
			case asciiEqualFold(value, "close"):
				keepAlive = false
			case asciiEqualFold(value, "keep-alive"):
				keepAlive = true
			}
		case asciiEqualFold(name, "x-message-id"):
			res.msgID = append(res.msgID, value...)
		case asciiEqualFold(name, "x-message-ids"):
			res.msgIDs = append(res.msgIDs, value...)
		}
	}
	res.close = !keepAlive
	switch {
	case chunked:
		return h.readChunked(res)
	case length >= 0:
		return h.readBody(res, length)
	case code == 204 || code == 304 || code/100 == 1:
		return nil
	default:
		// Body until close: not something a node sends, but legal.
		res.close = true
		for {
			h.keep(res, h.buf[h.r:h.w])
			h.r = h.w
			if err := h.fill(); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
	}
}

func (h *httpConn) keep(res *response, b []byte) {
	res.bodyLen += len(b)
	if room := maxKeptBody - len(res.body); room > 0 {
		res.body = append(res.body, b[:min(room, len(b))]...)
	}
}

func (h *httpConn) readBody(res *response, n int) error {
	for n > 0 {
		if h.r == h.w {
			h.r, h.w = 0, 0
			if err := h.fill(); err != nil {
				return err
			}
		}
		k := min(n, h.w-h.r)
		h.keep(res, h.buf[h.r:h.r+k])
		h.r += k
		n -= k
	}
	return nil
}

func (h *httpConn) readChunked(res *response) error {
	for {
		l, err := h.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(l)), 16, 32)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, l)
		}
		if size == 0 {
			for { // trailers
				l, err := h.line()
				if err != nil {
					return err
				}
				if len(l) == 0 {
					return nil
				}
			}
		}
		if err := h.readBody(res, int(size)); err != nil {
			return err
		}
		if _, err := h.line(); err != nil {
			return err
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func parseUint(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
