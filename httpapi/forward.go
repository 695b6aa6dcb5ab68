package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
)

const (
	// leaderPoll is how often a held request looks for a leader.
	leaderPoll = 25 * time.Millisecond
	// maxRetryPause caps the pause before another forwarding attempt, so an
	// unreachable leader is not hammered while the cluster notices.
	maxRetryPause = 200 * time.Millisecond
	// forwardDialTimeout bounds connecting to the leader.
	forwardDialTimeout = 2 * time.Second
	// forwardMargin is added to the longest time the leader may take to
	// start its answer (see forwardCeiling).
	forwardMargin = 5 * time.Second
)

// newForwardClient returns the client that relays requests to the leader:
// HTTP/1.1 with many kept-alive connections, since long-polls hold one each
// and writes arrive in bursts. One per handler.
func newForwardClient() *http.Client {
	dialer := &net.Dialer{Timeout: forwardDialTimeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // node to node: never through HTTP_PROXY
			DialContext:         dialer.DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			// Below the queue port's server IdleTimeout, so that the
			// forwarder closes an idle connection before the leader does.
			IdleConnTimeout: 90 * time.Second,
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

// toLeader is the forwarding step. It runs before the handler of every
// request that needs the leader (rt.needsLeader), and once more when a
// local Propose found that leadership had moved (see reroutable).
//
// done is false when this node leads and must serve the request itself.
// Otherwise toLeader has answered it (relayed from the leader, redirected
// to it, or refused with a 503) and code is the status sent.
func (s *server) toLeader(w http.ResponseWriter, rt *route, req *request) (code int, done bool) {
	redirect, err := req.p.flag("redirect")
	if err != nil {
		return s.fail(w, rt, err), true
	}
	if s.o.Cluster.IsLeader() {
		return 0, false
	}
	if by := req.Header.Get(api.HeaderForwardedBy); by != "" {
		s.m.forwarded(rt.name, "refused")
		return s.fail(w, rt, api.ErrNotLeader.Errorf(
			"not the leader: %s forwarded this request to %s, which does not lead; retry", api.Quote(by), s.o.Cluster.ID())), true
	}

	deadline := time.Now().Add(s.o.ForwardTimeout)
	var last error // why the previous attempt failed
	for attempt := 0; ; attempt++ {
		var pause time.Duration
		if attempt > 0 {
			if !time.Now().Before(deadline) {
				return s.forwardFailed(w, rt, s.noLeader(last)), true
			}
			pause = min(leaderPoll<<min(attempt, 4), maxRetryPause)
		}
		leader, local, err := s.awaitLeader(req.Context(), deadline, pause, last)
		switch {
		case err != nil:
			return s.forwardFailed(w, rt, err), true
		case local:
			return 0, false
		case attempt > 0:
			s.m.forwardRetries.WithLabelValues(rt.name).Inc()
		}
		if redirect {
			s.m.forwarded(rt.name, "redirected")
			return s.redirect(w, req, leader), true
		}
		code, err := s.proxy(w, rt, req, leader)
		var retry *retryError
		if !errors.As(err, &retry) {
			if err != nil {
				return s.forwardFailed(w, rt, err), true
			}
			s.m.forwarded(rt.name, "proxied")
			return code, true
		}
		last = retry.err
		s.log.Debug("forwarding to the leader failed; holding the request", "route", rt.name, "leader", leader.ID, "attempt", attempt+1, "err", last)
	}
}

// awaitLeader waits, after pause, until this node leads (local) or another
// node is known to lead at a known queue address. It gives up at deadline
// with a "no leader" error, or when ctx ends. last is why the previous
// attempt failed, for the error message.
func (s *server) awaitLeader(ctx context.Context, deadline time.Time, pause time.Duration, last error) (leader api.Leader, local bool, err error) {
	self := s.o.Cluster.ID()
	for wait := pause; ; wait = leaderPoll {
		if err := sleep(ctx, min(wait, time.Until(deadline))); err != nil {
			return leader, false, fmt.Errorf("waiting for a leader: %w", context.Canceled)
		}
		if s.o.Cluster.IsLeader() {
			return leader, true, nil
		}
		info, ok := s.o.Cluster.Leader()
		// A leader id that is this node's own while it does not lead is
		// a moment of an election: keep waiting rather than forward to self.
		if ok && info.ID != self && info.QueueAddr != "" {
			return info, false, nil
		}
		if !time.Now().Before(deadline) {
			if last == nil && ok && info.ID != self {
				last = fmt.Errorf("%s leads, but its queue address is not known here yet", info.ID)
			}
			return leader, false, s.noLeader(last)
		}
	}
}

// sleep waits for d (not at all if d <= 0) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// noLeader is the answer when the hold runs out.
func (s *server) noLeader(last error) error {
	if last == nil {
		return api.ErrNoLeader.Errorf("no leader: none was elected within %s; retry", api.FormatDuration(s.o.ForwardTimeout))
	}
	return api.ErrNoLeader.Errorf("no leader: none could be reached within %s (%v); retry", api.FormatDuration(s.o.ForwardTimeout), last)
}

// forwardFailed counts and answers a forwarding step that ends in an error.
func (s *server) forwardFailed(w http.ResponseWriter, rt *route, err error) int {
	result := "no_leader"
	switch {
	case errors.Is(err, api.ErrOutcomeUnknown):
		result = "outcome_unknown"
	case errors.Is(err, context.Canceled):
		result = "canceled"
	case !errors.Is(err, api.ErrNoLeader):
		result = "error"
	}
	s.m.forwarded(rt.name, result)
	return s.fail(w, rt, err)
}

// redirect answers 307 with the request's own URI on the leader. 307 (not
// 301/302/303) makes clients repeat the method and the body.
func (s *server) redirect(w http.ResponseWriter, req *request, leader api.Leader) int {
	h := w.Header()
	h.Set("Location", "http://"+leader.QueueAddr+requestURI(req.Request))
	h.Set(api.HeaderLeaderID, leader.ID)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusTemporaryRedirect)
	return http.StatusTemporaryRedirect
}

// errCeiling ends a forwarded request whose answer did not start in time.
var errCeiling = errors.New("the leader did not answer in time")

// proxy sends the request to the leader and relays the answer: status,
// end-to-end headers and the body, streamed. It returns a *retryError when
// another attempt is safe: nothing reached the leader, the leader answered
// that it cannot serve the request and applied nothing (503 NOT_LEADER,
// NO_LEADER or SHUTTING_DOWN), or the exchange failed on a read. A write
// whose exchange failed after it may have reached the leader is never
// retried: the error is ErrOutcomeUnknown.
func (s *server) proxy(w http.ResponseWriter, rt *route, req *request, leader api.Leader) (int, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	// sent records that the request may have reached the leader: once its
	// headers are written, a failure no longer proves that nothing
	// happened there.
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { sent.Store(true) }})
	out, err := s.forwardRequest(ctx, rt, req, leader)
	if err != nil {
		return 0, err
	}
	ceiling := s.forwardCeiling(req)
	timer := time.AfterFunc(ceiling, func() { cancel(errCeiling) })
	defer timer.Stop()
	res, err := s.fwd.Do(out)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which holds the client's data
		}
		if context.Cause(ctx) == errCeiling {
			err = fmt.Errorf("no answer within %s", api.FormatDuration(ceiling))
		}
		err = fmt.Errorf("leader %s at %s: %w", leader.ID, leader.QueueAddr, err)
		switch {
		case req.Context().Err() != nil:
			return 0, fmt.Errorf("forwarding: the client went away: %w", context.Canceled)
		case !sent.Load() || !rt.writes(req.p):
			return 0, &retryError{err}
		}
		return 0, fmt.Errorf("forwarded %s: %w: %w", rt.name, api.ErrOutcomeUnknown, err)
	}
	// The answer has started: from here the client alone bounds it (a
	// /dump may stream for long).
	timer.Stop()
	defer res.Body.Close()

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
	w.WriteHeader(res.StatusCode)
	if _, err := io.Copy(w, res.Body); err != nil {
		// The status is sent; the client sees a cut body.
		s.log.Debug("relaying the leader's answer cut short", "route", rt.name, "leader", leader.ID, "err", err)
	}
	return res.StatusCode, nil
}

