// Package peer is the client of the node-to-node routes (api.PathInternal):
// the one place that knows how a node asks another for its status, its
// subscriber set and its subscribers, and hands it a delivery. httpapi
// serves the other side.
package peer

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/certs"
)

// Defaults for Options.
const (
	// DefaultTimeout bounds one Status or SubscriberSet call: the answer is
	// small and comes from memory, so a LAN peer answers in milliseconds,
	// and the callers (promotion checks, leave, subscriber-set fetches)
	// retry later.
	DefaultTimeout = 2 * time.Second
	// DefaultDialTimeout bounds a connection attempt inside any call.
	DefaultDialTimeout = 2 * time.Second
	// DefaultIdleConns is the keep-alive connections kept per peer:
	// publishes to one peer go one request at a time, status and set
	// fetches are rare.
	DefaultIdleConns = 4
	// DefaultIdleTimeout stays below the HTTP servers' idle timeout
	// (120 s), so a connection is not reused just as the server closes it:
	// a delivery that fails that way is not resent (pubsub is at most once).
	DefaultIdleTimeout = 90 * time.Second
)

// Limits on answers read.
const (
	maxStatusBytes  = 1 << 20
	maxSubsBytes    = 16 << 20
	maxAnswerBytes  = 64 << 10 // a delivery's answer: a number per line
	maxClientsBytes = 64 << 20
)

// ErrTooLarge means a peer's answer exceeded the limit for its route.
var ErrTooLarge = errors.New("peer answer too large")

// Options configure a Client.
type Options struct {
	// Timeout bounds each Status and SubscriberSet call. Deliver and
	// Clients are bounded by their context only: the fan-out has its own
	// deadline.
	Timeout time.Duration
	// DialTimeout bounds a connection attempt.
	DialTimeout time.Duration
	// IdleConns and IdleTimeout shape the keep-alive pool.
	IdleConns   int
	IdleTimeout time.Duration
	// TLS, when set, makes every call HTTPS with this configuration
	// (certs.Material.ClientConfig: the node's certificate, and only
	// servers with a cluster certificate accepted). nil: plain HTTP.
	TLS *tls.Config
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Timeout:     DefaultTimeout,
		DialTimeout: DefaultDialTimeout,
		IdleConns:   DefaultIdleConns,
		IdleTimeout: DefaultIdleTimeout,
	}
}

// Client calls other nodes' internal routes over one keep-alive pool. It
// never uses an environment proxy: this is traffic inside the cluster.
type Client struct {
	o      Options
	hc     *http.Client
	tr     *http.Transport
	scheme string // "http://" or "https://"
}

// New returns a client; CloseIdleConnections releases its pool.
func New(o Options) (*Client, error) {
	if o.Timeout <= 0 || o.DialTimeout <= 0 || o.IdleConns <= 0 || o.IdleTimeout <= 0 {
		return nil, fmt.Errorf("peer: timeouts and IdleConns must be positive: %+v", o)
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.IdleConns,
		IdleConnTimeout:     o.IdleTimeout,
		DisableCompression:  true,
		TLSClientConfig:     o.TLS,
		TLSHandshakeTimeout: o.DialTimeout,
	}
	scheme := "http://"
	if o.TLS != nil {
		scheme = "https://"
	}
	return &Client{o: o, hc: &http.Client{Transport: tr}, tr: tr, scheme: scheme}, nil
}

// CloseIdleConnections closes the pooled connections.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// Status is GET api.PathStatus on the node whose queue port is queueAddr.
func (c *Client) Status(ctx context.Context, queueAddr string) (api.Status, error) {
	var st api.Status
	if queueAddr == "" {
		return st, errors.New("member advertises no queue address")
	}
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+queueAddr+api.PathStatus, nil)
	if err != nil {
		return st, err
	}
	b, cs, err := c.do(req, maxStatusBytes)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("GET %s%s: %w", queueAddr, api.PathStatus, err)
	}
	// Promotion and leave trust the node id in the answer: over TLS it
	// must be the one the server's certificate names.
	if cs != nil {
		if id, err := certs.ServerNodeID(cs); err != nil || id != st.NodeID {
			return st, fmt.Errorf("GET %s%s: answered as node %q by the certificate of %q (%v)", queueAddr, api.PathStatus, st.NodeID, id, err)
		}
	}
	return st, nil
}

// SubscriberSet is GET api.PathSubs on the node whose pubsub port is
// pubsubAddr: its subscriber-set entry in the gossip's wire format.
func (c *Client) SubscriberSet(ctx context.Context, pubsubAddr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	return c.get(ctx, pubsubAddr, api.PathSubs, maxSubsBytes)
}

// Clients is GET api.PathClients on the node whose pubsub port is
// pubsubAddr: its subscribers, JSON-encoded (pubsub.DecodeClients).
func (c *Client) Clients(ctx context.Context, pubsubAddr string) ([]byte, error) {
	return c.get(ctx, pubsubAddr, api.PathClients, maxClientsBytes)
}

// PubsubStats is GET api.PathPubsubStats on the node whose pubsub port is
// pubsubAddr: its pubsub counters as /stats?format=json spells them.
func (c *Client) PubsubStats(ctx context.Context, pubsubAddr string) ([]byte, error) {
	return c.get(ctx, pubsubAddr, api.PathPubsubStats, maxSubsBytes)
}

// Delivery is one POST api.PathDeliver: Records publishes of Topic,
// encoded in Body as ContentType, sent by node From, to be delivered
// within Within of its arrival (api.HeaderDeliverWithin; 0: no limit).
type Delivery struct {
	Topic       string
	From        string
	ContentType string
	Body        []byte
	Records     int
	Within      time.Duration
}

// Deliver sends d to the node whose pubsub port is pubsubAddr and returns
// the number of local subscribers each publish was handed to there.
func (c *Client) Deliver(ctx context.Context, pubsubAddr string, d Delivery) ([]int, error) {
	u := c.scheme + pubsubAddr + api.PathDeliver + "?topic=" + url.QueryEscape(d.Topic)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(d.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", d.ContentType)
	if d.From != "" {
		req.Header.Set(api.HeaderFrom, d.From)
	}
	if d.Within > 0 {
		req.Header.Set(api.HeaderDeliverWithin, strconv.FormatInt(max(d.Within.Milliseconds(), 1), 10))
	}
	b, _, err := c.do(req, maxAnswerBytes)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != d.Records {
		return nil, fmt.Errorf("answered %d counts for %d publishes", len(lines), d.Records)
	}
	counts := make([]int, len(lines))
	for i, l := range lines {
		if counts[i], err = strconv.Atoi(l); err != nil || counts[i] < 0 {
			return nil, fmt.Errorf("bad count %q in the answer", l)
		}
	}
	return counts, nil
}

func (c *Client) get(ctx context.Context, addr, path string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.scheme+addr+path, nil)
	if err != nil {
		return nil, err
	}
	b, _, err := c.do(req, limit)
	return b, err
}

// do sends req as one hop (api.HeaderHop) and reads at most limit bytes of
// a 200 answer; cs is the answer's TLS state (nil over plain HTTP).
func (c *Client) do(req *http.Request, limit int64) (b []byte, cs *tls.ConnectionState, err error) {
	req.Header.Set(api.HeaderHop, "1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL, resp.Status, firstLine(b))
	}
	if int64(len(b)) > limit {
		return nil, nil, fmt.Errorf("%s %s: %w (over %d bytes)", req.Method, req.URL, ErrTooLarge, limit)
	}
	return b, resp.TLS, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b[:min(len(b), 200)]), "\n")
	return strings.TrimSpace(s)
}
