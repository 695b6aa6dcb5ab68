package httpapi

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumq/quorumq/api"
)

// engine is the one HTTP engine behind both ports. It owns everything
// that is the same for every route: matching, the method check, the body
// limit, the forwarding step, error mapping, metrics and X-Served-By. A
// port is an engine with its route set (see ports.go).
type engine struct {
	routes []route
	// cluster is nil only on a pubsub port without one: no X-Served-By,
	// no X-Leader-ID.
	cluster Cluster
	// fwd is the forwarding step; nil on a port without replicated routes.
	fwd *forwarder
	m   *metrics
	log *slog.Logger
	// auth is Options.Auth: nil, no tokens (open mode).
	auth Authenticator
	// internalAuth is Options.InternalAuth: nil, node-to-node routes are
	// open.
	internalAuth func(*http.Request) bool
	// nodeID is Options.NodeID.
	nodeID func(*http.Request) (string, bool)

	servedByCache atomic.Pointer[[]string]
}

// A handler serves one route. It returns what to send with status 200, or
// an error that the engine maps to a response in one place (fail).
// Handlers never write to the ResponseWriter themselves.
type handler func(r *request) (reply, error)

// request is an incoming request with its query parsed once.
type request struct {
	*http.Request
	w  http.ResponseWriter // only for http.MaxBytesReader
	rt *route
	p  params
	// pbuf backs p for requests with few parameters.
	pbuf [6]param
	// writes is rt.writes(p): the request changes state.
	writes bool

	// The POST body, read at most once (see body) so that the forwarding
	// step can send it again.
	bodyBytes []byte
	bodyErr   error
	bodyRead  bool
	// committed is set once a command of this request was, or may have
	// been, committed: from then on the request must not be rerouted, and
	// a later "not the leader" does not mean that nothing was applied.
	committed bool

	// batched: this node does not lead, and the handler's proposals go to
	// the leader in batches (batch.go), bounded by fwdDeadline, the end of
	// the forwarding step. noBatch: the request fell back to being
	// relayed on its own.
	batched     bool
	noBatch     bool
	fwdDeadline time.Time
}

// reply is a successful answer.
type reply struct {
	header http.Header // extra headers, kept as spelled (X-PUBSUB-...)
	// msgID, when hasMsgID, is sent as X-Message-Id (the common extra
	// header of /put, without building a header map per request).
	msgID    uint64
	hasMsgID bool
	// contentType, when set, is always sent; otherwise the route style's
	// text type is, with a non-empty body only (libevent's rule).
	contentType string
	body        []byte
	// stream, when set, writes the body instead: /dump's output can be as
	// large as the queue. Up to streamBuffer bytes are sent with a
	// Content-Length; beyond that the response is chunked.
	stream func(w io.Writer) error
	// serve, when set, answers the request itself: /metrics hands it to
	// promhttp, /sub hands the connection to the hub. An error means it
	// wrote nothing; the engine answers it.
	serve func(w http.ResponseWriter, r *http.Request) error
	// handover, when set, holds messages a get took under a handover
	// lease: send confirms them once the answer is written and flushed to
	// the client's connection, and gives them back if it cannot be (see
	// sendHandover).
	handover *takenMessages
}

// Content types. simplehttp's bodies keep libevent's default type so that
// Go does not sniff them; the admin text and JSON say what they are.
const (
	typeSimplehttp = "text/html; charset=ISO-8859-1"
	typeText       = "text/plain; charset=utf-8"
	typeJSON       = "application/json"
	noSniff        = "nosniff"
)

// A style is what a family of routes shares on the wire, where the two
// ports' families differ.
type style struct {
	// textType is the Content-Type of text bodies. Error bodies are
	// always typeText (see fail).
	textType string
	// cluster: answers carry X-Served-By, and 503s X-Leader-ID when a
	// leader is known. The reference's pubsub answers carry neither.
	cluster bool
	// refuseHead answers HEAD on a request that changes state.
	refuseHead error
	// namePath: a wrong method's 405 names the path and the method to use.
	namePath bool
}

var (
	// simplequeueStyle: simplequeue's routes and quorumq's extensions.
	simplequeueStyle = &style{textType: typeSimplehttp, cluster: true,
		refuseHead: api.ErrMethodNotAllowed.Errorf("HEAD is not allowed here: this request changes the queue; use GET or POST")}
	// pubsubStyle: bitly pubsub's routes.
	pubsubStyle = &style{textType: typeSimplehttp,
		refuseHead: api.ErrMethodNotAllowed.Errorf("HEAD is not allowed here: this request changes state; use GET or POST")}
	// adminStyle: the admin endpoints, on both ports.
	adminStyle = &style{textType: typeText, cluster: true}
	// peerStyle: the pubsub port's node-to-node routes.
	peerStyle = &style{textType: typeSimplehttp, namePath: true}
)

