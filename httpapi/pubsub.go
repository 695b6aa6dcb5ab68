package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// PubsubHub is this node's pubsub registry as the pubsub port's handlers
// see it. In production it is a *pubsub.Hub.
type PubsubHub interface {
	// Publish queues msgs for topic's local subscribers and returns how
	// many were sent the last message.
	Publish(topic string, msgs [][]byte) (delivered int)
	// Subscribe serves a /sub request until the subscriber is gone. It
	// returns an error only when it wrote nothing (pubsub.ErrClosed).
	Subscribe(w http.ResponseWriter, r *http.Request, opts pubsub.SubscribeOptions) error
	Stats() pubsub.Stats
	// ResetStats zeroes messages received and sent and returns the
	// counters as they were just before.
	ResetStats() pubsub.Stats
	// Clients lists the local subscribers in connect order.
	Clients() []pubsub.Client
}

// Fanout publishes to the subscribers of the other nodes: the cluster half
// of pubsub. nil in PubsubOptions means this node's subscribers only.
type Fanout interface {
	// Publish delivers msgs, in order, to topic's subscribers on the other
	// nodes and returns how many remote subscribers were sent the last
	// message, so that the /pub reply's <C> counts subscribers
	// cluster-wide. It is best effort: err reports the nodes it could not
	// reach while remoteSubscribers still counts the others, and the
	// Fanout counts its failures itself (pubsub.Hub.RecordRemoteFailure).
	// msgs must not be kept after it returns.
	Publish(ctx context.Context, topic string, msgs [][]byte) (remoteSubscribers int, err error)
}

// DefaultFanoutTimeout bounds Fanout.Publish for one /pub.
const DefaultFanoutTimeout = 5 * time.Second

// PubsubOptions configures the pubsub port. The zero value of each field
// means its documented default.
type PubsubOptions struct {
	// Hub is the local registry. Required.
	Hub PubsubHub
	// Fanout reaches the other nodes' subscribers. nil: local only.
	Fanout Fanout
	// FanoutTimeout bounds each Fanout.Publish. Default
	// DefaultFanoutTimeout (5s).
	FanoutTimeout time.Duration
	// Clients, when set, replaces Hub.Clients for /clients: the cluster
	// listing returns every node's subscribers with Client.Node set, and
	// each line then ends in " node:<id>".
	Clients func(ctx context.Context) ([]pubsub.Client, error)
	// Peer serves the node-to-node routes under /internal/ (see
	// PubsubPeer). nil: they answer 404.
	Peer *PubsubPeer
	// Route, when set, runs for every /pub before anything is published
	// (route mode, pubsub.Router.Enqueue): an error answers 503 (413 for
	// pubsub.ErrRouteTooLarge) and nothing is published, so the publisher
	// can retry. Deliveries from other nodes never go through it.
	Route func(ctx context.Context, topic string, msgs [][]byte) error
	// Admin serves the requests no pubsub route matches: the admin
	// endpoints (/healthz, /readyz, /metrics, /cluster/status,
	// /cluster/leave) of NewAdminHandler, which answers 404 for anything
	// else. nil: such requests get 404.
	Admin http.Handler
	// MaxBodySize bounds a /pub body; larger ones get 413. Default
	// DefaultMaxBodySize (5 MiB).
	MaxBodySize int64
	// Registerer receives the request counters (shared with the queue port
	// when both use one registry). Default prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
	// Logger receives errors (component=httpapi). Default slog.Default().
	Logger *slog.Logger
}

func (o PubsubOptions) withDefaults() (PubsubOptions, error) {
	if o.FanoutTimeout == 0 {
		o.FanoutTimeout = DefaultFanoutTimeout
	}
	if o.MaxBodySize == 0 {
		o.MaxBodySize = DefaultMaxBodySize
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.DefaultRegisterer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Logger = o.Logger.With("component", "httpapi")
	var errs []error
	if o.Hub == nil {
		errs = append(errs, errors.New("PubsubOptions.Hub is required"))
	}
	if o.FanoutTimeout < 0 {
		errs = append(errs, fmt.Errorf("FanoutTimeout %s is negative", o.FanoutTimeout))
	}
	if o.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("MaxBodySize %d is negative", o.MaxBodySize))
	}
	if o.Peer != nil && o.Peer.Deliver == nil {
		errs = append(errs, errors.New("PubsubOptions.Peer.Deliver is required"))
	}
	return o, errors.Join(errs...)
}

