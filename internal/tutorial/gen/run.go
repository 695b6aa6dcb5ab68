package gen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/wait"
)

// Mode is how messages are sent, chosen from the target URL's path.
type Mode int

const (
	// ModePub: a pubsub /pub, a newline-separated batch per request.
	ModePub Mode = iota + 1
	// ModeMPut: a queue /mput, a newline-separated batch per request.
	ModeMPut
	// ModePut: a queue /put, one message per request.
	ModePut
	// ModeWrite: no request; every message is written to SendConfig.Out as a
	// line (target "-").
	ModeWrite
)

func (m Mode) String() string {
	switch m {
	case ModePub:
		return "/pub"
	case ModeMPut:
		return "/mput"
	case ModePut:
		return "/put"
	case ModeWrite:
		return "-"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ModeOf returns the mode of a target URL: its path starts with /pub,
// /mput or /put (prefix globs, as the servers route); "-" is ModeWrite.
func ModeOf(target string) (Mode, error) {
	if target == "-" {
		return ModeWrite, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return 0, invalid(fmt.Errorf("gen: target %q: %v", client.RedactURL(target), client.RedactError(err)))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, invalid(fmt.Errorf("gen: target %q: want http://host:port/pub, /put or /mput", client.RedactURL(target)))
	}
	switch p := u.Path; {
	case strings.HasPrefix(p, "/pub"):
		return ModePub, nil
	case strings.HasPrefix(p, "/mput"):
		return ModeMPut, nil
	case strings.HasPrefix(p, "/put"):
		return ModePut, nil
	}
	return 0, invalid(fmt.Errorf("gen: target %q: the path must be /pub, /put or /mput", client.RedactURL(target)))
}

// Clock is the time source of Run (a fake one in tests).
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx ends (then it returns ctx.Err()).
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the clock of the machine.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits d or until ctx ends.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d) }

// Defaults of SendConfig (DefaultSendConfig).
const (
	DefaultBatch          = 100
	DefaultPutConcurrency = 8
	DefaultRetries        = 10
	DefaultProgress       = 2 * time.Second
	DefaultRequestTimeout = 30 * time.Second
)

// DefaultBackoff spaces the retries of a request: 50ms doubling to 2s,
// jittered.
var DefaultBackoff = client.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}

// SendConfig says where and how fast Run sends. Start from
// DefaultSendConfig; Run only validates.
type SendConfig struct {
	// To is the target: http://host:port/pub (with topic= if wanted),
	// /mput or /put (with queue=), or "-" to write the messages to Out, one
	// per line, at the times they would be sent.
	To  string
	Out io.Writer
	// N stops after N messages (0: when the source ends, or never).
	N int64
	// Rate bounds the messages per second (0: as fast as possible).
	Rate float64
	// Speed scales a timed source's clock: 1 real time, 10 ten times
	// faster, 0 as fast as possible.
	Speed float64
	// Batch is the most messages in one /pub or /mput request, at least 1.
	// A paced stream sends what is due, up to Batch.
	Batch int
	// Concurrency is the number of requests in flight; 0: 1 for /pub and
	// /mput (the stream stays in order), DefaultPutConcurrency for /put.
	Concurrency int
	// Retries bounds the retries of one request; 0 or -1: none.
	Retries int
	// Backoff spaces the retries.
	Backoff client.Backoff
	// NoIdempotencyKey leaves id= off /put and /mput requests.
	NoIdempotencyKey bool
	// Progress is the interval of the progress line on Stderr (<= 0:
	// none). The final line is always written.
	Progress time.Duration
	Stderr   io.Writer
	// HTTPClient sends the requests, each bounded by RequestTimeout. nil:
	// client.NewHTTPClient(TLS).
	HTTPClient     *http.Client
	RequestTimeout time.Duration
	// Token, when set, goes with every request as a bearer token. TLS,
	// when set, verifies an HTTPS target (the cluster CA) and makes To an
	// https:// URL (client.HTTPS).
	Token string
	TLS   *tls.Config
	// Clock is the time source.
	Clock Clock
}

// DefaultSendConfig returns the defaults: timed sources at real time
// (Speed 1), batches of DefaultBatch, the
// mode's concurrency, DefaultRetries retries spaced by DefaultBackoff, a
// progress line every DefaultProgress to nowhere, requests bounded by
// DefaultRequestTimeout over the client package's pooled transport (made
// by Run, with TLS), the real clock. To and Out are left to the caller.
func DefaultSendConfig() SendConfig {
	return SendConfig{
		Speed:          1,
		Batch:          DefaultBatch,
		Retries:        DefaultRetries,
		Backoff:        DefaultBackoff,
		Progress:       DefaultProgress,
		Stderr:         io.Discard,
		RequestTimeout: DefaultRequestTimeout,
		Clock:          RealClock{},
	}
}