// matchRule is how a route's path is compared with the request's.
type matchRule uint8

const (
	// exact: the path, with any query string.
	exact matchRule = iota
	// glob: simplehttp's "/path*", any path that starts with path (fnmatch
	// on the whole URI matches the query string too).
	glob
	// exactURI: simplehttp's "/path" without a star, matched against the
	// whole URI, so not with a query string.
	exactURI
)

// methodRule says which methods a route takes.
type methodRule uint8

const (
	// getPost: simplehttp's routes run the same code for GET and POST;
	// HEAD only when the request changes nothing.
	getPost methodRule = iota
	// getOnly: reads, GET and HEAD.
	getOnly
	// postOnly: actions.
	postOnly
)

// route is one entry of a port's route table: how it matches, what it
// takes, how it looks on the wire, and its handler.
type route struct {
	name    string // metrics label
	path    string
	match   matchRule
	methods methodRule
	style   *style
	// writes reports whether the request changes state: HEAD is refused.
	// nil: never.
	writes func(params) bool
	// replicated: the route serves the replicated queue. Its writes need
	// the leader, and so do its reads unless stale=1.
	replicated bool
	// maxBody bounds a POST body; bodyName words the 413.
	maxBody  int64
	bodyName string
	// needs says what a request needs of its token (see guard). nil: the
	// route is open to anyone, or is a node-to-node route.
	needs func(params) (access, error)
	// batch: on a follower, the request's writes may be proposed through
	// the batcher (batch.go) instead of relaying the request: its handler
	// needs nothing of the local state, and its proposals are batchable
	// commands.
	batch bool
	// admit, when set, runs after the guard and before the forwarding
	// step, on every node the request passes: an error is the answer
	// (the put routes' budget of queued bytes, queueAPI.admitPut).
	admit  func(*request) error
	handle handler
	// latency is the route's child of the latency histogram
	// (observeLatency).
	latency latencyObserver
}

func always(params) bool { return true }

// needsLeader reports whether the request must be served by the leader:
// every write of a replicated route, and its reads without stale=1.
func (rt *route) needsLeader(p params) bool {
	if !rt.replicated {
		return false
	}
	if rt.writes != nil && rt.writes(p) {
		return true
	}
	stale, err := p.stale()
	return err != nil || !stale
}

// allowed returns the methods the route takes for a request.
func (rt *route) allowed(writes bool) string {
	switch {
	case rt.methods == postOnly:
		return "POST"
	case rt.methods == getOnly:
		return "GET, HEAD"
	case writes:
		return "GET, POST"
	}
	return "GET, POST, HEAD"
}

func (rt *route) checkMethod(method string, writes bool) error {
	switch method {
	case http.MethodGet:
		if rt.methods != postOnly {
			return nil
		}
	case http.MethodPost:
		if rt.methods != getOnly {
			return nil
		}
	case http.MethodHead:
		if rt.methods == getOnly || rt.methods == getPost && !writes {
			return nil
		}
		if rt.methods == getPost && rt.style.refuseHead != nil {
			return rt.style.refuseHead
		}
	}
	if rt.style.namePath {
		use := "GET"
		if rt.methods == postOnly {
			use = "POST"
		}
		return api.ErrMethodNotAllowed.Errorf("%s: use %s", rt.path, use)
	}
	return api.ErrMethodNotAllowed.Errorf("method not allowed")
}

// match finds the route for an escaped path, first match wins. query
// reports a query string (even an empty one after "?").
func (e *engine) match(path string, query bool) *route {
	for i := range e.routes {
		rt := &e.routes[i]
		switch rt.match {
		case glob:
			if strings.HasPrefix(path, rt.path) {
				return rt
			}
		case exact:
			if path == rt.path {
				return rt
			}
		case exactURI:
			if path == rt.path && !query {
				return rt
			}
		}
	}
	return nil
}

