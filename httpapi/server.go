package httpapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// Content types. simplequeue's bodies keep libevent's default type so that
// Go does not sniff them; JSON of the new endpoints says so.
const (
	typeSimplequeue = "text/html; charset=ISO-8859-1"
	typeText        = "text/plain; charset=utf-8"
	typeJSON        = "application/json"
)

// server is the handler behind NewQueueHandler and NewAdminHandler.
type server struct {
	o           Options
	log         *slog.Logger
	m           *metrics
	routes      []route
	promHandler http.Handler
	fwd         *http.Client // to the leader; queue handler only

	servedByCache atomic.Pointer[[]string]
	deadlines     deadlineSlots
}

// NewQueueHandler returns the queue port's handler: the simplequeue routes,
// the extensions and the admin endpoints.
func NewQueueHandler(opts Options) (http.Handler, error) {
	o, err := opts.withDefaults()
	if o.Queue == nil {
		err = errors.Join(err, errors.New("Options.Queue is required"))
	}
	if o.Cluster == nil {
		err = errors.Join(err, errors.New("Options.Cluster is required"))
	}
	if err != nil {
		return nil, fmt.Errorf("httpapi: %w", err)
	}
	s := newServer(o)
	s.routes = append(s.adminRoutes(), s.queueRoutes()...)
	s.fwd = newForwardClient()
	return s, nil
}

// NewAdminHandler returns a handler for the admin endpoints only; the
// pubsub port mounts it. It uses Cluster, Gatherer, Registerer and Logger.
// Without a Cluster, /readyz answers 503 and /cluster/status 503.
func NewAdminHandler(opts Options) http.Handler {
	o, err := opts.withDefaults()
	if err != nil {
		o.Logger.Warn("options for the admin endpoints", "err", err)
	}
	s := newServer(o)
	s.routes = s.adminRoutes()
	return s
}

func newServer(o Options) *server {
	return &server{
		o:           o,
		log:         o.Logger,
		m:           newMetrics(o.Registerer, o.Logger),
		promHandler: promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}),
	}
}

// servedBy returns the X-Served-By value, built once per node id. Header
// values set this way are shared between responses, which is safe because
// net/http only reads them and every change to a header replaces the slice
// (its capacity is its length, so even an append copies).
func (s *server) servedBy() []string {
	id := s.o.Cluster.ID()
	if v := s.servedByCache.Load(); v != nil && (*v)[0] == id {
		return *v
	}
	v := []string{id}
	s.servedByCache.Store(&v)
	return v
}

// headerValues holds shared one-element header values for the constant
// strings this package sends (content types, "0"), see servedBy.
var headerValues = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []string{typeSimplequeue, typeText, typeJSON, "0"} {
		m[v] = []string{v}
	}
	return m
}()

// headerValue returns a shared header value for v when it is one of
// headerValues, else a new one.
func headerValue(v string) []string {
	if hv, ok := headerValues[v]; ok {
		return hv[:1:1]
	}
	return []string{v}
}

// A handler serves one route. It returns what to send with status 200, or
// an error that fail maps to a response in one place. Handlers never write
// to the ResponseWriter themselves.
type handler func(r *request) (reply, error)

// request is an incoming request with its query parsed once.
type request struct {
	*http.Request
	w http.ResponseWriter // only for http.MaxBytesReader
	p params
	// pbuf backs p for requests with few parameters.
	pbuf [6]param

	// The POST body, read at most once (see server.body) so that the
	// forwarding step can send it again.
	body     []byte
	bodyErr  error
	bodyRead bool
	// committed is set once a command of this request was, or may have
	// been, committed: from then on the request must not be rerouted, and
	// a later "not the leader" does not mean that nothing was applied.
	committed bool
}

// reply is a successful answer.
type reply struct {
	header http.Header // extra headers
	// msgID, when hasMsgID, is sent as X-Message-Id (the common extra
	// header of /put, without building a header map per request).
	msgID       uint64
	hasMsgID    bool
	contentType string // default: the route's text type (only for a non-empty body)
	body        []byte
	// stream, when set, writes the body instead: /dump's output can be as
	// large as the queue. Up to streamBuffer bytes are sent with a
	// Content-Length; beyond that the response is chunked.
	stream func(w io.Writer) error
	// delegate, when set, serves the request instead (/metrics).
	delegate http.Handler
}

