package pstohttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/metricsserver"
)

const userAgent = "quorumq-ps_to_http"

// stableAfter: a source connection that lasted this long, or delivered a
// message, was healthy; the reconnect backoff starts over after it.
const stableAfter = 10 * time.Second

// Drop-log limits: at most dropLogBurst undelivered messages are logged
// one by one per dropLogWindow; the rest are counted as unlogged.
const (
	dropLogBurst  = 100
	dropLogWindow = 10 * time.Second
	// logExcerpt bounds the message text in a log line.
	logExcerpt = 256
)

// SilenceError is Run's result when --max-silence ended the bridge. The
// command exits with status 0, as the reference does.
type SilenceError struct {
	Silent, Limit time.Duration
}

func (e *SilenceError) Error() string {
	return fmt.Sprintf("No messages received for %s (limit: %s)", seconds(e.Silent, e.Limit), seconds(e.Limit, e.Limit))
}

// seconds writes d as the reference does ("4 seconds") when unit is a
// whole number of seconds, else as a duration.
func seconds(d, unit time.Duration) string {
	if unit%time.Second == 0 {
		return fmt.Sprintf("%d seconds", int64(d/time.Second))
	}
	return d.Round(time.Millisecond).String()
}

// message is one forwarded message.
type message struct {
	seq  uint64 // order of arrival among forwarded messages, from 0
	data []byte
}

// dest is one destination with its buffer, sender state and counters.
type dest struct {
	Destination
	shown string // URL for logs: any token= redacted
	i     int
	ch    chan message
	putID bool   // add id=<key>
	idSep string // "?" or "&" before id=

	requests, forwarded, retried, failed, dropped atomic.Uint64
}

// url returns the request URL for m.
func (d *dest) url(m message, runID string) string {
	u := d.URL
	if d.Method == http.MethodGet {
		u = strings.ReplaceAll(u, "%s", escape(m.data))
	}
	if d.putID {
		u += d.idSep + "id=" + runID + "-" + strconv.Itoa(d.i) + "-" + strconv.FormatUint(m.seq, 10)
	}
	return u
}

// Bridge forwards the messages of a pubsub stream to HTTP destinations.
type Bridge struct {
	cfg   Config
	log   *slog.Logger
	dests []*dest
	runID string

	// Written by the source goroutine only.
	seq uint64

	received, skipped, connects, reconnects, sourceErrors atomic.Uint64
	lastForward                                           atomic.Int64 // unix nanoseconds
	sourceMu                                              sync.Mutex
	source                                                string

	dropLogMu    sync.Mutex
	dropLogStart time.Time
	dropLogged   int
	unlogged     atomic.Uint64

	reqLogMu sync.Mutex

	// sendCtx ends when the drain at exit times out.
	sendCtx  context.Context
	stopSend context.CancelFunc
	ran      atomic.Bool
}

// New checks cfg and returns a bridge ready to Run.
func New(cfg Config) (*Bridge, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLS != nil {
		// A bridge given the cluster CA speaks HTTPS only (client.HTTPS),
		// so that its token never travels in the clear.
		cfg.Sources = slices.Clone(cfg.Sources)
		for i, src := range cfg.Sources {
			cfg.Sources[i] = client.HTTPS(src)
		}
		cfg.Destinations = slices.Clone(cfg.Destinations)
		for i := range cfg.Destinations {
			cfg.Destinations[i].URL = client.HTTPS(cfg.Destinations[i].URL)
		}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = client.NewHTTPClient(cfg.TLS)
	}
	// Backoffs keep Min <= Max when only --*-max-backoff was lowered.
	cfg.ReconnectBackoff.Min = min(cfg.ReconnectBackoff.Min, cfg.ReconnectBackoff.Max)
	cfg.RetryBackoff.Min = min(cfg.RetryBackoff.Min, cfg.RetryBackoff.Max)
	b := &Bridge{
		cfg:   cfg,
		log:   cfg.Logger,
		runID: fmt.Sprintf("p2h-%016x", rand.Uint64()),
	}
	for i, d := range cfg.Destinations {
		nd := &dest{Destination: d, shown: client.RedactURL(d.URL), i: i, ch: make(chan message, cfg.BufferSize)}
		if cfg.IdempotentPut {
			nd.putID, nd.idSep = putIDFor(d)
		}
		b.dests = append(b.dests, nd)
	}
	return b, nil
}