// ServeHTTP is the engine's one path for every request of the port.
func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := e.match(r.URL.EscapedPath(), r.URL.RawQuery != "" || r.URL.ForceQuery)
	if rt == nil {
		if e.cluster != nil {
			w.Header()[api.HeaderServedBy] = e.servedBy()
		}
		// An empty body, as before, but typed and never sniffed like
		// every other error, so no client or browser guesses HTML.
		h := w.Header()
		h["Content-Type"] = headerValue(typeText)
		h[api.HeaderNoSniff] = headerValue(noSniff)
		h["Content-Length"] = headerValue("0")
		w.WriteHeader(http.StatusNotFound)
		e.m.request("none", http.StatusNotFound)
		return
	}
	if rt.style.cluster && e.cluster != nil {
		w.Header()[api.HeaderServedBy] = e.servedBy()
	}
	req := requestPool.Get().(*request)
	req.Request, req.w, req.rt = r, w, rt
	req.p = parseQueryInto(req.pbuf[:0], r.URL.RawQuery)
	req.writes = rt.writes != nil && rt.writes(req.p)
	start := time.Now()
	code := e.serve(w, req)
	rt.latency.Observe(time.Since(start).Seconds())
	e.m.request(rt.name, code)
	// Everything that uses req runs within serve, so it can be reused.
	*req = request{}
	requestPool.Put(req)
}

// requestPool recycles the per-request state of ServeHTTP.
var requestPool = sync.Pool{New: func() any { return new(request) }}

// serve answers one routed request and returns the status code sent.
func (e *engine) serve(w http.ResponseWriter, req *request) int {
	rt := req.rt
	if err := rt.checkMethod(req.Method, req.writes); err != nil {
		w.Header().Set("Allow", rt.allowed(req.writes))
		return e.fail(w, rt, err)
	}
	if err := e.guard(req); err != nil {
		e.log.Debug("request refused", "route", rt.name, "remote", req.RemoteAddr, "uri", redactURI(req.Request), "err", err)
		return e.fail(w, rt, err)
	}
	if rt.admit != nil {
		if err := rt.admit(req); err != nil {
			return e.fail(w, rt, err)
		}
	}
	needsLeader := rt.needsLeader(req.p)
	for pass := 0; ; pass++ {
		if needsLeader {
			// Leader forwarding happens here, and only here.
			code, local, err := e.fwd.forward(w, req)
			switch {
			case err != nil:
				return e.fail(w, rt, err)
			case !local:
				return code
			}
			if req.Header.Get(api.HeaderForwardedBy) != "" {
				// This leader serves batches: the follower may send them.
				w.Header()[api.HeaderPropose] = headerValue("1")
			}
		}
		rep, err := rt.handle(req)
		if req.batched && errors.Is(err, errUnbatched) && !req.committed {
			// Nothing of it was sent: relay it on its own instead.
			req.batched, req.noBatch = false, true
			continue
		}
		if pass == 0 && needsLeader && reroutable(req, err) {
			// Leadership moved between the check and the proposal, and
			// nothing was applied: one more pass through the forwarding
			// step. If this node still leads, it serves the request once
			// more, and a second "not the leader" is the answer.
			continue
		}
		if err != nil {
			return e.fail(w, rt, err)
		}
		return e.send(w, req, rep)
	}
}

// streamBuffer is how much of a streamed body is held back so that small
// answers still carry a Content-Length.
const streamBuffer = 64 << 10

// send writes a successful reply and returns the status code sent.
func (e *engine) send(w http.ResponseWriter, req *request, rep reply) int {
	if rep.handover != nil {
		return e.sendHandover(w, req, rep)
	}
	code, _ := e.write(w, req, rep)
	return code
}