// routeKind says which methods a route takes.
type routeKind uint8

const (
	// simplequeue and extension routes: GET and POST run the same code;
	// HEAD only when the request changes nothing.
	queueRoute routeKind = iota
	// admin reads: GET and HEAD.
	adminRead
	// admin actions: POST only.
	adminAction
)

type route struct {
	name   string // metrics label
	path   string
	prefix bool // simplequeue glob "/path*"; else exact
	kind   routeKind
	// writes reports whether the request may change the queue state: such
	// a request refuses HEAD and needs the leader.
	writes func(params) bool
	// reads marks linearizable reads: they need the leader unless stale=1.
	reads  bool
	handle handler
}

func always(params) bool { return true }
func never(params) bool  { return false }

// needsLeader reports whether the request must be served by the leader:
// every write, and linearizable reads without stale=1. Leader forwarding
// uses it at the one marked place in serve.
func (rt *route) needsLeader(p params) bool {
	if rt.writes(p) {
		return true
	}
	if !rt.reads {
		return false
	}
	stale, err := p.stale()
	return err != nil || !stale
}

// allowed returns the methods the route takes for this request.
func (rt *route) allowed(p params) string {
	switch {
	case rt.kind == adminAction:
		return "POST"
	case rt.kind == adminRead:
		return "GET, HEAD"
	case rt.writes(p):
		return "GET, POST"
	}
	return "GET, POST, HEAD"
}

func (rt *route) checkMethod(method string, p params) error {
	switch method {
	case http.MethodGet:
		if rt.kind != adminAction {
			return nil
		}
	case http.MethodPost:
		if rt.kind != adminRead {
			return nil
		}
	case http.MethodHead:
		if rt.kind == adminRead || rt.kind == queueRoute && !rt.writes(p) {
			return nil
		}
		if rt.kind == queueRoute {
			return api.ErrMethodNotAllowed.Errorf("HEAD is not allowed here: this request changes the queue; use GET or POST")
		}
	}
	return api.ErrMethodNotAllowed.Errorf("method not allowed")
}

func (rt *route) textType() string {
	if rt.kind == queueRoute {
		return typeSimplequeue
	}
	return typeText
}

func (s *server) adminRoutes() []route {
	return []route{
		{name: "healthz", path: "/healthz", kind: adminRead, writes: never, handle: s.healthz},
		{name: "readyz", path: "/readyz", kind: adminRead, writes: never, handle: s.readyz},
		{name: "metrics", path: "/metrics", kind: adminRead, writes: never, handle: s.serveMetrics},
		{name: "cluster_status", path: "/cluster/status", kind: adminRead, writes: never, handle: s.clusterStatus},
		// The other nodes read this node's progress here (promotion, leave).
		{name: "internal_status", path: api.PathStatus, kind: adminRead, writes: never, handle: s.clusterStatus},
		{name: "cluster_leave", path: "/cluster/leave", kind: adminAction, writes: never, handle: s.leave},
	}
}

// queueRoutes lists the queue routes in simplequeue's registration order,
// then the extensions.
func (s *server) queueRoutes() []route {
	return []route{
		{name: "put", path: "/put", prefix: true, writes: always, handle: s.put},
		{name: "get", path: "/get", prefix: true, writes: always, handle: s.get},
		{name: "mget", path: "/mget", prefix: true, writes: always, handle: s.mget},
		{name: "mput", path: "/mput", prefix: true, writes: always, handle: s.mput},
		{name: "dump", path: "/dump", prefix: true, writes: never, reads: true, handle: s.dump},
		{name: "stats", path: "/stats", prefix: true, writes: resetRequested, reads: true, handle: s.stats},
		{name: "ack", path: "/ack", prefix: true, writes: always, handle: s.ack},
		{name: "nack", path: "/nack", prefix: true, writes: always, handle: s.nack},
		{name: "touch", path: "/touch", prefix: true, writes: always, handle: s.touch},
		{name: "config", path: "/config", prefix: true, writes: always, handle: s.config},
	}
}

