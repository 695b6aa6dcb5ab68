package testkit

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/certs"
)

// Security is what a secured cluster's nodes and clients share: a
// cluster CA in Dir that issues each node's certificate when the node is
// first named, one gossip key, and an admin token. It is kept in Dir, so
// a second run over the same directory reuses it.
type Security struct {
	Dir string
	// CAFile, GossipKeyFile and TokensFile are the files every node is
	// given (--tls-ca, --gossip-key-file, --auth-tokens-file).
	CAFile, GossipKeyFile, TokensFile string
	// Token is the admin token, for the harness's own calls.
	Token string

	mu     sync.Mutex
	client *http.Client
}

// OpenSecurity returns the security material in dir, making it first
// when dir holds none.
func OpenSecurity(dir string) (*Security, error) {
	s := &Security{
		Dir:           dir,
		CAFile:        filepath.Join(dir, certs.CAFile),
		GossipKeyFile: filepath.Join(dir, certs.GossipKeyFile),
		TokensFile:    filepath.Join(dir, certs.TokensFile),
	}
	if _, err := os.Stat(s.CAFile); errors.Is(err, fs.ErrNotExist) {
		if err := s.create(); err != nil {
			return nil, err
		}
	}
	tok, err := adminToken(s.TokensFile)
	if err != nil {
		return nil, err
	}
	s.Token = tok
	caPEM, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("testkit: %s holds no certificate", s.CAFile)
	}
	tr := client.NewTransport()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	s.client = &http.Client{Transport: tr}
	return s, nil
}

func (s *Security) create() error {
	gen := certs.DefaultGenConfig(certs.KindCA)
	gen.Dir = s.Dir
	if err := certs.Generate(gen, io.Discard); err != nil {
		return err
	}
	key, err := certs.NewGossipKey()
	if err != nil {
		return err
	}
	tok, err := certs.NewToken()
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.GossipKeyFile, certs.EncodeGossipKeys(key), 0o600); err != nil {
		return err
	}
	return os.WriteFile(s.TokensFile, []byte(certs.TokenLine(certs.AdminTokenName, []string{certs.AdminRole}, tok)), 0o600)
}

// adminToken reads the admin token's secret from a tokens file.
func adminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 3 && fields[0] == certs.AdminTokenName {
			return fields[2], nil
		}
	}
	return "", fmt.Errorf("testkit: no %s token in %s", certs.AdminTokenName, path)
}

// NodeFiles returns node id's TLS files, issuing its certificate for id,
// localhost and the loopback addresses, and hosts (names or IP addresses:
// where clients reach the node) the first time, and again when the one
// in Dir does not cover hosts (a later run over the same directory whose
// nodes have other addresses).
func (s *Security) NodeFiles(id string, hosts ...string) (certs.Files, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := certs.Files{Cert: filepath.Join(s.Dir, certs.NodeCertFile(id)), Key: filepath.Join(s.Dir, certs.NodeKeyFile(id)), CA: s.CAFile}
	if covers(f.Cert, hosts) {
		return f, nil
	}
	gen := certs.DefaultGenConfig(certs.KindNode)
	gen.Dir, gen.NodeID = s.Dir, id
	gen.Force = true // a certificate that does not cover hosts is replaced
	gen.DNSNames = []string{id}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			gen.IPs = append(gen.IPs, ip)
		} else {
			gen.DNSNames = append(gen.DNSNames, h)
		}
	}
	if err := certs.Generate(gen, io.Discard); err != nil {
		return f, err
	}
	return f, nil
}

// covers reports whether the certificate in file is valid for every one
// of hosts.
func covers(file string, hosts []string) bool {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	for _, h := range hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// serveArgs are the serve flags that secure node id. Its certificate
// is issued in NewNode's caller (Cluster, devcluster) beforehand with
// NodeFiles; here the names are only spelled out.
func (s *Security) serveArgs(id string) []string {
	return []string{
		"--tls-cert=" + filepath.Join(s.Dir, certs.NodeCertFile(id)),
		"--tls-key=" + filepath.Join(s.Dir, certs.NodeKeyFile(id)),
		"--tls-ca=" + s.CAFile,
		"--gossip-key-file=" + s.GossipKeyFile,
		"--auth-tokens-file=" + s.TokensFile,
	}
}

// HTTPClient trusts the cluster CA.
func (s *Security) HTTPClient() *http.Client { return s.client }
