package reader

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
	"github.com/quorumq/quorumq/internal/testwait"
)

const secret = "reader-s3cret-token-0123"

// newSecureCluster starts n nodes over HTTPS behind a token gate that
// wants secret; it returns them with the CA's TLS configuration and the
// tokens every node was sent.
func newSecureCluster(t *testing.T, n int) (*testCluster, *clienttest.Tokens, client.Options) {
	t.Helper()
	var tokens clienttest.Tokens
	var ca string
	serve := func(h http.Handler) *httptest.Server {
		// httptest's servers share one certificate: one CA file for all.
		srv, file := clienttest.NewTLSServer(t, tokens.Wrap(secret, h))
		ca = file
		return srv
	}
	opts := client.DefaultOptions()
	tc := newTestClusterServed(t, n, serve, func() *client.Options {
		conf, err := client.TLSConfig(ca)
		if err != nil {
			t.Fatal(err)
		}
		opts.Token, opts.TLS = secret, conf
		return &opts
	})
	return tc, &tokens, opts
}

// syncLog is a goroutine-safe log sink.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReader_SecuredCluster: given the CA and a token, a reader started on
// one node (as http://, the flags' usual form) discovers the others from
// their host:port queue addresses as https:// nodes, sends the token with
// every request, discovery's included, and processes the queue.
func TestReader_SecuredCluster(t *testing.T) {
	tc, tokens, opts := newSecureCluster(t, 3)
	tc.put("q", "a", "b", "c")
	var mu sync.Mutex
	var got []string
	cfg := testConfig(tc, map[string]Task{"t": func(ctx context.Context, m *Message) error {
		mu.Lock()
		got = append(got, string(m.Body))
		mu.Unlock()
		return nil
	}})
	cfg.Addrs = []string{"http://" + strings.TrimPrefix(tc.nodes[0].srv.URL, "https://")}
	cfg.Token, cfg.TLS = opts.Token, opts.TLS
	cfg.RefreshInterval = 10 * time.Millisecond
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	testwait.For(t, 20*time.Second, "three nodes known over https and three messages done", func() bool {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		https := 0
		for _, nd := range r.Nodes() {
			if strings.HasPrefix(nd.URL, "https://") {
				https++
			}
		}
		return n == 3 && https == 3 && r.Stats().Processed == 3
	})
	// The gate stands before the node: a counted request passed it.
	testwait.For(t, 20*time.Second, "the discovered nodes asked for their status", func() bool {
		return tc.nodes[1].count("/cluster/status") > 0 && tc.nodes[2].count("/cluster/status") > 0
	})
	if i := slices.IndexFunc(tokens.Seen(), func(s string) bool { return s != secret }); i >= 0 {
		t.Fatalf("request %d carried %q", i, tokens.Seen()[i])
	}
}

// TestReader_WrongToken_LogsStatusNotToken: a reader whose token the nodes
// refuse logs the 401 and never the token.
func TestReader_WrongToken_LogsStatusNotToken(t *testing.T) {
	tc, _, opts := newSecureCluster(t, 1)
	var logs syncLog
	cfg := testConfig(tc, map[string]Task{"t": func(context.Context, *Message) error { return nil }})
	wrong := "wrong-" + secret
	cfg.Token, cfg.TLS = wrong, opts.TLS
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, r)
	testwait.For(t, 20*time.Second, "a refused fetch logged", func() bool { return strings.Contains(logs.String(), "401") })
	if strings.Contains(logs.String(), wrong) {
		t.Fatalf("the log shows the token:\n%s", logs.String())
	}
}
