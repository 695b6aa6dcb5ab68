// Package certstest makes a cluster CA and node certificates for tests.
package certstest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
)

// CA is a test cluster CA, with its files and those of the nodes it
// issues in Dir.
type CA struct {
	Dir    string
	CAFile string
	pair   certs.Pair
}

// NewCA makes a CA in a new temporary directory.
func NewCA(tb testing.TB) *CA {
	tb.Helper()
	pair, err := certs.NewCA(24 * time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	ca := &CA{Dir: tb.TempDir(), pair: pair}
	ca.CAFile = filepath.Join(ca.Dir, certs.CAFile)
	write(tb, ca.CAFile, pair.CertPEM())
	return ca
}

// Node issues a certificate for node id (valid for localhost, 127.0.0.1
// and ::1) and returns the node's files.
func (ca *CA) Node(tb testing.TB, id string) certs.Files {
	tb.Helper()
	p, err := ca.pair.IssueNode(certs.NodeRequest{
		ID: id, DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Validity: 24 * time.Hour,
	})
	if err != nil {
		tb.Fatal(err)
	}
	key, err := p.KeyPEM()
	if err != nil {
		tb.Fatal(err)
	}
	f := certs.Files{Cert: filepath.Join(ca.Dir, certs.NodeCertFile(id)), Key: filepath.Join(ca.Dir, certs.NodeKeyFile(id)), CA: ca.CAFile}
	write(tb, f.Cert, p.CertPEM())
	write(tb, f.Key, key)
	return f
}

// Material loads files.
func Material(tb testing.TB, f certs.Files) *certs.Material {
	tb.Helper()
	m, err := certs.Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func write(tb testing.TB, path string, b []byte) {
	tb.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}