// match finds the route for an escaped path: admin routes exactly, queue
// routes by prefix, first match wins.
func (s *server) match(path string) *route {
	for i := range s.routes {
		rt := &s.routes[i]
		if path == rt.path || rt.prefix && strings.HasPrefix(path, rt.path) {
			return rt
		}
	}
	return nil
}

// ServeHTTP routes, checks the method, runs the handler and writes its
// reply or error.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.o.Cluster != nil {
		w.Header()[api.HeaderServedBy] = s.servedBy()
	}
	rt := s.match(r.URL.EscapedPath())
	if rt == nil {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNotFound)
		s.m.request("none", http.StatusNotFound)
		return
	}
	req := requestPool.Get().(*request)
	req.Request, req.w = r, w
	req.p = parseQueryInto(req.pbuf[:0], r.URL.RawQuery)
	s.m.request(rt.name, s.serve(w, rt, req))
	// Everything that uses req runs within serve, so it can be reused.
	*req = request{}
	requestPool.Put(req)
}

// requestPool recycles the per-request state of ServeHTTP.
var requestPool = sync.Pool{New: func() any { return new(request) }}

// serve answers one routed request and returns the status code sent.
func (s *server) serve(w http.ResponseWriter, rt *route, req *request) int {
	if err := rt.checkMethod(req.Method, req.p); err != nil {
		w.Header().Set("Allow", rt.allowed(req.p))
		return s.fail(w, rt, err)
	}
	// Leader forwarding happens here, and only here: a request that needs
	// the leader is answered by toLeader unless this node leads.
	needsLeader := rt.needsLeader(req.p)
	if needsLeader {
		if code, done := s.toLeader(w, rt, req); done {
			return code
		}
	}
	rep, err := rt.handle(req)
	if needsLeader && reroutable(req, err) {
		// Leadership moved between the check and the proposal, and nothing
		// was applied: one more pass through the forwarding step. If this
		// node still leads, it serves the request once more, and a second
		// "not the leader" is the answer.
		if code, done := s.toLeader(w, rt, req); done {
			return code
		}
		rep, err = rt.handle(req)
	}
	if err != nil {
		return s.fail(w, rt, err)
	}
	return s.send(w, rt, req, rep)
}

// streamBuffer is how much of a streamed body is held back so that small
// answers still carry a Content-Length.
const streamBuffer = 64 << 10

