package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/auth"
)

// The tokens of these tests. Each secret is at least auth.MinSecretLen
// characters; the admin's is stored hashed.
const (
	tokProduce     = "produce-0123456789abcdef"
	tokConsume     = "consume-0123456789abcdef"
	tokMonitor     = "monitor-0123456789abcdef"
	tokAdmin       = "admin-0123456789abcdefgh"
	tokScoped      = "scoped-0123456789abcdefg"
	tokScopedAdmin = "scoped-admin-0123456789a"
	tokUnknown     = "unknown-0123456789abcdef"
	// memberHeader stands in for the cluster's client certificate.
	memberHeader = "X-Test-Member"
)

func testTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tokens, err := auth.Parse(strings.NewReader(""+
		"producer  produce          "+tokProduce+"\n"+
		"consumer  consume          "+tokConsume+"\n"+
		"prom      monitor          "+tokMonitor+"\n"+
		"ops       admin            "+auth.Hash(tokAdmin)+"\n"+
		"jobs      produce,consume  "+tokScoped+"  queue=jobs.*  topic=news\n"+
		"jobsadmin admin            "+tokScopedAdmin+"  queue=jobs.*\n"), "test tokens")
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

// withAuth turns tokens on; a request is a cluster member's when it carries
// memberHeader.
func withAuth(t *testing.T) func(*Options) {
	tokens := testTokens(t)
	return func(o *Options) {
		o.Auth = tokens
		o.InternalAuth = func(r *http.Request) bool { return r.Header.Get(memberHeader) == "yes" }
	}
}

// send makes one request with headers to srv; body "" sends none.
func send(t *testing.T, srv *httptest.Server, method, target string, header http.Header) resp {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: string(b)}
}

