package certs_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/certs/certstest"
)

// serveHTTPS serves, with cfg, a handler that answers the caller's node
// id (or "anonymous").
func serveHTTPS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := certs.PeerNodeID(r.TLS)
		if errors.Is(err, certs.ErrNoIdentity) {
			id = "anonymous"
		}
		io.WriteString(w, id)
	}))
	srv.TLS = cfg
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func call(c *tls.Config, url string) (string, error) {
	tr := &http.Transport{TLSClientConfig: c}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestMaterial_HTTPPortsTellNodesFromClients: the HTTP ports take
// clients without a certificate (anonymous) and name a node that
// presents its cluster certificate; a node of another CA is refused.
func TestMaterial_HTTPPortsTellNodesFromClients(t *testing.T) {
	ca := certstest.NewCA(t)
	n1 := certstest.Material(t, ca.Node(t, "n1"))
	n2 := certstest.Material(t, ca.Node(t, "n2"))
	url := serveHTTPS(t, n1.HTTPConfig())

	if got, err := call(n2.ClientConfig(), url); err != nil || got != "n2" {
		t.Fatalf("node n2: %q, %v", got, err)
	}
	if got, err := call(&tls.Config{RootCAs: n1.CAPool()}, url); err != nil || got != "anonymous" {
		t.Fatalf("client without certificate: %q, %v", got, err)
	}
	other := certstest.Material(t, certstest.NewCA(t).Node(t, "n2"))
	if got, err := call(other.ClientConfig(), url); err == nil {
		t.Fatalf("a node of another CA was answered: %q", got)
	}
}

// TestMaterial_LoadRefusesACertificateOfAnotherCA: the files must fit
// together.
func TestMaterial_LoadRefusesACertificateOfAnotherCA(t *testing.T) {
	a, b := certstest.NewCA(t), certstest.NewCA(t)
	f := b.Node(t, "n1")
	f.CA = a.CAFile
	if _, err := certs.Load(f); err == nil {
		t.Fatal("a certificate of another CA was loaded")
	}
	if _, err := certs.Load(certs.Files{Cert: f.Cert, Key: f.Key}); err == nil {
		t.Fatal("loaded without a CA")
	}
}

// TestMaterial_ReloadSwitchesToNewFilesAndKeepsOldOnError: after the
// files are replaced by another CA's, Reload serves the new certificate
// to new connections; a broken file leaves the material in use.
func TestMaterial_ReloadSwitchesToNewFilesAndKeepsOldOnError(t *testing.T) {
	ca := certstest.NewCA(t)
	f := ca.Node(t, "n1")
	m := certstest.Material(t, f)
	url := serveHTTPS(t, m.HTTPConfig())
	oldClient := &tls.Config{RootCAs: m.CAPool()}
	if _, err := call(oldClient, url); err != nil {
		t.Fatal(err)
	}

	// A broken certificate file: Reload fails, the old one stays.
	good, _ := os.ReadFile(f.Cert)
	os.WriteFile(f.Cert, []byte("not a certificate"), 0o600)
	if err := m.Reload(); err == nil {
		t.Fatal("reload of a broken file succeeded")
	}
	if _, err := call(oldClient, url); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	os.WriteFile(f.Cert, good, 0o600)

	// Another CA's files in the same places.
	next := certstest.NewCA(t)
	nf := next.Node(t, "n1")
	for _, p := range [][2]string{{nf.Cert, f.Cert}, {nf.Key, f.Key}, {nf.CA, f.CA}} {
		b, _ := os.ReadFile(p[0])
		os.WriteFile(p[1], b, 0o600)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := call(oldClient, url); err == nil {
		t.Fatal("the old CA still verifies the reloaded server")
	}
	if _, err := call(&tls.Config{RootCAs: m.CAPool()}, url); err != nil {
		t.Fatalf("new CA: %v", err)
	}
}
