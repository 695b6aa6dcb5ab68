package leanhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"time"
)

const (
	// bufSize is each connection's read and write buffer: a request head
	// of common size, and many small answers, fit in one.
	bufSize = 4 << 10
	// maxDiscard is how much of a request body the handler left unread is
	// skipped to keep the connection; past it the connection closes, as
	// net/http does.
	maxDiscard = 256 << 10
	// maxInterned bounds the header values a connection remembers.
	maxInterned = 64
)

// errHandOver says the request goes to net/http, with the connection.
var errHandOver = errors.New("leanhttp: hand over")

// conn is one client connection served here.
type conn struct {
	s      *Server
	rwc    net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	remote string
	// head holds the raw bytes of the request head being read: handed
	// over, net/http reads them first.
	head []byte
	// interned keeps header values this client sent before (the same
	// User-Agent, Accept, Authorization on every request), so that they
	// are not allocated again.
	interned map[string]string
	// keys is scratch space for sorting response header keys.
	keys []string
}

func newConn(s *Server, c net.Conn) *conn {
	return &conn{
		s:        s,
		rwc:      c,
		br:       bufio.NewReaderSize(c, bufSize),
		bw:       bufio.NewWriterSize(c, bufSize),
		remote:   c.RemoteAddr().String(),
		interned: make(map[string]string),
	}
}

// serve answers the connection's requests in order until it closes, is
// hijacked or is handed over.
func (c *conn) serve() {
	for {
		if !c.s.setIdle(c, true) {
			c.close()
			return
		}
		if err := c.awaitRequest(); err != nil {
			c.close()
			return
		}
		if !c.s.setIdle(c, false) {
			c.close()
			return
		}
		var head http.Request
		err := c.readRequest(&head)
		switch {
		case errors.Is(err, errHandOver):
			c.handOver()
			return
		case err != nil:
			c.close()
			return
		}
		w, served := c.serveRequest(&head)
		if !served {
			c.handOver()
			return
		}
		if w.hijacked {
			c.s.forget(c)
			return
		}
		if w.closeAfter || !w.discardBody() {
			c.bw.Flush()
			c.close()
			return
		}
		// Pipelined requests already here are answered before the
		// answers are written, in one write.
		if !c.headBuffered() {
			if err := c.bw.Flush(); err != nil {
				c.close()
				return
			}
		}
	}
}

// awaitRequest waits up to IdleTimeout for the first byte of a request
// and returns an error when none comes or the connection ends.
func (c *conn) awaitRequest() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	c.rwc.SetReadDeadline(time.Now().Add(c.s.o.IdleTimeout))
	_, err := c.br.Peek(1)
	return err
}

// headBuffered reports whether a whole request head is already buffered.
func (c *conn) headBuffered() bool {
	n := c.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.br.Peek(n)
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

func (c *conn) close() {
	c.rwc.Close()
	c.s.forget(c)
}

// handOver gives the connection to net/http, which reads the head read so
// far and whatever is buffered before the rest.
func (c *conn) handOver() {
	c.rwc.SetReadDeadline(time.Time{})
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			c.close()
			return
		}
	}
	buffered, _ := c.br.Peek(c.br.Buffered())
	prefix := append(append([]byte(nil), c.head...), buffered...)
	c.s.handOver(c, &prefixConn{Conn: c.rwc, prefix: prefix})
}

// readRequest reads one request head into req, with its body still to be
// read. errHandOver: net/http must answer it.
func (c *conn) readRequest(req *http.Request) error {
	c.rwc.SetReadDeadline(time.Now().Add(c.s.o.HeaderTimeout))
	if err := c.readHead(); err != nil {
		return err
	}
	if err := c.parseHead(req); err != nil {
		return err
	}
	c.rwc.SetReadDeadline(time.Time{})
	return nil
}

// readHead reads up to the blank line that ends a head into c.head.
func (c *conn) readHead() error {
	c.head = c.head[:0]
	lineStart := 0
	for {
		b, err := c.br.ReadSlice('\n')
		c.head = append(c.head, b...)
		if len(c.head) > c.s.o.MaxHeaderBytes {
			return errHandOver // net/http answers 431
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return err
		}
		line := c.head[lineStart:]
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			if lineStart == 0 {
				// Blank lines before a request line: net/http skips them.
				return errHandOver
			}
			return nil
		}
		lineStart = len(c.head)
	}
}

