package leanhttp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bufferBeforeChunking is net/http's: an answer whose handler wrote at most
// this much before returning gets a Content-Length; a longer one, or one
// flushed early, without a Content-Length from the handler is chunked.
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of one request. It writes what
// net/http writes for the same calls: the handler's headers in key order,
// then Date, Content-Length, Content-Type and Connection as net/http adds
// them.
type response struct {
	c      *conn
	req    *http.Request
	body   *bodyReader // nil without a body
	header http.Header

	status      int
	wroteHeader bool // the status is fixed
	committed   bool // the head is written to the connection's buffer
	// buf holds the body until the head is written; then out, net/http's
	// buffer of the same size over the body's framing, so that chunks
	// are cut where net/http cuts them.
	buf []byte
	out *bufio.Writer
	// length is the handler's Content-Length, -1 without one.
	length  int64
	written int64
	chunked bool
	// noBody: a HEAD request, or a status that has no body.
	noBody     bool
	closeAfter bool
	hijacked   bool
	done       bool
	err        error // the first write error
}

func newResponse(c *conn, req *http.Request) *response {
	w := &response{c: c, req: req, header: make(http.Header, 4), length: -1, closeAfter: req.Close}
	if b, ok := req.Body.(*bodyReader); ok {
		w.body = b
	}
	return w
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || w.hijacked {
		return
	}
	if code < 100 || code > 999 {
		panic("leanhttp: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		return // no informational answers here: nothing sends them
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	w.noBody = w.req.Method == http.MethodHead || !bodyAllowed(code)
}

func (w *response) Write(p []byte) (int, error) {
	if w.hijacked {
		return 0, http.ErrHijacked
	}
	if w.done {
		return 0, errors.New("leanhttp: write after the handler returned")
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if !w.committed {
		if len(w.buf)+len(p) <= bufferBeforeChunking {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	return len(p), w.writeOut(p)
}

// writeOut writes p, after the head, through out.
func (w *response) writeOut(p []byte) error {
	if w.out == nil {
		w.out = outPool.Get().(*bufio.Writer)
		w.out.Reset(framer{w})
		buf := w.buf
		w.buf = nil
		w.out.Write(buf)
	}
	w.out.Write(p)
	return w.err
}

// release returns out to its pool.
func (w *response) release() {
	if w.out != nil {
		w.out.Reset(nil)
		outPool.Put(w.out)
		w.out = nil
	}
}

var outPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufferBeforeChunking) }}

// framer writes the body to the connection: as chunks when chunked,
// nowhere for HEAD.
type framer struct{ w *response }

func (f framer) Write(p []byte) (int, error) {
	w := f.w
	if w.err != nil {
		return 0, w.err
	}
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		_, w.err = bw.WriteString("\r\n")
	} else {
		_, w.err = bw.Write(p)
	}
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// commit writes the head. final: the handler has returned, and the
// buffered body, written here too, is all of it. next is what the handler
// is writing, for sniffing the type when nothing is buffered.
func (w *response) commit(final bool, next []byte) {
	if w.committed {
		return
	}
	w.committed = true
	h := w.header
	var length, contentType, connection, transfer string
	_, hasType := h["Content-Type"]
	hasTE := h.Get("Transfer-Encoding") != ""

	// The body the handler left unread: skipped now when short, else the
	// connection closes after this answer (net/http's rule).
	if w.body != nil && w.body.left > maxDiscard {
		w.closeAfter = true
	}
	switch {
	case w.length >= 0:
	case final && bodyAllowed(w.status) && !hasTE && (w.req.Method != http.MethodHead || len(w.buf) > 0):
		length = strconv.Itoa(len(w.buf))
	case !final && bodyAllowed(w.status) && !hasTE && w.req.Method != http.MethodHead:
		w.chunked, transfer = true, "chunked"
	case !bodyAllowed(w.status):
	}
	first := w.buf
	if len(first) == 0 {
		first = next
	}
	if !hasType && bodyAllowed(w.status) && !hasTE && len(first) > 0 {
		contentType = http.DetectContentType(first)
	}
	handlerCloses := hasToken([]byte(h.Get("Connection")), "close")
	if handlerCloses || w.c.s.isClosing() {
		w.closeAfter = true
	}
	if w.closeAfter && !handlerCloses {
		connection = "close"
	}
	if hasTE {
		// A handler's own Transfer-Encoding is not one this writer frames.
		h.Del("Transfer-Encoding")
	}

	bw := w.c.bw
	writeStatusLine(bw, w.status)
	w.writeHeaders(bw)
	if _, ok := h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(httpDate())
		bw.WriteString("\r\n")
	}
	for _, kv := range [...][2]string{{"Content-Length", length}, {"Content-Type", contentType}, {"Connection", connection}, {"Transfer-Encoding", transfer}} {
		if kv[1] != "" {
			bw.WriteString(kv[0])
			bw.WriteString(": ")
			bw.WriteString(kv[1])
			bw.WriteString("\r\n")
		}
	}
	_, w.err = bw.WriteString("\r\n")
	if final {
		framer{w}.Write(w.buf)
		w.buf = nil
	}
}

// writeHeaders writes the handler's headers sorted by key, as net/http's
// Header.Write does, with line breaks in values made spaces.
func (w *response) writeHeaders(bw *bufio.Writer) {
	keys := w.c.keys[:0]
	for k := range w.header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range w.header[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = newlineToSpace.Replace(v)
			}
			bw.WriteString(strings.TrimSpace(v))
			bw.WriteString("\r\n")
		}
	}
	w.c.keys = keys[:0]
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ")

