package main

import (
	"context"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumq/quorumq/internal/tutorial/gen"
)

const genUsage = `Usage: quorumq gen count|random|usagov --to=URL [flags]

Generates the tutorial's streams and POSTs them to --to, any node's
  http://HOST:PUBSUB_PORT/pub[?topic=T]   newline batches (--batch per request)
  http://HOST:QUEUE_PORT/mput[?queue=Q]   newline batches, with an idempotency key
  http://HOST:QUEUE_PORT/put[?queue=Q]    one message per request, --concurrency at once
or "-" to print them. 503, 507, 429, 502 and 504 answers and connection
errors are retried with backoff (--retries); messages that still fail are
counted and make the exit status 1. A progress line goes to stderr.

  count    1, 2, 3, ... (--start)
  random   numbers from --dist: uniform [--min, --max) (default 0, 1),
           normal --mean --stddev (or --variance) (default 0, 1),
           exponential --lambda (rate, default 1), lognormal --mean --stddev
           (of log x, default 0, 1), poisson --lambda (default 1),
           zipf --s --v --imax (default 2, 1, 100), ints [--min, --max]
           (default 0, 9). --secret draws the parameters from --seed and
           reveals them (and the true mean and variance) only at exit, or
           in --secret-file.
  usagov   1.usa.gov click records: --file replays a JSON-lines file at
           --speed times the pace of its own timestamps (t; 0: as fast as
           possible), such as the repository's 500 real records,
           --file=data/usagov_sample.jsonl; without --file, records are
           synthesised (--seed).

Flags:
`

// runGen is `quorumq gen`.
func runGen(args []string, stdout, stderr io.Writer) int {
	kind, args, code, ok := pickKind("gen", gen.Streams, genUsage, envGen, args, stdout, stderr)
	if !ok {
		return code
	}
	cfg := gen.DefaultConfig()
	cfg.Stream = kind
	fs := flag.NewFlagSet("gen "+kind, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), genUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envGen); !ok {
		return code
	}
	cfg.Random.Given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.Random.Given[f.Name] = true })
	cfg.Out = stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(stderr, fs.Name(), gen.Generate(ctx, cfg, stderr), gen.ErrInvalid)
}
