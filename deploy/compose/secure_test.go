package compose

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/quorumq/quorumq/internal/auth"
)

// The subcommand of the one-shot service that makes the cluster's TLS
// material and tokens.
const certsCommand = "certs"

// The roles a tool's token needs, by subcommand.
var toolRoles = map[string][]auth.Role{
	"gen":        {auth.Produce},
	"ps_to_http": {auth.Produce, auth.Consume},
	"analyze":    {auth.Consume},
	"bench":      {auth.Produce, auth.Consume},
	"status":     {auth.Monitor},
}

// The node flags that secure a node, and what each file is.
var securityFlags = []string{"tls-cert", "tls-key", "tls-ca", "gossip-key-file", "auth-tokens-file"}

func isTool(s types.ServiceConfig) bool {
	return isQuorumq(s) && !isNode(s) && subcommand(s) != certsCommand
}

// certsService is the one service that runs `quorumq certs`.
func certsService(t *testing.T, p *types.Project) types.ServiceConfig {
	t.Helper()
	var found []types.ServiceConfig
	for _, s := range sortedServices(p) {
		if isQuorumq(s) && subcommand(s) == certsCommand {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one service running `quorumq certs` (the cluster's TLS material and tokens), found %d", len(found))
	}
	return found[0]
}

// mountOf is the named-volume mount of s that holds the container path p
// (the longest target that contains it).
func mountOf(s types.ServiceConfig, p string) (types.ServiceVolumeConfig, string, bool) {
	var best types.ServiceVolumeConfig
	rel, ok := "", false
	p = path.Clean(p)
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeVolume {
			continue
		}
		target := path.Clean(v.Target)
		r, found := "", p == target
		if !found && strings.HasPrefix(p, target+"/") {
			r, found = strings.TrimPrefix(p, target+"/"), true
		}
		if found && (!ok || len(target) > len(path.Clean(best.Target))) {
			best, rel, ok = v, r, true
		}
	}
	return best, rel, ok
}

// volumes stands for the project's named volumes with host directories:
// a container path on a volume is a host path under the volume's
// directory.
type volumes map[string]string

// hostPath is where the container path p of service s is on the host, if
// it is on one of the volumes.
func (vs volumes) hostPath(s types.ServiceConfig, p string) (string, bool) {
	m, rel, ok := mountOf(s, p)
	if !ok {
		return "", false
	}
	dir, ok := vs[m.Source]
	if !ok {
		return "", false
	}
	return filepath.Join(dir, filepath.FromSlash(rel)), true
}

// run runs the entrypoint and command of service s on this machine: its
// environment with container paths on the volumes turned into host paths,
// and binDir first on PATH (the container's quorumq).
func (vs volumes) run(t *testing.T, s types.ServiceConfig, binDir string) (string, error) {
	t.Helper()
	argv := append(slices.Clone([]string(s.Entrypoint)), s.Command...)
	if len(argv) == 0 {
		t.Fatalf("%s: no entrypoint or command", s.Name)
	}
	env := []string{}
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, k := range sortedKeys(s.Environment) {
		v := s.Environment[k]
		if v == nil {
			continue
		}
		val := *v
		if path.IsAbs(val) {
			if hp, ok := vs.hostPath(s, val); ok {
				val = hp
			}
		}
		env = append(env, k+"="+val)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = errors.Join(err, errors.New(stderr.String()))
	}
	return stdout.String(), err
}

func needShell(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"sh", "awk", "head", "base64", "tr", "mv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the compose scripts need %s, which this machine lacks: %v", tool, err)
		}
	}
}

// freshVolumes gives every named volume of s an empty directory, as Docker
// would: the certs volume starts as the image's /certs (mode 0750).
func freshVolumes(t *testing.T, s types.ServiceConfig) volumes {
	t.Helper()
	vs := volumes{}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o750); err != nil {
				t.Fatal(err)
			}
			vs[v.Source] = dir
		}
	}
	return vs
}