// NewPubsubHandler returns the pubsub port's handler: bitly pubsub's API
// (spec section 3) with topic=NAME, then Admin.
//
// Routes are the reference's, in its order: /pub*, /sub*, /stats* (prefix
// globs, so /subscribe is /sub) and /clients, which is exact: with a query
// string it is a 404, as in the reference. No match: Admin, else 404 with
// an empty body.
//
// GET and POST run the same code; only a POST body is read. HEAD is
// refused with 405 on /pub and /stats?reset (the reference publishes or
// resets); HEAD /sub gets the head of the stream and no subscription
// (see package pubsub). Other methods get 405.
//
//   - /pub publishes the POST body split on "\n" into count+1 messages
//     (nothing trimmed; a GET or an empty body is one empty message; data=
//     is ignored) to the topic's subscribers on every node, and answers
//     "Published <M> messages to <C> clients.\n", where C is the number of
//     subscribers, local plus remote, that were sent the last message.
//   - /sub streams the topic (multipart= parsed with atoi: absent or
//     non-zero is multipart, "abc" is 0); see package pubsub.
//   - /stats answers the X-PUBSUB-* headers and the reference's text body;
//     format=json gives the same keys in the same order as VALID JSON: the
//     reference's trailing comma before "}" (a listed defect) is dropped.
//     reset, with any value, zeroes messages received and sent after the
//     reply is built. With a Fanout (a cluster node) three lines follow
//     the reference's five, "Remote messages received: N", "Remote
//     failures: N" and "Remote messages dropped: N", and the JSON keys
//     remote_messages_received, remote_failures and
//     remote_messages_dropped follow its five keys.
//   - /clients lists the subscribers, one line each, or
//     "no /sub connections\n"; with Clients set, every node's, each line
//     ending in " node:<id>".
//
// With Route set, /pub runs it before publishing (route mode); with Peer
// set, the node-to-node routes /internal/deliver, /internal/subs and
// /internal/clients are served (see PubsubPeer).
//
// topic=NAME on /pub and /sub ([A-Za-z0-9._-]{1,64}; absent: the topic
// "default") keeps topics apart; 400 for an invalid name. /stats and
// /clients cover every topic. Pubsub is not replicated: no request here
// goes through raft, so none needs the leader.
func NewPubsubHandler(opts PubsubOptions) (http.Handler, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := &pubsubServer{o: o, log: o.Logger, m: newMetrics(o.Registerer, o.Logger)}
	s.routes = []pubsubRoute{
		{name: "pub", path: "/pub", writes: alwaysPS, handle: s.pub},
		{name: "sub", path: "/sub", writes: neverPS, handle: s.sub},
		{name: "pubsub_stats", path: "/stats", writes: pubsubReset, handle: s.pubsubStats},
		{name: "pubsub_clients", path: "/clients", exact: true, writes: neverPS, handle: s.clients},
	}
	return s, nil
}

// typePubsub is libevent's default content type, which every pubsub reply
// carries, as simplequeue's do.
const typePubsub = "text/html; charset=ISO-8859-1"

// pubsubServer is the handler behind NewPubsubHandler.
type pubsubServer struct {
	o      PubsubOptions
	log    *slog.Logger
	m      *metrics
	routes []pubsubRoute
}

// A pubsubHandler serves one route: it returns what to send with status
// 200, or an error that failPubsub maps to a response.
type pubsubHandler func(w http.ResponseWriter, r *http.Request, p params) (pubsubReply, error)

type pubsubReply struct {
	header http.Header // extra headers, kept as spelled (X-PUBSUB-...)
	body   []byte
	// served: the handler answered itself (/sub takes the connection over).
	served bool
}

