package systemtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/testkit"
	"github.com/quorumq/quorumq/internal/testwait"
)

// withSecurity runs a secured cluster: certificates of one CA, a gossip
// key and a tokens file, all in sec.Dir.
func withSecurity(sec *testkit.Security) clusterOption {
	return func(o *testkit.ClusterOptions) { o.Security = sec }
}

func mustSecurity(t testing.TB) *testkit.Security {
	t.Helper()
	sec, err := testkit.OpenSecurity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// mustCurl finds curl; CI installs it, elsewhere the test is skipped.
func mustCurl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is required in CI (.ci/run installs it)")
		}
		t.Skip("curl not installed")
	}
	return p
}

// curl runs curl with args and returns the HTTP status and body.
func curl(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-sS", "-w", "\n%{http_code}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v\n%s", args, err, out)
	}
	s := strings.TrimRight(string(out), "\n")
	i := strings.LastIndexByte(s, '\n')
	return s[i+1:], s[:max(i, 0)]
}

// TestSecured_CurlWithTheCAAndABearerTokenOnEveryNode: on a secured
// cluster of three processes, `curl --cacert ca.pem -H 'Authorization:
// Bearer ...' https://...` puts and gets on every node; without the token
// the answer is 401, and plain HTTP only a 400.
func TestSecured_CurlWithTheCAAndABearerTokenOnEveryNode(t *testing.T) {
	bin := mustCurl(t)
	sec := mustSecurity(t)
	c := mustStartCluster(t, 3, withSecurity(sec))
	auth := "Authorization: Bearer " + sec.Token
	for _, nd := range c.nodes {
		code, body := curl(t, bin, "--cacert", sec.CAFile, "-H", auth, nd.QueueURL+"/put?data=from-"+nd.ID)
		if code != "200" {
			t.Fatalf("%s: put: %s %q", nd.ID, code, body)
		}
		if code, body = curl(t, bin, "--cacert", sec.CAFile, nd.QueueURL+"/put?data=anonymous"); code != "401" {
			t.Fatalf("%s: put without a token: %s %q", nd.ID, code, body)
		}
		if code, body = curl(t, bin, "--cacert", sec.CAFile, "-H", auth, nd.PubsubURL+"/stats"); code != "200" {
			t.Fatalf("%s: pubsub stats: %s %q", nd.ID, code, body)
		}
		// Go's TLS server answers plain HTTP with a 400 and nothing else.
		if code, body := curl(t, bin, "--max-time", "5", "http://"+nd.QueueAddr+"/put?data=plain"); code != "400" {
			t.Fatalf("%s: plain HTTP: %s %q", nd.ID, code, body)
		}
	}
	got := map[string]bool{}
	for range c.nodes {
		code, body := curl(t, bin, "--cacert", sec.CAFile, "-H", auth, c.nodes[0].QueueURL+"/get")
		if code != "200" {
			t.Fatalf("get: %s %q", code, body)
		}
		got[body] = true
	}
	for _, nd := range c.nodes {
		if !got["from-"+nd.ID] {
			t.Fatalf("messages got %v, want one from each node", got)
		}
	}
}

// servedSerial is the serial number of the certificate addr serves.
func servedSerial(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestSecured_SIGHUPTakesNewCertificatesAndTokens: after a node's
// certificate is reissued and a token added to the tokens file, SIGHUP
// makes every node serve the new certificate and accept the new token,
// without a restart.
func TestSecured_SIGHUPTakesNewCertificatesAndTokens(t *testing.T) {
	bin := mustCurl(t)
	sec := mustSecurity(t)
	c := mustStartCluster(t, 3, withSecurity(sec))
	pem, err := os.ReadFile(sec.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	before := map[string]string{}
	for _, nd := range c.nodes {
		before[nd.ID] = servedSerial(t, nd.QueueAddr, pool)
		// Reissue: the same names, a new key and serial.
		f, err := sec.NodeFiles(nd.ID)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(f.Cert)
		os.Remove(f.Key)
		if _, err := sec.NodeFiles(nd.ID, "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := certs.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := os.ReadFile(sec.TokensFile)
	if err != nil {
		t.Fatal(err)
	}
	tokens = append(tokens, certs.TokenLine("fresh", []string{"produce"}, fresh)...)
	if err := os.WriteFile(sec.TokensFile, tokens, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := curl(t, bin, "--cacert", sec.CAFile, "-H", "Authorization: Bearer "+fresh, c.nodes[0].QueueURL+"/put?data=early"); code != "401" {
		t.Fatalf("a token not yet loaded: %s, want 401", code)
	}
	for _, nd := range c.nodes {
		if err := nd.Hangup(); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.nodes {
		testwait.For(t, 30*time.Second, nd.ID+" serving its new certificate", func() bool {
			return servedSerial(t, nd.QueueAddr, pool) != before[nd.ID]
		})
		testwait.For(t, 30*time.Second, nd.ID+" taking the new token", func() bool {
			code, _ := curl(t, bin, "--cacert", sec.CAFile, "-H", "Authorization: Bearer "+fresh, nd.QueueURL+"/put?data=fresh")
			return code == "200"
		})
	}
	// The cluster still works over the reissued certificates.
	if err := c.nodes[0].WaitReady(context.Background(), 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestDevcluster_Secure_CurlWithTheCertsItMade: `quorumq devcluster
// --secure` makes a CA, node certificates, a gossip key and an admin
// token in BASE-DIR/certs, runs every node on https, and prints how to
// reach them: curl with its CA and token puts on node2 and gets on node3;
// without the token the answer is 401.
func TestDevcluster_Secure_CurlWithTheCertsItMade(t *testing.T) {
	bin := mustCurl(t)
	base, dir := freePortBlock(t, 3), t.TempDir()
	queue := func(i int) string { return fmt.Sprintf("https://127.0.0.1:%d", base+10*(i-1)+1) }
	d := startDevcluster(t, "--nodes=3", "--secure", "--base-dir="+dir, "--base-port="+strconv.Itoa(base))
	d.waitOutput("all 3 nodes ready")
	sec, err := testkit.OpenSecurity(filepath.Join(dir, "certs"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.out.String(), "curl --cacert "+sec.CAFile) {
		t.Errorf("the output does not say how to curl the secured cluster")
	}
	auth := "Authorization: Bearer " + sec.Token
	if code, body := curl(t, bin, "--cacert", sec.CAFile, "-H", auth, queue(2)+"/put?data=secured"); code != "200" {
		t.Fatalf("put on node2: %s %q", code, body)
	}
	if code, body := curl(t, bin, "--cacert", sec.CAFile, "-H", auth, queue(3)+"/get"); code != "200" || body != "secured" {
		t.Fatalf("get on node3: %s %q", code, body)
	}
	if code, _ := curl(t, bin, "--cacert", sec.CAFile, queue(1)+"/get"); code != "401" {
		t.Fatalf("get without a token: %s, want 401", code)
	}
	d.stop()
}