// parseHead parses c.head. Whatever it would answer differently from
// net/http, or does not handle, is errHandOver.
func (c *conn) parseHead(req *http.Request) error {
	head := c.head
	line, rest, ok := cutLine(head)
	if !ok {
		return errHandOver
	}
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	uri, proto, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || !isToken(method) || len(uri) == 0 || uri[0] != '/' || string(proto) != "HTTP/1.1" {
		return errHandOver
	}

	// Count the header lines first, for one backing array of values.
	n := bytes.Count(rest, []byte("\n")) - 1
	values := make([]string, 0, max(n, 0))
	h := make(http.Header, max(n, 0))
	var (
		host     string
		hostSeen bool
		length   int64
		lenSeen  bool
		close    bool
	)
	for {
		var kv []byte
		kv, rest, ok = cutLine(rest)
		if !ok {
			return errHandOver
		}
		if len(kv) == 0 {
			break
		}
		k, v, ok := bytes.Cut(kv, []byte(":"))
		if !ok || !isToken(k) {
			return errHandOver // folded lines, bad names: net/http decides
		}
		v = trimOWS(v)
		if !validValue(v) {
			return errHandOver
		}
		key := canonicalKey(k)
		switch key {
		case "Host":
			if hostSeen {
				return errHandOver
			}
			host, hostSeen = c.intern(v), true
			continue // net/http keeps it in Request.Host only
		case "Content-Length":
			l, err := strconv.ParseUint(string(v), 10, 63)
			if lenSeen || err != nil || len(v) == 0 || v[0] == '+' {
				return errHandOver
			}
			length, lenSeen = int64(l), true
		case "Transfer-Encoding", "Expect", "Upgrade":
			return errHandOver
		case "Connection":
			if hasToken(v, "close") {
				close = true
			}
			if hasToken(v, "upgrade") {
				return errHandOver
			}
		}
		values = append(values, c.intern(v))
		if old, ok := h[key]; ok {
			h[key] = append(old, values[len(values)-1])
		} else {
			h[key] = values[len(values)-1 : len(values) : len(values)]
		}
	}
	if !hostSeen {
		return errHandOver // net/http answers 400
	}
	requestURI := string(uri)
	u, err := url.ParseRequestURI(requestURI)
	if err != nil {
		return errHandOver
	}
	body := io.ReadCloser(http.NoBody)
	if length > 0 {
		body = &bodyReader{r: c.br, left: length}
	}
	*req = http.Request{
		Method:        c.intern(method),
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: length,
		Close:         close,
		Host:          host,
		RemoteAddr:    c.remote,
		RequestURI:    requestURI,
	}
	return nil
}

// serveRequest runs the handler on the request read into head and
// finishes its answer; served is false when Options.Lean refused it.
func (c *conn) serveRequest(head *http.Request) (w *response, served bool) {
	ctx, cancel := context.WithCancel(c.s.o.BaseContext)
	defer cancel()
	req := head.WithContext(ctx)
	if lean := c.s.o.Lean; lean != nil && !lean(req) {
		return nil, false
	}
	w = newResponse(c, req)
	c.s.h.ServeHTTP(w, req)
	if !w.hijacked {
		w.finish()
	}
	return w, true
}

// intern returns b as a string, shared with the previous requests of the
// connection that sent the same bytes.
func (c *conn) intern(b []byte) string {
	if s, ok := c.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(c.interned) < maxInterned && len(b) <= 256 {
		c.interned[s] = s
	}
	return s
}

// cutLine returns the line before the first CRLF and what follows; a
// bare LF is not taken (net/http decides).
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

// commonKeys are the canonical forms of the header names clients send
// most, looked up without allocating.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{
		"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection",
		"Content-Length", "Content-Type", "Authorization", "Origin", "Referer", "Cookie",
		"X-Quorumq-Forwarded-By", "X-Quorumq-Hop", "X-Forwarded-For", "Traceparent",
	} {
		m[k] = k
		m[string(bytes.ToLower([]byte(k)))] = k
	}
	return m
}()

func canonicalKey(k []byte) string {
	if s, ok := commonKeys[string(k)]; ok {
		return s
	}
	return textproto.CanonicalMIMEHeaderKey(string(k))
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if ch >= 0x80 || !tokenChars[ch] {
			return false
		}
	}
	return true
}

var tokenChars = func() (t [128]bool) {
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch] = true
		t[ch-'a'+'A'] = true
	}
	for _, ch := range "!#$%&'*+-.^_`|~" {
		t[ch] = true
	}
	return t
}()

// validValue: no control characters but tab, as net/http requires.
func validValue(v []byte) bool {
	for _, ch := range v {
		if (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	return bytes.TrimFunc(b, func(r rune) bool { return r == ' ' || r == '\t' })
}

// hasToken reports whether the comma-separated list v holds token,
// case-insensitively.
func hasToken(v []byte, token string) bool {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if bytes.EqualFold(trimOWS(part), []byte(token)) {
			return true
		}
	}
	return false
}

// bodyReader is a request body of a known length.
type bodyReader struct {
	r      *bufio.Reader
	left   int64
	closed bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left > 0 && errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if b.left == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}

func (b *bodyReader) Close() error {
	b.closed = true
	return nil
}

// prefixConn is a handed-over connection: prefix is read before the rest.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// NetConn returns the connection below, for socket options.
func (p *prefixConn) NetConn() net.Conn { return p.Conn }
