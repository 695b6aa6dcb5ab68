package gen

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
)

const secret = "gen-s3cret-token-0123"

// Test_Gen_SecuredTarget: with the CA and a token, gen posts to an HTTPS
// node given as http:// (the flag's usual form) with the token in the
// header; an unknown token is a 401 that is not retried, and neither the
// token of the header nor a token= of the URL shows on stderr.
func Test_Gen_SecuredTarget(t *testing.T) {
	var tokens clienttest.Tokens
	srv, ca := clienttest.NewTLSServer(t, tokens.Wrap(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	conf, err := client.TLSConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	plain := "http://" + strings.TrimPrefix(srv.URL, "https://")
	cfg := sendConfig(SendConfig{To: plain + "/mput?queue=q", N: 20, Batch: 10, Progress: -1})
	cfg.Token, cfg.TLS = secret, conf
	st, err := Run(context.Background(), cfg, NewCount(1))
	if err != nil || st.Sent != 20 {
		t.Fatalf("secured run: %+v %v", st, err)
	}
	for _, tok := range tokens.Seen() {
		if tok != secret {
			t.Fatalf("a request carried %q", tok)
		}
	}

	var stderr bytes.Buffer
	cfg = sendConfig(SendConfig{To: plain + "/put?token=" + secret, N: 2, Retries: 5, Stderr: &stderr, Backoff: client.Backoff{Min: time.Millisecond, Max: time.Millisecond}})
	cfg.Token, cfg.TLS = "wrong-"+secret, conf
	n := len(tokens.Seen())
	st, err = Run(context.Background(), cfg, NewCount(1))
	if !errors.Is(err, ErrFailed) || st.Failed != 2 || st.Retries != 0 || len(tokens.Seen()) != n+2 {
		t.Fatalf("401: %+v %v, %d requests", st, err, len(tokens.Seen())-n)
	}
	if strings.Contains(stderr.String(), secret) || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}