func (s *server) send(w http.ResponseWriter, rt *route, req *request, rep reply) int {
	if rep.delegate != nil {
		rep.delegate.ServeHTTP(w, req.Request)
		return http.StatusOK
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.hasMsgID {
		h[api.HeaderMessageID] = []string{strconv.FormatUint(rep.msgID, 10)}
	}
	ctype := cmp.Or(rep.contentType, rt.textType())
	if rep.stream != nil {
		sw := &spillWriter{w: w, ctype: ctype}
		err := rep.stream(sw)
		switch {
		case sw.started:
			if err != nil {
				// The status is sent; the client sees a cut chunked body.
				s.log.Debug("streamed response cut short", "route", rt.name, "err", err)
			}
			return http.StatusOK
		case err != nil:
			return s.fail(w, rt, err)
		}
		rep.body = sw.buf
	}
	if len(rep.body) > 0 {
		h["Content-Type"] = headerValue(ctype)
		h["Content-Length"] = []string{strconv.Itoa(len(rep.body))}
	} else {
		h["Content-Length"] = headerValue("0")
	}
	w.WriteHeader(http.StatusOK)
	w.Write(rep.body)
	return http.StatusOK
}

// spillWriter buffers up to streamBuffer bytes, then starts a chunked 200
// response and writes through.
type spillWriter struct {
	w       http.ResponseWriter
	ctype   string
	buf     []byte
	started bool
}

func (sw *spillWriter) Write(p []byte) (int, error) {
	if !sw.started {
		if len(sw.buf)+len(p) <= streamBuffer {
			sw.buf = append(sw.buf, p...)
			return len(p), nil
		}
		sw.started = true
		sw.w.Header().Set("Content-Type", sw.ctype)
		sw.w.WriteHeader(http.StatusOK)
		if _, err := sw.w.Write(sw.buf); err != nil {
			return 0, err
		}
		sw.buf = nil
	}
	return sw.w.Write(p)
}

// fail writes the response for err, as its api kind says, and returns its code.
func (s *server) fail(w http.ResponseWriter, rt *route, err error) int {
	k, body, known := api.Classify(err)
	if !known {
		s.log.Error("request failed", "route", rt.name, "err", err)
	}
	h := w.Header()
	for _, k := range []string{api.HeaderMessageID, api.HeaderMessageIDs, api.HeaderAttempts} {
		h.Del(k)
	}
	body += "\n"
	h.Set("Content-Type", rt.textType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(api.HeaderErrorCode, k.Token)
	if k.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
		if s.o.Cluster != nil {
			if leader, ok := s.o.Cluster.Leader(); ok {
				h.Set(api.HeaderLeaderID, leader.ID)
			}
		}
	}
	w.WriteHeader(k.Status)
	io.WriteString(w, body)
	return k.Status
}

// propose commits cmd, bounded by ProposeTimeout but not by the client: a
// client that goes away must not turn a committed write into an unknown
// one. It returns the command's business error (res.Err) as err. The bound
// comes from a context shared by the requests of a short time slot (see
// deadlineSlots), not from a context and timer per request.
func (s *server) propose(r *request, cmd fsm.Command) (fsm.Result, error) {
	res, err := s.o.Queue.Propose(s.deadlines.context(s.o.ProposeTimeout), cmd)
	switch {
	case err == nil:
		r.committed = true
		return res, res.Err
	case errors.Is(err, api.ErrOutcomeUnknown):
		r.committed = true
		return res, err
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		r.committed = true
		return res, fmt.Errorf("%w: %s ran past %s: %w", api.ErrOutcomeUnknown, cmd.Op, s.o.ProposeTimeout, err)
	case r.committed && (errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrShuttingDown)):
		// Those say "nothing applied, retry anywhere", which is no longer
		// true of the request: an earlier command of it (a large /mput)
		// was committed.
		return res, fmt.Errorf("%w: %s after an earlier part of the request was committed: %w", api.ErrOutcomeUnknown, cmd.Op, err)
	}
	return res, err
}

// consistentRead makes the local state reflect every acknowledged write,
// unless the request says stale=1.
func (s *server) consistentRead(r *request) error {
	stale, err := r.p.stale()
	if err != nil || stale {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.ProposeTimeout)
	defer cancel()
	err = s.o.Queue.ConsistentRead(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return api.ErrUnavailable.Errorf("timed out waiting for a consistent read; retry, or read this node's state with stale=1")
	}
	return err
}

// deadlineSlots hands out the contexts that bound proposals. Requests that
// start within the same slot of real time (1/100 of the timeout, at most
// 10 ms) share one context whose deadline is the end of the slot plus the
// timeout, so a proposal is bounded by the timeout plus at most one slot,
// and a busy node creates one context and timer per slot instead of one
// per request.
type deadlineSlots struct {
	mu  sync.Mutex
	cur atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	slot    int64
	timeout time.Duration
	ctx     context.Context
	cancel  context.CancelFunc // runs by itself at the deadline
}

const maxDeadlineSlot = 10 * time.Millisecond

func (d *deadlineSlots) context(timeout time.Duration) context.Context {
	width := min(max(timeout/100, time.Microsecond), maxDeadlineSlot)
	now := time.Now()
	slot := now.UnixNano() / int64(width)
	if c := d.cur.Load(); c != nil && c.slot == slot && c.timeout == timeout {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && c.slot == slot && c.timeout == timeout {
		return c.ctx
	}
	// The slot's end, on the monotonic clock: now plus what is left of it.
	end := now.Add(time.Duration((slot+1)*int64(width) - now.UnixNano()))
	ctx, cancel := context.WithDeadline(context.Background(), end.Add(timeout))
	d.cur.Store(&deadlineSlot{slot: slot, timeout: timeout, ctx: ctx, cancel: cancel})
	return ctx
}
