package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/deploy/bench/load"
	"github.com/quorumq/quorumq/internal/cli"
)

const benchUsage = `Usage: quorumq bench [MODE] [flags]

Load generator for a quorumq node or cluster. MODE (or --mode) is one of:
  put     POST /put, one message per request
  mput    POST /mput, --batch messages per request (default 100)
  get     GET /get (pops; the queue is prefilled first, see --prefill)
  mget    GET /mget?items=--batch (default 100)
  lease   leased GET /get (or /mget with --batch > 1), then /ack of what it got
  pubsub  POST /pub of --batch messages; --subscribers /sub streams over every
          node count deliveries and their latency

Every worker keeps one connection and one request outstanding (closed loop),
or with --rate sends on a schedule (open loop; latency is then counted from
the scheduled time). By default all workers talk to the leader, found through
the first target's /cluster/status; --spread spreads them over --targets.
Prints throughput and latency percentiles (p50, p90, p99, p99.9), or one JSON
object with --json. A live progress line goes to stderr.

Flags:
`

// runBench is `quorumq bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	var (
		cfg     load.Config
		targets string
		asJSON  bool
		quiet   bool
	)
	mode := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&cfg.Mode, "mode", "put", "put, mput, get, mget, lease or pubsub")
	fs.StringVar(&targets, "targets", "http://127.0.0.1:8081", "comma-separated queue-port URLs of the nodes")
	fs.BoolVar(&cfg.Spread, "spread", false, "spread the workers over --targets instead of sending everything to the leader")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "workers, each with its own kept-alive connection")
	fs.IntVar(&cfg.Size, "size", 100, "message size in bytes")
	fs.IntVar(&cfg.Batch, "batch", 0, "messages per request (0: 100 for mput and mget, else 1)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to measure (after --warmup)")
	fs.Int64Var(&cfg.Count, "count", 0, "stop after this many requests instead (0: use --duration)")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "run this long before measuring")
	fs.Float64Var(&cfg.Rate, "rate", 0, "offer this many requests/s in total (open loop); 0: as fast as answered")
	fs.StringVar(&cfg.Queue, "queue", "bench", "queue name")
	fs.StringVar(&cfg.Topic, "topic", "bench", "pubsub topic")
	fs.DurationVar(&cfg.Lease, "lease", 30*time.Second, "lease of the lease mode")
	fs.IntVar(&cfg.Prefill, "prefill", -1, "messages to put before a get, mget or lease run (-1: enough for --count, else 200000)")
	fs.IntVar(&cfg.Subscribers, "subscribers", 0, "pubsub subscribers, spread over every node (0: one per node)")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "bound on each request")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	fs.BoolVar(&quiet, "quiet", false, "no progress line on stderr")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stderr, envBench); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq bench: %v\n", err)
		return 2
	}
	if mode != "" {
		cfg.Mode = mode
	}
	for _, t := range strings.Split(targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if cfg.Batch <= 0 {
		cfg.Batch = load.DefaultBatch(cfg.Mode)
	}
	if cfg.Prefill < 0 {
		cfg.Prefill = 200000
		if cfg.Count > 0 {
			cfg.Prefill = int(cfg.Count) * cfg.Batch
		}
	}
	if !quiet {
		cfg.Progress = stderr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := load.RunQuorumq(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "quorumq bench: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "quorumq bench: %v\n", err)
			return 1
		}
	} else {
		rep.WriteText(stdout)
	}
	if rep.Ops == 0 || rep.Errors == rep.Ops {
		return 1
	}
	return 0
}
