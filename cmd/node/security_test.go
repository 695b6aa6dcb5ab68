package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client/clienttest"
	"github.com/quorumq/quorumq/deploy/bench/load"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/status"
	"github.com/quorumq/quorumq/internal/tutorial/gen"
	"github.com/quorumq/quorumq/internal/tutorial/pstohttp"
)

// securedTool registers a client tool's flags from its configuration, as
// its run function does, and returns where the token and TLS land.
type securedTool struct {
	name, prefix string
	register     func(fs *flag.FlagSet) (*string, **tls.Config)
}

var securedTools = []securedTool{
	{"ps_to_http", envPsToHTTP, func(fs *flag.FlagSet) (*string, **tls.Config) {
		c := pstohttp.DefaultConfig()
		c.RegisterFlags(fs)
		return &c.Token, &c.TLS
	}},
	{"gen", envGen, func(fs *flag.FlagSet) (*string, **tls.Config) {
		c := gen.DefaultConfig()
		c.RegisterFlags(fs)
		return &c.Token, &c.TLS
	}},
	{"analyze", envAnalyze, func(fs *flag.FlagSet) (*string, **tls.Config) {
		c := analytics.DefaultAnalyzeConfig("moments")
		c.RegisterFlags(fs)
		return &c.Token, &c.TLS
	}},
	{"bench", envBench, func(fs *flag.FlagSet) (*string, **tls.Config) {
		c := load.DefaultBenchConfig()
		c.RegisterFlags(fs)
		return &c.Token, &c.TLS
	}},
	{"status", envStatus, func(fs *flag.FlagSet) (*string, **tls.Config) {
		c := status.DefaultConfig()
		c.RegisterFlags(fs)
		return &c.Token, &c.TLS
	}},
}

// clearSecurityEnv unsets the shared variables and every tool's own for
// the test.
func clearSecurityEnv(t *testing.T) {
	t.Helper()
	vars := []string{cli.EnvToken, cli.EnvTLSCA}
	for _, tool := range securedTools {
		vars = append(vars, cli.EnvName(tool.prefix, "token"), cli.EnvName(tool.prefix, "tls-ca"))
	}
	for _, v := range vars {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
}

// TestSecurityFlags_Precedence: for every client tool, the token and the CA
// come from the command line, else the tool's own variable
// (QUORUMQ_<TOOL>_TOKEN, QUORUMQ_<TOOL>_TLS_CA), else QUORUMQ_TOKEN and
// QUORUMQ_TLS_CA. A CA variable that loses is a missing file: had it been
// read, parsing would fail.
func TestSecurityFlags_Precedence(t *testing.T) {
	_, ca := clienttest.NewTLSServer(t, http.NotFoundHandler())
	missing := t.TempDir() + "/missing.pem"
	for _, tool := range securedTools {
		ownToken, ownCA := cli.EnvName(tool.prefix, "token"), cli.EnvName(tool.prefix, "tls-ca")
		for _, tc := range []struct {
			name      string
			args      []string
			env       map[string]string
			wantToken string
			wantTLS   bool
		}{
			{name: "none"},
			{name: "shared", env: map[string]string{cli.EnvToken: "shared", cli.EnvTLSCA: ca}, wantToken: "shared", wantTLS: true},
			{name: "own variable beats shared", env: map[string]string{cli.EnvToken: "shared", ownToken: "own", cli.EnvTLSCA: missing, ownCA: ca}, wantToken: "own", wantTLS: true},
			{name: "flag beats both", args: []string{"--token=flag", "--tls-ca=" + ca}, env: map[string]string{cli.EnvToken: "shared", ownToken: "own", cli.EnvTLSCA: missing, ownCA: missing}, wantToken: "flag", wantTLS: true},
		} {
			t.Run(tool.name+"/"+tc.name, func(t *testing.T) {
				clearSecurityEnv(t)
				for k, v := range tc.env {
					t.Setenv(k, v)
				}
				fs := flag.NewFlagSet(tool.name, flag.ContinueOnError)
				token, conf := tool.register(fs)
				var stderr bytes.Buffer
				if code, ok := parse(fs, tc.args, &stderr, tool.prefix); !ok {
					t.Fatalf("exit %d: %s", code, stderr.String())
				}
				if *token != tc.wantToken || (*conf != nil) != tc.wantTLS {
					t.Fatalf("token %q, TLS %v; want %q, TLS %v", *token, *conf != nil, tc.wantToken, tc.wantTLS)
				}
			})
		}
	}
}

// TestSecurityFlags_BadCAExitsTwo: a --tls-ca or QUORUMQ_TLS_CA that is not
// a CA file is bad input (exit 2) for every tool, named in one line.
func TestSecurityFlags_BadCAExitsTwo(t *testing.T) {
	clearSecurityEnv(t)
	missing := t.TempDir() + "/missing.pem"
	t.Setenv(cli.EnvTLSCA, missing)
	for _, args := range [][]string{{"status"}, {"gen", "count", "--to=-"}, {"bench"}, {"ps_to_http", "--destination-post-url=http://127.0.0.1:1/put"}, {"analyze", "moments"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "missing.pem") {
			t.Errorf("%v with %s=%s: exit %d: %s", args, cli.EnvTLSCA, missing, code, stderr.String())
		}
	}
}

// secureStatusNode is an HTTPS /cluster/status behind a token gate.
func secureStatusNode(t *testing.T, token string) (hostPort, ca string, tokens *clienttest.Tokens) {
	t.Helper()
	tokens = new(clienttest.Tokens)
	srv, ca := clienttest.NewTLSServer(t, tokens.Wrap(token, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cluster/status":
			json.NewEncoder(w).Encode(api.Status{NodeID: "n1", State: "leader", LeaderID: "n1",
				Members: []api.Member{{ID: "n1", Status: "alive", Voter: true, QueueAddr: r.Host}}})
		case "/put":
		default:
			http.NotFound(w, r)
		}
	})))
	return strings.TrimPrefix(srv.URL, "https://"), ca, tokens
}

