package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/internal/cli"
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
           possible); without --file, records are synthesised (--seed).

Flags:
`

// runGen is `quorumq gen`.
func runGen(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && cli.IsHelp(args[0]) {
			fmt.Fprint(stdout, genUsage)
			return 0
		}
		fmt.Fprint(stderr, genUsage)
		return 2
	}
	kind, args := args[0], args[1:]
	fs := flag.NewFlagSet("gen "+kind, flag.ContinueOnError)
	var cfg gen.Config
	var progress time.Duration
	fs.StringVar(&cfg.To, "to", "", `target URL ending in /pub, /put or /mput (with topic= or queue=), or "-" for stdout`)
	fs.Int64Var(&cfg.N, "n", 0, "messages to send (0: all of a file, else forever)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "messages per second (0: as fast as possible)")
	fs.IntVar(&cfg.Batch, "batch", gen.DefaultBatch, "most messages per /pub or /mput request")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "requests in flight (default 1 for /pub and /mput, 8 for /put)")
	fs.IntVar(&cfg.Retries, "retries", gen.DefaultRetries, "retries of a failed request (-1: none)")
	fs.DurationVar(&progress, "progress", gen.DefaultProgress, "interval of the progress line on stderr (0: only at the end)")
	var seed uint64
	fs.Uint64Var(&seed, "seed", 0, "random seed (0: a random one)")

	var start int64
	var r randomFlags
	var file string
	var speed float64
	var skipHeartbeats bool
	switch kind {
	case "count":
		fs.Int64Var(&start, "start", 1, "first number")
	case "random":
		r.register(fs)
	case "usagov":
		fs.StringVar(&file, "file", "", "JSON-lines file of 1.usa.gov records to replay (default: synthesise records)")
		fs.Float64Var(&speed, "speed", 1, "replay pace relative to the records' timestamps: 1 real time, 10 ten times faster, 0 as fast as possible")
		fs.BoolVar(&skipHeartbeats, "skip-heartbeats", false, `leave out the {"_heartbeat_": T} records`)
	default:
		fmt.Fprintf(stderr, "quorumq gen: unknown stream %q: want count, random or usagov\n\n%s", kind, genUsage)
		return 2
	}
	fs.Usage = func() {
		io.WriteString(fs.Output(), genUsage)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stderr, envGen); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq gen %s: %v\n", kind, err)
		return 2
	}
	if cfg.To == "" {
		fmt.Fprintf(stderr, "quorumq gen %s: --to is required (e.g. --to=http://127.0.0.1:8080/pub)\n", kind)
		return 2
	}
	if _, err := gen.ModeOf(cfg.To); err != nil {
		fmt.Fprintf(stderr, "quorumq gen %s: %v\n", kind, err)
		return 2
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	cfg.Progress = progress
	if progress == 0 {
		cfg.Progress = -1
	}
	cfg.Speed = speed
	cfg.Stderr = stderr
	cfg.Out = stdout

	var src gen.Source
	var random *gen.Random
	var replay *gen.Replay
	switch kind {
	case "count":
		src = gen.NewCount(start)
	case "random":
		rc, err := r.config(fs)
		if err != nil {
			fmt.Fprintf(stderr, "quorumq gen random: %v\n", err)
			return 2
		}
		rc.Seed = seed
		if random, err = gen.NewRandom(rc); err != nil {
			fmt.Fprintf(stderr, "quorumq gen random: %v\n", err)
			return 2
		}
		if r.secretFile != "" {
			if err := os.WriteFile(r.secretFile, []byte(random.Secret()+"\n"), 0o600); err != nil {
				fmt.Fprintf(stderr, "quorumq gen random: %v\n", err)
				return 1
			}
		}
		if !rc.Secret {
			fmt.Fprintf(stderr, "gen: %s (seed %d)\n", random.Secret(), seed)
		} else {
			fmt.Fprintf(stderr, "gen: dist=%s with secret parameters; they are revealed at exit\n", rc.Dist)
		}
		src = random
	case "usagov":
		if speed < 0 {
			fmt.Fprintln(stderr, "quorumq gen usagov: --speed must not be negative")
			return 2
		}
		if file == "" {
			fmt.Fprintf(stderr, "gen: synthesising 1.usa.gov records (seed %d)\n", seed)
			src = gen.NewSynth(seed, skipHeartbeats)
			break
		}
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(stderr, "quorumq gen usagov: %v\n", err)
			return 1
		}
		defer f.Close()
		replay = gen.NewReplay(f, skipHeartbeats)
		src = replay
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := gen.Run(ctx, cfg, src)
	if random != nil && random.Config().Secret {
		fmt.Fprintf(stderr, "gen: the secret was %s\n", random.Secret())
	}
	if replay != nil && replay.Err() != nil {
		fmt.Fprintf(stderr, "quorumq gen usagov: reading %s: %v\n", file, replay.Err())
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "quorumq gen %s: %v\n", kind, err)
		return 1
	}
	return 0
}

// randomFlags are the flags of gen random; parameters not given keep the
// distribution's defaults.
type randomFlags struct {
	dist                                           string
	mean, stddev, variance, min, max, lambda, s, v float64
	imax                                           uint64
	secret                                         bool
	secretFile                                     string
}

func (r *randomFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.dist, "dist", "normal", "distribution: "+strings.Join(gen.Distributions, ", "))
	fs.Float64Var(&r.mean, "mean", 0, "normal mean; lognormal: mean of log x")
	fs.Float64Var(&r.stddev, "stddev", 1, "normal standard deviation; lognormal: of log x")
	fs.Float64Var(&r.variance, "variance", 1, "normal variance (instead of --stddev, as random_to_pubsub.py)")
	fs.Float64Var(&r.min, "min", 0, "uniform and ints: lower bound (default 0)")
	fs.Float64Var(&r.max, "max", 1, "uniform: upper bound, exclusive (default 1); ints: inclusive (default 9)")
	fs.Float64Var(&r.lambda, "lambda", 1, "exponential rate, poisson mean")
	fs.Float64Var(&r.s, "s", 2, "zipf exponent (> 1)")
	fs.Float64Var(&r.v, "v", 1, "zipf offset (>= 1)")
	fs.Uint64Var(&r.imax, "imax", 100, "zipf largest value")
	fs.BoolVar(&r.secret, "secret", false, "draw the parameters from --seed and reveal them only at exit")
	fs.StringVar(&r.secretFile, "secret-file", "", "also write the secret parameters to this file at start")
}

// config builds the RandomConfig from the distribution's defaults and the
// flags that were given.
func (r *randomFlags) config(fs *flag.FlagSet) (gen.RandomConfig, error) {
	c, err := gen.RandomDefaults(r.dist)
	if err != nil {
		return c, err
	}
	c.Secret = r.secret
	var errs []error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "mean":
			c.Mean = r.mean
		case "stddev":
			c.StdDev = r.stddev
		case "variance":
			if r.variance < 0 {
				errs = append(errs, fmt.Errorf("--variance=%v is negative", r.variance))
			}
			c.StdDev = math.Sqrt(r.variance)
		case "min":
			c.Min = r.min
		case "max":
			c.Max = r.max
		case "lambda":
			c.Lambda = r.lambda
		case "s":
			c.S = r.s
		case "v":
			c.V = r.v
		case "imax":
			c.IMax = r.imax
		}
	})
	if cli.Given(fs, "stddev") && cli.Given(fs, "variance") {
		errs = append(errs, errors.New("give --stddev or --variance, not both"))
	}
	if r.secret && (cli.Given(fs, "mean") || cli.Given(fs, "stddev") || cli.Given(fs, "variance") || cli.Given(fs, "min") || cli.Given(fs, "max") ||
		cli.Given(fs, "lambda") || cli.Given(fs, "s") || cli.Given(fs, "v") || cli.Given(fs, "imax")) {
		errs = append(errs, errors.New("--secret draws the parameters itself: give no parameter flags"))
	}
	return c, errors.Join(errs...)
}