// write writes a successful reply and returns the status code sent and
// the error of writing the body, if any (the client sees a cut answer).
func (e *engine) write(w http.ResponseWriter, req *request, rep reply) (int, error) {
	rt := req.rt
	if rep.serve != nil {
		if err := rep.serve(w, req.Request); err != nil {
			return e.fail(w, rt, err), nil
		}
		return http.StatusOK, nil
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	if rep.hasMsgID {
		h[api.HeaderMessageID] = []string{strconv.FormatUint(rep.msgID, 10)}
	}
	ctype := cmp.Or(rep.contentType, rt.style.textType)
	if rep.stream != nil {
		sw := &spillWriter{w: w, ctype: ctype}
		err := rep.stream(sw)
		switch {
		case sw.started:
			if err != nil {
				// The status is sent; the client sees a cut chunked body.
				e.log.Debug("streamed response cut short", "route", rt.name, "err", err)
			}
			return http.StatusOK, err
		case err != nil:
			return e.fail(w, rt, err), nil
		}
		rep.body = sw.buf
	}
	if len(rep.body) > 0 || rep.contentType != "" {
		h["Content-Type"] = headerValue(ctype)
	}
	if len(rep.body) > 0 {
		h["Content-Length"] = []string{strconv.Itoa(len(rep.body))}
	} else {
		h["Content-Length"] = headerValue("0")
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(rep.body)
	return http.StatusOK, err
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

// replyHeaders are the headers of a successful queue reply, which an
// error answer must not carry.
var replyHeaders = []string{api.HeaderMessageID, api.HeaderMessageIDs, api.HeaderAttempts, headerHandover}

// fail writes the response for err, as its api kind says, and returns its
// code. It is the one place where errors become responses.
func (e *engine) fail(w http.ResponseWriter, rt *route, err error) int {
	k, body, known := api.Classify(err)
	if !known {
		e.log.Error("request failed", "route", rt.name, "err", err)
	}
	h := w.Header()
	for _, name := range replyHeaders {
		h.Del(name)
	}
	body += "\n"
	// Plain text whatever the route's style, never sniffed: an error may
	// echo input (a queue name of "<script>..."), which a browser must
	// not render as HTML.
	h["Content-Type"] = headerValue(typeText)
	h[api.HeaderNoSniff] = headerValue(noSniff)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set(api.HeaderErrorCode, k.Token)
	if k == api.ErrUnauthorized {
		h.Set(api.HeaderWWWAuthenticate, `Bearer realm="quorumq"`)
	}
	if k.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
		if rt.style.cluster && e.cluster != nil {
			if leader, ok := e.cluster.Leader(); ok {
				h.Set(api.HeaderLeaderID, leader.ID)
			}
		}
	}
	w.WriteHeader(k.Status)
	io.WriteString(w, body)
	return k.Status
}

// servedBy returns the X-Served-By value, built once per node id. Header
// values set this way are shared between responses, which is safe because
// net/http only reads them and every change to a header replaces the slice
// (its capacity is its length, so even an append copies).
func (e *engine) servedBy() []string {
	id := e.cluster.ID()
	if v := e.servedByCache.Load(); v != nil && (*v)[0] == id {
		return *v
	}
	v := []string{id}
	e.servedByCache.Store(&v)
	return v
}

// headerValues holds shared one-element header values for the constant
// strings this package sends (content types, "0"), see servedBy.
var headerValues = func() map[string][]string {
	m := map[string][]string{}
	for _, v := range []string{typeSimplehttp, typeText, typeJSON, noSniff, "0", "1"} {
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

// body returns the POST body, bounded by the route's maxBody; other
// methods have none. It is read once and kept: the forwarding step may
// send it after a handler read it, or a handler after forwarding did.
func (r *request) body() ([]byte, error) {
	if r.Method != http.MethodPost {
		return nil, nil
	}
	if !r.bodyRead {
		r.bodyBytes, r.bodyErr = r.readBody()
		r.bodyRead = true
	}
	return r.bodyBytes, r.bodyErr
}

func (r *request) readBody() ([]byte, error) {
	limit, what := r.rt.maxBody, cmp.Or(r.rt.bodyName, "request body")
	if r.ContentLength > limit {
		return nil, api.ErrTooLarge.Errorf("%s is %d bytes, more than the limit of %d bytes", what, r.ContentLength, limit)
	}
	var src io.Reader = r.Body
	if r.ContentLength > 0 && r.ContentLength <= exactBodyMax {
		// The common case: the length is known (net/http enforces it), so
		// read into a buffer of exactly that size instead of growing one
		// (io.ReadAll). Errors and short bodies end as io.ReadAll would.
		// Larger bodies grow as their bytes arrive, so that a client that
		// announces a large body and sends nothing does not make us
		// allocate it.
		body := make([]byte, r.ContentLength)
		n := 0
		var err error
		for n < len(body) && err == nil {
			var k int
			k, err = r.Body.Read(body[n:])
			n += k
		}
		var probe [1]byte
		if err == nil {
			var k int
			k, err = r.Body.Read(probe[:])
			if k > 0 { // more than announced: let the general path judge it
				src = io.MultiReader(bytes.NewReader(body[:n]), bytes.NewReader(probe[:k]), r.Body)
				err = errMoreBody
			}
		}
		switch {
		case err == nil, err == io.EOF:
			return body[:n], nil
		case err != errMoreBody:
			return nil, api.ErrBadRequest.Errorf("reading the %s: %v", what, err)
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(r.w, bodyReader{src, r.Body}, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, api.ErrTooLarge.Errorf("%s is more than the limit of %d bytes", what, limit)
	case err != nil:
		return nil, api.ErrBadRequest.Errorf("reading the %s: %v", what, err)
	}
	return body, nil
}

// exactBodyMax is the largest announced body read into a buffer of its
// exact size up front.
const exactBodyMax = 256 << 10

// errMoreBody: a body longer than its Content-Length (not from net/http,
// which enforces it).
var errMoreBody = errors.New("body longer than its Content-Length")

type bodyReader struct {
	io.Reader
	io.Closer
}
