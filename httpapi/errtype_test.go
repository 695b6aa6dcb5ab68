package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// TestErrors_EveryStatusIsPlainTextNoSniff: whatever goes wrong, on either
// port, the answer is typed text/plain with nosniff, never the simplehttp
// bodies' text/html: malformed input, unknown paths (empty body), wrong
// methods, conflicts, sizes, full queues, no leader and internal errors.
func TestErrors_EveryStatusIsPlainTextNoSniff(t *testing.T) {
	q := newEnv(t, func(o *Options) {
		o.Logger = discardLogger()
		o.MaxMsgSize = 8
		o.Limits = fsm.Limits{MaxDepth: 1}
	})
	q.mustPut("/put?data=full&queue=full")
	noLeader := newEnv(t, func(o *Options) { o.Logger = discardLogger() })
	noLeader.q.failPropose(func(context.Context, fsm.Command) error { return api.ErrNoLeader })
	broken := newEnv(t, func(o *Options) { o.Logger = discardLogger() })
	broken.q.failPropose(func(context.Context, fsm.Command) error { return errors.New("disk on fire") })
	ps := newPubsubEnv(t)

	for _, tc := range []struct {
		name   string
		do     func() resp
		code   int
		noBody bool
	}{
		{"bad parameter", func() resp { return q.get("/mget?items=0") }, 400, false},
		{"unknown path", func() resp { return q.get("/nothere") }, 404, true},
		{"unknown path, admin prefix", func() resp { return q.get("/cluster") }, 404, true},
		{"wrong method", func() resp { return q.do(http.MethodDelete, "/get", "") }, 405, false},
		{"HEAD of a pop", func() resp { return q.do(http.MethodHead, "/get", "") }, 405, true},
		{"ack of nothing", func() resp { return q.get("/ack?id=99") }, 409, false},
		{"message too large", func() resp { return q.post("/put", "far more than eight bytes") }, 413, false},
		{"queue full", func() resp { return q.get("/put?data=x&queue=full") }, 507, false},
		{"no leader", func() resp { return noLeader.get("/put?data=x") }, 503, false},
		{"internal", func() resp { return broken.get("/put?data=x") }, 500, false},
		{"pubsub bad topic", func() resp { return ps.do(http.MethodPost, "/pub?topic=a%00", "x") }, 400, false},
		{"pubsub unknown path", func() resp { return ps.do(http.MethodGet, "/nothere", "") }, 404, true},
		{"pubsub wrong method", func() resp { return ps.do(http.MethodPut, "/pub", "") }, 405, false},
	} {
		r := tc.do()
		if r.code != tc.code {
			t.Errorf("%s: status %d %q, want %d", tc.name, r.code, r.body, tc.code)
			continue
		}
		if ct, ns := r.header.Get("Content-Type"), r.header.Get(api.HeaderNoSniff); ct != typeText || ns != noSniff {
			t.Errorf("%s: Content-Type %q, %s %q; want %q and %q", tc.name, ct, api.HeaderNoSniff, ns, typeText, noSniff)
		}
		if tc.noBody != (r.body == "") || strings.Count(r.body, "\n") > 1 {
			t.Errorf("%s: body %q, want %s", tc.name, r.body, map[bool]string{true: "none", false: "one line"}[tc.noBody])
		}
	}
}
