package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
)

const secret = "s3cret-token-0123456789"

func statusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cluster/status":
			json.NewEncoder(w).Encode(api.Status{NodeID: "n1", State: "Leader", LeaderID: "n1"})
		case "/sub":
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "\r\nhello\n")
		default:
			http.NotFound(w, r)
		}
	})
}

func secureOptions(t *testing.T, caFile, token string) *client.Options {
	t.Helper()
	conf, err := client.TLSConfig(caFile)
	if err != nil {
		t.Fatal(err)
	}
	o := client.DefaultOptions()
	o.TLS, o.Token = conf, token
	o.Backoff = client.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	return &o
}

// Test_Security_TokenAndCA: with the cluster CA and a token, queue calls
// and streams reach an HTTPS node and carry the token as a bearer header;
// an address without a scheme and the default http:// one are dialled as
// https://.
func Test_Security_TokenAndCA(t *testing.T) {
	var tokens clienttest.Tokens
	srv, ca := clienttest.NewTLSServer(t, tokens.Wrap(secret, statusHandler()))
	hostPort := strings.TrimPrefix(srv.URL, "https://")
	opts := secureOptions(t, ca, secret)
	for _, addr := range []string{hostPort, "http://" + hostPort, srv.URL} {
		q, err := client.NewQueue([]string{addr}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Addrs()[0]; got != srv.URL {
			t.Errorf("address %q is dialled as %q, want %q", addr, got, srv.URL)
		}
		if st, err := q.Status(t.Context()); err != nil || st.NodeID != "n1" {
			t.Fatalf("status through %q: %+v %v", addr, st, err)
		}
	}
	ps, err := client.NewPubsub([]string{hostPort}, opts)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ps.SubscribeTopic(t.Context(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := s.Next(); err != nil || string(m) != "hello" {
		t.Fatalf("stream: %q %v", m, err)
	}
	s.Close()
	for i, tok := range tokens.Seen() {
		if tok != secret {
			t.Errorf("request %d carried token %q", i, tok)
		}
	}
}

// Test_Security_UntrustedServerFails: without the CA the same server's
// certificate is refused; the client does not fall back to trusting it.
func Test_Security_UntrustedServerFails(t *testing.T) {
	srv, _ := clienttest.NewTLSServer(t, statusHandler())
	q, err := client.NewQueue([]string{srv.URL}, &client.Options{
		HTTPClient: client.NewHTTPClient(nil), Timeout: 5 * time.Second, AttemptTimeout: 5 * time.Second,
		MaxAttempts: 1, Backoff: client.DefaultBackoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Status(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("status from an untrusted server: %v", err)
	}
}

// Test_Security_AuthFailuresAreNotRetried: 401 and 403 are answered the
// same whatever node or attempt, so the client makes one attempt, returns
// an *HTTPError that names the status, and never shows the token.
func Test_Security_AuthFailuresAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{{http.StatusUnauthorized, "UNAUTHORIZED"}, {http.StatusForbidden, "FORBIDDEN"}} {
		t.Run(tc.code, func(t *testing.T) {
			var hits atomic.Int32
			srv, ca := clienttest.NewTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set(api.HeaderErrorCode, tc.code)
				http.Error(w, "no", tc.status)
			}))
			opts := secureOptions(t, ca, secret)
			opts.MaxAttempts = 5
			q, err := client.NewQueue([]string{srv.URL, srv.URL}, opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = q.Stats(t.Context(), "jobs")
			var he *client.HTTPError
			if !errors.As(err, &he) || he.Status != tc.status || he.Code != tc.code {
				t.Fatalf("stats: %v, want an HTTPError %d %s", err, tc.status, tc.code)
			}
			if n := hits.Load(); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows the token: %v", err)
			}

			hits.Store(0)
			ps, err := client.NewPubsub([]string{srv.URL, srv.URL}, opts)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ps.SubscribeTopic(t.Context(), "", nil)
			if !errors.As(err, &he) || he.Status != tc.status || hits.Load() != 1 || strings.Contains(err.Error(), secret) {
				t.Fatalf("subscribe: %v after %d attempts", err, hits.Load())
			}
		})
	}
}

// Test_Security_TokenInURLIsRedacted: a token= that an old-style URL
// carries never shows in the errors of a stream.
func Test_Security_TokenInURLIsRedacted(t *testing.T) {
	srv, ca := clienttest.NewTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "missing or unknown token", http.StatusUnauthorized)
	}))
	conf, err := client.TLSConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	hc := client.NewHTTPClient(conf)
	_, err = client.Subscribe(t.Context(), srv.URL+"/sub?multipart=0&token="+secret, &client.SubscribeOptions{HTTPClient: hc})
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "token=REDACTED") {
		t.Fatalf("subscribe: %v", err)
	}
	// A connection that cannot be made: net/http's error names the URL.
	dead := "https://127.0.0.1:1/sub?token=" + secret
	_, err = client.Subscribe(t.Context(), dead, &client.SubscribeOptions{HTTPClient: hc})
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("subscribe to a closed port: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:1/put":                                   "http://h:1/put",
		"http://h:1/put?queue=a&token=" + secret:           "http://h:1/put?queue=a&token=REDACTED",
		"http://h:1/put?TOKEN=" + secret + "&queue=a#frag": "http://h:1/put?TOKEN=REDACTED&queue=a#frag",
		"http://h:1/put?data=%s&tok%65n=" + secret:         "http://h:1/put?data=%s&tok%65n=REDACTED",
		"http://h:1/put?tokens=a&token":                    "http://h:1/put?tokens=a&token",
	} {
		if got := client.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHTTPS(t *testing.T) {
	for in, want := range map[string]string{
		"h:1":          "https://h:1",
		"http://h:1":   "https://h:1",
		"HTTP://h:1/x": "https://h:1/x",
		"https://h:1":  "https://h:1",
	} {
		if got := client.HTTPS(in); got != want {
			t.Errorf("HTTPS(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLoadCA_Refusals: a missing file and a file without a certificate
// fail when loaded, naming the file.
func TestLoadCA_Refusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := client.LoadCA(dir + "/missing.pem"); err == nil {
		t.Error("a missing file loaded")
	}
	notPEM := dir + "/key.pem"
	if err := os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := client.LoadCA(notPEM); err == nil || !strings.Contains(err.Error(), notPEM) {
		t.Errorf("a file without a certificate: %v", err)
	}
}

// TestRegisterSecurityFlags: --tls-ca loads the file when set (a bad one
// is a flag error); --token is stored and never shown by the help.
func TestRegisterSecurityFlags(t *testing.T) {
	_, ca := clienttest.NewTLSServer(t, statusHandler())
	var token string
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	o := client.DefaultOptions()
	client.RegisterSecurityFlags(fs, &token, &o.TLS)
	if err := fs.Parse([]string{"--token=" + secret, "--tls-ca=" + ca}); err != nil {
		t.Fatal(err)
	}
	if token != secret || o.TLS == nil || o.TLS.RootCAs == nil {
		t.Fatalf("token %q, TLS %v", token, o.TLS)
	}
	fs.PrintDefaults()
	if v := fs.Lookup("token").Value.String(); strings.Contains(v, secret) {
		t.Errorf("--token shows as %q", v)
	}
	if strings.Contains(out.String(), secret) {
		t.Errorf("the help shows the token:\n%s", out.String())
	}
	bad := flag.NewFlagSet("t", flag.ContinueOnError)
	bad.SetOutput(io.Discard)
	client.RegisterSecurityFlags(bad, &token, &o.TLS)
	if err := bad.Parse([]string{"--tls-ca=" + t.TempDir() + "/none.pem"}); err == nil {
		t.Error("a missing --tls-ca file was accepted")
	}
}