type pubsubRoute struct {
	name  string // metrics label
	path  string
	exact bool // no glob: the whole request URI must be path
	// writes reports whether the request changes state; it refuses HEAD.
	writes func(params) bool
	handle pubsubHandler
}

func alwaysPS(params) bool { return true }
func neverPS(params) bool  { return false }

// pubsubReset reports /stats?reset with any value, even empty.
func pubsubReset(p params) bool { return p.has("reset") }

// match finds the route of r, first match wins. Like the reference's
// fnmatch on the whole URI, a glob route matches any path that starts with
// its own and an exact route matches only without a query string.
func (s *pubsubServer) match(r *http.Request) *pubsubRoute {
	path := r.URL.EscapedPath()
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.exact {
			if path == rt.path && r.URL.RawQuery == "" && !r.URL.ForceQuery {
				return rt
			}
		} else if strings.HasPrefix(path, rt.path) {
			return rt
		}
	}
	return nil
}

func (s *pubsubServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.match(r)
	if rt == nil && s.o.Peer != nil && strings.HasPrefix(r.URL.Path, api.PathInternal) {
		s.serveInternal(w, r)
		return
	}
	if rt == nil {
		if s.o.Admin != nil {
			s.o.Admin.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNotFound)
		s.m.request("none", http.StatusNotFound)
		return
	}
	s.m.request(rt.name, s.serve(w, r, rt, parseQuery(r.URL.RawQuery)))
}

// serve answers one routed request and returns the status code sent.
func (s *pubsubServer) serve(w http.ResponseWriter, r *http.Request, rt *pubsubRoute, p params) int {
	if err := rt.checkMethod(r.Method, p); err != nil {
		if rt.writes(p) {
			w.Header().Set("Allow", "GET, POST")
		} else {
			w.Header().Set("Allow", "GET, POST, HEAD")
		}
		return s.fail(w, rt, err)
	}
	rep, err := rt.handle(w, r, p)
	switch {
	case err != nil:
		return s.fail(w, rt, err)
	case rep.served:
		return http.StatusOK
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if len(rep.body) > 0 {
		h.Set("Content-Type", typePubsub)
	}
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(http.StatusOK)
	w.Write(rep.body)
	return http.StatusOK
}

func (rt *pubsubRoute) checkMethod(method string, p params) error {
	switch method {
	case http.MethodGet, http.MethodPost:
		return nil
	case http.MethodHead:
		if !rt.writes(p) {
			return nil
		}
		return api.ErrMethodNotAllowed.Errorf("HEAD is not allowed here: this request changes state; use GET or POST")
	}
	return api.ErrMethodNotAllowed.Errorf("method not allowed")
}

// fail writes the response for err and returns its code.
func (s *pubsubServer) fail(w http.ResponseWriter, rt *pubsubRoute, err error) int {
	k, body, known := api.Classify(err)
	if !known {
		s.log.Error("request failed", "route", rt.name, "err", err)
	}
	body += "\n"
	h := w.Header()
	h.Set("Content-Type", typePubsub)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(api.HeaderErrorCode, k.Token)
	if k.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(k.Status)
	io.WriteString(w, body)
	return k.Status
}

// routeError words a Route failure for the publisher.
func routeError(err error) error {
	kind := api.ErrRouteFailed
	if errors.Is(err, api.ErrTooLarge) {
		kind = api.ErrTooLarge
	}
	return kind.Errorf("nothing was published: %v", err)
}

// topicParam returns topic=NAME, api.DefaultTopic when absent.
func topicParam(p params) (string, error) {
	v, ok := p.get("topic")
	if !ok {
		return api.DefaultTopic, nil
	}
	return v, api.CheckTopicName(v)
}

// pub is /pub: publish the POST body, split on "\n", to the topic.
func (s *pubsubServer) pub(w http.ResponseWriter, r *http.Request, p params) (pubsubReply, error) {
	topic, err := topicParam(p)
	if err != nil {
		return pubsubReply{}, err
	}
	body, err := s.body(w, r)
	if err != nil {
		return pubsubReply{}, err
	}
	msgs := bytes.Split(body, []byte{'\n'})
	if s.o.Route != nil {
		// Enqueue first: if it fails nothing was published, and the
		// publisher's retry does not repeat messages to subscribers. The
		// enqueue goes on if the publisher hangs up (as the fan-out does).
		if err := s.o.Route(context.WithoutCancel(r.Context()), topic, msgs); err != nil {
			return pubsubReply{}, routeError(err)
		}
	}
	n := s.o.Hub.Publish(topic, msgs)
	if s.o.Fanout != nil {
		// Local subscribers already have the messages: a publisher that
		// hangs up now must not cut the remote half short.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.o.FanoutTimeout)
		remote, err := s.o.Fanout.Publish(ctx, topic, msgs)
		cancel()
		if err != nil {
			s.log.Debug("publish did not reach every node", "topic", topic, "err", err)
		}
		n += remote
	}
	return pubsubReply{body: fmt.Appendf(nil, "Published %d messages to %d clients.\n", len(msgs), n)}, nil
}

// body reads a POST body, bounded by MaxBodySize; other methods have none.
func (s *pubsubServer) body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, nil
	}
	limit := s.o.MaxBodySize
	if r.ContentLength > limit {
		return nil, api.ErrTooLarge.Errorf("request body is %d bytes, more than the limit of %d bytes", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, api.ErrTooLarge.Errorf("request body is more than the limit of %d bytes", limit)
	case err != nil:
		return nil, api.ErrBadRequest.Errorf("reading the request body: %v", err)
	}
	return body, nil
}

