// Package clienttest serves tests of quorumq's clients: an HTTPS server
// whose certificate is written out as the CA file a client trusts (as a
// secured cluster's ca.pem), and a recorder of the bearer tokens it was
// sent. Only tests import it.
package clienttest

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/quorumq/quorumq/api"
)

// NewTLSServer starts an HTTPS server running h and returns it with the
// path of a PEM file holding its certificate, the CA to trust.
func NewTLSServer(t testing.TB, h http.Handler) (*httptest.Server, string) {
	t.Helper()
	s := httptest.NewTLSServer(h)
	t.Cleanup(s.Close)
	return s, WriteCA(t, s)
}

// WriteCA writes the certificate of an httptest TLS server as a PEM file
// in a test directory and returns its path.
func WriteCA(t testing.TB, s *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Tokens records the bearer token of every request a handler receives.
type Tokens struct {
	mu   sync.Mutex
	seen []string
}

// Wrap returns h behind a gate that records the request's bearer token
// ("" when the request has none, "!malformed" when the Authorization
// header is not a bearer token) and answers 401 UNAUTHORIZED, as a
// secured node does, unless it is want.
func (tk *Tokens) Wrap(want string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := Bearer(r)
		tk.mu.Lock()
		tk.seen = append(tk.seen, got)
		tk.mu.Unlock()
		if got != want {
			w.Header().Set(api.HeaderErrorCode, "UNAUTHORIZED")
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing or unknown token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Seen returns the tokens received, in order.
func (tk *Tokens) Seen() []string {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	return append([]string(nil), tk.seen...)
}

// Bearer returns r's bearer token: "" without an Authorization header,
// "!malformed" with one that is not "Bearer <token>".
func Bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if h == "" {
		return ""
	}
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return "!malformed"
	}
	return tok
}
