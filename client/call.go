package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
)

// maxResponseBytes bounds a response body read into memory.
const maxResponseBytes = 64 << 20

// nodes is the failover machinery shared by Queue and Pubsub.
type nodes struct {
	addrs []string
	o     Options
	pref  atomic.Uint32 // index of the preferred address
}

func newNodes(addrs []string, opts *Options) (*nodes, error) {
	o, err := opts.resolved(len(addrs))
	if err != nil {
		return nil, err
	}
	a, err := normalizeAddrs(addrs, o.TLS != nil)
	if err != nil {
		return nil, err
	}
	return &nodes{addrs: a, o: o}, nil
}

// Addrs returns the base URLs of the client, in order.
func (n *nodes) Addrs() []string { return append([]string(nil), n.addrs...) }

// request is one API call.
type request struct {
	method string // GET for reads, POST for everything else
	path   string
	query  url.Values
	body   []byte
	// idempotent: sending it twice has the effect of sending it once, so
	// it may be retried after an unknown outcome.
	idempotent bool
	// extra is added to the call and attempt timeouts (a long-poll's wait).
	extra time.Duration
}

// response is a 2xx answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs r with failover: it starts at the preferred address and, after
// an attempt that applied nothing (connection refused, 503 NO_LEADER,
// NOT_LEADER, SHUTTING_DOWN or UNAVAILABLE) or, for idempotent requests,
// after any transport failure or 503 OUTCOME_UNKNOWN, moves to the next
// address (round robin) after a jittered backoff. The address that
// answers becomes the preferred one for later calls.
func (n *nodes) do(ctx context.Context, r request) (res *response, err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.o.Timeout+r.extra)
		defer cancel()
	}
	info := callInfo(ctx)
	i := int(n.pref.Load()) % len(n.addrs)
	for attempt := 1; ; attempt++ {
		addr := n.addrs[i]
		var servedBy string
		res, servedBy, err = n.once(ctx, addr, r)
		if info != nil {
			*info = CallInfo{Addr: addr, ServedBy: servedBy, Attempts: attempt}
		}
		if err == nil {
			n.pref.Store(uint32(i))
			return res, nil
		}
		if !n.mayRetry(r, err) || attempt >= n.o.MaxAttempts || ctx.Err() != nil {
			return nil, err
		}
		next := (i + 1) % len(n.addrs)
		n.pref.CompareAndSwap(uint32(i), uint32(next))
		i = next
		if n.o.Backoff.Sleep(ctx, attempt-1) != nil {
			return nil, err
		}
	}
}

func (n *nodes) mayRetry(r request, err error) bool {
	if retryable(err) {
		return true
	}
	return r.idempotent && errors.Is(err, api.ErrOutcomeUnknown)
}

// once sends r to addr and reads the answer.
func (n *nodes) once(ctx context.Context, addr string, r request) (*response, string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.AttemptTimeout+r.extra)
	defer cancel()
	u := addr + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	req.Header.Set("User-Agent", userAgent)
	SetToken(req, n.o.Token)
	resp, err := n.o.HTTPClient.Do(req)
	if err != nil {
		return nil, "", transportError(r, addr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	servedBy := resp.Header.Get(api.HeaderServedBy)
	switch {
	case err != nil && resp.StatusCode/100 == 2:
		// The answer was cut: the request reached the node.
		return nil, servedBy, transportError(r, addr, err)
	case len(data) > maxResponseBytes:
		return nil, servedBy, fmt.Errorf("quorumq: %s%s: answer larger than %d bytes", addr, r.path, maxResponseBytes)
	case resp.StatusCode/100 != 2:
		return nil, servedBy, newHTTPError(resp.StatusCode, resp.Header, data, addr+r.path)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, servedBy, nil
}

const userAgent = "quorumq-client"

// transportError classifies a failed exchange. A request that never left
// (the connection could not be made) applied nothing, and a read changes
// nothing: api.ErrUnavailable. Any other failure may have happened after the
// node received the request: api.ErrOutcomeUnknown.
func transportError(r request, addr string, err error) error {
	where := fmt.Sprintf("quorumq: %s %s%s", r.method, addr, r.path)
	err = RedactError(err)
	if notSent(err) || r.method == http.MethodGet {
		return fmt.Errorf("%s: %w: %w", where, api.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w: %w", where, api.ErrOutcomeUnknown, err)
}

// notSent reports whether err says the request never reached the server:
// the connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
