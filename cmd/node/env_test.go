package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/quorumq/quorumq/internal/cli"
)

// subcommandEnv lists, for every subcommand invocation, the environment
// prefix it reads its flags under. Commands with variants (gen count|random|
// usagov, analyze moments|...|show|reset) are listed per variant, since each
// registers its own flags.
var subcommandEnv = []struct {
	args   []string
	prefix string
}{
	{[]string{"serve"}, envPrefix},
	{[]string{"devcluster"}, envDevcluster},
	{[]string{"ps_to_http"}, envPsToHTTP},
	{[]string{"gen", "count"}, envGen},
	{[]string{"gen", "random"}, envGen},
	{[]string{"gen", "usagov"}, envGen},
	{[]string{"analyze", "moments"}, envAnalyze},
	{[]string{"analyze", "histogram"}, envAnalyze},
	{[]string{"analyze", "graph"}, envAnalyze},
	{[]string{"analyze", "show", "moments"}, envAnalyze},
	{[]string{"analyze", "show", "histogram"}, envAnalyze},
	{[]string{"analyze", "show", "graph"}, envAnalyze},
	{[]string{"analyze", "reset", "moments"}, envAnalyze},
	{[]string{"analyze", "reset", "histogram"}, envAnalyze},
	{[]string{"analyze", "reset", "graph"}, envAnalyze},
	{[]string{"bench"}, envBench},
	{[]string{"status"}, envStatus},
	{[]string{"certs", "ca"}, envCerts},
	{[]string{"certs", "node"}, envCerts},
	{[]string{"certs", "dev"}, envCerts},
}

// flagLine matches a flag in the usage that flag.PrintDefaults writes.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// envNames returns the environment variables a subcommand reads: one per
// flag of its --help, under its prefix.
func envNames(t *testing.T, args []string, prefix string) []string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(append(slices.Clone(args), "--help"), &out, &errOut); code != 0 {
		t.Fatalf("%v --help: exit %d: %s", args, code, errOut.String())
	}
	var names []string
	for _, m := range flagLine.FindAllStringSubmatch(out.String()+errOut.String(), -1) {
		names = append(names, cli.EnvName(prefix, m[1]))
	}
	if len(names) == 0 {
		t.Fatalf("%v --help lists no flags", args)
	}
	return names
}

// TestEnvironment_NoTwoSubcommandsShareAVariable: a variable set for one
// subcommand (such as QUORUMQ_QUEUE_ADDR for serve in docker-compose) is
// never read by another one. No sharing is intended, so none is allowed;
// the variants of one subcommand share its prefix on purpose.
func TestEnvironment_NoTwoSubcommandsShareAVariable(t *testing.T) {
	owner := map[string]string{}
	for _, sc := range subcommandEnv {
		for _, env := range envNames(t, sc.args, sc.prefix) {
			if o, ok := owner[env]; ok && o != sc.args[0] {
				t.Errorf("%s is read by both %s and %s", env, o, sc.args[0])
			}
			owner[env] = sc.args[0]
		}
	}
}

// TestEnvironment_PrefixesDoNotOverlap: no tool's prefix starts another
// tool's, so flags added to one tool later cannot collide with another's.
func TestEnvironment_PrefixesDoNotOverlap(t *testing.T) {
	prefixes := []string{envDevcluster, envPsToHTTP, envGen, envAnalyze, envBench, envStatus, envCerts}
	for i, p := range prefixes {
		for j, q := range prefixes {
			if i != j && strings.HasPrefix(p, q) {
				t.Errorf("prefix %s starts with %s", p, q)
			}
		}
	}
}

// TestEnvironment_AnalyzeIgnoresServesQueueAddr: analyze --queue-addr is
// QUORUMQ_ANALYZE_QUEUE_ADDR; QUORUMQ_QUEUE_ADDR, serve's bind address
// (0.0.0.0:8081 in docker-compose), is not a URL to dial.
func TestEnvironment_AnalyzeIgnoresServesQueueAddr(t *testing.T) {
	for _, kind := range []string{"moments", "histogram", "graph"} {
		names := envNames(t, []string{"analyze", kind}, envAnalyze)
		if slices.Contains(names, "QUORUMQ_QUEUE_ADDR") {
			t.Errorf("analyze %s reads QUORUMQ_QUEUE_ADDR", kind)
		}
		if !slices.Contains(names, "QUORUMQ_ANALYZE_QUEUE_ADDR") {
			t.Errorf("analyze %s does not read QUORUMQ_ANALYZE_QUEUE_ADDR: %v", kind, names)
		}
	}
}

// clientTools are the subcommands that talk to a cluster as clients: each
// takes --token and --tls-ca, with QUORUMQ_TOKEN and QUORUMQ_TLS_CA as the
// shared fallbacks (analyze show and reset talk only to Redis).
var clientTools = [][]string{
	{"ps_to_http"}, {"gen", "count"}, {"gen", "random"}, {"gen", "usagov"},
	{"analyze", "moments"}, {"analyze", "histogram"}, {"analyze", "graph"},
	{"bench"}, {"status"},
}

// TestEnvironment_SharedClientVariables: every client tool reads --token
// and --tls-ca; the shared variables are the only ones read outside a
// tool's prefix. serve reads QUORUMQ_TLS_CA as its own --tls-ca (prefix
// QUORUMQ_): the cluster CA, the same file a client trusts, so sharing it
// is intended; serve has no --token, so QUORUMQ_TOKEN is never a server
// setting.
func TestEnvironment_SharedClientVariables(t *testing.T) {
	prefixOf := map[string]string{}
	for _, sc := range subcommandEnv {
		prefixOf[strings.Join(sc.args, " ")] = sc.prefix
	}
	for _, args := range clientTools {
		names := envNames(t, args, prefixOf[strings.Join(args, " ")])
		for _, flagName := range []string{"token", "tls-ca"} {
			if !slices.Contains(names, cli.EnvName(prefixOf[strings.Join(args, " ")], flagName)) {
				t.Errorf("%v has no --%s", args, flagName)
			}
		}
	}
	serveVars := envNames(t, []string{"serve"}, envPrefix)
	if slices.Contains(serveVars, cli.EnvToken) {
		t.Errorf("serve reads %s as a flag of its own", cli.EnvToken)
	}
	if !slices.Contains(serveVars, cli.EnvTLSCA) || cli.SharedEnv("tls-ca") != cli.EnvName(envPrefix, "tls-ca") {
		t.Errorf("serve's --tls-ca is not %s: the shared CA variable would mean two things", cli.EnvTLSCA)
	}
	for _, sc := range subcommandEnv {
		if sc.args[0] == "serve" {
			continue
		}
		for _, env := range envNames(t, sc.args, sc.prefix) {
			if env == cli.EnvToken || env == cli.EnvTLSCA {
				t.Errorf("%v reads %s under its own prefix", sc.args, env)
			}
		}
	}
}
