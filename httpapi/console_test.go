package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// TestUI_ServesEmbeddedAssetsWithCSPAndETags checks /ui on both ports:
// the page and its modules with their types, the Content-Security-Policy
// and nosniff on every answer, a 304 for a known ETag, a 404 outside the
// assets, and no token needed even when the node has tokens.
func TestUI_ServesEmbeddedAssetsWithCSPAndETags(t *testing.T) {
	q := newEnv(t, withAuth(t))
	ps := newPubsubEnv(t, withAuth(t), func(o *Options) { o.Cluster = &fakeCluster{} })
	for _, srv := range []func(method, target string) resp{
		func(m, target string) resp { return q.do(m, target, "") },
		func(m, target string) resp { return ps.do(m, target, "") },
	} {
		for target, ctype := range map[string]string{
			"/ui": "text/html; charset=utf-8", "/ui/": "text/html; charset=utf-8",
			"/ui/app.js": "text/javascript; charset=utf-8", "/ui/app.css": "text/css; charset=utf-8",
		} {
			r := srv(http.MethodGet, target)
			if r.code != 200 || r.header.Get("Content-Type") != ctype {
				t.Fatalf("GET %s: %d %q, want 200 %q", target, r.code, r.header.Get("Content-Type"), ctype)
			}
			wantHeader(t, r, "Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
			wantHeader(t, r, "X-Content-Type-Options", "nosniff")
			if r.header.Get("ETag") == "" {
				t.Fatalf("GET %s: no ETag", target)
			}
		}
		r := srv(http.MethodGet, "/ui/")
		if !strings.Contains(r.body, `<script type="module" src="/ui/app.js">`) || strings.Contains(r.body, "<script>") {
			t.Fatalf("index: want one external module script, no inline script:\n%s", r.body)
		}
		if r := srv(http.MethodGet, "/ui/nope.js"); r.code != 404 || r.header.Get("Content-Security-Policy") == "" {
			t.Fatalf("GET /ui/nope.js: %d", r.code)
		}
		if r := srv(http.MethodGet, "/uix"); r.code != 404 {
			t.Fatalf("GET /uix: %d", r.code)
		}
		if r := srv(http.MethodPost, "/ui/"); r.code != 405 {
			t.Fatalf("POST /ui/: %d", r.code)
		}
	}
	etag := q.get("/ui/app.js").header.Get("ETag")
	r := send(t, q.srv, http.MethodGet, "/ui/app.js", http.Header{"If-None-Match": {etag}})
	if r.code != http.StatusNotModified || r.body != "" {
		t.Fatalf("If-None-Match %s: %d %q, want 304 and no body", etag, r.code, r.body)
	}
	if r := send(t, q.srv, http.MethodGet, "/ui/app.js", http.Header{"If-None-Match": {`"other"`}}); r.code != 200 {
		t.Fatalf("another ETag: %d, want 200", r.code)
	}
}

// TestUI_AssetsNeverParseDataAsHTML keeps the UI's rule: no module
// writes HTML from strings (innerHTML, outerHTML, insertAdjacentHTML,
// document.write), so a queue named <script> shows as text.
func TestUI_AssetsNeverParseDataAsHTML(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"app.js", "api.js", "dom.js", "charts.js", "history.js", "cluster.js", "queues.js", "queue.js", "pubsub.js", "analytics.js"} {
		r := e.get("/ui/" + name)
		if r.code != 200 {
			t.Fatalf("GET /ui/%s: %d", name, r.code)
		}
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
			if strings.Contains(r.body, bad) {
				t.Errorf("%s uses %s", name, bad)
			}
		}
	}
}