// sub is /sub: the hub takes the connection over until the subscriber
// leaves.
func (s *pubsubServer) sub(w http.ResponseWriter, r *http.Request, p params) (pubsubReply, error) {
	topic, err := topicParam(p)
	if err != nil {
		return pubsubReply{}, err
	}
	multipart := true
	if v, ok := p.get("multipart"); ok {
		multipart = atoi(v) != 0
	}
	if err := s.o.Hub.Subscribe(w, r, pubsub.SubscribeOptions{Topic: topic, Multipart: multipart}); err != nil {
		return pubsubReply{}, err
	}
	return pubsubReply{served: true}, nil
}

// pubsubStats is /stats: the counters as headers and as text or JSON.
func (s *pubsubServer) pubsubStats(w http.ResponseWriter, r *http.Request, p params) (pubsubReply, error) {
	var st pubsub.Stats
	if pubsubReset(p) {
		st = s.o.Hub.ResetStats()
	} else {
		st = s.o.Hub.Stats()
	}
	u := func(n uint64) []string { return []string{strconv.FormatUint(n, 10)} }
	// Set directly: the reference spells these in capitals.
	h := http.Header{
		"X-PUBSUB-TOTAL-CONNECTIONS":  u(st.TotalConnections),
		"X-PUBSUB-ACTIVE-CONNECTIONS": {strconv.FormatInt(st.CurrentConnections, 10)},
		"X-PUBSUB-MESSAGES-RECEIVED":  u(st.MessagesReceived),
		"X-PUBSUB-MESSAGES-SENT":      u(st.MessagesSent),
		"X-PUBSUB-KICKED-CLIENTS":     u(st.KickedClients),
	}
	// A cluster node (with a Fanout) adds its remote counters after the
	// reference's lines and keys; a plain pubsub keeps them exactly.
	cluster := s.o.Fanout != nil
	if format, _ := p.get("format"); format == "json" {
		return pubsubReply{header: h, body: pubsubStatsJSON(st, cluster)}, nil
	}
	return pubsubReply{header: h, body: pubsubStatsText(st, cluster)}, nil
}

