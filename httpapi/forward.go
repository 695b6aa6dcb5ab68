package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/wait"
)

const (
	// leaderPoll is how often a held request looks for a leader.
	leaderPoll = 25 * time.Millisecond
	// maxRetryPause caps the pause before another forwarding attempt, so an
	// unreachable leader is not hammered while the cluster notices.
	maxRetryPause = 200 * time.Millisecond
	// minRetryTime is the least of the forward timeout that must be left
	// for another attempt to start: one the deadline would cut right after
	// it was sent would turn a clean "no leader" (nothing applied) into
	// "outcome unknown".
	minRetryTime = 100 * time.Millisecond
	// forwardDialTimeout bounds connecting to the leader, and the TLS
	// handshake. A request gives up sooner when its forwarding deadline
	// comes first (see forwarder.proxy).
	forwardDialTimeout = 2 * time.Second
	// ForwardIdleTimeout is how long a connection to the leader stays in
	// the forwarder's pool unused. The leader's queue port must keep an
	// idle connection open longer (its idle timeout), or a write sent on
	// a connection the leader is closing would be answered "outcome
	// unknown".
	ForwardIdleTimeout = 30 * time.Second
)

// leaders is what forwarding needs to know of the cluster; Cluster has it.
type leaders interface {
	// ID is this node's id, for the loop guard.
	ID() string
	// IsLeader reports whether this node leads right now.
	IsLeader() bool
	// Leader returns the leader this node knows, if any.
	Leader() (info api.Leader, ok bool)
	// Status is this node's view of the cluster: what a "no leader"
	// answer says of why (api.Status.NoLeaderReason).
	Status() api.Status
}

// forwarder is the forwarding step: it passes a request that needs the
// leader to it, unless this node leads. The engine calls it at one place
// (engine.serve); handlers know nothing of it.
type forwarder struct {
	nodes  leaders
	client *http.Client
	// scheme is how the leader's queue port is reached: https:// on a
	// cluster with TLS.
	scheme string
	m      *metrics
	log    *slog.Logger
	// hold is Options.ForwardTimeout: the bound of the forwarding step
	// until the leader's answer starts (see forward).
	hold time.Duration
	// maxWait caps the long-poll a forwarded request may add to hold.
	maxWait time.Duration
	// handovers settles the handovers of relayed gets (handover.go); nil:
	// the leader confirms them itself.
	handovers *handovers
	// batch sends the writes of route.batch routes to the leader in
	// batches (batch.go); nil: Options.ForwardBatch is off.
	batch *batcher
}

func newForwarder(nodes leaders, o *Options, m *metrics, log *slog.Logger) *forwarder {
	f := &forwarder{
		nodes: nodes, client: newForwardClient(o.PeerTLS), scheme: "http://", m: m, log: log,
		hold: o.ForwardTimeout, maxWait: o.MaxWait,
	}
	if o.PeerTLS != nil {
		f.scheme = "https://"
	}
	if o.ForwardBatch {
		f.batch = newBatcher(f, o)
	}
	return f
}

// newForwardClient returns the client that relays requests to the leader:
// HTTP/1.1 with many kept-alive connections, since long-polls hold one each
// and writes arrive in bursts. One per forwarder.
//
// This is the channel on which a client's credentials (Authorization,
// token=) travel to the leader, which checks them again; with tlsConf
// (the node's certificate, the cluster CA) it is mutual TLS.
func newForwardClient(tlsConf *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig:     tlsConf,
			TLSHandshakeTimeout: forwardDialTimeout,
			Proxy:               nil, // node to node: never through HTTP_PROXY
			DialContext:         dialer.DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			// Below the queue port's server idle timeout, so that the
			// forwarder closes an idle connection before the leader does.
			IdleConnTimeout: ForwardIdleTimeout,
			// Relay bodies exactly as the leader sent them.
			DisableCompression: true,
		},
		// A 3xx from the leader is relayed to the client, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// retryError is a failed forwarding attempt after which the leader has
