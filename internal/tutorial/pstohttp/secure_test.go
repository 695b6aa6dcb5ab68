package pstohttp

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
)

const (
	secret    = "p2h-s3cret-token-0123"
	urlSecret = "p2h-url-token-4567"
)

// secureNode is an HTTPS node behind a token gate: /sub streams msgs, /put
// records what it is posted.
type secureNode struct {
	tokens clienttest.Tokens
	mu     sync.Mutex
	puts   []string
	url    string // http://host:port, as a user would give it
	ca     string
}

func newSecureNode(t *testing.T, msgs ...string) *secureNode {
	n := &secureNode{}
	srv, ca := clienttest.NewTLSServer(t, n.tokens.Wrap(secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/sub":
			io.WriteString(w, "\r\n")
			for _, m := range msgs {
				io.WriteString(w, m+"\n")
			}
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/put":
			b, _ := io.ReadAll(r.Body)
			n.mu.Lock()
			n.puts = append(n.puts, string(b))
			n.mu.Unlock()
		}
	})))
	n.url, n.ca = "http://"+strings.TrimPrefix(srv.URL, "https://"), ca
	return n
}

// Test_Bridge_SecuredCluster: with the CA and a token the bridge reads an
// HTTPS source and posts to an HTTPS destination, both given as http://,
// with the token as a bearer header on both; neither that token nor a
// token= in the URLs shows in the logs or the request log.
func Test_Bridge_SecuredCluster(t *testing.T) {
	node := newSecureNode(t, "first", "second")
	var logs, reqLog syncBuffer
	cfg := testConfig(t, &logs, []string{node.url + "/sub?multipart=0&token=" + urlSecret},
		Destination{Method: http.MethodPost, URL: node.url + "/put?token=" + urlSecret})
	conf, err := client.TLSConfig(node.ca)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Token, cfg.TLS, cfg.RequestLog = secret, conf, &reqLog
	r := start(t, cfg)
	r.waitStats(t, "two messages forwarded", func(s Stats) bool { return s.Destinations[0].Forwarded == 2 })
	r.stop(t)
	for i, tok := range node.tokens.Seen() {
		if tok != secret {
			t.Errorf("request %d carried token %q", i, tok)
		}
	}
	if st := r.b.Stats(); strings.Contains(st.Source, urlSecret) {
		t.Errorf("Stats.Source shows the token: %s", st.Source)
	}
	for name, out := range map[string]string{"log": logs.String(), "request log": reqLog.String()} {
		if strings.Contains(out, secret) || strings.Contains(out, urlSecret) {
			t.Errorf("the %s shows a token:\n%s", name, out)
		}
	}
	if !strings.Contains(reqLog.String(), "token=REDACTED") {
		t.Errorf("request log:\n%s", reqLog.String())
	}
}

// Test_Bridge_WrongToken_LogsStatusNotToken: a source that answers 401 is
// logged with its status, and the token is nowhere in the log.
func Test_Bridge_WrongToken_LogsStatusNotToken(t *testing.T) {
	node := newSecureNode(t, "first")
	var logs syncBuffer
	cfg := testConfig(t, &logs, []string{node.url + "/sub?multipart=0"}, Destination{Method: http.MethodPost, URL: node.url + "/put"})
	conf, err := client.TLSConfig(node.ca)
	if err != nil {
		t.Fatal(err)
	}
	wrong := "wrong-" + secret
	cfg.Token, cfg.TLS = wrong, conf
	r := start(t, cfg)
	r.waitStats(t, "a refused subscription", func(s Stats) bool { return s.SourceErrors >= 1 })
	r.stop(t)
	if out := logs.String(); strings.Contains(out, wrong) || !strings.Contains(out, "401") {
		t.Fatalf("log:\n%s", out)
	}
}