// forwardCeiling bounds a forwarded request until the leader's answer
// starts: the longest the leader may legitimately take (the long-poll's
// wait=, a consistent read and each proposal of the request, at
// ProposeTimeout each), plus a margin. The body must have been read.
func (s *server) forwardCeiling(req *request) time.Duration {
	wait, _, _ := req.p.duration("wait", 1<<63-1) // a malformed wait= is the leader's 400
	proposals := 2 + time.Duration(len(req.body)/maxEntryBytes)
	return min(wait, s.o.MaxWait) + proposals*s.o.ProposeTimeout + forwardMargin
}

// forwardRequest builds the request sent to the leader: the same method,
// URI and body, the end-to-end headers, and the loop guard.
func (s *server) forwardRequest(ctx context.Context, rt *route, req *request, leader api.Leader) (*http.Request, error) {
	// Read once (bounded by MaxBodySize) and kept, so that a retry resends
	// it. Only POST bodies are read: handlers ignore others.
	body, err := s.body(req)
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, req.Method, "http://"+leader.QueueAddr+requestURI(req.Request), bytes.NewReader(body))
	if err != nil {
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
	out.Header.Set(api.HeaderForwardedBy, s.o.Cluster.ID())
	if rt.writes(req.p) && out.Method == http.MethodGet {
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