// validate returns the mode of c.To, or an error wrapping ErrInvalid.
func (c SendConfig) validate() (Mode, error) {
	mode, err := ModeOf(c.To)
	if err != nil {
		return 0, err
	}
	switch {
	case c.N < 0:
		err = fmt.Errorf("gen: --n=%d must not be negative", c.N)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		err = fmt.Errorf("gen: --rate=%v: want a finite rate >= 0", c.Rate)
	case c.Speed < 0 || math.IsNaN(c.Speed) || math.IsInf(c.Speed, 0):
		err = fmt.Errorf("gen: --speed=%v: want a finite speed >= 0", c.Speed)
	case c.Batch < 1:
		err = fmt.Errorf("gen: --batch=%d: want at least 1", c.Batch)
	case c.Concurrency < 0:
		err = fmt.Errorf("gen: --concurrency=%d must not be negative", c.Concurrency)
	case c.Retries < -1:
		err = fmt.Errorf("gen: --retries=%d: want -1 (none) or more", c.Retries)
	case c.Backoff.Min <= 0 || c.Backoff.Max < c.Backoff.Min:
		err = fmt.Errorf("gen: backoff %v to %v: want 0 < min <= max", c.Backoff.Min, c.Backoff.Max)
	case c.RequestTimeout <= 0:
		err = fmt.Errorf("gen: request timeout %v must be positive", c.RequestTimeout)
	case c.Clock == nil || c.Stderr == nil:
		err = errors.New("gen: no clock or stderr")
	case mode == ModeWrite && c.Out == nil:
		err = errors.New("gen: target \"-\" needs an output")
	}
	if err != nil {
		return 0, invalid(err)
	}
	return mode, nil
}

// Stats counts what Run did.
type Stats struct {
	// Sent counts messages the target accepted (2xx).
	Sent int64
	// Failed counts messages given up on after the retries, or refused
	// (4xx other than 429).
	Failed int64
	// Requests counts requests made, Retries those that were retries.
	Requests int64
	Retries  int64
	Elapsed  time.Duration
}

// Rate is the messages sent per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

func (s Stats) String() string {
	return fmt.Sprintf("sent=%d rate=%.0f/s failed=%d requests=%d retries=%d elapsed=%s",
		s.Sent, s.Rate(), s.Failed, s.Requests, s.Retries, s.Elapsed.Round(time.Millisecond))
}

// ErrFailed is returned by Run when some messages could not be sent.
var ErrFailed = errors.New("gen: some messages could not be sent")

// Run sends the messages of src to cfg.To until src ends, cfg.N messages
// were handed out, or ctx ends, and returns the counts. It returns an
// error wrapping ErrInvalid for a bad cfg, or wrapping ErrFailed when
// messages failed; ctx's error is not returned (stopping is normal).
func Run(ctx context.Context, cfg SendConfig, src Source) (Stats, error) {
	mode, err := cfg.validate()
	if err != nil {
		return Stats{}, err
	}
	if mode == ModePut {
		cfg.Batch = 1
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = client.NewHTTPClient(cfg.TLS)
	}
	if cfg.TLS != nil && mode != ModeWrite {
		cfg.To = client.HTTPS(cfg.To)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 1
		if mode == ModePut {
			cfg.Concurrency = DefaultPutConcurrency
		}
	}
	// Several senders report failures at once; the caller's writer need
	// not be safe for that.
	cfg.Stderr = &lockedWriter{w: cfg.Stderr}
	s := &sender{cfg: cfg, mode: mode, runID: runID()}
	return s.run(ctx, Limit(src, cfg.N))
}

// lockedWriter serializes writes, so report lines never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type sender struct {
	cfg   SendConfig
	mode  Mode
	runID string
	seq   atomic.Int64

	sent, failed, requests, retries atomic.Int64
}

func runID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *sender) stats(start time.Time) Stats {
	return Stats{Sent: s.sent.Load(), Failed: s.failed.Load(), Requests: s.requests.Load(),
		Retries: s.retries.Load(), Elapsed: s.cfg.Clock.Now().Sub(start)}
}