// TestPubsubTopics_CountsSubscribersPerTopicAndNode checks GET
// /pubsub/topics on both ports: topics sorted, kicked subscribers left
// out, every node listed with its drops and kicks, a node that did not
// answer listed with its error, and a token needed.
func TestPubsubTopics_CountsSubscribersPerTopicAndNode(t *testing.T) {
	nodes := func(context.Context) ([]PubsubNode, error) {
		return []PubsubNode{
			{ID: "node2", Clients: []pubsub.Client{{Topic: "news"}, {Topic: "alerts"}, {Topic: "news", Kicked: true}},
				Stats: pubsub.Stats{KickedClients: 4, RemoteDropped: 7}},
			{ID: "node1", Clients: []pubsub.Client{{Topic: "news"}, {Topic: "<script>"}}},
			{ID: "node3", Err: errors.New("no answer from node3: timeout")},
		}, nil
	}
	want := `{"topics":[{"name":"\u003cscript\u003e","subscribers":1,"nodes":{"node1":1}},` +
		`{"name":"alerts","subscribers":1,"nodes":{"node2":1}},` +
		`{"name":"news","subscribers":2,"nodes":{"node1":1,"node2":1}}],` +
		`"nodes":[{"id":"node1","subscribers":2,"drops":0,"kicked":0},` +
		`{"id":"node2","subscribers":2,"drops":7,"kicked":4},` +
		`{"id":"node3","subscribers":0,"drops":0,"kicked":0,"error":"no answer from node3: timeout"}]}` + "\n"
	q := newEnv(t, withAuth(t), func(o *Options) { o.PubsubNodes = nodes })
	ps := newPubsubEnv(t, withAuth(t), func(o *Options) { o.Cluster, o.PubsubNodes = &fakeCluster{}, nodes })
	for _, r := range []resp{
		send(t, q.srv, http.MethodGet, "/pubsub/topics", bearer(tokMonitor)),
		send(t, ps.srv, http.MethodGet, "/pubsub/topics", bearer(tokMonitor)),
	} {
		if r.code != 200 || r.body != want || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("/pubsub/topics: %d %q\n%s\nwant\n%s", r.code, r.header.Get("Content-Type"), r.body, want)
		}
	}
	if r := send(t, q.srv, http.MethodGet, "/pubsub/topics", bearer(tokUnknown)); r.code != 401 {
		t.Fatalf("an unknown token: %d %s", r.code, r.body)
	}
	if r := send(t, ps.srv, http.MethodGet, "/pubsub/topics", nil); r.code != 401 {
		t.Fatalf("no token: %d %s", r.code, r.body)
	}
	if r := newEnv(t).get("/pubsub/topics"); r.code != 404 {
		t.Fatalf("without PubsubNodes: %d %s", r.code, r.body)
	}
}

// fakeAnalytics answers a fixed report and records the query.
type fakeAnalytics struct {
	got AnalyticsQuery
	err error
}

func (f *fakeAnalytics) AnalyticsReport(_ context.Context, q AnalyticsQuery) (any, error) {
	f.got = q
	return map[string]any{"node": q.Node, "top": q.Top}, f.err
}

// TestAnalytics_AnswersTheReportOrAOneLine404 checks GET /analytics: 404
// with a reason without --analytics-redis, the query's node and top
// (default 20, 1 to 500) passed on, a store that does not answer a 503,
// and a token needed.
func TestAnalytics_AnswersTheReportOrAOneLine404(t *testing.T) {
	newEnv(t).want(newEnv(t).get("/analytics"), 404, "no analytics on this node: start it with --analytics-redis=ADDR\n")
	fa := &fakeAnalytics{}
	e := newEnv(t, withAuth(t), func(o *Options) { o.Analytics = fa })
	r := send(t, e.srv, http.MethodGet, "/analytics?node=http%3A%2F%2Fexample.com%2F&top=5", bearer(tokMonitor))
	var got map[string]any
	if r.code != 200 || json.Unmarshal([]byte(r.body), &got) != nil || got["node"] != "http://example.com/" || got["top"] != 5.0 {
		t.Fatalf("/analytics: %d %s", r.code, r.body)
	}
	if send(t, e.srv, http.MethodGet, "/analytics", bearer(tokMonitor)); fa.got != (AnalyticsQuery{Top: 20}) {
		t.Fatalf("default query %+v", fa.got)
	}
	for _, q := range []string{"top=0", "top=501", "top=x"} {
		if r := send(t, e.srv, http.MethodGet, "/analytics?"+q, bearer(tokMonitor)); r.code != 400 {
			t.Fatalf("%s: %d %s", q, r.code, r.body)
		}
	}
	if r := send(t, e.srv, http.MethodGet, "/analytics", nil); r.code != 401 {
		t.Fatalf("no token: %d %s", r.code, r.body)
	}
	fa.err = errors.New("dial tcp 127.0.0.1:1: connection refused")
	r = send(t, e.srv, http.MethodGet, "/analytics", bearer(tokMonitor))
	if r.code != 503 || r.body != "analytics store: dial tcp 127.0.0.1:1: connection refused\n" {
		t.Fatalf("store down: %d %q", r.code, r.body)
	}
	fa.err = api.ErrBadRequest.Errorf("bad node")
	if r := send(t, e.srv, http.MethodGet, "/analytics", bearer(tokMonitor)); r.code != 400 {
		t.Fatalf("an api error: %d %q", r.code, r.body)
	}
}

// TestPubsubStatsPeer_AnswersTheCountersForOtherNodes checks the
// node-to-node route behind /pubsub/topics.
func TestPubsubStatsPeer_AnswersTheCountersForOtherNodes(t *testing.T) {
	e := newPubsubEnv(t, func(o *Options) { o.Peer = &PubsubPeer{Deliver: func(string, [][]byte) int { return 0 }} })
	r := e.do(http.MethodGet, api.PathPubsubStats, "")
	var st map[string]uint64
	if r.code != 200 || json.Unmarshal([]byte(r.body), &st) != nil {
		t.Fatalf("%s: %d %s", api.PathPubsubStats, r.code, r.body)
	}
	for _, k := range []string{"kicked_clients", "remote_messages_dropped"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("no %s in %s", k, r.body)
		}
	}
}
