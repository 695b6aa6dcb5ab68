package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/quorumq/quorumq/deploy/bench/load"
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
object with --json. A live progress line goes to stderr when it is a
terminal.

Flags:
`

// runBench is `quorumq bench`.
func runBench(args []string, stdout, stderr io.Writer) int {
	mode := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	cfg := load.DefaultBenchConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envBench); !ok {
		return code
	}
	if mode != "" {
		cfg.Mode = mode
	}
	if err := cfg.Validate(); err != nil {
		return fail(stderr, "bench", err, 2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := load.Bench(ctx, cfg, stdout, stderr); err != nil {
		if errors.Is(err, load.ErrNothingMeasured) {
			return 1
		}
		return fail(stderr, "bench", err, 1)
	}
	return 0
}