// applied nothing of the request, or the request is a read: holding it
// for another attempt is safe.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// forward is the forwarding step. The engine runs it before the handler
// of every request that needs the leader (route.needsLeader), and once
// more when a local Propose found that leadership had moved (see
// reroutable).
//
// local is true when this node leads and must serve the request itself.
// Otherwise forward has answered the request (relayed from the leader, or
// redirected to it) and code is the status sent, or err says why it could
// not, for the engine to answer.
//
// One deadline, ForwardTimeout after the request arrived, bounds the
// whole step until the leader's answer starts: waiting for a leader,
// every attempt (dial, TLS handshake, the leader's work), and the pauses
// between them; a long-poll adds its own wait= (at most MaxWait). So a
// leader that accepts connections but never answers (frozen, SIGSTOP:
// the kernel still completes the TCP handshake) costs the client
// ForwardTimeout and a 503, never longer.
func (f *forwarder) forward(w http.ResponseWriter, req *request) (code int, local bool, err error) {
	redirect, err := req.p.flag("redirect")
	if err != nil {
		return 0, false, err
	}
	if f.nodes.IsLeader() {
		return 0, true, nil
	}
	name := req.rt.name
	if by := req.Header.Get(api.HeaderForwardedBy); by != "" {
		f.m.forwarded(name, "refused")
		return 0, false, api.ErrNotLeader.Errorf(
			"not the leader: %s forwarded this request to %s, which does not lead; retry", api.Quote(by), f.nodes.ID())
	}

	deadline := time.Now().Add(f.hold)
	var last error // why the previous attempt failed
	for attempt := 0; ; attempt++ {
		var pause time.Duration
		if attempt > 0 {
			if !time.Now().Before(deadline) {
				return 0, false, f.failed(name, f.noLeader(last))
			}
			pause = min(leaderPoll<<min(attempt, 4), maxRetryPause)
		}
		leader, self, err := f.awaitLeader(req.Context(), deadline, pause, last)
		switch {
		case err != nil:
			return 0, false, f.failed(name, err)
		case self:
			return 0, true, nil
		case attempt > 0 && time.Until(deadline) < minRetryTime:
			return 0, false, f.failed(name, f.noLeader(last))
		case attempt > 0:
			f.m.forwardRetries.WithLabelValues(name).Inc()
		}
		if redirect {
			f.m.forwarded(name, "redirected")
			return f.redirectTo(w, req, leader), false, nil
		}
		if f.batch != nil && req.rt.batch && !req.noBatch && f.batch.supports(leader.ID) {
			// The handler runs here and proposes through the batcher,
			// within what is left of this step's deadline.
			req.batched, req.fwdDeadline = true, deadline
			f.m.forwarded(name, "batched")
			return 0, true, nil
		}
		code, err := f.proxy(w, req, leader, deadline)
		var retry *retryError
		if !errors.As(err, &retry) {
			if err != nil {
				return 0, false, f.failed(name, err)
			}
			f.m.forwarded(name, "proxied")
			return code, false, nil
		}
		if last == nil || !errors.Is(retry.err, errCeiling) {
			// A previous attempt's failure says more than the deadline.
			last = retry.err
		}
		f.log.Debug("forwarding to the leader failed; holding the request", "route", name, "leader", leader.ID, "attempt", attempt+1, "err", last)
	}
}