func (s *sender) run(ctx context.Context, src Source) (Stats, error) {
	clock := s.cfg.Clock
	start := clock.Now()
	batches := make(chan [][]byte, s.cfg.Concurrency)
	var wg sync.WaitGroup
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for b := range batches {
				s.send(sendCtx, b)
			}
		})
	}
	progressDone := make(chan struct{})
	stopProgress := make(chan struct{})
	go func() {
		defer close(progressDone)
		if s.cfg.Progress <= 0 {
			return
		}
		t := time.NewTicker(s.cfg.Progress)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(s.cfg.Stderr, "gen: %v\n", s.stats(start))
			}
		}
	}()

	s.produce(ctx, src, start, batches)
	close(batches)
	// Requests in flight finish (with their retries) even when ctx ended,
	// bounded by their timeouts; a second interrupt kills the process.
	wg.Wait()
	close(stopProgress)
	<-progressDone
	st := s.stats(start)
	fmt.Fprintf(s.cfg.Stderr, "gen: done: %v\n", st)
	if st.Failed > 0 {
		return st, fmt.Errorf("%w: %d failed", ErrFailed, st.Failed)
	}
	return st, nil
}

// produce paces the source into batches: message i is due at i/Rate and,
// for a timed source, at At/Speed; a batch holds the messages due when it
// starts, up to Batch.
func (s *sender) produce(ctx context.Context, src Source, start time.Time, out chan<- [][]byte) {
	clock := s.cfg.Clock
	var i int64
	due := func(m Message) time.Duration {
		var d time.Duration
		if s.cfg.Rate > 0 {
			d = time.Duration(float64(i) / s.cfg.Rate * float64(time.Second))
		}
		if m.Timed && s.cfg.Speed > 0 {
			d = max(d, time.Duration(float64(m.At)/s.cfg.Speed))
		}
		return d
	}
	next, ok := src.Next()
	for ok && ctx.Err() == nil {
		if wait := due(next) - clock.Now().Sub(start); wait > 0 {
			if clock.Sleep(ctx, wait) != nil {
				return
			}
		}
		batch := make([][]byte, 0, s.cfg.Batch)
		for ok && len(batch) < s.cfg.Batch && due(next) <= clock.Now().Sub(start) {
			batch = append(batch, next.Data)
			i++
			next, ok = src.Next()
		}
		if s.mode == ModeWrite {
			s.write(batch)
			continue
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return
		}
	}
}

// write is ModeWrite's send: synchronous, so the lines come out at their
// due times.
func (s *sender) write(batch [][]byte) {
	s.requests.Add(1)
	var b bytes.Buffer
	for _, m := range batch {
		b.Write(m)
		b.WriteByte('\n')
	}
	if _, err := s.cfg.Out.Write(b.Bytes()); err != nil {
		s.failed.Add(int64(len(batch)))
		return
	}
	s.sent.Add(int64(len(batch)))
}

// send delivers one batch with retries.
func (s *sender) send(ctx context.Context, batch [][]byte) {
	body := bytes.Join(batch, []byte{'\n'})
	target := s.cfg.To
	if s.mode != ModePub && !s.cfg.NoIdempotencyKey {
		target = withParam(target, "id", "gen-"+s.runID+"-"+strconv.FormatInt(s.seq.Add(1), 10))
	}
	if s.mode != ModePut {
		for _, m := range batch {
			if bytes.IndexByte(m, '\n') >= 0 {
				fmt.Fprintf(s.cfg.Stderr, "gen: a message contains a newline, which %v would split: not sent\n", s.mode)
				s.failed.Add(int64(len(batch)))
				return
			}
		}
	}
	for attempt := 0; ; attempt++ {
		s.requests.Add(1)
		if attempt > 0 {
			s.retries.Add(1)
		}
		status, err := s.post(ctx, target, body)
		if err == nil && status/100 == 2 {
			s.sent.Add(int64(len(batch)))
			return
		}
		if err == nil && !retryableStatus(status) {
			fmt.Fprintf(s.cfg.Stderr, "gen: %s answered %d: %d messages not sent\n", client.RedactURL(s.cfg.To), status, len(batch))
			s.failed.Add(int64(len(batch)))
			return
		}
		if attempt >= s.cfg.Retries || ctx.Err() != nil {
			why := fmt.Sprint(err)
			if err == nil {
				why = "status " + strconv.Itoa(status)
			}
			fmt.Fprintf(s.cfg.Stderr, "gen: giving up after %d attempts (%s): %d messages not sent\n", attempt+1, why, len(batch))
			s.failed.Add(int64(len(batch)))
			return
		}
		if s.cfg.Clock.Sleep(ctx, s.cfg.Backoff.Delay(attempt)) != nil {
			s.failed.Add(int64(len(batch)))
			return
		}
	}
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusTooManyRequests,
		http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func (s *sender) post(ctx context.Context, target string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, client.RedactError(err)
	}
	client.SetToken(req, s.cfg.Token)
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, client.RedactError(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// withParam adds name=value to the query of target unless it has name.
func withParam(target, name, value string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	q := u.Query()
	if q.Has(name) {
		return target
	}
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += url.QueryEscape(name) + "=" + url.QueryEscape(value)
	return u.String()
}