// TestStatus_SecuredNode_SharedVariables: `quorumq status` reaches an HTTPS
// node with QUORUMQ_TOKEN and QUORUMQ_TLS_CA alone, its default-form
// http:// address dialled as https://; with a token the node refuses it
// exits 1 naming the 401, and the token is in neither output.
func TestStatus_SecuredNode_SharedVariables(t *testing.T) {
	const secret = "status-s3cret-token-0123"
	clearSecurityEnv(t)
	hostPort, ca, tokens := secureStatusNode(t, secret)
	t.Setenv(cli.EnvToken, secret)
	t.Setenv(cli.EnvTLSCA, ca)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"status", "--addr=http://" + hostPort}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "n1 (leader)") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if seen := tokens.Seen(); len(seen) != 1 || seen[0] != secret {
		t.Fatalf("tokens received: %q", seen)
	}

	wrong := "wrong-" + secret
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"status", "--addr=" + hostPort, "--token=" + wrong}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("wrong token: exit %d: %s", code, stderr.String())
	}
	if out := stdout.String() + stderr.String(); strings.Contains(out, wrong) {
		t.Fatalf("the output shows the token:\n%s", out)
	}
}

// TestGen_SecuredNode_OwnVariable: `quorumq gen` sends
// QUORUMQ_GEN_TOKEN rather than QUORUMQ_TOKEN, and on a refusal reports
// the status without the token.
func TestGen_SecuredNode_OwnVariable(t *testing.T) {
	const secret = "gen-s3cret-token-0123"
	clearSecurityEnv(t)
	hostPort, ca, tokens := secureStatusNode(t, secret)
	t.Setenv(cli.EnvTLSCA, ca)
	t.Setenv(cli.EnvToken, "shared-"+secret)
	t.Setenv(cli.EnvName(envGen, "token"), secret)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"gen", "count", "--to=http://" + hostPort + "/put", "--n=3", "--progress=0"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if seen := tokens.Seen(); len(seen) != 3 || seen[0] != secret {
		t.Fatalf("tokens received: %q", seen)
	}
	t.Setenv(cli.EnvName(envGen, "token"), "")
	os.Unsetenv(cli.EnvName(envGen, "token"))
	stderr.Reset()
	if code := run([]string{"gen", "count", "--to=http://" + hostPort + "/put", "--n=1", "--progress=0"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("shared token refused: exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), secret) {
		t.Fatalf("stderr shows a token:\n%s", stderr.String())
	}
}
