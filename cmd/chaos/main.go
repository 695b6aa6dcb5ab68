// Command quorumq-chaos runs the fault-injection suite (package chaos)
// against real "quorumq serve" processes and checks what they did. It is a
// binary of its own so that the server does not link the checker.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/deploy/chaos"
	"github.com/quorumq/quorumq/internal/cli"
)

const chaosUsage = `Usage: quorumq-chaos [--long] [--duration=D] [--seed=N] [flags] [-- serve flags...]

Runs a fault-injection test against real "quorumq serve" processes (the
quorumq binary beside this one or on PATH, or --binary): a 3-node cluster under a workload of idempotent
producers, leasing consumers and put/pop clients, while a seeded nemesis
kills (-9), pauses (SIGSTOP), restarts and partitions nodes and adds and
removes members. Then it heals everything, drains the queues and checks:
acknowledged puts delivered, nothing unexpected or stored twice, attempts
only grow, delays honoured, put/pop linearizable (porcupine), replicas
converge, the cluster recovers. Partitions need root on Linux (network
namespaces); without, they are skipped and the report says so.

Prints a table of faults, operations and checks, writes report.json,
history.jsonl, chaos.log and the node logs into --out, and exits 1 on any
violation (2 if the run could not be carried out).

Flags after "--" replace the default serve flags of every node.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// envPrefix starts the environment variable of every flag (--seed:
// QUORUMQ_CHAOS_SEED).
const envPrefix = "QUORUMQ_CHAOS_"

func run(args []string, stdout, stderr io.Writer) int {
	own, serveArgs := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 {
		own, serveArgs = args[:i], args[i+1:]
	}
	cfg := chaos.Short
	var (
		long    bool
		seed    int64
		faults  string
		verbose bool
	)
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, chaosUsage); fs.PrintDefaults() }
	fs.BoolVar(&long, "long", false, "the long schedule (10 minutes of faults, longer holds) instead of the short one (90 s)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "length of the fault schedule (default: 90s, or 10m with --long)")
	fs.Int64Var(&seed, "seed", 0, "seed of the schedule and the workload (0: from the clock; printed)")
	fs.StringVar(&cfg.OutDir, "out", "", "directory for the report and logs (default chaos-out/<time>-seed<seed>)")
	fs.StringVar(&cfg.Binary, "binary", "", "quorumq binary the nodes run (default: quorumq beside this binary, else on PATH)")
	fs.StringVar(&cfg.Network, "network", "auto", "auto, netns (fail without network namespaces) or loopback (no partitions)")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "nodes at the start")
	fs.IntVar(&cfg.MaxNodes, "max-nodes", 5, "membership changes never grow the cluster above this")
	fs.StringVar(&faults, "faults", "", "comma-separated fault kinds to enable (default all): "+faultKinds())
	fs.BoolVar(&cfg.KeepData, "keep-data", false, "keep the nodes' data directories (they are kept anyway when a violation is found)")
	fs.BoolVar(&verbose, "v", false, "print progress lines")
	if err := cli.Parse(fs, own, stderr, envPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq-chaos: %v\n", err)
		return 2
	}
	if long {
		d := cfg.Duration
		base := chaos.Long
		base.OutDir, base.Binary, base.Network, base.Nodes, base.MaxNodes, base.KeepData = cfg.OutDir, cfg.Binary, cfg.Network, cfg.Nodes, cfg.MaxNodes, cfg.KeepData
		cfg = base
		if d > 0 {
			cfg.Duration = d
		}
	} else if cfg.Duration == 0 {
		cfg.Duration = chaos.Short.Duration
	}
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	cfg.Seed = uint64(seed)
	if faults != "" {
		for _, f := range strings.Split(faults, ",") {
			cfg.Faults = append(cfg.Faults, chaos.FaultKind(strings.TrimSpace(f)))
		}
	}
	if len(serveArgs) > 0 {
		cfg.ServeArgs = serveArgs
	}
	if cfg.Binary == "" {
		bin, err := findQuorumq()
		if err != nil {
			fmt.Fprintf(stderr, "quorumq-chaos: %v (use --binary)\n", err)
			return 2
		}
		cfg.Binary = bin
	}
	cfg.Logf = func(format string, args ...any) {
		if verbose {
			fmt.Fprintf(stderr, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
		}
	}
	fmt.Fprintf(stdout, "quorumq-chaos: seed %d, %v of faults (rerun with --seed=%d)\n", cfg.Seed, cfg.Duration, cfg.Seed)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := chaos.Run(ctx, cfg)
	if rep != nil && len(rep.Checks) > 0 {
		rep.WriteTable(stdout)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "quorumq-chaos: %v\n", err)
		return 2
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "quorumq-chaos: interrupted")
		return 2
	case !rep.OK:
		return 1
	}
	return 0
}

func faultKinds() string {
	var s []string
	for _, f := range chaos.AllFaults {
		s = append(s, string(f.Kind))
	}
	return strings.Join(s, ", ")
}

// findQuorumq returns the quorumq binary beside this one (make build puts
// both in bin/), else the one on PATH.
func findQuorumq() (string, error) {
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "quorumq")
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside, nil
		}
	}
	bin, err := exec.LookPath("quorumq")
	if err != nil {
		return "", errors.New("no quorumq binary beside this one or on PATH")
	}
	return bin, nil
}
