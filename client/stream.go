package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Stream errors.
var (
	// ErrIdleTimeout: the stream delivered no byte for
	// SubscribeOptions.IdleTimeout.
	ErrIdleTimeout = errors.New("stream idle timeout")
	// ErrMessageTooLarge: a line longer than
	// SubscribeOptions.MaxMessageSize; the stream is closed.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrMultipart: the server answered a multipart stream; this package
	// reads the newline mode only (add multipart=0 to the URL).
	ErrMultipart = errors.New("multipart stream: add multipart=0 to the URL")
)

// Defaults of SubscribeOptions.
const (
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultMaxMessageSize = 16 << 20
)

// SubscribeOptions configures Subscribe. The zero value of each field
// means its default; a nil *SubscribeOptions means all defaults.
type SubscribeOptions struct {
	// HTTPClient sends the request. Default: this package's client (see
	// NewTransport); its Timeout must be zero.
	HTTPClient *http.Client
	// HeaderTimeout bounds connecting and receiving the response head.
	// Default DefaultHeaderTimeout.
	HeaderTimeout time.Duration
	// IdleTimeout, when positive, fails the stream with ErrIdleTimeout
	// once it has delivered no byte for that long. Pubsub sends nothing
	// while nobody publishes, so only use it when the publishers send
	// heartbeats; a dead peer is noticed by TCP keep-alive anyway (about
	// 30 s with this package's transport).
	IdleTimeout time.Duration
	// MaxMessageSize bounds one message. Default DefaultMaxMessageSize.
	MaxMessageSize int
	// Token, when not "", is sent as "Authorization: Bearer <token>".
	// Pubsub.SubscribeTopic sends its Options.Token when this is "".
	Token string
}

// Stream is a pubsub subscription in newline mode (/sub?multipart=0). It
// is not safe for concurrent use; Close may be called from any goroutine.
//
// Framing rule: the server sends "\r\n" once at connect, then each message
// followed by "\n" (over HTTP/1.1 chunked encoding, which the transport
// removes, or a raw HTTP/1.0 stream). A message is everything between two
// "\n": a "\r" is part of the message (pubsub's /pub splits bodies on "\n"
// only, so "a\r\nb" publishes "a\r" and "b"). The first line of a
// connection is dropped when it is exactly "\r" (the connect preamble).
// An unterminated last line at the end of the stream is incomplete and is
// dropped.
type Stream struct {
	// URL is the subscription URL, with any token= value redacted (see
	// RedactURL).
	URL string
	// ServedBy is the X-Served-By header of the answer, if any.
	ServedBy string

	body    io.ReadCloser
	br      *bufio.Reader
	ctx     context.Context
	cancel  context.CancelFunc
	idle    *idleReader
	max     int
	started bool
	err     error
}

// Subscribe opens the newline-mode stream at rawURL, a full /sub URL such
// as "http://127.0.0.1:8080/sub?multipart=0". The URL is requested as
// given. A connection that cannot be made is api.ErrUnavailable; a non-200
// answer is an *HTTPError; a multipart answer is ErrMultipart. The stream
// ends when ctx is done or Close is called.
func Subscribe(ctx context.Context, rawURL string, opts *SubscribeOptions) (*Stream, error) {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	shown := RedactURL(rawURL)
	sctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, rawURL, nil)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %v", api.ErrBadRequest, RedactError(err))
	}
	req.Header.Set("User-Agent", userAgent)
	SetToken(req, o.Token)
	var headerLate atomic.Bool
	t := time.AfterFunc(o.HeaderTimeout, func() {
		headerLate.Store(true)
		cancel()
	})
	resp, err := o.HTTPClient.Do(req)
	if !t.Stop() && err == nil {
		// The timer fired as the answer came: the stream is already
		// cancelled.
		resp.Body.Close()
		err = context.DeadlineExceeded
	}
	if err != nil {
		cancel()
		if headerLate.Load() && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s: %w", o.HeaderTimeout, err)
		}
		return nil, fmt.Errorf("quorumq: subscribe %s: %w: %w", shown, api.ErrUnavailable, RedactError(err))
	}
	fail := func(err error) (*Stream, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fail(newHTTPError(resp.StatusCode, resp.Header, body, shown))
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(strings.ToLower(ct), "multipart/") {
		return fail(fmt.Errorf("quorumq: subscribe %s: %w", shown, ErrMultipart))
	}
	s := &Stream{
		URL:      shown,
		ServedBy: resp.Header.Get(api.HeaderServedBy),
		body:     resp.Body,
		ctx:      ctx,
		cancel:   cancel,
		max:      o.MaxMessageSize,
	}
	var r io.Reader = resp.Body
	if o.IdleTimeout > 0 {
		s.idle = newIdleReader(resp.Body, o.IdleTimeout, cancel)
		r = s.idle
	}
	s.br = bufio.NewReaderSize(r, 64<<10)
	return s, nil
}

// Next returns the next message, a new slice without the final "\n". At
// the end of the stream it returns io.EOF (the server ended the stream
// cleanly) or another error: io.ErrUnexpectedEOF when the connection was
// cut, ErrIdleTimeout, ErrMessageTooLarge, ctx.Err() after the context
// ended. Once Next failed it keeps failing; subscribe again.
func (s *Stream) Next() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		line, err := s.readLine()
		if err != nil {
			s.err = s.streamError(err)
			s.Close()
			return nil, s.err
		}
		if !s.started {
			s.started = true
			if len(line) == 1 && line[0] == '\r' {
				continue
			}
		}
		return line, nil
	}
}

func (s *Stream) readLine() ([]byte, error) {
	var acc []byte
	for {
		frag, err := s.br.ReadSlice('\n')
		if len(acc)+len(frag) > s.max+1 {
			return nil, fmt.Errorf("%w: a message is longer than %d bytes", ErrMessageTooLarge, s.max)
		}
		switch err {
		case nil:
			if acc == nil {
				return bytes.Clone(frag[:len(frag)-1]), nil
			}
			acc = append(acc, frag...)
			return acc[:len(acc)-1], nil
		case bufio.ErrBufferFull:
			acc = append(acc, frag...)
		case io.EOF:
			if len(acc)+len(frag) > 0 {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

func (s *Stream) streamError(err error) error {
	switch {
	case s.idle != nil && s.idle.fired.Load():
		return fmt.Errorf("quorumq: %s: %w: nothing received for %s", s.URL, ErrIdleTimeout, s.idle.d)
	case s.ctx.Err() != nil:
		return s.ctx.Err()
	case err == io.EOF:
		return io.EOF
	}
	return fmt.Errorf("quorumq: %s: %w", s.URL, err)
}

// Close ends the stream. Next then fails.
func (s *Stream) Close() error {
	s.cancel()
	if s.idle != nil {
		s.idle.timer.Stop()
	}
	return s.body.Close()
}

// idleReader cancels the stream when no byte arrived for d.
type idleReader struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newIdleReader(r io.Reader, d time.Duration, cancel context.CancelFunc) *idleReader {
	ir := &idleReader{r: r, d: d}
	ir.timer = time.AfterFunc(d, func() {
		ir.fired.Store(true)
		cancel()
	})
	return ir
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 && !ir.fired.Load() {
		ir.timer.Reset(ir.d)
	}
	return n, err
}
