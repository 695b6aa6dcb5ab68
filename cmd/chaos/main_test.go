package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/deploy/chaos"
)

// TestRun_BadConfiguration_ExitsTwo: flags that do not parse and values
// that chaos.Config.Validate refuses end the command with status 2 and one
// line on stderr, before any node starts or any file is written.
func TestRun_BadConfiguration_ExitsTwo(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string // QUORUMQ_CHAOS_NODES, when not ""
		want string
	}{
		{"zero nodes", []string{"--nodes=0"}, "", "invalid configuration: nodes 0"},
		{"max nodes below nodes", []string{"--max-nodes=2"}, "", "invalid configuration: nodes 3 (min 0, max 2)"},
		{"zero duration", []string{"--duration=0"}, "", "invalid configuration: duration 0s"},
		{"negative duration with --long", []string{"--long", "--duration=-1s"}, "", "invalid configuration: duration -1s"},
		{"unknown network", []string{"--network=wifi"}, "", `invalid configuration: network "wifi"`},
		{"unknown fault", []string{"--faults=kill-leader,bogus"}, "", `invalid configuration: fault "bogus"`},
		{"zero nodes from the environment", nil, "0", "invalid configuration: nodes 0"},
		{"seed not a number", []string{"--seed=soon"}, "", `invalid value "soon" for flag -seed`},
		{"stray argument", []string{"now"}, "", `unexpected argument "now"`},
		{"negative stalled subscribers", []string{"--stalled-subs=-1"}, "", "invalid configuration: workload: big mget clients 1, stalled subscribers -1"},
		{"zero publish rate", []string{"--pub-rate=0"}, "", "invalid configuration: workload: publishers need a positive rate"},
		{"zero latency bound", []string{"--latency-bound=0s"}, "", "invalid configuration: workload: latency bound 0s"},
		{"zero lin timeout", []string{"--lin-timeout=0s"}, "", "lin timeout 0s must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("QUORUMQ_CHAOS_NODES", tc.env)
			}
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{"--binary=/nonexistent/quorumq", "--out=" + out}, tc.args...)
			var stdout, stderr strings.Builder
			if code := run(args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit status %d, want 2; stderr:\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr.String(), tc.want)
			}
			if stdout.Len() > 0 {
				t.Fatalf("a refused run printed %q", stdout.String())
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused run made %s (%v)", out, err)
			}
		})
	}
}

// TestRun_Help_ExitsZero: --help prints the usage and the flags' defaults.
func TestRun_Help_ExitsZero(t *testing.T) {
	var stderr strings.Builder
	if code := run([]string{"--help"}, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	for _, want := range []string{"Usage: quorumq-chaos", "(default 1m30s)", `(default "auto")`, "(default 3)", "(default 5)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestConfig_WorkloadFlags_SetTheHostileParts: the flags of the large
// mgets, stalled subscribers and slow clients reach the workload, and 0
// turns a part off.
func TestConfig_WorkloadFlags_SetTheHostileParts(t *testing.T) {
	cfg, _, err := config([]string{"--seed=7", "--big-mget-clients=2", "--mget-cap=500", "--stalled-subs=0", "--publishers=3",
		"--pub-rate=5", "--pub-size=100", "--slow-clients=0", "--idle-clients=30", "--latency-bound=2s", "--lin-timeout=1m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w := cfg.Workload
	got := []any{w.BigMGetClients, w.MGetCap, w.StalledSubs, w.Publishers, w.PubRate, w.PubSize, w.SlowClients, w.IdleClients, w.LatencyBound, cfg.LinTimeout}
	want := []any{2, 500, 0, 3, 5.0, 100, 0, 30, 2 * time.Second, time.Minute}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("field %d is %v, want %v (all: %v)", i, got[i], want[i], got)
		}
	}
	def, _, err := config([]string{"--seed=7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := chaos.DefaultWorkloadConfig()
	if def.Workload.StalledSubs != d.StalledSubs || def.Workload.SlowClients != d.SlowClients || def.Workload.BigMGetClients != d.BigMGetClients || d.StalledSubs == 0 || d.SlowClients == 0 || d.BigMGetClients == 0 {
		t.Fatalf("the hostile parts are not on by default: %+v", def.Workload)
	}
}

// TestConfig_FlagsOverTheSchedule: the flags start from
// chaos.DefaultConfig, --long takes chaos.LongConfig's schedule unless
// --duration is given, and flags after "--" replace the serve flags.
func TestConfig_FlagsOverTheSchedule(t *testing.T) {
	short, long := chaos.DefaultConfig(), chaos.LongConfig()
	for _, tc := range []struct {
		name     string
		args     []string
		duration time.Duration
		holdMax  time.Duration
		faults   []chaos.FaultKind
		serve    []string
	}{
		{"the short schedule", nil, short.Duration, short.HoldMax, nil, short.ServeArgs},
		{"the long schedule", []string{"--long"}, long.Duration, long.HoldMax, nil, short.ServeArgs},
		{"long with a duration", []string{"--long", "--duration=5m"}, 5 * time.Minute, long.HoldMax, nil, short.ServeArgs},
		{"a duration after long", []string{"--duration=5m", "--long"}, 5 * time.Minute, long.HoldMax, nil, short.ServeArgs},
		{"some faults", []string{"--faults=kill-leader, restart"}, short.Duration, short.HoldMax, []chaos.FaultKind{chaos.KillLeader, chaos.Restart}, short.ServeArgs},
		{"an empty fault list is all", []string{"--faults="}, short.Duration, short.HoldMax, nil, short.ServeArgs},
		{"serve flags", []string{"--nodes=3", "--", "--log-level=debug"}, short.Duration, short.HoldMax, nil, []string{"--log-level=debug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := config(append([]string{"--seed=7"}, tc.args...), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Duration != tc.duration || cfg.HoldMax != tc.holdMax || cfg.Seed != 7 {
				t.Fatalf("duration %v hold max %v seed %d, want %v %v 7", cfg.Duration, cfg.HoldMax, cfg.Seed, tc.duration, tc.holdMax)
			}
			if !slices.Equal(cfg.Faults, tc.faults) || !slices.Equal(cfg.ServeArgs, tc.serve) {
				t.Fatalf("faults %q serve args %q, want %q %q", cfg.Faults, cfg.ServeArgs, tc.faults, tc.serve)
			}
		})
	}
}