// putIDFor reports whether d's path is /put without an id= parameter, and
// the separator to append id= with.
func putIDFor(d Destination) (bool, string) {
	u, err := url.Parse(strings.ReplaceAll(d.URL, "%s", "x"))
	if err != nil || u.Path != "/put" {
		return false, ""
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if strings.EqualFold(k, "id") {
			return false, ""
		}
	}
	switch {
	case !strings.Contains(d.URL, "?"):
		return true, "?"
	case strings.HasSuffix(d.URL, "?"), strings.HasSuffix(d.URL, "&"):
		return true, ""
	}
	return true, "&"
}

// Run forwards messages until ctx ends (nil) or, with MaxSilence, no
// message was forwarded for that long (*SilenceError). Either way it then
// stops reading the source and gives the senders up to DrainTimeout to
// deliver what they hold; what is left is logged and counted as dropped.
func (b *Bridge) Run(ctx context.Context) error {
	if !b.ran.CompareAndSwap(false, true) {
		return errors.New("pstohttp: Run called twice")
	}
	b.sendCtx, b.stopSend = context.WithCancel(context.WithoutCancel(ctx))
	defer b.stopSend()
	b.lastForward.Store(time.Now().UnixNano())
	for _, d := range b.dests {
		b.log.Info("destination", "dest", d.i, "method", d.Method, "url", d.shown, "id", d.putID)
	}

	var senders sync.WaitGroup
	for _, d := range b.dests {
		senders.Add(1)
		go func() {
			defer senders.Done()
			b.sender(d)
		}()
	}
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	srcDone := make(chan struct{})
	go func() {
		defer close(srcDone)
		b.runSource(srcCtx)
	}()
	auxCtx, stopAux := context.WithCancel(context.Background())
	var aux sync.WaitGroup
	silence := make(chan time.Duration, 1)
	if b.cfg.MaxSilence > 0 {
		aux.Add(1)
		go func() {
			defer aux.Done()
			b.watchSilence(auxCtx, silence)
		}()
	}
	if b.cfg.StatsInterval > 0 {
		aux.Add(1)
		go func() {
			defer aux.Done()
			b.statsLoop(auxCtx)
		}()
	}

	var result error
	select {
	case <-ctx.Done():
		b.log.Info("stopping", "reason", context.Cause(ctx))
	case idle := <-silence:
		result = &SilenceError{Silent: idle, Limit: b.cfg.MaxSilence}
		b.log.Info("Exiting: " + result.Error())
	}
	stopSource()
	<-srcDone
	for _, d := range b.dests {
		close(d.ch)
	}
	drained := make(chan struct{})
	go func() {
		senders.Wait()
		close(drained)
	}()
	held := b.buffered()
	if held > 0 {
		b.log.Info("delivering buffered messages", "messages", held, "timeout", b.cfg.DrainTimeout)
	}
	t := time.NewTimer(b.cfg.DrainTimeout)
	select {
	case <-drained:
	case <-t.C:
		b.log.Warn("drain timeout: dropping the messages not yet delivered", "messages", b.buffered())
		b.stopSend()
		<-drained
	}
	t.Stop()
	stopAux()
	aux.Wait()
	b.logStats("final")
	return result
}

