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
quorumq binary beside this one or on PATH, or --binary): a 3-node cluster
under a workload of idempotent producers, leasing consumers, put/pop
clients and large mgets, with stalled subscribers, slow-body and idle
connections on every node, while a seeded nemesis kills (-9), pauses
(SIGSTOP), restarts and partitions nodes and adds and removes members.
Then it heals everything, drains the queues and checks: acknowledged puts
delivered, nothing unexpected or stored twice, attempts only grow, delays
honoured, put/pop/mget linearizable (porcupine; a piece it cannot decide
in --lin-timeout fails), mget answers within the cap, /pub and the other
clients served within --latency-bound while no fault is in effect,
replicas converge, the cluster recovers. Partitions need root on Linux
(network namespaces); without, they are skipped and the report says so.

Prints a table of faults, operations and checks, writes report.json,
history.jsonl, chaos.log and the node logs into --out, and exits 1 on any
violation (2 on bad flags or if the run could not be carried out).

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
	cfg, verbose, err := config(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "quorumq-chaos: %v\n", err)
		return 2
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

// config reads the command line: the flags, registered from
// chaos.DefaultConfig (--long switches to the schedule of
// chaos.LongConfig), then the serve flags after "--". Every error is bad
// input: a flag's, or chaos.ErrInvalid from Config.Validate.
func config(args []string, stderr io.Writer) (cfg chaos.Config, verbose bool, err error) {
	own, serveArgs := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 {
		own, serveArgs = args[:i], args[i+1:]
	}
	cfg, long := chaos.DefaultConfig(), chaos.LongConfig()
	var (
		useLong bool
		seed    int64
	)
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(stderr, chaosUsage); fs.PrintDefaults() }
	fs.BoolVar(&useLong, "long", false, fmt.Sprintf("the long schedule (%v of faults, 200 or more) instead of the short one", long.Duration))
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, fmt.Sprintf("length of the fault schedule (with --long: %v)", long.Duration))
	fs.Int64Var(&seed, "seed", 0, "seed of the schedule and the workload (0: from the clock; printed)")
	fs.StringVar(&cfg.OutDir, "out", cfg.OutDir, "directory for the report and logs (default chaos-out/<time>-seed<seed>)")
	fs.StringVar(&cfg.Binary, "binary", cfg.Binary, "quorumq binary the nodes run (default: quorumq beside this binary, else on PATH)")
	fs.StringVar(&cfg.Network, "network", cfg.Network, "auto, netns (fail without network namespaces) or loopback (no partitions)")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes at the start")
	fs.IntVar(&cfg.MaxNodes, "max-nodes", cfg.MaxNodes, "membership changes never grow the cluster above this")
	fs.Func("faults", "comma-separated fault kinds to enable (default all): "+faultKinds(), func(v string) error {
		cfg.Faults = nil
		for _, f := range cli.CommaList(v) {
			cfg.Faults = append(cfg.Faults, chaos.FaultKind(f))
		}
		return nil
	})
	fs.BoolVar(&cfg.Secure, "secure", cfg.Secure, "run the cluster secured: TLS, mutual TLS between nodes, a gossip key and tokens (made in OUT/certs)")
	fs.BoolVar(&cfg.KeepData, "keep-data", cfg.KeepData, "keep the nodes' data directories (they are kept anyway when a violation is found)")
	fs.DurationVar(&cfg.LinTimeout, "lin-timeout", cfg.LinTimeout, "time porcupine gets for one piece of a lin queue; a piece not decided fails the run")
	fs.DurationVar(&cfg.LinBudget, "lin-budget", cfg.LinBudget, "time the whole linearizability check gets (0: unbounded); pieces not checked by then fail the run")
	wl := &cfg.Workload
	fs.IntVar(&wl.BigMGetClients, "big-mget-clients", wl.BigMGetClients, "clients sending /mgets with items= far above what a queue holds (0: none)")
	fs.IntVar(&wl.MGetCap, "mget-cap", wl.MGetCap, "most messages one /mget answer may hold, the nodes' cap (0: none expected)")
	fs.IntVar(&wl.StalledSubs, "stalled-subs", wl.StalledSubs, "subscribers per node that never read (0: none)")
	fs.IntVar(&wl.Publishers, "publishers", wl.Publishers, "clients publishing to the stalled subscribers' topic (0: none)")
	fs.Float64Var(&wl.PubRate, "pub-rate", wl.PubRate, "publishes per second, all publishers together")
	fs.IntVar(&wl.PubSize, "pub-size", wl.PubSize, "bytes of a published message")
	fs.IntVar(&wl.SlowClients, "slow-clients", wl.SlowClients, "connections per node sending a body one byte at a time (0: none)")
	fs.IntVar(&wl.IdleClients, "idle-clients", wl.IdleClients, "connections per node that send nothing (0: none)")
	fs.DurationVar(&wl.LatencyBound, "latency-bound", wl.LatencyBound, "longest a /pub, put or lin request may take while no fault is in effect")
	fs.BoolVar(&verbose, "v", false, "print progress lines")
	if err := cli.Parse(fs, own, stderr, envPrefix); err != nil {
		return cfg, false, err
	}
	if useLong {
		cfg.HoldMin, cfg.HoldMax, cfg.GapMin, cfg.GapMax = long.HoldMin, long.HoldMax, long.GapMin, long.GapMax
		if !cli.Given(fs, "duration") {
			cfg.Duration = long.Duration
		}
	}
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	cfg.Seed = uint64(seed)
	if len(serveArgs) > 0 {
		cfg.ServeArgs = serveArgs
	}
	return cfg, verbose, cfg.Validate()
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