func bearer(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// wantError checks an error answer: status, token, and a body that
// contains want.
func wantError(t *testing.T, r resp, code int, kind *api.Error, want string) {
	t.Helper()
	if r.code != code || r.header.Get(api.HeaderErrorCode) != kind.Token || !strings.Contains(r.body, want) {
		t.Fatalf("got %d %s %q, want %d %s with %q", r.code, r.header.Get(api.HeaderErrorCode), r.body, code, kind.Token, want)
	}
}

// TestAuth_QueuePort_RoleByEndpoint: each role can do what the table says
// and nothing more; 401 without a known token, 403 for a wrong role or a
// queue outside the token's scopes.
func TestAuth_QueuePort_RoleByEndpoint(t *testing.T) {
	e := newEnv(t, withAuth(t))
	e.mustPut("/put?data=seed&queue=jobs.a&token=" + tokAdmin)
	tests := []struct {
		token, target string
		code          int
	}{
		// No token, or an unknown one.
		{"", "/put?data=x", 401},
		{tokUnknown, "/put?data=x", 401},
		{"", "/stats", 401},
		{"", "/metrics", 401},
		{"", "/cluster/status", 401},
		{"", "/cluster/leave", 401},
		{"", "/healthz", 200},
		{"", "/readyz", 200},
		// produce
		{tokProduce, "/put?data=x", 200},
		{tokProduce, "/mput?data=a%0Ab", 200},
		{tokProduce, "/get", 403},
		{tokProduce, "/dump", 403},
		{tokProduce, "/ack?id=1", 403},
		{tokProduce, "/stats", 200},
		{tokProduce, "/config?queue=q", 200},
		{tokProduce, "/config?queue=q&max_depth=1", 403},
		{tokProduce, "/stats?reset=1", 403},
		// consume
		{tokConsume, "/get", 200},
		{tokConsume, "/mget?items=2", 200},
		{tokConsume, "/dump", 200},
		{tokConsume, "/ack?id=999", 409}, // through the guard: not in flight
		{tokConsume, "/put?data=x", 403},
		{tokConsume, "/mput?data=x", 403},
		// monitor: every read, no change
		{tokMonitor, "/stats?format=json", 200},
		{tokMonitor, "/metrics", 200},
		{tokMonitor, "/cluster/status", 200},
		{tokMonitor, "/config?queue=q", 200},
		{tokMonitor, "/put?data=x", 403},
		{tokMonitor, "/get", 403},
		{tokMonitor, "/config?queue=q&lease=30s", 403},
		// admin: everything
		{tokAdmin, "/config?queue=q&max_depth=5", 200},
		{tokAdmin, "/stats?reset=1", 200},
		{tokAdmin, "/put?data=x", 200},
		{tokAdmin, "/get", 200},
		// scopes: produce,consume on queue=jobs.*
		{tokScoped, "/put?data=x&queue=jobs.a", 200},
		{tokScoped, "/get?queue=jobs.a", 200},
		{tokScoped, "/put?data=x&queue=other", 403},
		{tokScoped, "/put?data=x", 403}, // the queue "default"
		{tokScoped, "/ack?id=999", 403}, // any queue
		{tokScoped, "/ack?id=999&queue=jobs.a", 409},
		{tokScoped, "/stats?queue=other", 403},
		// an admin limited to queue=jobs.*
		{tokScopedAdmin, "/config?queue=jobs.a&lease=1m", 200},
		{tokScopedAdmin, "/config?queue=other&lease=1m", 403},
		{tokScopedAdmin, "/config?queue=jobs.a&dead_letter=other", 403},
		{tokScopedAdmin, "/config?queue=jobs.a&dead_letter=jobs.dead", 200},
	}
	for _, tc := range tests {
		var h http.Header
		if tc.token != "" {
			h = bearer(tc.token)
		}
		r := send(t, e.srv, http.MethodGet, tc.target, h)
		if tc.target == "/cluster/leave" {
			r = send(t, e.srv, http.MethodPost, tc.target, h)
		}
		if r.code != tc.code {
			t.Errorf("%s with %q: got %d %q, want %d", tc.target, tc.token, r.code, r.body, tc.code)
			continue
		}
		switch r.code {
		case 401:
			wantError(t, r, 401, api.ErrUnauthorized, "token")
			wantHeader(t, r, "WWW-Authenticate", `Bearer realm="quorumq"`)
		case 403:
			wantError(t, r, 403, api.ErrForbidden, "token ")
		}
	}
	// What was refused changed nothing.
	if cfg := e.stats("q").Config; cfg.Limits.MaxDepth != 5 || cfg.DefaultLease != 0 {
		t.Errorf("queue q config %+v: want only the admin's max_depth=5", cfg)
	}
	if cfg := e.stats("jobs.a").Config; cfg.DeadLetter != "jobs.dead" {
		t.Errorf("jobs.a dead letter %q", cfg.DeadLetter)
	}
	if st := e.stats("other"); st.Puts != 0 {
		t.Errorf("queue other got %d puts from a token outside its scope", st.Puts)
	}
}

// TestAuth_Reasons: the one-line reasons name the token and what was
// missing, never a secret.
func TestAuth_Reasons(t *testing.T) {
	e := newEnv(t, withAuth(t))
	for _, tc := range []struct {
		header http.Header
		target string
		want   string
	}{
		{nil, "/put?data=x", "missing token: send Authorization: Bearer TOKEN, or token=TOKEN in the query (none was sent)\n"},
		{http.Header{"Authorization": {"Bearer "}}, "/put?data=x", "(the Bearer token is empty)\n"},
		{bearer(tokUnknown), "/put?data=x", "unknown token\n"},
		{bearer(tokProduce), "/get", `token "producer" has role produce; /get needs consume` + "\n"},
		{bearer(tokMonitor), "/stats?reset=1", `token "prom" has role monitor; /stats needs admin` + "\n"},
		{bearer(tokScoped), "/put?data=x&queue=other", `token "jobs" may not use queue "other"` + "\n"},
		{bearer(tokScoped), "/nack?id=1", `token "jobs" is limited to some queues: name one with queue=NAME` + "\n"},
	} {
		r := send(t, e.srv, http.MethodGet, tc.target, tc.header)
		if !strings.HasSuffix(r.body, tc.want) && r.body != tc.want {
			t.Errorf("%s: body %q, want %q", tc.target, r.body, tc.want)
		}
		for _, secret := range []string{tokUnknown, tokProduce, tokMonitor, tokScoped} {
			if strings.Contains(r.body, secret) {
				t.Errorf("%s: the body shows a secret: %q", tc.target, r.body)
			}
		}
	}
}

// TestAuth_TokenInHeaderOrQuery: Bearer (any case) for new clients,
// token= for those that only know URLs; another scheme in Authorization
// leaves the query to decide.
func TestAuth_TokenInHeaderOrQuery(t *testing.T) {
	e := newEnv(t, withAuth(t))
	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
		code   int
	}{
		{"bearer", bearer(tokProduce), "", 200},
		{"lower-case scheme", http.Header{"Authorization": {"bearer " + tokProduce}}, "", 200},
		{"query", nil, "&token=" + tokProduce, 200},
		{"query, name in capitals", nil, "&TOKEN=" + tokProduce, 200},
		{"header wins over query", bearer(tokConsume), "&token=" + tokProduce, 403},
		{"basic falls back to query", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "&token=" + tokProduce, 200},
		{"basic alone", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", 401},
		{"query after a piece without =", nil, "&foo&token=" + tokProduce, 401},
	} {
		r := send(t, e.srv, http.MethodGet, "/put?data=x"+tc.query, tc.header)
		if r.code != tc.code {
			t.Errorf("%s: got %d %q, want %d", tc.name, r.code, r.body, tc.code)
		}
	}
}

// TestAuth_PubsubPort_RolesAndTopics: produce publishes, consume
// subscribes, topics are scoped, the reads need a token and reset needs
// admin.
func TestAuth_PubsubPort_RolesAndTopics(t *testing.T) {
	e := newPubsubEnv(t, withAuth(t), func(o *Options) { o.Cluster = &fakeCluster{} })
	for _, tc := range []struct {
		token, method, target string
		code                  int
	}{
		{"", "POST", "/pub", 401},
		{tokProduce, "POST", "/pub", 200},
		{tokConsume, "POST", "/pub", 403},
		{tokConsume, "HEAD", "/sub", 200},
		{tokProduce, "HEAD", "/sub", 403},
		{tokScoped, "POST", "/pub?topic=news", 200},
		{tokScoped, "POST", "/pub", 403}, // the topic "default"
		{tokScoped, "POST", "/pub?topic=sports", 403},
		{"", "GET", "/stats", 401},
		{tokMonitor, "GET", "/stats", 200},
		{tokMonitor, "GET", "/clients", 200},
		{tokMonitor, "GET", "/stats?reset=", 403},
		{tokAdmin, "GET", "/stats?reset=", 200},
		{"", "GET", "/healthz", 200},
		{"", "GET", "/cluster/status", 401},
	} {
		var h http.Header
		if tc.token != "" {
			h = bearer(tc.token)
		}
		if r := send(t, e.srv, tc.method, tc.target, h); r.code != tc.code {
			t.Errorf("%s %s with %q: got %d %q, want %d", tc.method, tc.target, tc.token, r.code, r.body, tc.code)
		}
	}
}

// TestInternal_RoutesOnlyForMembers: with InternalAuth, every /internal/
// route on either port refuses what it does not accept, tokens or not;
// without it (open mode) they answer as before; tokens without it are
// refused at construction.
func TestInternal_RoutesOnlyForMembers(t *testing.T) {
	var delivered atomic.Int64
	peer := func(o *Options) {
		o.Cluster = &fakeCluster{}
		o.Peer = &PubsubPeer{Deliver: func(string, [][]byte) int { delivered.Add(1); return 0 }}
	}
	q := newEnv(t, withAuth(t))
	ps := newPubsubEnv(t, withAuth(t), peer)
	member := http.Header{memberHeader: {"yes"}}
	hop := http.Header{api.HeaderHop: {"1"}}
	adminHop := http.Header{api.HeaderHop: {"1"}, "Authorization": {"Bearer " + tokAdmin}}
	wantError(t, send(t, q.srv, "GET", api.PathStatus, nil), 403, api.ErrForbidden, "/internal/status is for the nodes of the cluster only")
	wantError(t, send(t, q.srv, "GET", api.PathStatus, bearer(tokAdmin)), 403, api.ErrForbidden, "cluster only")
	if r := send(t, q.srv, "GET", api.PathStatus, member); r.code != 200 {
		t.Errorf("member's %s: %d %q", api.PathStatus, r.code, r.body)
	}
	for _, h := range []http.Header{hop, adminHop} {
		wantError(t, send(t, ps.srv, "POST", api.PathDeliver, h), 403, api.ErrForbidden, "cluster only")
	}
	wantError(t, send(t, ps.srv, "GET", api.PathClients, nil), 403, api.ErrForbidden, "cluster only")
	if r := send(t, ps.srv, "GET", api.PathClients, member); r.code != 200 {
		t.Errorf("member's %s: %d %q", api.PathClients, r.code, r.body)
	}
	if delivered.Load() != 0 {
		t.Error("a refused delivery reached the subscribers")
	}

	open := newEnv(t)
	if r := open.get(api.PathStatus); r.code != 200 {
		t.Errorf("open mode %s: %d", api.PathStatus, r.code)
	}

	o := DefaultOptions()
	o.Queue, o.Cluster, o.Auth = newFSMQueue(time.Now), &fakeCluster{}, testTokens(t)
	if _, err := NewQueueHandler(o); err == nil || !strings.Contains(err.Error(), "InternalAuth") {
		t.Errorf("Auth without InternalAuth: %v", err)
	}
}

// TestCrossOrigin_AdminChangesRefused: a browser page of another origin
// cannot make a node leave, change a queue's settings or reset stats, in
// open mode as with tokens; curl (no Origin) and same-origin pages can,
// and other requests are not concerned.
func TestCrossOrigin_AdminChangesRefused(t *testing.T) {
	var left atomic.Int64
	lc := &leavingCluster{leave: func(context.Context) error { left.Add(1); return nil }}
	for _, mode := range []struct {
		name  string
		opts  []func(*Options)
		token string
	}{
		{"open", nil, ""},
		{"tokens", []func(*Options){withAuth(t)}, tokAdmin},
	} {
		t.Run(mode.name, func(t *testing.T) {
			left.Store(0)
			e := newEnv(t, append(mode.opts, func(o *Options) { o.Cluster = lc })...)
			host := e.srv.Listener.Addr().String()
			hdr := func(kv ...string) http.Header {
				h := http.Header{}
				if mode.token != "" {
					h.Set("Authorization", "Bearer "+mode.token)
				}
				for i := 0; i < len(kv); i += 2 {
					h.Set(kv[i], kv[i+1])
				}
				return h
			}
			evil := hdr("Origin", "http://evil.example")
			crossSite := hdr("Sec-Fetch-Site", "cross-site")
			for _, tc := range []struct {
				method, target string
				h              http.Header
				want           string
			}{
				{"POST", "/cluster/leave", evil, `Origin "http://evil.example" is not this node`},
				{"POST", "/cluster/leave", hdr("Origin", "null"), `Origin "null"`},
				{"POST", "/cluster/leave", crossSite, "Sec-Fetch-Site is cross-site"},
				{"POST", "/cluster/leave", hdr("Origin", "http://"+host, "Sec-Fetch-Site", "cross-site"), "cross-site"},
				{"GET", "/config?queue=q&max_depth=1", crossSite, "cross-site"},
				{"POST", "/config?queue=q&overflow=evict-oldest", evil, "evil.example"},
				{"GET", "/stats?reset=1", crossSite, "cross-site"},
			} {
				r := send(t, e.srv, tc.method, tc.target, tc.h)
				wantError(t, r, 403, api.ErrForbidden, "cross-origin request refused: ")
				if !strings.Contains(r.body, tc.want) {
					t.Errorf("%s %s: body %q, want %q", tc.method, tc.target, r.body, tc.want)
				}
			}
			if n := left.Load(); n != 0 {
				t.Fatalf("a cross-origin page made the node leave (%d)", n)
			}
			if cfg := e.stats("q").Config; cfg.Limits.MaxDepth != 0 || cfg.Limits.Policy != 0 {
				t.Fatalf("a cross-origin page changed the config: %+v", cfg)
			}
			// curl, and the node's own pages, still work.
			for _, h := range []http.Header{hdr(), hdr("Origin", "http://"+host), hdr("Sec-Fetch-Site", "same-origin")} {
				if r := send(t, e.srv, "GET", "/config?queue=q&max_depth=3", h); r.code != 200 {
					t.Errorf("config with %v: %d %q", h, r.code, r.body)
				}
			}
			if r := send(t, e.srv, "POST", "/cluster/leave", hdr()); r.code != 200 || left.Load() != 1 {
				t.Errorf("curl's leave: %d %q", r.code, r.body)
			}
			// Not an admin request: a cross-origin put is the tokens' business.
			if mode.token == "" {
				if r := send(t, e.srv, "GET", "/put?data=x", evil); r.code != 200 {
					t.Errorf("cross-origin put in open mode: %d %q", r.code, r.body)
				}
			}
		})
	}
}

// TestErrors_PlainTextNoSniff: every error body, on both ports, whatever
// its status, is text/plain with nosniff, including those that echo input.
func TestErrors_PlainTextNoSniff(t *testing.T) {
	q := newEnv(t)
	qa := newEnv(t, withAuth(t))
	ps := newPubsubEnv(t)
	const script = "<script>alert(1)</script>"
	for _, tc := range []struct {
		name   string
		srv    *httptest.Server
		method string
		target string
		code   int
		echo   string
	}{
		{"invalid queue name", q.srv, "GET", "/put?data=x&queue=" + script, 400, `invalid queue name "<script>alert(1)</script>"`},
		{"invalid duration", q.srv, "GET", "/get?wait=" + script, 400, `invalid wait="<script>`},
		{"wrong method", q.srv, "HEAD", "/put", 405, ""},
		{"invalid topic", ps.srv, "POST", "/pub?topic=" + script, 400, `invalid topic name "<script>`},
		{"pubsub wrong method", ps.srv, "PUT", "/pub", 405, ""},
		{"unauthorized", qa.srv, "GET", "/put?data=x&queue=" + script, 401, ""},
		{"forbidden", qa.srv, "GET", "/get?queue=x&token=" + tokProduce, 403, ""},
	} {
		r := send(t, tc.srv, tc.method, strings.ReplaceAll(tc.target, script, "%3Cscript%3Ealert(1)%3C%2Fscript%3E"), nil)
		if r.code != tc.code {
			t.Errorf("%s: status %d %q, want %d", tc.name, r.code, r.body, tc.code)
			continue
		}
		if ct, ns := r.header.Get("Content-Type"), r.header.Get("X-Content-Type-Options"); ct != "text/plain; charset=utf-8" || ns != "nosniff" {
			t.Errorf("%s: Content-Type %q, X-Content-Type-Options %q", tc.name, ct, ns)
		}
		if !strings.Contains(r.body, tc.echo) {
			t.Errorf("%s: body %q lacks %q", tc.name, r.body, tc.echo)
		}
	}
}

// syncBuffer is a log destination the handlers write to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAuth_QueryTokenRedacted: a token= never reaches a log line (every
// level) nor an answer, refused or relayed, and a redirect leaves it out
// of Location; the leader still receives it.
func TestAuth_QueryTokenRedacted(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFleet(t, []string{"n1", "n2"}, withAuth(t), func(o *Options) {
		o.Logger = logger
		o.ForwardTimeout = 300 * time.Millisecond
	})
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]

	var answers []resp
	// Refused on the follower: unknown, then a wrong role.
	answers = append(answers, n2.get("/put?data=x&token="+tokUnknown), n2.get("/get?token="+tokProduce))
	// Relayed to the leader and served there: the credentials went along.
	answers = append(answers, n2.get("/put?data=relayed&token="+tokProduce))
	if st := n1.stats(api.DefaultQueue); st.Puts != 1 {
		t.Fatalf("the leader stored %d messages, want 1", st.Puts)
	}
	// A redirect does not echo the token.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(n2.srv.URL + "/put?data=x&redirect=1&token=" + tokProduce)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	r := resp{code: res.StatusCode, header: res.Header}
	if r.code != http.StatusTemporaryRedirect || r.header.Get("Location") != "http://"+n1.srv.Listener.Addr().String()+"/put?data=x&redirect=1" {
		t.Fatalf("redirect: %d Location %q", r.code, r.header.Get("Location"))
	}
	answers = append(answers, r)
	// A leader that hangs up: the retries are logged, the 503 explains.
	f.rawLeader("gone", func(w http.ResponseWriter, _ *http.Request) { hangUp(t, w) })
	f.setLeader("gone")
	r = n2.get("/stats?token=" + tokMonitor)
	wantError(t, r, 503, api.ErrNoLeader, "no leader")
	answers = append(answers, r)

	for _, secret := range []string{tokUnknown, tokProduce, tokMonitor} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a token reached the log:\n%s", logs.String())
		}
		for _, a := range answers {
			for k, v := range a.header {
				if strings.Contains(strings.Join(v, " "), secret) {
					t.Fatalf("header %s echoes a token: %q", k, v)
				}
			}
			if strings.Contains(a.body, secret) {
				t.Fatalf("a body echoes a token: %q", a.body)
			}
		}
	}
	if !strings.Contains(logs.String(), "token=REDACTED") {
		t.Fatalf("no refusal logged with the redacted URI:\n%s", logs.String())
	}
}

