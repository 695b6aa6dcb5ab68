package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/auth"
)

// Authenticator checks a client's token (Options.Auth). *auth.Store and
// *auth.Tokens implement it.
type Authenticator interface {
	// Authenticate returns the principal whose token this is, or false
	// for an unknown one. It must take the same time whatever the token.
	Authenticate(token string) (*auth.Principal, bool)
}

// The tokens file of a node is what production passes as Options.Auth.
var _ Authenticator = (*auth.Store)(nil)

// access is what one request needs of its token: a role, and, for a
// token limited by scopes, the queue or topic names it touches.
type access struct {
	role auth.Role
	kind auth.Kind
	// name is the queue or topic the request touches, "" for any (an ack
	// by id alone); only checked when kind is set.
	name string
	// also is a second queue the request touches (/config's dead_letter).
	also string
}

// The access rules of the routes. A route without one is open to anyone
// (/healthz, /readyz) or is a node-to-node route (Options.InternalAuth).

func queueAccess(role auth.Role) func(params) (access, error) {
	return func(p params) (access, error) {
		q, err := p.queue()
		return access{role: role, kind: auth.Queue, name: q}, err
	}
}

// anyQueueAccess: ack, nack and touch, where no queue= means any queue.
func anyQueueAccess(p params) (access, error) {
	q, err := p.anyQueue()
	return access{role: auth.Consume, kind: auth.Queue, name: q}, err
}

// statsAccess: the queue's stats are a read; reset=1 is an admin's.
func statsAccess(p params) (access, error) {
	a, err := queueAccess(auth.Monitor)(p)
	if resetRequested(p) {
		a.role = auth.Admin
	}
	return a, err
}

// configAccess: reading a queue's settings is a read; changing them is an
// admin's, and a dead-letter queue must be in the token's scopes too.
func configAccess(p params) (access, error) {
	a, err := queueAccess(auth.Monitor)(p)
	if err != nil {
		return a, err
	}
	cfg, fields, err := configChange(a.name, p)
	if fields != 0 {
		a.role, a.also = auth.Admin, cfg.DeadLetter
	}
	return a, err
}

func topicAccess(role auth.Role) func(params) (access, error) {
	return func(p params) (access, error) {
		t, err := topicParam(p)
		return access{role: role, kind: auth.Topic, name: t}, err
	}
}

// pubsubStatsAccess: pubsub's /stats is a read; reset (any value) an
// admin's.
func pubsubStatsAccess(p params) (access, error) {
	if pubsubReset(p) {
		return access{role: auth.Admin}, nil
	}
	return access{role: auth.Monitor}, nil
}

func roleAccess(role auth.Role) func(params) (access, error) {
	return func(params) (access, error) { return access{role: role}, nil }
}

// guard runs before forwarding and before any handler. It returns nil to
// let the request through, or the error to answer:
//
//   - a node-to-node route (under api.PathInternal) needs
//     Options.InternalAuth, whatever the port, and no token;
//   - with Options.Auth, every other route but the open ones (/healthz,
//     /readyz) needs a known token (401) that holds the route's role and
//     whose scopes cover the queue or topic (403);
//   - always, even without Options.Auth, a request that needs the admin
//     role is refused when a browser sent it from a page of another
//     origin (403): in open mode nothing else stops a web page from
//     making a node leave.
//
// A request without a token from another node of the cluster
// (Options.NodeID) acts with every role.
//
// The follower that takes a request checks it here; the forwarded request
// carries the same credentials (the URI and Authorization are relayed), so
// the leader checks it again with its own tokens. Nothing is trusted for
// coming from another node.
func (e *engine) guard(req *request) error {
	rt := req.rt
	if strings.HasPrefix(rt.path, api.PathInternal) {
		if e.internalAuth != nil && !e.internalAuth(req.Request) {
			return api.ErrForbidden.Errorf("%s is for the nodes of the cluster only", rt.path)
		}
		return nil
	}
	if rt.needs == nil {
		return nil
	}
	var who *auth.Principal
	if e.auth != nil {
		token, how := requestToken(req)
		if token == "" {
			// Only a tokenless request may be a node's: the certificate
			// check stays off the path of every client request.
			id, isNode := e.fromNode(req.Request)
			if !isNode {
				return api.ErrUnauthorized.Errorf("missing token: send Authorization: Bearer TOKEN, or token=TOKEN in the query (%s)", how)
			}
			who = &auth.Principal{Name: "node:" + id, Roles: auth.Admin}
		} else {
			var ok bool
			if who, ok = e.auth.Authenticate(token); !ok {
				return api.ErrUnauthorized.Errorf("unknown token")
			}
		}
	}
	a, err := rt.needs(req.p)
	if err != nil {
		return err
	}
	if a.role&auth.Admin != 0 {
		if why := crossOrigin(req.Request); why != "" {
			return api.ErrForbidden.Errorf("cross-origin request refused: %s", why)
		}
	}
	if who == nil {
		return nil
	}
	if !who.Has(a.role) {
		return api.ErrForbidden.Errorf("token %s has role %s; %s needs %s", api.Quote(who.Name), who.Roles, rt.path, a.role)
	}
	if a.kind != 0 {
		if err := inScope(who, a.kind, a.name); err != nil {
			return err
		}
		if a.also != "" {
			return inScope(who, a.kind, a.also)
		}
	}
	return nil
}