// awaitLeader waits, after pause, until this node leads (self) or another
// node is known to lead at a known queue address. It gives up at deadline
// with a "no leader" error, or when ctx ends. last is why the previous
// attempt failed, for the error message.
func (f *forwarder) awaitLeader(ctx context.Context, deadline time.Time, pause time.Duration, last error) (leader api.Leader, self bool, err error) {
	id := f.nodes.ID()
	for d := pause; ; d = leaderPoll {
		if err := wait.Sleep(ctx, min(d, time.Until(deadline))); err != nil {
			return leader, false, fmt.Errorf("waiting for a leader: %w", context.Canceled)
		}
		if f.nodes.IsLeader() {
			return leader, true, nil
		}
		info, ok := f.nodes.Leader()
		// A leader id that is this node's own while it does not lead is
		// a moment of an election: keep waiting rather than forward to self.
		if ok && info.ID != id && info.QueueAddr != "" {
			return info, false, nil
		}
		if !time.Now().Before(deadline) {
			if last == nil && ok && info.ID != id {
				last = fmt.Errorf("%s leads, but its queue address is not known here yet", info.ID)
			}
			return leader, false, f.noLeader(last)
		}
	}
}

// noLeader is the answer when the hold runs out: what this node knows of
// why there is no leader (api.Status.NoLeaderReason), else that none was
// elected or reached in time.
func (f *forwarder) noLeader(last error) error {
	hold := api.FormatDuration(f.hold)
	why := f.nodes.Status().NoLeaderReason()
	switch {
	case why != "" && last != nil:
		return api.ErrNoLeader.Errorf("%s (waited %s; last try: %v); retry", why, hold, last)
	case why != "":
		return api.ErrNoLeader.Errorf("%s (waited %s); retry", why, hold)
	case last == nil:
		return api.ErrNoLeader.Errorf("no leader: none was elected within %s; retry", hold)
	}
	return api.ErrNoLeader.Errorf("no leader: none could be reached within %s (%v); retry", hold, last)
}

// failed counts a forwarding step that ends in err, and returns err.
func (f *forwarder) failed(route string, err error) error {
	result := "no_leader"
	switch {
	case errors.Is(err, api.ErrOutcomeUnknown):
		result = "outcome_unknown"
	case errors.Is(err, context.Canceled):
		result = "canceled"
	case !errors.Is(err, api.ErrNoLeader):
		result = "error"
	}
	f.m.forwarded(route, result)
	return err
}

// redirectTo answers 307 with the request's own URI on the leader. 307
// (not 301/302/303) makes clients repeat the method and the body. A
// token= is left out of Location, which proxies and browsers log: the
// client sends its credentials to the leader again itself.
func (f *forwarder) redirectTo(w http.ResponseWriter, req *request, leader api.Leader) int {
	return redirectToLeader(w, req.Request, f.scheme, leader)
}

// redirectToLeader answers r with a 307 to the same URI on the leader's
// queue port, reached with scheme, without token=.
func redirectToLeader(w http.ResponseWriter, r *http.Request, scheme string, leader api.Leader) int {
	h := w.Header()
	uri := requestURI(r)
	if path, query, ok := strings.Cut(uri, "?"); ok {
		if query = stripToken(query); query != "" {
			uri = path + "?" + query
		} else {
			uri = path
		}
	}
	h.Set("Location", scheme+leader.QueueAddr+uri)
	h.Set(api.HeaderLeaderID, leader.ID)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return http.StatusTemporaryRedirect
}

// errCeiling ends a forwarded request whose answer did not start in time;
// errStalled one whose answer stopped coming.
var (
	errCeiling = errors.New("no answer")
	errStalled = errors.New("the leader's answer stalled")
)

