package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChaos_RunsTheRunnerWithArgumentsAndItsStatus: `quorumq chaos` runs
// quorumq-chaos from PATH with the arguments as given and exits with its
// status.
func TestChaos_RunsTheRunnerWithArgumentsAndItsStatus(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"runner got: $*\"\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, chaosRunner), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	var out strings.Builder
	code := run([]string{"chaos", "--duration=30m", "--seed=20261204"}, &out, &out)
	if code != 3 || !strings.Contains(out.String(), "runner got: --duration=30m --seed=20261204") {
		t.Fatalf("exit %d, output %q; want 3 and the arguments passed on", code, out.String())
	}
}

// TestChaos_NoRunner_SaysHowToBuildIt: without quorumq-chaos the command
// fails with status 2 and says how to build the runner.
func TestChaos_NoRunner_SaysHowToBuildIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out strings.Builder
	if code := run([]string{"chaos"}, &out, &out); code != 2 || !strings.Contains(out.String(), "./cmd/chaos") {
		t.Fatalf("exit %d, output %q; want 2 and how to build the runner", code, out.String())
	}
}