// certsDir is where the certs service writes (its CERTS_DIR), as a
// container path and as the volume that holds it.
func certsDir(t *testing.T, s types.ServiceConfig) (string, types.ServiceVolumeConfig) {
	t.Helper()
	v := s.Environment["CERTS_DIR"]
	if v == nil || !path.IsAbs(*v) {
		t.Fatalf("%s: no absolute CERTS_DIR", s.Name)
	}
	m, rel, ok := mountOf(s, *v)
	if !ok || rel != "" || m.ReadOnly {
		t.Fatalf("%s: CERTS_DIR %s is not a writable named volume mounted there", s.Name, *v)
	}
	return *v, m
}

var (
	materialOnce sync.Once
	materialVols volumes
	materialErr  error
)

// material runs the certs service once for the test binary and returns
// its volumes, for the tests that check what the other services use.
func material(t *testing.T) volumes {
	t.Helper()
	needShell(t)
	p := allProfiles(t)
	s := certsService(t, p)
	bin := quorumqBinary(t)
	materialOnce.Do(func() {
		vs := volumes{}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			dir := filepath.Join(tmpDir, "volume-"+v.Source)
			if materialErr = os.Mkdir(dir, 0o750); materialErr != nil {
				return
			}
			vs[v.Source] = dir
		}
		if _, err := vs.run(t, s, filepath.Dir(bin)); err != nil {
			materialErr = err
			return
		}
		materialVols = vs
	})
	if materialErr != nil {
		t.Fatalf("the certs service failed: %v", materialErr)
	}
	return materialVols
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mode(t *testing.T, name string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// mountsReadOnly reports whether s mounts the named volume, read-only.
func mountsReadOnly(s types.ServiceConfig, volume string) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == volume {
			return v.ReadOnly
		}
	}
	return false
}

func dependsOnCerts(s types.ServiceConfig, certs string) bool {
	d, ok := s.DependsOn[certs]
	return ok && d.Condition == types.ServiceConditionCompletedSuccessfully
}