// runSource reads the sources one at a time, reconnecting with backoff
// and moving to the next source after every failure, until ctx ends.
func (b *Bridge) runSource(ctx context.Context) {
	n := len(b.cfg.Sources)
	i := 0
	if n > 1 {
		pick := b.cfg.Rand
		if pick == nil {
			pick = rand.IntN
		}
		i = pick(n) % n
	}
	opts := &client.SubscribeOptions{HTTPClient: b.cfg.HTTPClient, IdleTimeout: b.cfg.SourceTimeout, Token: b.cfg.Token}
	attempt := 0
	for ctx.Err() == nil {
		src := b.cfg.Sources[i]
		shown := client.RedactURL(src)
		level := slog.LevelDebug
		if b.connects.Load()+b.sourceErrors.Load() == 0 {
			level = slog.LevelInfo // the first attempt, as the reference's "Selecting pubsub"
		}
		b.log.Log(ctx, level, "connecting to source", "url", shown)
		s, err := client.Subscribe(ctx, src, opts)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.sourceErrors.Add(1)
			b.log.Warn("cannot subscribe to source", "url", shown, "err", err)
		} else {
			if b.connects.Add(1) > 1 {
				b.reconnects.Add(1)
			}
			b.setSource(shown)
			b.log.Info("subscribed", "url", shown, "served_by", s.ServedBy)
			start, got := time.Now(), 0
			for {
				data, err := s.Next()
				if err != nil {
					s.Close()
					b.setSource("")
					if ctx.Err() != nil {
						return
					}
					b.sourceErrors.Add(1)
					b.log.Warn("source stream ended", "url", shown, "err", err, "messages", got)
					break
				}
				got++
				b.handle(data)
			}
			if got > 0 || time.Since(start) >= stableAfter {
				attempt = 0
			}
		}
		i = (i + 1) % n
		delay := b.cfg.ReconnectBackoff.Delay(attempt)
		attempt++
		b.log.Info("reconnecting", "url", client.RedactURL(b.cfg.Sources[i]), "in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (b *Bridge) setSource(s string) {
	b.sourceMu.Lock()
	b.source = s
	b.sourceMu.Unlock()
}

// handle takes one message from the source.
func (b *Bridge) handle(data []byte) {
	b.received.Add(1)
	if len(data) < b.cfg.MinLineLength {
		b.skipped.Add(1)
		return
	}
	b.lastForward.Store(time.Now().UnixNano())
	m := message{seq: b.seq, data: data}
	b.seq++
	if b.cfg.RoundRobin {
		b.enqueue(b.dests[m.seq%uint64(len(b.dests))], m)
		return
	}
	for _, d := range b.dests {
		b.enqueue(d, m)
	}
}

// enqueue never blocks the source: a full buffer drops the message for d.
func (b *Bridge) enqueue(d *dest, m message) {
	select {
	case d.ch <- m:
	default:
		d.dropped.Add(1)
		b.undelivered(d, m, "buffer full")
	}
}

// sender delivers d's messages one at a time, in order.
func (b *Bridge) sender(d *dest) {
	for m := range d.ch {
		if b.sendCtx.Err() != nil {
			d.dropped.Add(1)
			b.undelivered(d, m, "not delivered before exit")
			continue
		}
		b.deliver(d, m)
	}
}

// deliver sends m to d, retrying with backoff until it is accepted, the
// destination rejects it (a 4xx other than 408, 425 and 429), MaxRetries
// is used up, or the drain at exit times out.
func (b *Bridge) deliver(d *dest, m message) {
	for attempt := 0; ; attempt++ {
		status, reason, err := b.send(d, m)
		if err == nil && status/100 == 2 {
			d.forwarded.Add(1)
			if attempt > 0 {
				b.log.Info("destination recovered", "dest", d.i, "url", d.shown, "attempts", attempt+1)
			}
			return
		}
		if err != nil {
			reason = err.Error()
		}
		switch {
		case err == nil && !retryStatus(status):
			d.failed.Add(1)
			b.undelivered(d, m, "rejected: "+reason)
			return
		case b.sendCtx.Err() != nil:
			d.dropped.Add(1)
			b.undelivered(d, m, "not delivered before exit: "+reason)
			return
		case b.cfg.MaxRetries >= 0 && attempt >= b.cfg.MaxRetries:
			d.failed.Add(1)
			b.undelivered(d, m, fmt.Sprintf("gave up after %d attempts: %s", attempt+1, reason))
			return
		}
		d.retried.Add(1)
		delay := b.cfg.RetryBackoff.Delay(attempt)
		b.log.Warn("destination failed, retrying", "dest", d.i, "url", d.shown, "seq", m.seq, "attempt", attempt+1, "err", reason, "retry_in", delay.Round(time.Millisecond))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-b.sendCtx.Done():
			t.Stop()
		}
	}
}