// TestAuth_ForwardedCredentialsCheckedByLeader: the follower checks the
// token, and the leader checks the relayed credentials again with its own
// tokens: a token the leader does not know fails there.
func TestAuth_ForwardedCredentialsCheckedByLeader(t *testing.T) {
	f := newFleet(t, []string{"n1", "n2"}, withAuth(t))
	f.setLeader("n1")
	n1, n2 := f.nodes["n1"], f.nodes["n2"]
	if r := send(t, n2.srv, "GET", "/put?data=a", bearer(tokProduce)); r.code != 200 {
		t.Fatalf("put with Bearer via the follower: %d %q", r.code, r.body)
	}
	wantError(t, send(t, n2.srv, "GET", "/put?data=b", nil), 401, api.ErrUnauthorized, "missing token")
	wantProposals(t, n1, 1)

	// The leader's tokens no longer know the producer.
	leaderTokens, err := auth.Parse(strings.NewReader("ops admin "+tokAdmin+"\n"), "leader")
	if err != nil {
		t.Fatal(err)
	}
	lead := newEnv(t, func(o *Options) {
		o.Auth, o.InternalAuth, o.Logger = leaderTokens, func(*http.Request) bool { return true }, discardLogger()
	})
	f.mu.Lock()
	f.addrs["lead"] = lead.srv.Listener.Addr().String()
	f.mu.Unlock()
	f.setLeader("lead")
	r := send(t, n2.srv, "GET", "/put?data=c", bearer(tokProduce))
	wantError(t, r, 401, api.ErrUnauthorized, "unknown token")
	wantProposals(t, lead, 0)
}