// proxy sends the request to the leader and relays the answer: status,
// end-to-end headers and the body, streamed. It returns a *retryError when
// another attempt is safe: nothing reached the leader, the leader answered
// that it cannot serve the request and applied nothing (503 NOT_LEADER,
// NO_LEADER or SHUTTING_DOWN), or the exchange failed on a read. A write
// whose exchange failed after it may have reached the leader is never
// retried: the error is ErrOutcomeUnknown.
//
// The answer must start by deadline (plus the request's long-poll, see
// answerBy); once it has, the client bounds it, but a leader that sends
// nothing more for ForwardTimeout ends the relay (errStalled).
func (f *forwarder) proxy(w http.ResponseWriter, req *request, leader api.Leader, deadline time.Time) (int, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	// sent records that the request may have reached the leader: once its
	// headers are written, a failure no longer proves that nothing
	// happened there.
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	out, err := f.outgoing(ctx, req, leader)
	if err != nil {
		return 0, err
	}
	by := f.answerBy(req, deadline)
	// The request's context reaches the dial and the TLS handshake too:
	// the transport gives up on them when it ends.
	timer := time.AfterFunc(time.Until(by), func() { cancel(errCeiling) })
	defer timer.Stop()
	res, err := f.client.Do(out)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the client's data
		}
		if context.Cause(ctx) == errCeiling {
			err = fmt.Errorf("%w within the forward timeout of %s", errCeiling, api.FormatDuration(f.hold))
		}
		err = fmt.Errorf("leader %s at %s: %w", leader.ID, leader.QueueAddr, err)
		switch {
		case sent.Load() && req.writes:
			// Whatever ended the wait (the leader, the network, or this
			// request's context, which a draining node ends), the write
			// may have been applied: CANCELED would say it was not.
			return 0, fmt.Errorf("forwarded %s: %w: %w", req.rt.name, api.ErrOutcomeUnknown, err)
		case req.Context().Err() != nil:
			return 0, fmt.Errorf("forwarding: the client went away: %w", context.Canceled)
		}
		return 0, &retryError{err}
	}
	// The answer has started: from here the client alone bounds it (a
	// /dump may stream for long).
	timer.Stop()
	defer res.Body.Close()
	if f.batch != nil && res.Header.Get(api.HeaderPropose) == "1" {
		f.batch.learn(leader.ID, true)
	}

	if res.StatusCode == http.StatusServiceUnavailable {
		switch kind := api.Decode(res.Header.Get(api.HeaderErrorCode), res.StatusCode); kind {
		case api.ErrNotLeader, api.ErrNoLeader, api.ErrShuttingDown:
			io.Copy(io.Discard, io.LimitReader(res.Body, 4<<10)) // keep the connection
			return 0, &retryError{fmt.Errorf("%s answered %s", leader.ID, kind.Token)}
		}
	}
	h := w.Header()
	h.Del(api.HeaderServedBy) // the leader's own says who executed it
	copyEndToEnd(h, res.Header)
	h.Del(api.HeaderPropose) // between nodes only
	if res.StatusCode == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		// Every 503 of a node says when to retry; a proxy in front of
		// the leader may not.
		h.Set("Retry-After", "1")
	}
	if ids := handoverIDs(h); ids != nil && f.handovers != nil {
		f.handovers.servedBy(leader)
		return f.relayHandover(w, req, res, ids)
	}
	w.WriteHeader(res.StatusCode)
	body := &stallReader{r: res.Body, idle: f.hold, stall: func() { cancel(errStalled) }}
	_, err = io.Copy(w, body)
	body.stop()
	if err != nil {
		f.log.Debug("relaying the leader's answer cut short", "route", req.rt.name, "leader", leader.ID, "err", err, "cause", context.Cause(ctx))
		abortResponse(w)
	}
	return res.StatusCode, nil
}