// pubsubStatsText writes the reference's five lines, then with remote
// the cluster's counters, one "Name: value" line each:
//
//	Remote messages received: <messages published elsewhere, delivered here>
//	Remote failures: <deliveries to other nodes that failed>
//	Remote messages dropped: <messages in those deliveries>
func pubsubStatsText(st pubsub.Stats, remote bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, "Active connections: "...)
	b = strconv.AppendInt(b, st.CurrentConnections, 10)
	b = append(b, "\nTotal connections: "...)
	b = strconv.AppendUint(b, st.TotalConnections, 10)
	b = append(b, "\nMessages received: "...)
	b = strconv.AppendUint(b, st.MessagesReceived, 10)
	b = append(b, "\nMessages sent: "...)
	b = strconv.AppendUint(b, st.MessagesSent, 10)
	b = append(b, "\nKicked clients: "...)
	b = strconv.AppendUint(b, st.KickedClients, 10)
	if remote {
		b = append(b, "\nRemote messages received: "...)
		b = strconv.AppendUint(b, st.RemoteReceived, 10)
		b = append(b, "\nRemote failures: "...)
		b = strconv.AppendUint(b, st.RemoteFailures, 10)
		b = append(b, "\nRemote messages dropped: "...)
		b = strconv.AppendUint(b, st.RemoteDropped, 10)
	}
	return append(b, '\n')
}

// pubsubStatsJSON writes the reference's JSON layout (a space after each
// colon, none after commas, one line ending in "\n") without its trailing
// comma, so that the result is valid JSON. With remote, the keys
// remote_messages_received, remote_failures and remote_messages_dropped
// follow the reference's five.
func pubsubStatsJSON(st pubsub.Stats, remote bool) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"current_connections": `...)
	b = strconv.AppendInt(b, st.CurrentConnections, 10)
	b = append(b, `,"total_connections": `...)
	b = strconv.AppendUint(b, st.TotalConnections, 10)
	b = append(b, `,"messages_received": `...)
	b = strconv.AppendUint(b, st.MessagesReceived, 10)
	b = append(b, `,"messages_sent": `...)
	b = strconv.AppendUint(b, st.MessagesSent, 10)
	b = append(b, `,"kicked_clients": `...)
	b = strconv.AppendUint(b, st.KickedClients, 10)
	if remote {
		b = append(b, `,"remote_messages_received": `...)
		b = strconv.AppendUint(b, st.RemoteReceived, 10)
		b = append(b, `,"remote_failures": `...)
		b = strconv.AppendUint(b, st.RemoteFailures, 10)
		b = append(b, `,"remote_messages_dropped": `...)
		b = strconv.AppendUint(b, st.RemoteDropped, 10)
	}
	return append(b, "}\n"...)
}

// clients is /clients: one line per subscriber in connect order.
func (s *pubsubServer) clients(w http.ResponseWriter, r *http.Request, p params) (pubsubReply, error) {
	var list []pubsub.Client
	if s.o.Clients != nil {
		var err error
		if list, err = s.o.Clients(r.Context()); err != nil {
			return pubsubReply{}, err
		}
	} else {
		list = s.o.Hub.Clients()
	}
	if len(list) == 0 {
		return pubsubReply{body: []byte("no /sub connections\n")}, nil
	}
	b := make([]byte, 0, 96*len(list))
	for _, c := range list {
		b = appendClientLine(b, c)
	}
	return pubsubReply{body: b}, nil
}

// clientState is libevent's EVCON_WRITING, what the reference shows for a
// subscriber in the normal case.
const clientState = 7

// appendClientLine writes one /clients line as the reference does:
// "<ip>:<port> connected at <YYYY-MM-DD HH:MM:SS>. output buffer
// size:<pending bytes> state:7" in UTC, then " node:<id>" when the client
// belongs to a cluster-wide listing.
func appendClientLine(b []byte, c pubsub.Client) []byte {
	b = append(b, c.RemoteAddr...)
	b = append(b, " connected at "...)
	b = c.ConnectedAt.UTC().AppendFormat(b, time.DateTime)
	b = append(b, ". output buffer size:"...)
	b = strconv.AppendInt(b, c.PendingBytes, 10)
	b = append(b, " state:"...)
	b = strconv.AppendInt(b, clientState, 10)
	if c.Node != "" {
		b = append(b, " node:"...)
		b = append(b, c.Node...)
	}
	return append(b, '\n')
}