// retryStatus reports whether a non-2xx status is worth a retry: server
// errors and the 4xx that mean "not now". Other 4xx are permanent.
func retryStatus(code int) bool {
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
		return true
	case code >= 400 && code < 500:
		return false
	}
	return true
}

// send makes one request. reason describes a non-2xx answer.
func (b *Bridge) send(d *dest, m message) (status int, reason string, err error) {
	ctx, cancel := context.WithTimeout(b.sendCtx, b.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if d.Method == http.MethodPost {
		body = bytes.NewReader(m.data)
	}
	req, err := http.NewRequestWithContext(ctx, d.Method, d.url(m, b.runID), body)
	if err != nil {
		return 0, "", client.RedactError(err)
	}
	req.Header.Set("User-Agent", userAgent)
	client.SetToken(req, b.cfg.Token)
	start := time.Now()
	resp, err := b.cfg.HTTPClient.Do(req)
	err = client.RedactError(err)
	if err == nil {
		status = resp.StatusCode
		if status/100 != 2 {
			text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			reason = fmt.Sprintf("%d %s", status, firstLine(text))
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	b.logRequest(d, req, status, time.Since(start))
	return status, reason, err
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(s)
}

// logRequest writes simplehttp's request-log line (spec 1.8) for one
// request: [<L> <yymmdd HH:MM:SS> <dest>:<n>] <status> <METHOD>
// <host:port><path> <t>ms, status 0 when no answer came.
func (b *Bridge) logRequest(d *dest, req *http.Request, status int, took time.Duration) {
	w := b.cfg.RequestLog
	if w == nil {
		return
	}
	n := d.requests.Add(1) - 1
	level := 'I'
	switch {
	case status >= 500:
		level = 'E'
	case status >= 400:
		level = 'W'
	}
	line := fmt.Sprintf("[%c %s %d:%d] %d %s %s%s %.3fms\n", level, time.Now().Format("060102 15:04:05"), d.i, n,
		status, req.Method, req.URL.Host, client.RedactURL(req.URL.RequestURI()), float64(took.Microseconds())/1000)
	b.reqLogMu.Lock()
	io.WriteString(w, line)
	b.reqLogMu.Unlock()
}

// undelivered logs a message that will not reach d, at most dropLogBurst
// per dropLogWindow; the others are counted as unlogged.
func (b *Bridge) undelivered(d *dest, m message, reason string) {
	now := time.Now()
	b.dropLogMu.Lock()
	if now.Sub(b.dropLogStart) >= dropLogWindow {
		b.dropLogStart, b.dropLogged = now, 0
	}
	ok := b.dropLogged < dropLogBurst
	if ok {
		b.dropLogged++
	}
	b.dropLogMu.Unlock()
	if !ok {
		b.unlogged.Add(1)
		return
	}
	text := m.data
	if len(text) > logExcerpt {
		text = text[:logExcerpt]
	}
	b.log.Warn("message not delivered", "dest", d.i, "url", d.shown, "seq", m.seq, "reason", reason, "bytes", len(m.data), "message", string(text))
}

// watchSilence reports on out once no message was forwarded for
// MaxSilence.
func (b *Bridge) watchSilence(ctx context.Context, out chan<- time.Duration) {
	limit := b.cfg.MaxSilence
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, b.lastForward.Load()))
		if idle >= limit {
			out <- idle
			return
		}
		t.Reset(limit - idle)
	}
}