// TestAuth_ReloadTakesEffect: with an *auth.Store, a reloaded file
// changes who may do what on the next request, and a bad file changes
// nothing.
func TestAuth_ReloadTakesEffect(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("producer produce " + tokProduce + "\n")
	store, err := auth.NewStore(file, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Auth, o.InternalAuth = store, func(*http.Request) bool { return false } })
	put := func(token string) int { return send(t, e.srv, "GET", "/put?data=x", bearer(token)).code }
	if put(tokProduce) != 200 || put(tokAdmin) != 401 {
		t.Fatal("the first file is not in use")
	}
	write("ops admin " + auth.Hash(tokAdmin) + "\n")
	if err := store.Reload(); err != nil {
		t.Fatal(err)
	}
	if put(tokProduce) != 401 || put(tokAdmin) != 200 {
		t.Fatal("the reloaded file is not in use")
	}
	write("ops admin too-short\n")
	if err := store.Reload(); err == nil {
		t.Fatal("a bad file reloaded")
	}
	if put(tokAdmin) != 200 {
		t.Fatal("a bad file changed the tokens in use")
	}
}

// TestRedactQuery: every token= piece is redacted (or stripped), whatever
// the case of its name and wherever it is; nothing else changes.
func TestRedactQuery(t *testing.T) {
	for _, tc := range []struct{ in, redacted, stripped string }{
		{"data=x", "data=x", "data=x"},
		{"token=abc&data=x", "token=REDACTED&data=x", "data=x"},
		{"data=x&TOKEN=abc", "data=x&TOKEN=REDACTED", "data=x"},
		{"foo&token=abc", "foo&token=REDACTED", "foo"},
		{"token=abc", "token=REDACTED", ""},
		{"token", "token=REDACTED", ""},
		{"tokens=abc&data=token", "tokens=abc&data=token", "tokens=abc&data=token"},
		{"token=a&token=b", "token=REDACTED&token=REDACTED", ""},
	} {
		if got := redactQuery(tc.in); got != tc.redacted {
			t.Errorf("redactQuery(%q) = %q, want %q", tc.in, got, tc.redacted)
		}
		if got := stripToken(tc.in); got != tc.stripped {
			t.Errorf("stripToken(%q) = %q, want %q", tc.in, got, tc.stripped)
		}
	}
}
