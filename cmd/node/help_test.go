package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestHelp_EverySubcommand_SynopsisFlagsAndEnvironment: each subcommand's
// --help (and each kind's) exits 0 and prints a synopsis, a flag list that
// is not empty (or, before a kind, where each kind's flags are), no flag
// that states its default twice, and the environment prefix its flags are
// read from.
func TestHelp_EverySubcommand_SynopsisFlagsAndEnvironment(t *testing.T) {
	statesDefault := regexp.MustCompile(`(?i)\(default|the default is`)
	for _, tc := range []struct {
		args []string
		env  string
	}{
		{[]string{"serve"}, envPrefix},
		{[]string{"status"}, envStatus},
		{[]string{"devcluster"}, envDevcluster},
		{[]string{"ps_to_http"}, envPsToHTTP},
		{[]string{"to_http"}, envToHTTP},
		{[]string{"backup"}, envBackup},
		{[]string{"restore"}, envRestore},
		{[]string{"top"}, envTop},
		{[]string{"tail"}, envTail},
		{[]string{"bench"}, envBench},
		{[]string{"bench", "put"}, envBench},
		{[]string{"gen"}, envGen},
		{[]string{"gen", "count"}, envGen},
		{[]string{"gen", "random"}, envGen},
		{[]string{"gen", "usagov"}, envGen},
		{[]string{"analyze"}, envAnalyze},
		{[]string{"analyze", "moments"}, envAnalyze},
		{[]string{"analyze", "histogram"}, envAnalyze},
		{[]string{"analyze", "graph"}, envAnalyze},
		{[]string{"analyze", "show"}, envAnalyze},
		{[]string{"analyze", "show", "histogram"}, envAnalyze},
		{[]string{"analyze", "reset", "graph"}, envAnalyze},
		{[]string{"certs"}, envCerts},
		{[]string{"certs", "ca"}, envCerts},
		{[]string{"certs", "node"}, envCerts},
		{[]string{"certs", "dev"}, envCerts},
	} {
		name := strings.Join(tc.args, " ")
		var out strings.Builder
		if code := run(append(tc.args, "--help"), &out, &out); code != 0 {
			t.Errorf("%s --help: exit status %d\n%s", name, code, out.String())
			continue
		}
		help := out.String()
		if !strings.HasPrefix(help, "Usage:") {
			t.Errorf("%s --help does not start with a synopsis (Usage: ...):\n%s", name, help)
		}
		flags, ok := strings.CutPrefix(help[strings.Index(help, "\nFlags:")+1:], "Flags:")
		switch {
		case !strings.Contains(help, "\nFlags:"):
			t.Errorf("%s --help has no Flags section", name)
		case !ok || !(strings.HasPrefix(flags, "\n  -") || strings.HasPrefix(flags, " each kind lists its own")):
			t.Errorf("%s --help: an empty flag list:\n%s", name, help)
		}
		if !strings.Contains(help, tc.env+"<NAME>") {
			t.Errorf("%s --help does not name the environment variables %s<NAME>", name, tc.env)
		}
		for _, entry := range strings.Split(help, "\n  -")[1:] {
			if n := len(statesDefault.FindAllString(entry, -1)); n > 1 {
				t.Errorf("%s --help: a flag states its default %d times: -%s", name, n, strings.TrimSpace(entry))
			}
		}
	}
}

// TestDevcluster_ZeroNodes_IsRefused: --nodes=0 is an error (exit 2), not
// three nodes.
func TestDevcluster_ZeroNodes_IsRefused(t *testing.T) {
	var out strings.Builder
	code := run([]string{"devcluster", "--nodes=0", "--base-dir=" + t.TempDir()}, &out, &out)
	if code != 2 || !strings.Contains(out.String(), "nodes=0: want 1 to 99") {
		t.Fatalf("devcluster --nodes=0: exit status %d, %q; want 2 and the reason", code, out.String())
	}
}