// inScope refuses a name outside the token's scopes.
func inScope(who *auth.Principal, kind auth.Kind, name string) error {
	switch {
	case who.Allows(kind, name):
		return nil
	case name == "":
		return api.ErrForbidden.Errorf("token %s is limited to some %ss: name one with %s=NAME", api.Quote(who.Name), kind, kind)
	}
	return api.ErrForbidden.Errorf("token %s may not use %s %s", api.Quote(who.Name), kind, api.Quote(name))
}

// requestToken returns the client's token: Authorization: Bearer TOKEN,
// else token=TOKEN from the query (for the clients that only know URLs).
// how says what was missing, for the 401.
func requestToken(req *request) (token, how string) {
	how = "none was sent"
	if h := req.Header.Get(api.HeaderAuthorization); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(cred), "the Bearer token is empty"
		}
		// Another scheme may be a proxy's business: look at the query.
		how = "the Authorization header is not Bearer"
	}
	t, _ := req.p.get(api.ParamToken)
	return t, how
}

// crossOrigin says why a request comes from a browser page of another
// origin, or "" if it does not (curl sends neither header). The Origin's
// host must be the Host the request was sent to; the scheme is not
// compared, since a TLS proxy in front may change it.
func crossOrigin(r *http.Request) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" {
		return "Sec-Fetch-Site is cross-site"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return "Origin " + api.Quote(origin) + " is not this node (" + api.Quote(r.Host) + ")"
	}
	return ""
}

// redactQuery returns raw with the value of every token= replaced by
// "REDACTED": what a log line may show of a query. Keys are compared as
// the query parser compares them (not decoded, ASCII case ignored), and
// every piece is looked at, even past one the parser would stop at.
func redactQuery(raw string) string { return rewriteToken(raw, true) }

// stripToken returns raw without its token= pieces: the query a redirect
// may echo back (the client sends its credentials again itself).
func stripToken(raw string) string { return rewriteToken(raw, false) }

func rewriteToken(raw string, keep bool) string {
	if !strings.Contains(strings.ToLower(raw), api.ParamToken) {
		return raw
	}
	var b strings.Builder
	for piece := range strings.SplitSeq(raw, "&") {
		key, _, _ := strings.Cut(piece, "=")
		if equalFoldASCII(key, api.ParamToken) {
			if !keep {
				continue
			}
			piece = key + "=REDACTED"
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(piece)
	}
	return b.String()
}

// redactURI is a request's target, as a log line may show it.
func redactURI(r *http.Request) string {
	u := requestURI(r)
	path, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	return path + "?" + redactQuery(query)
}

// fromNode reports the cluster node req comes from (Options.NodeID).
func (e *engine) fromNode(req *http.Request) (string, bool) {
	if e.nodeID == nil {
		return "", false
	}
	return e.nodeID(req)
}