// abortResponse ends a response whose status is sent but whose body could
// not be relayed whole: the connection is closed without the end of the
// body (the last chunk), so the client sees a cut answer rather than a
// complete short one (net/http would end the chunked body cleanly when
// the handler returns).
func abortResponse(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	rc.Flush() // what was relayed reaches the client before the cut
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not hijackable: net/http closes the connection on this panic,
		// and logs nothing.
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// answerBy is when the leader's answer must have started: the forwarding
// deadline, plus the long-poll's wait= (capped at MaxWait) during which
// the leader holds the request on purpose.
func (f *forwarder) answerBy(req *request, deadline time.Time) time.Time {
	wait, _, _ := req.p.duration("wait", 1<<63-1) // a malformed wait= is the leader's 400
	return deadline.Add(min(wait, f.maxWait))
}

// stallReader reads the leader's answer and calls stall when one read
// waits longer than idle. Time spent writing to the client, between
// reads, does not count: a slow client is the client's business.
type stallReader struct {
	r     io.Reader
	idle  time.Duration
	stall func()
	t     *time.Timer
}

func (s *stallReader) Read(p []byte) (int, error) {
	if s.t == nil {
		s.t = time.AfterFunc(s.idle, s.stall)
	} else {
		s.t.Reset(s.idle)
	}
	n, err := s.r.Read(p)
	s.t.Stop()
	return n, err
}

func (s *stallReader) stop() {
	if s.t != nil {
		s.t.Stop()
	}
}

// outgoing builds the request sent to the leader: the same method, URI
// and body, the end-to-end headers, and the loop guard.
func (f *forwarder) outgoing(ctx context.Context, req *request, leader api.Leader) (*http.Request, error) {
	// Read once (bounded by the route's limit) and kept, so that a retry
	// resends it. Only POST bodies are read: handlers ignore others.
	body, err := req.body()
	if err != nil {
		return nil, err
	}
	// The URI keeps token= and the headers Authorization: the leader
	// checks the client's credentials itself.
	out, err := http.NewRequestWithContext(ctx, req.Method, f.scheme+leader.QueueAddr+requestURI(req.Request), bytes.NewReader(body))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the client's data and token
		}
		return nil, &retryError{fmt.Errorf("leader %s at %q: %w", leader.ID, leader.QueueAddr, err)}
	}
	copyEndToEnd(out.Header, req.Header)
	// The body is in hand: this node's server already answered the
	// client's 100-continue.
	out.Header.Del("Expect")
	// They would let the transport resend a write by itself (see below);
	// quorumq's idempotency key is id=.
	out.Header.Del("Idempotency-Key")
	out.Header.Del("X-Idempotency-Key")
	out.Header.Set(api.HeaderForwardedBy, f.nodes.ID())
	if f.handovers != nil {
		out.Header.Set(headerHandover, handoverWill) // see relayHandover
	} else {
		out.Header.Del(headerHandover)
	}
	if req.writes && out.Method == http.MethodGet {
		// Go's transport resends a GET by itself when a kept-alive
		// connection fails after the request was written, which for
		// /put?data= or /get would be a second write. It does not for a
		// request whose body it cannot rewind (Request.isReplayable).
		out.Body, out.GetBody = noReplayBody{}, nil
	}
	return out, nil
}

// noReplayBody is an empty body without GetBody: it makes a GET one that Go's
// transport never replays. The transport finds it empty and sends no body.
type noReplayBody struct{}

func (noReplayBody) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplayBody) Close() error             { return nil }

// requestURI is the request's target as the client sent it, in origin form.
func requestURI(r *http.Request) string {
	if strings.HasPrefix(r.RequestURI, "/") {
		return r.RequestURI
	}
	return r.URL.RequestURI()
}

// hopHeaders concern one connection only (RFC 9110 §7.6.1): a proxy does
// not pass them on.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// copyEndToEnd copies src's end-to-end headers into dst, replacing values.
func copyEndToEnd(dst, src http.Header) {
	for k, vv := range src {
		dst[k] = append([]string(nil), vv...)
	}
	for _, field := range src["Connection"] {
		for name := range strings.SplitSeq(field, ",") {
			if name = textproto.TrimString(name); name != "" {
				dst.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		dst.Del(k)
	}
}

// reroutable reports whether a handler's error allows one more pass through
// the forwarding step: leadership moved between the check and the local
// Propose or ConsistentRead (ErrNotLeader), nothing of the request was
// committed, and the request was not itself forwarded (one hop).
func reroutable(req *request, err error) bool {
	return errors.Is(err, api.ErrNotLeader) && !errors.Is(err, api.ErrOutcomeUnknown) &&
		!req.committed && req.Header.Get(api.HeaderForwardedBy) == ""
}
