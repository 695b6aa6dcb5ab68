package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// certsRun runs `quorumq certs args...` and returns its exit status and
// output.
func certsRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"certs"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestCertsDev_WritesAClusterAndRefusesToOverwrite: `certs dev` writes a
// CA, a certificate and key per node, the gossip key and the tokens file,
// and says how to read the admin token; a second run exits 2 and --force
// replaces the files; `certs node` then adds a node from the same CA.
func TestCertsDev_WritesAClusterAndRefusesToOverwrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errOut := certsRun(t, "dev", "--dir="+dir, "--nodes=n1,n2", "--dns=q.example.com", "--ip=10.1.2.3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := []string{"ca-key.pem", "ca.pem", "gossip.key", "n1-key.pem", "n1.pem", "n2-key.pem", "n2.pem", "tokens"}
	if got := dirNames(t, dir); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	if !strings.Contains(out, "awk '$1 == \"admin\" {print $3}' "+dir+"/tokens") {
		t.Errorf("output does not say how to read the admin token:\n%s", out)
	}
	tokens, _ := os.ReadFile(filepath.Join(dir, "tokens"))
	if f := strings.Fields(string(tokens)); len(f) != 3 || f[0] != "admin" || !strings.HasPrefix(f[2], "qq_") {
		t.Errorf("tokens: %q", tokens)
	}
	n2 := parseCert(t, filepath.Join(dir, "n2.pem"))
	if !slices.Equal(n2.DNSNames, []string{"n2", "q.example.com", "localhost"}) || len(n2.IPAddresses) != 3 || !n2.IPAddresses[0].Equal([]byte{10, 1, 2, 3}) {
		t.Errorf("n2: DNS %v, IPs %v", n2.DNSNames, n2.IPAddresses)
	}

	before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if code, _, errOut := certsRun(t, "dev", "--dir="+dir, "--nodes=n1,n2"); code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("second run: exit %d, stderr %q; want 2 and one line naming --force", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(before, after) {
		t.Fatal("the refused run changed ca.pem")
	}
	if code, _, errOut := certsRun(t, "dev", "--dir="+dir, "--nodes=n1,n2", "--force"); code != 0 {
		t.Fatalf("--force: exit %d: %s", code, errOut)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); bytes.Equal(before, after) {
		t.Fatal("--force kept the old CA")
	}

	if code, _, errOut := certsRun(t, "node", "--dir="+dir, "--node-id=n3"); code != 0 {
		t.Fatalf("node: exit %d: %s", code, errOut)
	}
	roots := x509.NewCertPool()
	roots.AddCert(parseCert(t, filepath.Join(dir, "ca.pem")))
	if _, err := parseCert(t, filepath.Join(dir, "n3.pem")).Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Fatalf("n3 does not verify against the directory's CA: %v", err)
	}
}

// TestCerts_ExitStatus: help is 0, bad input 2 with a one-line error, an
// I/O failure 1.
func TestCerts_ExitStatus(t *testing.T) {
	dir := t.TempDir()
	aFile := filepath.Join(dir, "a-file")
	if err := os.WriteFile(aFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		oneLine bool // stderr is one line
	}{
		{name: "help", args: []string{"--help"}, code: 0},
		{name: "kind help", args: []string{"node", "--help"}, code: 0},
		{name: "no kind", args: nil, code: 2},
		{name: "unknown kind", args: []string{"root"}, code: 2},
		{name: "node without id", args: []string{"node", "--dir=" + dir}, code: 2, oneLine: true},
		{name: "node id not an id", args: []string{"node", "--dir=" + dir, "--node-id=a/b"}, code: 2, oneLine: true},
		{name: "node without a CA", args: []string{"node", "--dir=" + dir, "--node-id=n1"}, code: 2, oneLine: true},
		{name: "bad DNS name", args: []string{"dev", "--dir=" + dir, "--dns=a b"}, code: 2, oneLine: true},
		{name: "duplicate node", args: []string{"dev", "--dir=" + dir, "--nodes=n1,n1"}, code: 2, oneLine: true},
		{name: "zero validity", args: []string{"dev", "--dir=" + dir, "--validity=0s"}, code: 2, oneLine: true},
		{name: "bad IP", args: []string{"dev", "--dir=" + dir, "--ip=1.2.3"}, code: 2},
		{name: "bad IP from the environment", args: []string{"dev", "--dir=" + dir}, env: map[string]string{"QUORUMQ_CERTS_IP": "x"}, code: 2},
		{name: "flag of another kind", args: []string{"ca", "--dir=" + dir, "--node-id=n1"}, code: 2},
		{name: "directory is a file", args: []string{"ca", "--dir=" + aFile}, code: 1, oneLine: true},
		{name: "CA directory is a file", args: []string{"node", "--dir=" + aFile, "--node-id=n1"}, code: 1, oneLine: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, _, errOut := certsRun(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if tc.oneLine && (strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "quorumq certs ")) {
				t.Fatalf("stderr %q: want one line from quorumq certs", errOut)
			}
		})
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"a-file"}) {
		t.Fatalf("refused runs wrote %v", names)
	}
}

// TestCertsDev_ReadsTheEnvironment: flags come from QUORUMQ_CERTS_*.
func TestCertsDev_ReadsTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("QUORUMQ_CERTS_DIR", dir)
	t.Setenv("QUORUMQ_CERTS_NODES", "e1")
	if code, _, errOut := certsRun(t, "dev"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "e1.pem")); err != nil {
		t.Fatal(err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func parseCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