func (b *Bridge) statsLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.logStats("progress")
		}
	}
}

func (b *Bridge) buffered() int {
	n := 0
	for _, d := range b.dests {
		n += len(d.ch)
	}
	return n
}

// Stats are the bridge's counters.
type Stats struct {
	// Received counts the messages read from the sources; Skipped those
	// shorter than MinLineLength.
	Received, Skipped uint64
	// Connects counts successful subscriptions, Reconnects those after the
	// first, SourceErrors failed subscriptions and broken streams.
	Connects, Reconnects, SourceErrors uint64
	// Source is the URL read now ("" while reconnecting).
	Source string
	// Unlogged counts undelivered messages beyond the log's rate limit.
	Unlogged     uint64
	Destinations []DestinationStats
}

// DestinationStats are one destination's counters. Every message handed
// to a destination ends in exactly one of Forwarded, Failed and Dropped.
type DestinationStats struct {
	Destination Destination
	// Forwarded: accepted with a 2xx. Retried: failed attempts that were
	// retried. Failed: rejected with a permanent 4xx, or retries used up.
	// Dropped: the buffer was full, or not delivered before exit.
	Forwarded, Retried, Failed, Dropped uint64
	// Buffered is the number of messages waiting now.
	Buffered int
}

// Stats returns the counters now.
func (b *Bridge) Stats() Stats {
	b.sourceMu.Lock()
	src := b.source
	b.sourceMu.Unlock()
	s := Stats{
		Received:     b.received.Load(),
		Skipped:      b.skipped.Load(),
		Connects:     b.connects.Load(),
		Reconnects:   b.reconnects.Load(),
		SourceErrors: b.sourceErrors.Load(),
		Source:       src,
		Unlogged:     b.unlogged.Load(),
	}
	for _, d := range b.dests {
		s.Destinations = append(s.Destinations, DestinationStats{
			Destination: d.Destination,
			Forwarded:   d.forwarded.Load(),
			Retried:     d.retried.Load(),
			Failed:      d.failed.Load(),
			Dropped:     d.dropped.Load(),
			Buffered:    len(d.ch),
		})
	}
	return s
}

// logStats writes the counters as one line on the logger.
func (b *Bridge) logStats(msg string) {
	s := b.Stats()
	attrs := []any{
		"received", s.Received, "skipped", s.Skipped,
		"reconnects", s.Reconnects, "source_errors", s.SourceErrors, "source", s.Source,
	}
	for i, d := range s.Destinations {
		attrs = append(attrs, slog.Group("d"+strconv.Itoa(i),
			"forwarded", d.Forwarded, "retried", d.Retried, "failed", d.Failed, "dropped", d.Dropped, "buffered", d.Buffered))
	}
	if s.Unlogged > 0 {
		attrs = append(attrs, "unlogged_drops", s.Unlogged)
	}
	b.log.Info(msg, attrs...)
}

// Forward is `quorumq ps_to_http`: it runs the bridge cfg describes until
// ctx ends or MaxSilence passes (both a normal end: nil). An invalid cfg
// is an error wrapping ErrInvalid.
func Forward(ctx context.Context, cfg Config) error {
	b, err := New(cfg)
	if err != nil {
		return cli.Mark(err, ErrInvalid)
	}
	// The metrics server outlives the drain (its counters are final) and
	// stops with Forward.
	stopMetrics, err := metricsserver.Serve(cfg.MetricsAddr, metricsserver.NewRegistry(b.Collector()), cfg.Logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	var silence *SilenceError
	if err := b.Run(ctx); err != nil && !errors.As(err, &silence) {
		return err
	}
	return nil
}
