package analytics

import (
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/client/clienttest"
)

// Test_Analyze_SecuredQueue: an analyze reader given the CA and a token
// reads a queue served over HTTPS behind a token gate (a TLS proxy in
// front of a real node), sending the token with every request, the
// empty-queue watch's included.
func Test_Analyze_SecuredQueue(t *testing.T) {
	const secret = "analyze-s3cret-token-0123"
	addr := startNode(t)
	rdb := mustRedis(t)
	var msgs [][]byte
	for i := 1; i <= 100; i++ {
		msgs = append(msgs, []byte(strconv.Itoa(i)))
	}
	putAll(t, addr, "nums", msgs)

	target, err := url.Parse(addr)
	if err != nil {
		t.Fatal(err)
	}
	var tokens clienttest.Tokens
	proxy, ca := clienttest.NewTLSServer(t, tokens.Wrap(secret, httputil.NewSingleHostReverseProxy(target)))
	conf, err := client.TLSConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	// The node advertises its own plain address: stay on the proxy.
	cfg := baseConfig(t, "http://"+strings.TrimPrefix(proxy.URL, "https://"), "nums", rdb)
	cfg.DisableDiscovery = true
	cfg.Token, cfg.TLS = secret, conf
	st, err := RunMoments(testCtx(t), cfg, MomentsOptions{Key: "secured"})
	if err != nil || st.Merged != 100 {
		t.Fatalf("run: %v %v", st, err)
	}
	seen := tokens.Seen()
	if len(seen) == 0 || slices.ContainsFunc(seen, func(s string) bool { return s != secret }) {
		t.Fatalf("tokens received: %q", seen)
	}
}
