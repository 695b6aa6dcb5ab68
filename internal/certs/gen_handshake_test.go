package certs_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
)

// side is one end of a handshake: a node's certificate in a certificate
// directory.
type side struct {
	dir, node string
}

func (s side) load(t *testing.T) tls.Certificate {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(s.dir, certs.NodeCertFile(s.node)), filepath.Join(s.dir, certs.NodeKeyFile(s.node)))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// handshake runs mutual TLS between server and client over a pipe, both
// trusting the CA of caDir, and returns each side's error and the node id
// the server saw.
func handshake(t *testing.T, caDir string, server, client side) (serverErr, clientErr error, clientID string) {
	t.Helper()
	sCert, cCert := server.load(t), client.load(t)
	roots := pool(t, filepath.Join(caDir, certs.CAFile))
	sConn, cConn := net.Pipe()
	// A bug must fail the test, not hang it.
	deadline := time.Now().Add(10 * time.Second)
	sConn.SetDeadline(deadline)
	cConn.SetDeadline(deadline)

	type result struct {
		err error
		id  string
	}
	done := make(chan result, 1)
	go func() {
		defer sConn.Close()
		s := tls.Server(sConn, &tls.Config{
			Certificates: []tls.Certificate{sCert},
			ClientCAs:    roots,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS13,
		})
		if err := s.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		id, err := certs.NodeIDFromCert(s.ConnectionState().PeerCertificates[0])
		if err == nil {
			// A byte after the handshake tells the client the server
			// accepted it: in TLS 1.3 the client finishes first.
			_, err = s.Write([]byte{1})
		}
		done <- result{err: err, id: id}
	}()

	c := tls.Client(cConn, &tls.Config{
		// Always shown, even when the server asks for certificates of
		// another CA: an attacker would.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cCert, nil },
		RootCAs:              roots,
		ServerName:           server.node,
		MinVersion:           tls.VersionTLS13,
	})
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	cConn.Close()
	r := <-done
	return r.err, clientErr, r.id
}

// TestHandshake_MutualTLSWithGeneratedFiles: two nodes of one dev
// directory complete mutual TLS and the server learns the client's node
// id; a certificate of another CA, with the same node names, is refused by
// whichever side it is shown to.
func TestHandshake_MutualTLSWithGeneratedFiles(t *testing.T) {
	cluster, rogue := t.TempDir(), t.TempDir()
	generate(t, certs.KindDev, cluster, func(c *certs.GenConfig) { c.Nodes = []string{"node1", "node2"} })
	// The rogue has the same node names, only its CA differs.
	generate(t, certs.KindDev, rogue, func(c *certs.GenConfig) { c.Nodes = []string{"node1", "node2"} })

	t.Run("same CA", func(t *testing.T) {
		sErr, cErr, id := handshake(t, cluster, side{cluster, "node1"}, side{cluster, "node2"})
		if sErr != nil || cErr != nil {
			t.Fatalf("server: %v; client: %v", sErr, cErr)
		}
		if id != "node2" {
			t.Fatalf("server saw node %q, want node2", id)
		}
	})
	for _, tc := range []struct {
		name           string
		server, client side
		serverRefuses  bool // else the client does
	}{
		{"client from another CA", side{cluster, "node1"}, side{rogue, "node2"}, true},
		{"server from another CA", side{rogue, "node1"}, side{cluster, "node2"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sErr, cErr, _ := handshake(t, cluster, tc.server, tc.client)
			if sErr == nil || cErr == nil {
				t.Fatalf("want both sides to fail; server: %v; client: %v", sErr, cErr)
			}
			refusal := cErr
			if tc.serverRefuses {
				refusal = sErr
			}
			var unknownCA x509.UnknownAuthorityError
			if !errors.As(refusal, &unknownCA) {
				t.Fatalf("refusal %v: want an unknown authority", refusal)
			}
		})
	}
}
