package load

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
)

const secret = "bench-s3cret-token-0123"

// newSecureFakeNode is a fakeNode over HTTPS behind a token gate that
// wants secret, with the CA's TLS configuration.
func newSecureFakeNode(t *testing.T) (*fakeNode, *clienttest.Tokens, *client.Options) {
	t.Helper()
	var tokens clienttest.Tokens
	var ca string
	f := newFakeNodeServed(func(h http.Handler) *httptest.Server {
		srv, file := clienttest.NewTLSServer(t, tokens.Wrap(secret, h))
		ca = file
		return srv
	})
	conf, err := client.TLSConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	return f, &tokens, &client.Options{Token: secret, TLS: conf}
}

// TestRunQuorumq_SecuredCluster: with the CA and a token, a run finds the
// leader and puts, leases and acks over TLS, the default http:// target
// form included, with the token on every request.
func TestRunQuorumq_SecuredCluster(t *testing.T) {
	f, tokens, opts := newSecureFakeNode(t)
	for _, mode := range []string{ModePut, ModeLease} {
		cfg := DefaultConfig()
		cfg.Mode, cfg.Targets, cfg.Size, cfg.Batch, cfg.Prefill = mode, []string{"http://" + f.addr()}, 10, 1, 0
		cfg.Concurrency, cfg.Count, cfg.Duration, cfg.Warmup = 2, 20, 0, 0
		cfg.Token, cfg.TLS = opts.Token, opts.TLS
		rep, err := RunQuorumq(context.Background(), cfg)
		if err != nil || rep.Errors != 0 || rep.Ops != 20 {
			t.Fatalf("%s: %+v %v", mode, rep, err)
		}
	}
	if f.acks != 20 {
		t.Fatalf("%d acks", f.acks)
	}
	if i := slices.IndexFunc(tokens.Seen(), func(s string) bool { return s != secret }); i >= 0 {
		t.Fatalf("request %d carried %q", i, tokens.Seen()[i])
	}
}

// TestRunQuorumq_WrongToken: a refused token fails the run at its first
// request with the status, and the error does not show the token; an
// https:// target without a CA is a configuration error.
func TestRunQuorumq_WrongToken(t *testing.T) {
	f, _, opts := newSecureFakeNode(t)
	cfg := DefaultConfig()
	cfg.Targets, cfg.Count, cfg.Duration = []string{f.addr()}, 1, 0
	wrong := "wrong-" + secret
	cfg.Token, cfg.TLS = wrong, opts.TLS
	_, err := RunQuorumq(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("run with a wrong token: %v", err)
	}
	cfg.Targets, cfg.TLS = []string{"https://" + f.addr()}, nil
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("https target without a CA: %v", err)
	}
}
