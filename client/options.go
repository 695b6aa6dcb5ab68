package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/wait"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds a whole call, every attempt included, when the
	// context has no deadline. A node holds a request up to its
	// --forward-timeout (5 s) during an election before answering 503, so
	// this leaves room for a few attempts.
	DefaultTimeout = 30 * time.Second
	// DefaultAttemptTimeout bounds one attempt on one node, so that a node
	// that hangs does not use up the whole call.
	DefaultAttemptTimeout = 10 * time.Second
	// DefaultDialTimeout bounds connecting to a node.
	DefaultDialTimeout = 5 * time.Second
)

// DefaultBackoff is the pause between the attempts of one call.
var DefaultBackoff = Backoff{Min: 25 * time.Millisecond, Max: time.Second}

// Options configures a Queue or Pubsub client. Start from DefaultOptions;
// a nil *Options means DefaultOptions.
type Options struct {
	// HTTPClient sends the requests. Its Timeout must be zero (calls are
	// bounded by contexts).
	HTTPClient *http.Client
	// Timeout bounds a call when its context has no deadline; positive. A
	// long-poll's wait= is added to it.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt; positive. A long-poll's wait= is
	// added to it.
	AttemptTimeout time.Duration
	// MaxAttempts bounds the attempts of one call; 0: two rounds over the
	// addresses, at least 3.
	MaxAttempts int
	// Backoff is the pause before each retry.
	Backoff Backoff
	// Token, when not "", is sent as "Authorization: Bearer <token>" with
	// every request, streams included (never as token= in the URL).
	Token string
	// TLS, when not nil, verifies the nodes' HTTPS certificates, usually
	// TLSConfig of the cluster CA. It makes the client speak HTTPS only:
	// addresses without a scheme or with http:// are used as https://
	// (see HTTPS). With the default HTTPClient the client makes its own
	// from it (NewHTTPClient); a caller's HTTPClient is used as it is and
	// must trust the nodes itself.
	TLS *tls.Config
}

// DefaultOptions returns the defaults: this package's pooled keep-alive
// transport (see NewTransport), DefaultTimeout, DefaultAttemptTimeout,
// two rounds over the addresses, DefaultBackoff.
func DefaultOptions() Options {
	return Options{
		HTTPClient:     defaultHTTPClient,
		Timeout:        DefaultTimeout,
		AttemptTimeout: DefaultAttemptTimeout,
		Backoff:        DefaultBackoff,
	}
}

// resolved validates o (nil: DefaultOptions) and sets the attempts of a
// client of naddrs addresses. Errors wrap api.ErrBadRequest.
func (o *Options) resolved(naddrs int) (Options, error) {
	r := DefaultOptions()
	if o != nil {
		r = *o
	}
	var err error
	switch {
	case r.HTTPClient == nil:
		err = errors.New("no HTTP client")
	case r.Timeout <= 0 || r.AttemptTimeout <= 0:
		err = fmt.Errorf("timeouts %v and %v must be positive", r.Timeout, r.AttemptTimeout)
	case r.MaxAttempts < 0:
		err = fmt.Errorf("max attempts %d must not be negative", r.MaxAttempts)
	case r.Backoff.Min <= 0 || r.Backoff.Max < r.Backoff.Min:
		err = fmt.Errorf("backoff %v to %v: want 0 < min <= max", r.Backoff.Min, r.Backoff.Max)
	}
	if err != nil {
		return r, fmt.Errorf("%w: client options: %v", api.ErrBadRequest, err)
	}
	if r.MaxAttempts == 0 {
		r.MaxAttempts = max(3, 2*naddrs)
	}
	if r.TLS != nil && r.HTTPClient == defaultHTTPClient {
		r.HTTPClient = NewHTTPClient(r.TLS)
	}
	return r, nil
}

// NewTransport returns the transport this package uses by default:
// HTTP/1.1 with kept-alive pooled connections, no proxy (clients talk to
// cluster nodes directly), no transparent compression (bodies are
// messages, sent and received as they are), TCP keep-alive probes that
// notice a dead peer within about 30 s, and idle connections closed after
// 90 s, before a node's own 120 s idle timeout closes them under a
// request.
func NewTransport() *http.Transport {
	d := &net.Dialer{
		Timeout: DefaultDialTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable:   true,
			Idle:     15 * time.Second,
			Interval: 5 * time.Second,
			Count:    3,
		},
	}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         d.DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

var defaultHTTPClient = &http.Client{Transport: NewTransport()}

// Backoff is a capped exponential backoff with jitter: the pause before
// retry n (from 0) is a random duration in [d/2, d], d = min(Min*2^n, Max).
type Backoff struct {
	Min, Max time.Duration
}

// Delay returns the pause before retry n (from 0).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Min
	if d <= 0 {
		d = time.Millisecond
	}
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	if b.Max > 0 && d > b.Max {
		d = b.Max
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits b.Delay(n), or until ctx is done, and returns ctx.Err() in
// that case.
func (b Backoff) Sleep(ctx context.Context, n int) error { return wait.Sleep(ctx, b.Delay(n)) }

// normalizeAddrs turns base addresses ("http://h:8081", "h:8081") into
// base URLs without a trailing slash; with tls, https ones (see HTTPS).
func normalizeAddrs(addrs []string, tls bool) ([]string, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no address given", api.ErrBadRequest)
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		switch {
		case tls:
			a = HTTPS(a)
		case !strings.Contains(a, "://"):
			a = "http://" + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("%w: address %q: %v", api.ErrBadRequest, a, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return nil, fmt.Errorf("%w: address %q: want http://host:port", api.ErrBadRequest, a)
		}
		out = append(out, strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"))
	}
	return out, nil
}

// CallInfo tells how a call went; see WithCallInfo.
type CallInfo struct {
	// Addr is the base address of the last attempt.
	Addr string
	// ServedBy is the X-Served-By header of the last answer: the node that
	// executed the request (the leader, when a follower relayed it).
	ServedBy string
	// Attempts is the number of attempts made.
	Attempts int
}

type callInfoKey struct{}

// WithCallInfo returns a context that makes a call of this package fill
// *info when it returns, successful or not. Use one CallInfo per call.
func WithCallInfo(ctx context.Context, info *CallInfo) context.Context {
	return context.WithValue(ctx, callInfoKey{}, info)
}

func callInfo(ctx context.Context) *CallInfo {
	info, _ := ctx.Value(callInfoKey{}).(*CallInfo)
	return info
}
