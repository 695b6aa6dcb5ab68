// Command peers runs quorumq (one node and a three-node cluster, as
// processes) against redis-server (AOF appendfsync always and everysec)
// and NATS JetStream (three embedded nats-servers, R3 file streams, lazy
// and sync_interval: always) on this machine, with the same message size
// and concurrency, and writes docs/BENCHMARKS.md with the results, the
// CPU each system spent per acknowledged message (from /proc, sampled
// around every measured window), the performance targets, and PNG charts
// (gonum/plot).
//
//	cd deploy/bench/peers && go run .            # full run, about 15 minutes
//	cd deploy/bench/peers && go run . --quick    # short runs, a few minutes
//
// It is a separate module so that the nats-server and plotting
// dependencies stay out of quorumq's own module.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "nats-node" {
		os.Exit(runNATSNode(os.Args[2:]))
	}
	os.Exit(run())
}

// options of a run.
type options struct {
	quick  bool
	repo   string // quorumq's repository root
	docs   string // where BENCHMARKS.md and the charts go
	binary string // quorumq binary; empty: build one
	// baseline is an earlier quorumq binary: the systems quorumq1-base
	// and quorumq3-base run it, for a before-and-after in one run.
	baseline string
	work     string // data directories
	systems  []string
	duration time.Duration
	sweep    bool
	rawJSON  string
	// leaderCPUBaselineUs is the leader CPU per put, in µs, that the
	// "reduced" target compares with (default DefaultLeaderCPUBaselineUs;
	// 0: report the figure without a comparison).
	leaderCPUBaselineUs float64
}

func run() int {
	var o options
	var systems string
	flag.BoolVar(&o.quick, "quick", false, "short runs and fewer sweep points (minutes instead of ~15)")
	flag.StringVar(&o.repo, "repo", "../../..", "quorumq repository root (built with go build ./cmd/node)")
	flag.StringVar(&o.docs, "docs", "", "output directory for BENCHMARKS.md and the PNG charts (default: <repo>/docs)")
	flag.StringVar(&o.binary, "quorumq", "", "quorumq binary to run (default: build one from --repo)")
	flag.StringVar(&o.baseline, "baseline", "", "an earlier quorumq binary, run as the systems quorumq1-base and quorumq3-base (add them to --systems) for a before-and-after comparison in one run")
	flag.StringVar(&o.work, "work", "", "directory for data directories (default: a temporary one, removed afterwards)")
	flag.StringVar(&systems, "systems", strings.Join(allSystems, ","), "systems to run, comma-separated")
	flag.DurationVar(&o.duration, "duration", 0, "measured time of each headline run (default 10s, 4s with --quick)")
	flag.BoolVar(&o.sweep, "sweep", true, "also sweep concurrency and batch size for the charts")
	flag.StringVar(&o.rawJSON, "json", "", "also write every result as JSON to this file, for --from-json (default: <docs>/bench-results.json; \"-\": none)")
	flag.Float64Var(&o.leaderCPUBaselineUs, "leader-cpu-baseline", DefaultLeaderCPUBaselineUs, "leader CPU per put, in µs, that the targets table compares with (0: none); with --from-json, overrides the file's")
	fromJSON := flag.String("from-json", "", "measure nothing: write the report again from a file written by --json")
	flag.Parse()
	for _, s := range strings.Split(systems, ",") {
		if s = strings.TrimSpace(s); s != "" {
			o.systems = append(o.systems, s)
		}
	}
	if o.docs == "" {
		o.docs = filepath.Join(o.repo, "docs")
	}
	switch o.rawJSON {
	case "":
		o.rawJSON = filepath.Join(o.docs, "bench-results.json")
	case "-":
		o.rawJSON = ""
	}
	if *fromJSON != "" {
		b, err := os.ReadFile(*fromJSON)
		if err != nil {
			return fail(err)
		}
		var rep report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fail(fmt.Errorf("%s: %w", *fromJSON, err))
		}
		// The file's own baseline stands unless one is asked for.
		flag.Visit(func(f *flag.Flag) {
			if f.Name == "leader-cpu-baseline" {
				rep.LeaderCPUBaselineUs = o.leaderCPUBaselineUs
			}
		})
		if err := writeReport(&rep, o.docs); err != nil {
			return fail(err)
		}
		logf("wrote %s", filepath.Join(o.docs, "BENCHMARKS.md"))
		return 0
	}
	if o.duration == 0 {
		o.duration = 10 * time.Second
		if o.quick {
			o.duration = 4 * time.Second
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.work == "" {
		dir, err := os.MkdirTemp("", "quorumq-peers-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(dir)
		o.work = dir
	}
	if o.binary == "" {
		bin := filepath.Join(o.work, "quorumq")
		logf("building quorumq from %s", o.repo)
		if err := command(ctx, o.repo, "go", "build", "-o", bin, "./cmd/node"); err != nil {
			return fail(fmt.Errorf("go build: %w", err))
		}
		o.binary = bin
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}

	rep := &report{Started: time.Now(), Quick: o.quick, Args: os.Args[1:], DurationNs: int64(o.duration), LeaderCPUBaselineUs: o.leaderCPUBaselineUs}
	logf("machine: measuring the disk's fsync rate")
	rep.Machine = describeMachine(o.work)
	for _, key := range o.systems {
		if ctx.Err() != nil {
			break
		}
		sys, err := newSystem(key, o, self)
		if err != nil {
			return fail(err)
		}
		logf("== %s", sys.Name)
		res, err := runSystem(ctx, sys, o)
		if err != nil {
			logf("%s: %v", sys.Name, err)
			res.Error = err.Error()
		}
		rep.Systems = append(rep.Systems, res)
	}
	rep.Finished = time.Now()
	rep.LoadEnd = loadAvg()
	if o.rawJSON != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.MkdirAll(filepath.Dir(o.rawJSON), 0o755); err != nil {
			return fail(err)
		}
		if err := os.WriteFile(o.rawJSON, b, 0o644); err != nil {
			return fail(err)
		}
	}
	if err := writeReport(rep, o.docs); err != nil {
		return fail(err)
	}
	logf("wrote %s", filepath.Join(o.docs, "BENCHMARKS.md"))
	return 0
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "peers: %v\n", err)
	return 1
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
