// Package nodetest starts real quorumq nodes inside a test process, on
// loopback ports with their data in the test's temporary directory.
package nodetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/certs/certstest"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// Config is node.DefaultConfig on loopback: the HTTP ports on port 0,
// raft and gossip on reserved ports (other nodes need them before this
// one binds), a fresh data directory and the test's logger.
func Config(tb testing.TB) node.Config {
	tb.Helper()
	c := node.DefaultConfig()
	c.Cluster.DataDir = tb.TempDir()
	c.QueueAddr, c.PubsubAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.Cluster.RaftBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(tb))
	c.Cluster.GossipBind = fmt.Sprintf("127.0.0.1:%d", testport.Reserve(tb))
	c.Logger = testlog.New(tb)
	return c
}

// ClusterConfigs returns the configs of n nodes (ids n1..nN) that join
// each other and wait for all n before the first election.
func ClusterConfigs(tb testing.TB, n int) []node.Config {
	tb.Helper()
	cfgs := make([]node.Config, n)
	var seeds []string
	for i := range cfgs {
		cfgs[i] = Config(tb)
		cfgs[i].Cluster.NodeID = fmt.Sprintf("n%d", i+1)
		cfgs[i].Cluster.BootstrapExpect = n
		seeds = append(seeds, cfgs[i].Cluster.GossipBind)
	}
	for i := range cfgs {
		cfgs[i].Cluster.Join = append([]string(nil), seeds...)
	}
	return cfgs
}

// Start starts a node from cfg and shuts it down when the test ends. It
// does not wait for the node to be ready (WaitReady).
func Start(tb testing.TB, cfg node.Config) *node.Server {
	tb.Helper()
	s, err := node.Start(cfg)
	if err != nil {
		tb.Fatalf("start node %s: %v", cfg.Cluster.NodeID, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// StartReady starts a single-node cluster from Config, with edit applied
// when not nil, and returns it once it is ready.
func StartReady(tb testing.TB, edit func(*node.Config)) *node.Server {
	tb.Helper()
	cfg := Config(tb)
	if edit != nil {
		edit(&cfg)
	}
	s := Start(tb, cfg)
	WaitReady(tb, s)
	return s
}

// WaitReady waits up to a minute until the node's /readyz answers 200.
func WaitReady(tb testing.TB, s *node.Server) {
	tb.Helper()
	// Readiness only: whether the certificate is right is for the tests.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer c.CloseIdleConnections()
	testwait.For(tb, time.Minute, "node "+s.QueueAddr+" ready", func() bool {
		resp, err := c.Get(s.QueueURL() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// Secrets are what Secure made: the CA, and the tokens of the tokens
// file every node reads.
type Secrets struct {
	CA                        *certstest.CA
	TokensFile                string
	Admin, Producer, Consumer string // roles admin, produce, consume
}

// Secure gives each config (ids set) a certificate of one new cluster CA,
// the same new gossip key and the same tokens file.
func Secure(tb testing.TB, cfgs []node.Config) *Secrets {
	tb.Helper()
	ca := certstest.NewCA(tb)
	keyFile := filepath.Join(ca.Dir, certs.GossipKeyFile)
	key, err := certs.NewGossipKey()
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, certs.EncodeGossipKeys(key), 0o600); err != nil {
		tb.Fatal(err)
	}
	sec := &Secrets{CA: ca, TokensFile: filepath.Join(ca.Dir, certs.TokensFile)}
	var lines []byte
	for _, t := range []struct {
		name, role string
		tok        *string
	}{{"admin", "admin", &sec.Admin}, {"producer", "produce", &sec.Producer}, {"consumer", "consume", &sec.Consumer}} {
		if *t.tok, err = certs.NewToken(); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, certs.TokenLine(t.name, []string{t.role}, *t.tok)...)
	}
	if err := os.WriteFile(sec.TokensFile, lines, 0o600); err != nil {
		tb.Fatal(err)
	}
	for i := range cfgs {
		if cfgs[i].Cluster.NodeID == "" {
			tb.Fatal("nodetest.Secure: configs need node ids")
		}
		cfgs[i].TLS = ca.Node(tb, cfgs[i].Cluster.NodeID)
		cfgs[i].GossipKeyFile = keyFile
		cfgs[i].AuthTokensFile = sec.TokensFile
	}
	return sec
}

// HTTPClient is a client of a secured cluster's HTTP ports: it trusts
// ca, presents no certificate and sends token (unless empty) as
// Authorization: Bearer.
func HTTPClient(tb testing.TB, ca *certstest.CA, token string) *http.Client {
	tb.Helper()
	pem, err := os.ReadFile(ca.CAFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: bearer{tr, token}, Timeout: 30 * time.Second}
}

// bearer adds a token to every request.
type bearer struct {
	rt    http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if b.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+b.token)
	}
	return b.rt.RoundTrip(r)
}
