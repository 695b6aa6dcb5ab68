package chaos

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testkit"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 0, "run TestChaos with this fault schedule (e.g. 90s for CI, 10m); 0 skips it")
	chaosSeed     = flag.Uint64("chaos.seed", 0, "seed of TestChaos (0: from the clock)")
	chaosOut      = flag.String("chaos.out", "", "output directory of TestChaos (default: a temporary directory, kept on failure)")
	chaosNetwork  = flag.String("chaos.network", "auto", "auto, netns or loopback")
	chaosFaults   = flag.String("chaos.faults", "", "comma-separated fault kinds (default all)")
	chaosSecure   = flag.Bool("chaos.secure", false, "run the cluster secured: TLS, mutual TLS between nodes, gossip key, tokens")
	chaosRecheck  = flag.String("chaos.recheck", "", "TestRecheck: check the history.jsonl in this run directory again")
)

// TestRecheck runs the history checks and the linearizability check again
// on a finished run's history.jsonl (the convergence and recovery checks
// need the live cluster and are not repeated):
//
//	go test ./deploy/chaos -run TestRecheck -chaos.recheck=chaos-out/<run> -v
func TestRecheck(t *testing.T) {
	if *chaosRecheck == "" {
		t.Skip("pass -chaos.recheck=DIR")
	}
	f, err := os.Open(filepath.Join(*chaosRecheck, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := ReadHistory(f)
	if err != nil {
		t.Fatal(err)
	}
	checks := CheckAll(h, true)
	lin := CheckLinearizable(h.Lin, time.Minute, DefaultWorkloadConfig().MGetCap, t.TempDir())
	checks = append(checks, LinCheck(lin))
	failed := false
	for _, c := range checks {
		t.Logf("%s: pass=%v checked=%d violations=%d %s", c.Name, c.Pass, c.Checked, c.Violations, c.Inconclusive)
		for _, e := range c.Examples {
			t.Logf("    %s", e)
		}
		failed = failed || !c.Pass
	}
	if failed {
		t.Fail()
	}
}

// TestChaos runs the chaos suite against a freshly built quorumq binary:
//
//	go test ./deploy/chaos -run TestChaos -chaos.duration=90s -timeout 15m -v
//
// It is skipped unless -chaos.duration is given. With a duration of 3
// minutes or more it uses the long schedule's holds and gaps.
func TestChaos(t *testing.T) {
	if *chaosDuration <= 0 {
		t.Skip("chaos run not requested: pass -chaos.duration=90s (CI) or 10m")
	}
	bin, err := testkit.Build(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("building quorumq: %v", err)
	}
	cfg := Short
	if *chaosDuration >= 3*time.Minute {
		cfg = Long
	}
	cfg.Duration = *chaosDuration
	cfg.Binary = bin
	cfg.Seed = *chaosSeed
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano() % 1_000_000_000)
	}
	cfg.Network = *chaosNetwork
	if *chaosFaults != "" {
		for _, f := range strings.Split(*chaosFaults, ",") {
			cfg.Faults = append(cfg.Faults, FaultKind(strings.TrimSpace(f)))
		}
	}
	cfg.Secure = *chaosSecure
	cfg.OutDir = *chaosOut
	if cfg.OutDir == "" {
		dir, err := os.MkdirTemp("", "quorumq-chaos-")
		if err != nil {
			t.Fatal(err)
		}
		cfg.OutDir = dir
	}
	cfg.Logf = t.Logf
	t.Logf("seed %d (rerun with -chaos.seed=%d), output in %s", cfg.Seed, cfg.Seed, cfg.OutDir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if rep != nil && len(rep.Checks) > 0 {
		var b strings.Builder
		rep.WriteTable(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("violations found; report, history and node logs in %s", cfg.OutDir)
	}
	if *chaosOut == "" {
		os.RemoveAll(cfg.OutDir)
	}
}
