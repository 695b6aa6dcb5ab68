package pubsub

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mode is how one subscriber's stream is framed. Publish frames each
// message once per mode in use and shares the bytes between subscribers.
type mode uint8

const (
	modeNewline          mode = iota // multipart=0, HTTP/1.0: "m\n"
	modeNewlineChunked               // multipart=0, HTTP/1.1: one chunk "m\n"
	modeMultipart                    // multipart, HTTP/1.0
	modeMultipartChunked             // multipart, HTTP/1.1
	modeWebSocket                    // one WebSocket message per message
	numModes
)

func streamMode(multipart, chunked bool) mode {
	switch {
	case multipart && chunked:
		return modeMultipartChunked
	case multipart:
		return modeMultipart
	case chunked:
		return modeNewlineChunked
	}
	return modeNewline
}

func (m mode) chunked() bool   { return m == modeNewlineChunked || m == modeMultipartChunked }
func (m mode) multipart() bool { return m == modeMultipart || m == modeMultipartChunked }

// Stream constants of the reference (spec 3.3).
const (
	boundary      = "xXPubSubXx"
	typeNewline   = "application/json"
	typeMultipart = "multipart/x-mixed-replace; boundary=" + boundary
	partHeader    = "content-type: */*\r\ncontent-length: "
	partTrailer   = "\r\n--" + boundary + "\r\n"
	firstNewline  = "\r\n"
	firstBoundary = "--" + boundary + "\r\n"
)

// frame returns the bytes that carry msg in mode m: a new slice that does
// not alias msg.
func frame(msg []byte, m mode) []byte {
	return appendFrame(make([]byte, 0, frameLen(len(msg), m)), msg, m)
}

// frameLen is the exact length of the frame of a message of n bytes.
func frameLen(n int, m mode) int {
	if m == modeWebSocket {
		return n
	}
	body := n + 1
	if m.multipart() {
		body = len(partHeader) + decimalLen(n) + 4 + n + len(partTrailer)
	}
	if m.chunked() {
		return hexLen(body) + 2 + body + 2
	}
	return body
}

// appendFrame appends the bytes that carry msg in mode m to b: exactly
// frameLen(len(msg), m) of them. A WebSocket frame is the message itself
// (the library adds the frame header as it writes).
func appendFrame(b, msg []byte, m mode) []byte {
	if m == modeWebSocket {
		return append(b, msg...)
	}
	if m.chunked() {
		body := len(msg) + 1
		if m.multipart() {
			body = len(partHeader) + decimalLen(len(msg)) + 4 + len(msg) + len(partTrailer)
		}
		b = strconv.AppendInt(b, int64(body), 16)
		b = append(b, "\r\n"...)
	}
	if m.multipart() {
		b = append(b, partHeader...)
		b = strconv.AppendInt(b, int64(len(msg)), 10)
		b = append(b, "\r\n\r\n"...)
		b = append(b, msg...)
		b = append(b, partTrailer...)
	} else {
		b = append(b, msg...)
		b = append(b, '\n')
	}
	if m.chunked() {
		b = append(b, "\r\n"...)
	}
	return b
}

// decimalLen and hexLen are the digits of n (n >= 0) in base 10 and 16.
func decimalLen(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

func hexLen(n int) int {
	d := 1
	for ; n >= 16; n >>= 4 {
		d++
	}
	return d
}

// finishChunk turns b, whose data starts at start after a reserved prefix,
// into one HTTP/1.1 chunk: "<hex size>\r\n" + data + "\r\n".
func finishChunk(b []byte, start int) []byte {
	var line [18]byte
	hdr := strconv.AppendInt(line[:0], int64(len(b)-start), 16)
	hdr = append(hdr, "\r\n"...)
	off := start - len(hdr)
	copy(b[off:], hdr)
	return append(b[off:], "\r\n"...)
}

// chunk frames data as one chunk when m is chunked.
func chunk(data string, m mode) []byte {
	if !m.chunked() {
		return []byte(data)
	}
	b := make([]byte, 18, 18+len(data)+2)
	b = append(b, data...)
	return finishChunk(b, 18)
}

// responseHead is the head of a /sub response as libevent 1.4 writes it
// (spec 3.3): status line with the request's version, the lowercase
// content-type header, Transfer-Encoding and Date for HTTP/1.1, and
// Connection: close when the request asked for it.
func responseHead(r *http.Request, m mode, now time.Time) []byte {
	b := make([]byte, 0, 160)
	b = append(b, "HTTP/"...)
	b = strconv.AppendInt(b, int64(r.ProtoMajor), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(r.ProtoMinor), 10)
	b = append(b, " 200 OK\r\ncontent-type: "...)
	if m.multipart() {
		b = append(b, typeMultipart...)
	} else {
		b = append(b, typeNewline...)
	}
	b = append(b, "\r\n"...)
	if m.chunked() {
		b = append(b, "Transfer-Encoding: chunked\r\nDate: "...)
		b = now.UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\n"...)
	}
	if hasToken(r.Header, "Connection", "close") {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// streamStart is what a new subscriber is sent after the head.
func streamStart(m mode) []byte {
	if m.multipart() {
		return chunk(firstBoundary, m)
	}
	return chunk(firstNewline, m)
}

// kickNotice is the raw line a kicked subscriber gets instead of its
// pending output.
func kickNotice(pending int64) []byte {
	b := append([]byte(nil), "ERROR_TOO_SLOW. kicked for having "...)
	b = strconv.AppendInt(b, pending, 10)
	return append(b, " pending bytes\n"...)
}

// hasToken reports whether a comma-separated header lists token, ignoring
// case (Connection: close, Upgrade: websocket).
func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return hasToken(r.Header, "Upgrade", "websocket")
}
