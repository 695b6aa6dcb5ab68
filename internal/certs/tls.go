package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// ErrNoIdentity means a connection carried no verified cluster
// certificate, or one without a node identity.
var ErrNoIdentity = errors.New("no verified cluster node certificate")

// Files name a node's TLS material: its certificate and key (PEM), and
// the cluster CA (PEM, one or more certificates) that signs every node's
// certificate.
type Files struct {
	Cert, Key, CA string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// Material is a node's loaded TLS material. The configurations it hands
// out read the current material on every handshake, so Reload (SIGHUP)
// takes effect for new connections without a restart; connections
// already open keep what they were made with.
type Material struct {
	files Files
	cur   atomic.Pointer[material]
}

type material struct {
	cert *tls.Certificate
	pool *x509.CertPool
	id   string // the node id in cert
	// http and mutual are the per-handshake server configurations of
	// this material, built once by Reload.
	http, mutual *tls.Config
}

// Load reads files, which must name all three, and checks that the
// certificate matches its key, is signed by the CA and names a node.
func Load(files Files) (*Material, error) {
	m := &Material{files: files}
	if err := m.Reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// Reload reads the files again. On any error the material in use stays
// as it was.
func (m *Material) Reload() error {
	f := m.files
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return errors.New("tls: the certificate, its key and the cluster CA are all required")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return fmt.Errorf("tls: cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("tls: cluster CA %s: no PEM certificate", f.CA)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("tls: %s: %w", f.Cert, err)
		}
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("tls: %s is not a node certificate of the cluster CA %s: %w", f.Cert, f.CA, err)
	}
	id, err := NodeIDFromCert(leaf)
	if err != nil {
		return fmt.Errorf("tls: %s: %w", f.Cert, err)
	}
	cur := &material{cert: &cert, pool: pool, id: id}
	cur.http = cur.serverConfig(tls.VerifyClientCertIfGiven)
	cur.mutual = cur.serverConfig(tls.RequireAndVerifyClientCert)
	m.cur.Store(cur)
	return nil
}

// NodeID is the node id the certificate in use names.
func (m *Material) NodeID() string { return m.cur.Load().id }

// HTTPConfig is the configuration of the HTTP ports: the node's
// certificate; a client certificate is optional (browsers, curl and the
// tools have none) but, when given, must come from the cluster CA, so that
// handlers can tell other nodes (PeerNodeID) from clients.
func (m *Material) HTTPConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return m.cur.Load().http, nil },
	}
}

// MutualConfig is the configuration of a listener only nodes may use
// (the raft transport): the peer must present a certificate from the
// cluster CA.
func (m *Material) MutualConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return m.cur.Load().mutual, nil },
	}
}

func (cur *material) serverConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cur.cert},
		ClientAuth:   auth,
		ClientCAs:    cur.pool,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// ClientConfig is the configuration of this node's calls to other nodes:
// it presents the node's certificate and accepts a server only with a
// certificate from the cluster CA that names a node. Host names are not
// checked: nodes are known by their node id (PeerNodeID), and a node's
// advertised address may be any name or address.
func (m *Material) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return m.cur.Load().cert, nil
		},
		// The pool is checked in VerifyConnection instead, so that a
		// reloaded CA applies to the next dial; verification is not
		// skipped, only moved.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := m.verifyNode(cs.PeerCertificates)
			return err
		},
	}
}

// CAPool is the cluster CA in use, for clients of the HTTP ports.
func (m *Material) CAPool() *x509.CertPool { return m.cur.Load().pool }

// verifyNode checks chain against the current CA pool and returns the
// node id of its leaf.
func (m *Material) verifyNode(chain []*x509.Certificate) (string, error) {
	if len(chain) == 0 {
		return "", ErrNoIdentity
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{
		Roots: m.cur.Load().pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	id, err := NodeIDFromCert(chain[0])
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	return id, nil
}

// PeerNodeID is the node id of the other side of a connection whose
// certificate the TLS handshake verified against the cluster CA (a server
// configuration from HTTPConfig or MutualConfig). A connection without
// one (plain HTTP, or a client that sent no certificate) is ErrNoIdentity.
func PeerNodeID(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", ErrNoIdentity
	}
	leaf := cs.VerifiedChains[0][0]
	if !hasUsage(leaf, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("%w: certificate is not for client use", ErrNoIdentity)
	}
	id, err := NodeIDFromCert(leaf)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	return id, nil
}

// ServerNodeID is the node id of the server of a client connection made
// with ClientConfig (which already verified it).
func ServerNodeID(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return "", ErrNoIdentity
	}
	return NodeIDFromCert(cs.PeerCertificates[0])
}

func hasUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, have := range c.ExtKeyUsage {
		if have == u || have == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}
