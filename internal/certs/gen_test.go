package certs_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/certs"
)

// generate runs Generate of kind into dir with the defaults changed by
// edit, failing the test on error.
func generate(t *testing.T, kind, dir string, edit func(*certs.GenConfig)) {
	t.Helper()
	c := certs.DefaultGenConfig(kind)
	c.Dir = dir
	if edit != nil {
		edit(&c)
	}
	if err := certs.Generate(c, io.Discard); err != nil {
		t.Fatalf("Generate %s: %v", kind, err)
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("%s: want one PEM CERTIFICATE", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(t *testing.T, caPath string) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	p.AddCert(readCert(t, caPath))
	return p
}

// TestGenerateDev_NodeCertsVerifyForServerAndClientAuth: every node
// certificate of a dev directory chains to its CA for both sides of mutual
// TLS, and as a server for its node name, localhost and 127.0.0.1.
func TestGenerateDev_NodeCertsVerifyForServerAndClientAuth(t *testing.T) {
	dir := t.TempDir()
	generate(t, certs.KindDev, dir, nil)
	roots := pool(t, filepath.Join(dir, certs.CAFile))
	for _, id := range []string{"node1", "node2", "node3"} {
		c := readCert(t, filepath.Join(dir, certs.NodeCertFile(id)))
		for _, tc := range []struct {
			name  string
			usage x509.ExtKeyUsage
			host  string
		}{
			{"server for its name", x509.ExtKeyUsageServerAuth, id},
			{"server on localhost", x509.ExtKeyUsageServerAuth, "localhost"},
			{"server on 127.0.0.1", x509.ExtKeyUsageServerAuth, "127.0.0.1"},
			{"server on ::1", x509.ExtKeyUsageServerAuth, "::1"},
			{"client", x509.ExtKeyUsageClientAuth, ""},
		} {
			t.Run(id+"/"+tc.name, func(t *testing.T) {
				_, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestGenerateDev_CertificatesHaveTheAgreedShape: the CA signs node
// certificates only; a node certificate names its node as CommonName and
// URI SAN, is for signatures, and has a fresh positive 128-bit serial.
func TestGenerateDev_CertificatesHaveTheAgreedShape(t *testing.T) {
	dir := t.TempDir()
	generate(t, certs.KindDev, dir, nil)
	ca := readCert(t, filepath.Join(dir, certs.CAFile))
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA: IsCA %v, MaxPathLen %d (zero %v)", ca.IsCA, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("CA key usage %b", ca.KeyUsage)
	}
	if d := ca.NotAfter.Sub(ca.NotBefore); d < certs.DefaultCAValidity {
		t.Errorf("CA valid for %v, want at least %v", d, certs.DefaultCAValidity)
	}
	serials := map[string]bool{ca.SerialNumber.String(): true}
	for _, id := range []string{"node1", "node2", "node3"} {
		c := readCert(t, filepath.Join(dir, certs.NodeCertFile(id)))
		if c.Subject.CommonName != id {
			t.Errorf("%s: CommonName %q", id, c.Subject.CommonName)
		}
		if len(c.URIs) != 1 || c.URIs[0].String() != "quorumq://node/"+id {
			t.Errorf("%s: URIs %v", id, c.URIs)
		}
		if !slices.Equal(c.DNSNames, []string{id, "localhost"}) {
			t.Errorf("%s: DNS names %v", id, c.DNSNames)
		}
		if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature ||
			!slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
			t.Errorf("%s: IsCA %v, key usage %b, ext key usage %v", id, c.IsCA, c.KeyUsage, c.ExtKeyUsage)
		}
		if d := c.NotAfter.Sub(c.NotBefore); d < certs.DefaultNodeValidity || d > certs.DefaultNodeValidity+2*time.Hour {
			t.Errorf("%s: valid for %v, want about %v", id, d, certs.DefaultNodeValidity)
		}
		if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: public key %T, want ECDSA P-256", id, c.PublicKey)
		}
		if s := c.SerialNumber; s.Sign() <= 0 || s.BitLen() > 128 || serials[s.String()] {
			t.Errorf("%s: serial %v: want positive, at most 128 bits and unique", id, s)
		}
		serials[c.SerialNumber.String()] = true
	}
}

// TestGenerateNode_NamesAndAddresses: a node certificate carries exactly
// the names and addresses asked for, the loopback ones unless left out.
func TestGenerateNode_NamesAndAddresses(t *testing.T) {
	for _, tc := range []struct {
		name     string
		dns      []string
		ips      []string
		loopback bool
		wantDNS  []string
		wantIPs  []string
	}{
		{name: "loopback only", loopback: true, wantDNS: []string{"localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
		{name: "given and loopback", dns: []string{"q1.example.com", "*.svc.local"}, ips: []string{"10.0.0.7", "fd00::7"}, loopback: true,
			wantDNS: []string{"q1.example.com", "*.svc.local", "localhost"}, wantIPs: []string{"10.0.0.7", "fd00::7", "127.0.0.1", "::1"}},
		{name: "no loopback", dns: []string{"q1.example.com"}, ips: []string{"10.0.0.7"}, wantDNS: []string{"q1.example.com"}, wantIPs: []string{"10.0.0.7"}},
		{name: "duplicates once", dns: []string{"localhost", "LOCALHOST"}, ips: []string{"127.0.0.1"}, loopback: true,
			wantDNS: []string{"localhost"}, wantIPs: []string{"127.0.0.1", "::1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			generate(t, certs.KindCA, dir, nil)
			generate(t, certs.KindNode, dir, func(c *certs.GenConfig) {
				c.NodeID, c.DNSNames, c.Loopback = "q1", tc.dns, tc.loopback
				for _, s := range tc.ips {
					c.IPs = append(c.IPs, net.ParseIP(s))
				}
			})
			c := readCert(t, filepath.Join(dir, certs.NodeCertFile("q1")))
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(c.DNSNames, tc.wantDNS) || !slices.Equal(ips, tc.wantIPs) {
				t.Fatalf("DNS %v, IPs %v; want %v, %v", c.DNSNames, ips, tc.wantDNS, tc.wantIPs)
			}
			if id, err := certs.NodeIDFromCert(c); err != nil || id != "q1" {
				t.Fatalf("NodeIDFromCert: %q, %v", id, err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool(t, filepath.Join(dir, certs.CAFile))}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIssueNode_EndsWithTheCA: a node certificate asked to outlive its CA
// ends when the CA does, so it never fails verification for that alone.
func TestIssueNode_EndsWithTheCA(t *testing.T) {
	ca, err := certs.NewCA(48 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.IssueNode(certs.NodeRequest{ID: "n1", Validity: certs.DefaultNodeValidity})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Fatalf("node certificate ends %v, CA %v", p.Cert.NotAfter, ca.Cert.NotAfter)
	}
}

// TestNodeIDFromCert_RoundTripsAndRefusesAmbiguity: the id NodeURI puts in
// comes back out; no node URI, two of them, or one NodeURI could not have
// made, is an error.
func TestNodeIDFromCert_RoundTripsAndRefusesAmbiguity(t *testing.T) {
	for _, id := range []string{"node1", "a", "host-1.example_2", strings.Repeat("x", 128)} {
		t.Run("round trip "+id[:min(len(id), 16)], func(t *testing.T) {
			got, err := certs.NodeIDFromCert(&x509.Certificate{URIs: []*url.URL{nodeURIParsed(t, id)}})
			if err != nil || got != id {
				t.Fatalf("got %q, %v; want %q", got, err, id)
			}
		})
	}
	for _, tc := range []struct {
		name string
		uris []string
		want string // "" for an error
	}{
		{name: "other URIs ignored", uris: []string{"spiffe://cluster/ns/x", "quorumq://node/n1", "https://node/n2"}, want: "n1"},
		{name: "none", uris: nil},
		{name: "other schemes only", uris: []string{"spiffe://node/n1"}},
		{name: "two nodes", uris: []string{"quorumq://node/n1", "quorumq://node/n2"}},
		{name: "same node twice", uris: []string{"quorumq://node/n1", "quorumq://node/n1"}},
		{name: "empty id", uris: []string{"quorumq://node/"}},
		{name: "no path", uris: []string{"quorumq://node"}},
		{name: "nested path", uris: []string{"quorumq://node/a/b"}},
		{name: "escaped slash", uris: []string{"quorumq://node/a%2Fb"}},
		{name: "query", uris: []string{"quorumq://node/n1?x=1"}},
		{name: "fragment", uris: []string{"quorumq://node/n1#x"}},
		{name: "user", uris: []string{"quorumq://u@node/n1"}},
		{name: "port", uris: []string{"quorumq://node:1/n1"}},
		{name: "other host", uris: []string{"quorumq://client/n1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, s := range tc.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				c.URIs = append(c.URIs, u)
			}
			got, err := certs.NodeIDFromCert(c)
			if tc.want == "" && err == nil {
				t.Fatalf("got %q, want an error", got)
			}
			if tc.want != "" && (err != nil || got != tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// nodeURIParsed is NodeURI as a certificate carries it: written out and
// parsed back.
func nodeURIParsed(t *testing.T, id string) *url.URL {
	t.Helper()
	u, err := url.Parse(certs.NodeURI(id).String())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestGenerateDev_FilesAndModes: keys and secrets are 0600, certificates
// 0644; keys are PKCS#8; the gossip key is 32 bytes; the tokens file holds
// one admin line with a qq_ token of 32 bytes.
func TestGenerateDev_FilesAndModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	generate(t, certs.KindDev, dir, func(c *certs.GenConfig) { c.Nodes = []string{"a", "b"} })
	want := map[string]fs.FileMode{
		"ca.pem": 0o644, "ca-key.pem": 0o600,
		"a.pem": 0o644, "a-key.pem": 0o600, "b.pem": 0o644, "b-key.pem": 0o600,
		"gossip.key": 0o600, "tokens": 0o600,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		t.Errorf("%d files, want %d", len(entries), len(want))
	}
	for name, mode := range want {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}

	for _, name := range []string{"ca-key.pem", "a-key.pem"} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		block, _ := pem.Decode(data)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("%s: not a PEM PRIVATE KEY", name)
		}
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
			t.Fatalf("%s: %v", name, err)
		} else if _, ok := k.(*ecdsa.PrivateKey); !ok {
			t.Fatalf("%s: %T, want ECDSA", name, k)
		}
	}

	gossip, _ := os.ReadFile(filepath.Join(dir, certs.GossipKeyFile))
	lines := strings.Split(strings.TrimSuffix(string(gossip), "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("gossip.key: %d lines, want 1", len(lines))
	}
	if key, err := base64.StdEncoding.DecodeString(lines[0]); err != nil || len(key) != 32 {
		t.Fatalf("gossip.key: %d bytes, %v; want 32", len(key), err)
	}

	tokens, _ := os.ReadFile(filepath.Join(dir, certs.TokensFile))
	fields := strings.Fields(string(tokens))
	if len(fields) != 3 || fields[0] != "admin" || fields[1] != "admin" || strings.Count(string(tokens), "\n") != 1 {
		t.Fatalf("tokens: %q, want one line \"admin admin qq_...\"", tokens)
	}
	secret, ok := strings.CutPrefix(fields[2], "qq_")
	if b, err := base64.RawURLEncoding.DecodeString(secret); !ok || err != nil || len(b) != 32 {
		t.Fatalf("token %q: want qq_ and 32 bytes of unpadded base64url", fields[2])
	}
}

// TestTokenLine_Format: NAME ROLES SECRET [SCOPE...], roles joined by
// commas.
func TestTokenLine_Format(t *testing.T) {
	for _, tc := range []struct {
		roles  []string
		scopes []string
		want   string
	}{
		{[]string{"admin"}, nil, "t admin qq_s\n"},
		{[]string{"produce", "consume"}, []string{"orders.*", "clicks"}, "t produce,consume qq_s orders.* clicks\n"},
	} {
		if got := certs.TokenLine("t", tc.roles, "qq_s", tc.scopes...); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// TestNewToken_Differs: two tokens are never the same.
func TestNewToken_Differs(t *testing.T) {
	a, err := certs.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := certs.NewToken()
	if a == b {
		t.Fatalf("two tokens are %q", a)
	}
}

// TestEncodeGossipKeys_OnePerLinePrimaryFirst: the layout rotation relies
// on.
func TestEncodeGossipKeys_OnePerLinePrimaryFirst(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	got := string(certs.EncodeGossipKeys(k1, k2))
	want := base64.StdEncoding.EncodeToString(k1) + "\n" + base64.StdEncoding.EncodeToString(k2) + "\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestGenerate_RefusesToOverwriteUnlessForced: a second run leaves every
// file as it was (even those it would not have been the first to write),
// and --force replaces them, restoring the key's mode.
func TestGenerate_RefusesToOverwriteUnlessForced(t *testing.T) {
	dir := t.TempDir()
	generate(t, certs.KindCA, dir, nil)
	before := snapshot(t, dir)

	for _, kind := range []string{certs.KindCA, certs.KindDev} {
		c := certs.DefaultGenConfig(kind)
		c.Dir = dir
		err := certs.Generate(c, io.Discard)
		if !errors.Is(err, certs.ErrInvalid) || !errors.Is(err, fs.ErrExist) {
			t.Fatalf("%s again: %v, want ErrInvalid and ErrExist", kind, err)
		}
		if after := snapshot(t, dir); !maps.Equal(before, after) {
			t.Fatalf("%s again changed the directory", kind)
		}
	}

	keyPath := filepath.Join(dir, certs.CAKeyFile)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	generate(t, certs.KindCA, dir, func(c *certs.GenConfig) { c.Force = true })
	after := snapshot(t, dir)
	if after[certs.CAFile] == before[certs.CAFile] || after[certs.CAKeyFile] == before[certs.CAKeyFile] {
		t.Fatal("--force did not replace the CA")
	}
	if fi, _ := os.Stat(keyPath); fi.Mode().Perm() != 0o600 {
		t.Fatalf("overwritten key has mode %v, want 0600", fi.Mode().Perm())
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(data)
	}
	return m
}

// TestGenerateNode_NeedsAUsableCA: a directory without a CA, with half of
// one, or with a key that is not the CA's, is bad input.
func TestGenerateNode_NeedsAUsableCA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"no CA", func(*testing.T, string) {}},
		{"no CA key", func(t *testing.T, dir string) {
			generate(t, certs.KindCA, dir, nil)
			os.Remove(filepath.Join(dir, certs.CAKeyFile))
		}},
		{"another CA's key", func(t *testing.T, dir string) {
			generate(t, certs.KindCA, dir, nil)
			other := t.TempDir()
			generate(t, certs.KindCA, other, nil)
			data, _ := os.ReadFile(filepath.Join(other, certs.CAKeyFile))
			os.WriteFile(filepath.Join(dir, certs.CAKeyFile), data, 0o600)
		}},
		{"a node certificate as CA", func(t *testing.T, dir string) {
			generate(t, certs.KindDev, dir, func(c *certs.GenConfig) { c.Nodes = []string{"n1"} })
			for _, f := range [][2]string{{"n1.pem", certs.CAFile}, {"n1-key.pem", certs.CAKeyFile}} {
				data, _ := os.ReadFile(filepath.Join(dir, f[0]))
				os.WriteFile(filepath.Join(dir, f[1]), data, 0o600)
			}
		}},
		{"not PEM", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, certs.CAFile), []byte("junk"), 0o644)
			os.WriteFile(filepath.Join(dir, certs.CAKeyFile), []byte("junk"), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			c := certs.DefaultGenConfig(certs.KindNode)
			c.Dir, c.NodeID = dir, "n9"
			if err := certs.Generate(c, io.Discard); !errors.Is(err, certs.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			if _, err := os.Stat(filepath.Join(dir, certs.NodeCertFile("n9"))); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a certificate was written: %v", err)
			}
		})
	}
}

// TestGenConfigValidate_RefusesBadInput: each bad input is ErrInvalid.
func TestGenConfigValidate_RefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind string
		edit func(*certs.GenConfig)
	}{
		{"unknown kind", "root", nil},
		{"empty dir", certs.KindCA, func(c *certs.GenConfig) { c.Dir = "" }},
		{"zero CA validity", certs.KindCA, func(c *certs.GenConfig) { c.CAValidity = 0 }},
		{"no node id", certs.KindNode, nil},
		{"node id with a slash", certs.KindNode, func(c *certs.GenConfig) { c.NodeID = "a/b" }},
		{"node id with a space", certs.KindNode, func(c *certs.GenConfig) { c.NodeID = "a b" }},
		{"node id too long", certs.KindNode, func(c *certs.GenConfig) { c.NodeID = strings.Repeat("a", 129) }},
		{"negative node validity", certs.KindNode, func(c *certs.GenConfig) { c.NodeID, c.NodeValidity = "n", -time.Hour }},
		{"bad DNS name", certs.KindNode, func(c *certs.GenConfig) { c.NodeID, c.DNSNames = "n", []string{"a b"} }},
		{"empty DNS label", certs.KindDev, func(c *certs.GenConfig) { c.DNSNames = []string{"a..b"} }},
		{"no nodes", certs.KindDev, func(c *certs.GenConfig) { c.Nodes = nil }},
		{"a node twice", certs.KindDev, func(c *certs.GenConfig) { c.Nodes = []string{"n1", "n2", "n1"} }},
		{"bad node among nodes", certs.KindDev, func(c *certs.GenConfig) { c.Nodes = []string{"n1", "n:2"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := certs.DefaultGenConfig(tc.kind)
			if tc.edit != nil {
				tc.edit(&c)
			}
			if err := c.Validate(); !errors.Is(err, certs.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	for _, kind := range certs.Kinds {
		c := certs.DefaultGenConfig(kind)
		c.NodeID = "n1"
		if err := c.Validate(); err != nil {
			t.Errorf("defaults of %s: %v", kind, err)
		}
	}
}