// finish completes the answer after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commit(true, nil)
	w.done = true
	if w.out != nil {
		w.out.Flush()
		w.release()
	}
	if w.chunked {
		_, err := w.c.bw.WriteString("0\r\n\r\n")
		if w.err == nil {
			w.err = err
		}
	}
	if w.length >= 0 && w.written != w.length && !w.noBody {
		w.closeAfter = true // the client would wait for the rest
	}
	if w.err != nil {
		w.closeAfter = true
	}
}

// discardBody skips what the handler left of the request body; false
// when the connection cannot be kept.
func (w *response) discardBody() bool {
	if w.body == nil || w.body.left == 0 {
		return true
	}
	if w.body.left > maxDiscard {
		return false
	}
	w.c.rwc.SetReadDeadline(time.Now().Add(w.c.s.o.HeaderTimeout))
	n, err := w.c.br.Discard(int(w.body.left))
	w.body.left -= int64(n)
	return err == nil
}

// Flush sends what is buffered, the head first (then chunked when the
// handler gave no Content-Length).
func (w *response) Flush() { w.FlushError() }

// FlushError is Flush, for http.ResponseController.
func (w *response) FlushError() error {
	if w.hijacked {
		return http.ErrHijacked
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.commit(false, nil)
	if len(w.buf) > 0 || w.out != nil {
		w.writeOut(nil)
		w.out.Flush()
	}
	if w.err != nil {
		return w.err
	}
	w.err = w.c.bw.Flush()
	return w.err
}

// Hijack hands the connection to the handler, with what is buffered of
// the request (and of the answer, flushed first).
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked || w.done {
		return nil, nil, http.ErrHijacked
	}
	if w.wroteHeader {
		w.FlushError()
	}
	w.release()
	if err := w.c.bw.Flush(); err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	w.c.rwc.SetDeadline(time.Time{})
	return w.c.rwc, bufio.NewReadWriter(w.c.br, w.c.bw), nil
}

func (w *response) SetReadDeadline(t time.Time) error  { return w.c.rwc.SetReadDeadline(t) }
func (w *response) SetWriteDeadline(t time.Time) error { return w.c.rwc.SetWriteDeadline(t) }

var _ interface {
	http.ResponseWriter
	http.Flusher
	http.Hijacker
	FlushError() error
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
} = (*response)(nil)

// bodyAllowed is net/http's rule: 1xx, 204 and 304 have no body.
func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// statusLines caches the status lines of the common codes.
var statusLines = func() map[int]string {
	m := make(map[int]string)
	for code := 200; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			m[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return m
}()

func writeStatusLine(bw *bufio.Writer, code int) {
	if line, ok := statusLines[code]; ok {
		bw.WriteString(line)
		return
	}
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " status code " + strconv.Itoa(code) + "\r\n")
}

// httpDate is the Date header's value, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	sec := now.Unix()
	if d := dateCache.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &date{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}

type date struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[date]

var _ io.Writer = (*response)(nil)