// The certs service runs without a profile and only once per `up`; the
// first time it makes a CA, a certificate per node, the gossip key and the
// tokens (keys and secrets 0600, the CA key on a volume of its own), and
// every later run keeps the same CA and tokens, adding only tokens that are
// missing; a first run that was interrupted is started over.
func TestCompose_CertsServiceMakesTheMaterialOnce(t *testing.T) {
	needShell(t)
	p := allProfiles(t)
	s := certsService(t, p)
	bin := quorumqBinary(t)
	if len(s.Profiles) > 0 {
		t.Errorf("%s: in profiles %q; the default cluster needs it", s.Name, s.Profiles)
	}
	if s.Restart != "" && s.Restart != types.RestartPolicyNo {
		t.Errorf("%s: restart %q: a one-shot service must not be restarted", s.Name, s.Restart)
	}
	if hc := s.HealthCheck; hc == nil || !hc.Disable {
		t.Errorf("%s: inherits the image's /readyz healthcheck; set healthcheck: {disable: true}", s.Name)
	}
	dir, certsMount := certsDir(t, s)

	vs := freshVolumes(t, s)
	out, err := vs.run(t, s, filepath.Dir(bin))
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	host := vs[certsMount.Source]
	for _, n := range nodes(t, p) {
		id := n.flags["node-id"]
		for _, f := range []string{id + ".pem", id + "-key.pem"} {
			if _, err := os.Stat(filepath.Join(host, f)); err != nil {
				t.Errorf("no %s for node %s in %s: %v", f, n.svc.Name, dir, err)
			}
		}
	}
	for _, f := range []string{"ca.pem", "gossip.key", "tokens"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("no %s in %s: %v", f, dir, err)
		}
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		m := mode(t, filepath.Join(host, name))
		switch {
		case e.IsDir():
			t.Errorf("%s/%s: a directory left behind", dir, name)
		case name == "ca-key.pem":
			t.Errorf("%s/ca-key.pem: the CA key is on the volume every node mounts", dir)
		case strings.HasSuffix(name, "-key.pem") || name == "gossip.key" || name == "tokens":
			if m != 0o600 {
				t.Errorf("%s/%s: mode %v, want 0600", dir, name, m)
			}
		case strings.HasSuffix(name, ".token"):
			if m&0o007 != 0 {
				t.Errorf("%s/%s: mode %v: others may read a secret", dir, name, m)
			}
		case m&0o022 != 0:
			t.Errorf("%s/%s: mode %v: writable by others", dir, name, m)
		}
	}
	caKey := ""
	for src, d := range vs {
		if _, err := os.Stat(filepath.Join(d, "ca-key.pem")); err == nil && src != certsMount.Source {
			caKey = src
		}
	}
	if caKey == "" {
		t.Error("the CA key is on none of the certs service's volumes")
	}
	for _, other := range sortedServices(p) {
		for _, v := range other.Volumes {
			if other.Name != s.Name && v.Type == types.VolumeTypeVolume && v.Source == caKey {
				t.Errorf("%s mounts %s, the volume of the CA key", other.Name, caKey)
			}
		}
	}

	ca := readFile(t, filepath.Join(host, "ca.pem"))
	tokens := readFile(t, filepath.Join(host, "tokens"))
	if out, err := vs.run(t, s, filepath.Dir(bin)); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if !bytes.Equal(ca, readFile(t, filepath.Join(host, "ca.pem"))) {
		t.Error("a second run made a new CA")
	}
	if !bytes.Equal(tokens, readFile(t, filepath.Join(host, "tokens"))) {
		t.Error("a second run changed the tokens")
	}

	// A volume made before a tool had a token: the admin line alone.
	var adminOnly []byte
	for _, line := range strings.SplitAfter(string(tokens), "\n") {
		if strings.HasPrefix(line, "admin ") {
			adminOnly = append(adminOnly, line...)
		}
	}
	if len(adminOnly) == 0 {
		t.Fatal(`the tokens file has no "admin" line (the README reads the admin token from it)`)
	}
	if err := os.WriteFile(filepath.Join(host, "tokens"), adminOnly, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := vs.run(t, s, filepath.Dir(bin)); err != nil {
		t.Fatalf("run on a volume without the tools' tokens: %v\n%s", err, out)
	}
	again := readFile(t, filepath.Join(host, "tokens"))
	if !bytes.HasPrefix(again, adminOnly) || bytes.Count(again, []byte("\n")) != bytes.Count(tokens, []byte("\n")) {
		t.Errorf("the tools' tokens were not added back after the admin line:\n%s", redact(again))
	}
	if _, err := auth.Load(filepath.Join(host, "tokens")); err != nil {
		t.Errorf("the tokens file does not load: %v", err)
	}

	// A first run interrupted after some files were written.
	vs = freshVolumes(t, s)
	host = vs[certsMount.Source]
	if err := os.Mkdir(filepath.Join(host, ".new"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, ".new", "gossip.key"), []byte("half\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := vs.run(t, s, filepath.Dir(bin)); err != nil {
		t.Fatalf("run after an interrupted first run: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(host, "ca.pem")); err != nil {
		t.Errorf("no CA after an interrupted first run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(host, ".new")); err == nil {
		t.Error("the staging directory of an interrupted run is left behind")
	}
}

var secretRE = regexp.MustCompile(`(?m)^(\S+\s+\S+\s+)\S+`)

func redact(tokens []byte) string { return secretRE.ReplaceAllString(string(tokens), "${1}<secret>") }

// Every node is secured with files the certs service makes, on its volume
// mounted read-only, and starts after that service completed: its own
// certificate and key, issued by the CA for its node id and for the names
// it is dialled by (its service name, and localhost and 127.0.0.1 for the
// published ports and the healthcheck), the gossip key and the tokens,
// which hold the admin token the README reads.
func TestCompose_NodesRunWithTheCertsServiceMaterial(t *testing.T) {
	vs := material(t)
	p := allProfiles(t)
	certs := certsService(t, p)
	_, certsMount := certsDir(t, certs)
	for _, n := range nodes(t, p) {
		name := n.svc.Name
		if !dependsOnCerts(n.svc, certs.Name) {
			t.Errorf("%s: does not depend on %s with condition service_completed_successfully", name, certs.Name)
		}
		files := map[string]string{}
		for _, f := range securityFlags {
			v := n.flags[f]
			if v == "" {
				t.Errorf("%s: no --%s (%s): the node would run open", name, f, envName(f))
				continue
			}
			m, _, ok := mountOf(n.svc, v)
			if !ok || m.Source != certsMount.Source {
				t.Errorf("%s: --%s=%s is not on the volume %s", name, f, v, certsMount.Source)
				continue
			}
			if !m.ReadOnly {
				t.Errorf("%s: mounts %s read-write; nodes only read it", name, m.Source)
			}
			hp, _ := vs.hostPath(n.svc, v)
			if _, err := os.Stat(hp); err != nil {
				t.Errorf("%s: --%s=%s: the certs service does not make it", name, f, v)
				continue
			}
			files[f] = hp
		}
		if len(files) != len(securityFlags) {
			continue
		}

		pair, err := tls.LoadX509KeyPair(files["tls-cert"], files["tls-key"])
		if err != nil {
			t.Errorf("%s: certificate and key: %v", name, err)
			continue
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(readFile(t, files["tls-ca"])) {
			t.Fatalf("%s: %s holds no certificate", name, n.flags["tls-ca"])
		}
		for _, dialled := range []string{n.flags["advertise"], name, "localhost", "127.0.0.1"} {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:   dialled,
				Roots:     roots,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			})
			if err != nil {
				t.Errorf("%s: its certificate does not verify for %q with the CA: %v", name, dialled, err)
			}
		}
		want := "quorumq://node/" + n.flags["node-id"]
		uris := []string{}
		for _, u := range leaf.URIs {
			uris = append(uris, u.String())
		}
		if !slices.Contains(uris, want) {
			t.Errorf("%s: certificate names %q, want %s (peers check the node id against it)", name, uris, want)
		}

		if b := readFile(t, files["gossip-key-file"]); len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("%s: empty gossip key file", name)
		}
		toks, err := auth.Load(files["auth-tokens-file"])
		if err != nil {
			t.Errorf("%s: tokens file: %v", name, err)
			continue
		}
		if w := toks.Warnings(); len(w) > 0 {
			t.Errorf("%s: tokens file loads with warnings: %q", name, w)
		}
		if admin, ok := toks.Authenticate(tokenOf(t, files["auth-tokens-file"], "admin")); !ok || !admin.Has(auth.Admin) {
			t.Errorf("%s: the token named admin is not an admin token", name)
		}
	}
}

// tokenOf is the plain secret of the token named name in a tokens file.
func tokenOf(t *testing.T, file, name string) string {
	t.Helper()
	for _, line := range strings.Split(string(readFile(t, file)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == name {
			return f[2]
		}
	}
	t.Fatalf("%s has no token named %s", file, name)
	return ""
}

// Each tool of the chain starts with a token of its own, read from the
// certs volume (mounted read-only) when the container starts and handed
// over as QUORUMQ_TOKEN: not in the compose file, so not in `docker
// inspect`. The token has the roles the tool needs and is not an admin
// token, and the tool trusts the cluster CA. A tool whose token is missing
// stops with an error instead of running without one.
func TestCompose_ToolsStartWithTheirOwnTokenFromTheVolume(t *testing.T) {
	vs := material(t)
	p := allProfiles(t)
	certs := certsService(t, p)
	_, certsMount := certsDir(t, certs)
	fake := t.TempDir()
	// The container's quorumq, reduced to what the test needs to see: the
	// token it was given and its arguments.
	script := "#!/bin/sh\nprintf '%s\\n' \"token=$QUORUMQ_TOKEN\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(fake, "quorumq"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	var tokensFile string
	for _, n := range nodes(t, p) {
		tokensFile, _ = vs.hostPath(n.svc, n.flags["auth-tokens-file"])
	}
	toks, err := auth.Load(tokensFile)
	if err != nil {
		t.Fatalf("the nodes' tokens file: %v", err)
	}

	tools := 0
	for _, s := range sortedServices(p) {
		if !isTool(s) {
			continue
		}
		tools++
		sub := subcommand(s)
		for k, v := range s.Environment {
			if v != nil && strings.HasSuffix(k, "_TOKEN") {
				t.Errorf("%s: environment %s: a secret in the compose file, shown by `docker inspect`", s.Name, k)
			}
		}
		if !dependsOnCerts(s, certs.Name) {
			t.Errorf("%s: does not depend on %s with condition service_completed_successfully", s.Name, certs.Name)
		}
		if !mountsReadOnly(s, certsMount.Source) {
			t.Errorf("%s: does not mount the volume %s read-only", s.Name, certsMount.Source)
		}
		ca := s.Environment["QUORUMQ_TLS_CA"]
		if ca == nil {
			t.Errorf("%s: no QUORUMQ_TLS_CA: the tool would speak plain HTTP to nodes that speak HTTPS", s.Name)
		} else if hp, ok := vs.hostPath(s, *ca); !ok {
			t.Errorf("%s: QUORUMQ_TLS_CA=%s is on no volume of the certs service", s.Name, *ca)
		} else if _, err := os.Stat(hp); err != nil {
			t.Errorf("%s: QUORUMQ_TLS_CA=%s: the certs service does not make it", s.Name, *ca)
		}

		out, err := vs.run(t, s, fake)
		if err != nil {
			t.Errorf("%s: the entrypoint fails: %v", s.Name, err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if !slices.Equal(lines[1:], s.Command) {
			t.Errorf("%s: quorumq ran with %q, want the service's command %q", s.Name, lines[1:], s.Command)
		}
		pr, ok := toks.Authenticate(strings.TrimPrefix(lines[0], "token="))
		if !ok {
			t.Errorf("%s: starts with no token of the nodes' tokens file", s.Name)
			continue
		}
		roles, known := toolRoles[sub]
		if !known {
			t.Errorf("%s: no roles known for `quorumq %s`", s.Name, sub)
		}
		for _, r := range roles {
			if !pr.Has(r) {
				t.Errorf("%s: token %q has roles %v; `quorumq %s` needs %v", s.Name, pr.Name, pr.Roles, sub, r)
			}
		}
		if pr.Roles&auth.Admin != 0 {
			t.Errorf("%s: token %q is an admin token; give the tool only the roles it needs", s.Name, pr.Name)
		}

		missing := s
		missing.Environment = types.MappingWithEquals{}
		for k, v := range s.Environment {
			missing.Environment[k] = v
		}
		nobody := "no-such-token"
		missing.Environment["TOKEN_NAME"] = &nobody
		if out, err := vs.run(t, missing, fake); err == nil || strings.Contains(out, "token=") {
			t.Errorf("%s: with no token of its name the entrypoint still runs quorumq (%v):\n%s", s.Name, err, out)
		}
	}
	if tools == 0 {
		t.Error("no tool service")
	}
}

var (
	promSchemeRE = regexp.MustCompile(`(?m)^\s*scheme:\s*["']?(\w+)`)
	promCAFileRE = regexp.MustCompile(`(?m)^\s*ca_file:\s*["']?([^\s"']+)`)
	promCredRE   = regexp.MustCompile(`(?m)^\s*credentials_file:\s*["']?([^\s"']+)`)
)

// Prometheus scrapes the secured nodes over HTTPS, trusting the cluster
// CA, with a monitor-only token, both read from the certs volume, which it
// mounts read-only after the certs service completed. It runs in the group
// of the image's user, so it can read the token file (group-readable) but
// not the keys (owner only).
func TestCompose_PrometheusScrapesOverTLSWithAMonitorToken(t *testing.T) {
	vs := material(t)
	p := allProfiles(t)
	certs := certsService(t, p)
	var prom *types.ServiceConfig
	for _, s := range sortedServices(p) {
		if strings.Contains(s.Image, "prometheus") {
			prom = &s
		}
	}
	if prom == nil {
		t.Skip("no prometheus service")
	}
	if !dependsOnCerts(*prom, certs.Name) {
		t.Errorf("%s: does not depend on %s with condition service_completed_successfully", prom.Name, certs.Name)
	}
	conf := readRepoFile(t, "deploy/prometheus.yml")
	if m := promSchemeRE.FindStringSubmatch(conf); m == nil || m[1] != "https" {
		t.Error("deploy/prometheus.yml: no scheme: https; the nodes speak HTTPS only")
	}
	file := func(re *regexp.Regexp, what string) string {
		m := re.FindStringSubmatch(conf)
		if m == nil {
			t.Errorf("deploy/prometheus.yml: no %s", what)
			return ""
		}
		v, _, ok := mountOf(*prom, m[1])
		if !ok || !v.ReadOnly {
			t.Errorf("deploy/prometheus.yml: %s %s is on no volume %s mounts read-only", what, m[1], prom.Name)
			return ""
		}
		hp, _ := vs.hostPath(*prom, m[1])
		if _, err := os.Stat(hp); err != nil {
			t.Errorf("deploy/prometheus.yml: %s %s: the certs service does not make it", what, m[1])
			return ""
		}
		return hp
	}
	if ca := file(promCAFileRE, "tls_config ca_file"); ca != "" {
		if b, _ := pem.Decode(readFile(t, ca)); b == nil || b.Type != "CERTIFICATE" {
			t.Errorf("deploy/prometheus.yml: ca_file is not a PEM certificate")
		}
	}
	cred := file(promCredRE, "authorization credentials_file")
	if cred == "" {
		return
	}
	var tokensFile string
	for _, n := range nodes(t, p) {
		tokensFile, _ = vs.hostPath(n.svc, n.flags["auth-tokens-file"])
	}
	toks, err := auth.Load(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	if pr, ok := toks.Authenticate(strings.TrimSpace(string(readFile(t, cred)))); !ok {
		t.Error("the credentials_file holds no token of the nodes' tokens file")
	} else if pr.Roles != auth.Monitor {
		t.Errorf("Prometheus's token %q has roles %v, want monitor alone", pr.Name, pr.Roles)
	}

	// The image's user owns the files; Prometheus reads the token as a
	// member of its group.
	imageUser := ""
	for _, in := range dockerfileStages(t)[len(dockerfileStages(t))-1].Ins {
		if in.Cmd == "USER" {
			imageUser = in.Args
		}
	}
	_, imageGroup, _ := strings.Cut(imageUser, ":")
	_, promGroup, _ := strings.Cut(prom.User, ":")
	if imageGroup == "" || promGroup != imageGroup {
		t.Errorf("%s: user %q; want the group of the image's user (USER %s) to read the token file", prom.Name, prom.User, imageUser)
	}
	if m := mode(t, cred); m&0o040 == 0 || m&0o007 != 0 {
		t.Errorf("the credentials_file has mode %v, want readable by the group and not by others", m)
	}
}

// The image has the directory the certs volume is mounted on, owned by its
// user, so that a new named volume starts writable by the certs service
// (which runs as that user, as the nodes do).
func TestDockerfile_CertsDirectoryBelongsToTheImageUser(t *testing.T) {
	p := allProfiles(t)
	certs := certsService(t, p)
	dir, _ := certsDir(t, certs)
	if certs.User != "" {
		t.Errorf("%s: user %q; it runs as the image's user, who owns the files the nodes read", certs.Name, certs.User)
	}
	st := dockerfileStages(t)
	final := st[len(st)-1]
	user := ""
	made, owned := false, false
	for _, in := range final.Ins {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "RUN":
			if strings.Contains(in.Args, "mkdir") && strings.Contains(in.Args, dir) {
				made = true
			}
			if regexp.MustCompile(`chown\s+\S+[^&]*\s` + regexp.QuoteMeta(dir) + `(\s|$)`).MatchString(in.Args) {
				owned = true
			}
		}
	}
	if !made || !owned {
		t.Errorf("deploy/Dockerfile does not make %s and chown it to the image's user (%s): a new volume there would be root's", dir, user)
	}
}
