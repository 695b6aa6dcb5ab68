package gen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

// Streams are the streams Generate knows.
var Streams = []string{"count", "random", "usagov"}

// ErrInvalid marks a configuration that cannot run; `quorumq gen` exits 2
// on it.
var ErrInvalid = errors.New("gen: invalid configuration")

// invalid marks err as bad input, keeping its message.
func invalid(err error) error { return cli.Mark(err, ErrInvalid) }

// Config is `quorumq gen`: a stream and where and how fast it goes. Start
// from DefaultConfig.
type Config struct {
	// Stream is one of Streams.
	Stream string
	// SendConfig is where and how fast the messages go.
	SendConfig
	// Seed seeds the random and synthesised streams; 0 draws one from
	// Clock.
	Seed uint64
	// Start is count's first number.
	Start int64
	// Random is random's distribution and parameters.
	Random RandomParams
	// File is the JSON-lines file usagov replays; "" synthesises records.
	File string
	// SkipHeartbeats leaves usagov's {"_heartbeat_": T} records out.
	SkipHeartbeats bool
}

// RandomParams are the flags of the random stream. A parameter keeps its
// distribution's default (RandomDefaults) unless its name is in Given.
type RandomParams struct {
	Dist                                           string
	Mean, StdDev, Variance, Min, Max, Lambda, S, V float64
	IMax                                           uint64
	// Secret draws the parameters from the seed and reveals them only at
	// exit; SecretFile, when set, receives them at start.
	Secret     bool
	SecretFile string
	// Given names the parameters set explicitly (flag names: mean, stddev,
	// variance, min, max, lambda, s, v, imax).
	Given map[string]bool
}

// paramNames are RandomParams' parameter flags.
var paramNames = []string{"mean", "stddev", "variance", "min", "max", "lambda", "s", "v", "imax"}

// DefaultConfig returns the defaults: count from 1 at full speed with
// DefaultSendConfig, a normal distribution for random, replay at real
// time for usagov. To is left to the caller.
func DefaultConfig() Config {
	normal, _ := RandomDefaults("normal")
	return Config{
		Stream:     "count",
		SendConfig: DefaultSendConfig(),
		Start:      1,
		Random: RandomParams{
			Dist: normal.Dist, Mean: normal.Mean, StdDev: normal.StdDev, Variance: normal.StdDev * normal.StdDev,
			Min: normal.Min, Max: normal.Max, Lambda: normal.Lambda, S: normal.S, V: normal.V, IMax: normal.IMax,
		},
	}
}

// RegisterFlags defines the flags of c.Stream on fs, writing into c, whose
// values are the flags' defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.To, "to", c.To, `target URL ending in /pub, /put or /mput (with topic= or queue=), or "-" for stdout`)
	fs.Int64Var(&c.N, "n", c.N, "messages to send (0: all of a file, else forever)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "messages per second (0: as fast as possible)")
	fs.IntVar(&c.Batch, "batch", c.Batch, "most messages per /pub or /mput request")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "requests in flight (default 1 for /pub and /mput, 8 for /put)")
	fs.IntVar(&c.Retries, "retries", c.Retries, "retries of a failed request (-1: none)")
	fs.DurationVar(&c.Progress, "progress", c.Progress, "interval of the progress line on stderr (0: only at the end)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed (0: a random one)")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
	switch c.Stream {
	case "count":
		fs.Int64Var(&c.Start, "start", c.Start, "first number")
	case "random":
		c.Random.register(fs)
	case "usagov":
		fs.StringVar(&c.File, "file", c.File, "JSON-lines file of 1.usa.gov records to replay (default: synthesise records)")
		fs.Float64Var(&c.Speed, "speed", c.Speed, "replay pace relative to the records' timestamps: 1 real time, 10 ten times faster, 0 as fast as possible")
		fs.BoolVar(&c.SkipHeartbeats, "skip-heartbeats", c.SkipHeartbeats, `leave out the {"_heartbeat_": T} records`)
	}
}

func (r *RandomParams) register(fs *flag.FlagSet) {
	fs.StringVar(&r.Dist, "dist", r.Dist, "distribution: "+strings.Join(Distributions, ", "))
	fs.Float64Var(&r.Mean, "mean", r.Mean, "normal mean; lognormal: mean of log x")
	fs.Float64Var(&r.StdDev, "stddev", r.StdDev, "normal standard deviation; lognormal: of log x")
	fs.Float64Var(&r.Variance, "variance", r.Variance, "normal variance (instead of --stddev, as random_to_pubsub.py)")
	fs.Float64Var(&r.Min, "min", r.Min, "uniform and ints: lower bound (default 0)")
	fs.Float64Var(&r.Max, "max", r.Max, "uniform: upper bound, exclusive; ints: inclusive, 9 unless given")
	fs.Float64Var(&r.Lambda, "lambda", r.Lambda, "exponential rate, poisson mean")
	fs.Float64Var(&r.S, "s", r.S, "zipf exponent (> 1)")
	fs.Float64Var(&r.V, "v", r.V, "zipf offset (>= 1)")
	fs.Uint64Var(&r.IMax, "imax", r.IMax, "zipf largest value")
	fs.BoolVar(&r.Secret, "secret", r.Secret, "draw the parameters from --seed and reveal them only at exit")
	fs.StringVar(&r.SecretFile, "secret-file", r.SecretFile, "also write the secret parameters to this file at start")
}

// config is the RandomConfig of the distribution's defaults and the given
// parameters.
func (r RandomParams) config(seed uint64) (RandomConfig, error) {
	c, err := RandomDefaults(r.Dist)
	if err != nil {
		return c, err
	}
	c.Secret, c.Seed = r.Secret, seed
	set := map[string]func(){
		"mean": func() { c.Mean = r.Mean }, "stddev": func() { c.StdDev = r.StdDev },
		"variance": func() { c.StdDev = math.Sqrt(r.Variance) }, "min": func() { c.Min = r.Min },
		"max": func() { c.Max = r.Max }, "lambda": func() { c.Lambda = r.Lambda },
		"s": func() { c.S = r.S }, "v": func() { c.V = r.V }, "imax": func() { c.IMax = r.IMax },
	}
	var errs []string
	given := 0
	for _, name := range paramNames {
		if r.Given[name] {
			given++
			set[name]()
		}
	}
	if r.Given["variance"] && r.Variance < 0 {
		errs = append(errs, fmt.Sprintf("--variance=%v is negative", r.Variance))
	}
	if r.Given["stddev"] && r.Given["variance"] {
		errs = append(errs, "give --stddev or --variance, not both")
	}
	if r.Secret && given > 0 {
		errs = append(errs, "--secret draws the parameters itself: give no parameter flags")
	}
	if len(errs) > 0 {
		return c, errors.New(strings.Join(errs, "; "))
	}
	return c, nil
}

// SampleFile is where the repository keeps a sample of real 1.usa.gov
// records (the first 500 of a 2012 recording), relative to its root.
const SampleFile = "data/usagov_sample.jsonl"

// Generate builds cfg's stream and sends it (see Run). It writes what it
// does to stderr: the stream's parameters (a secret distribution's only at
// the end), progress and the final counts. The error wraps ErrInvalid when
// cfg cannot run, ErrFailed when messages failed.
func Generate(ctx context.Context, cfg Config, stderr io.Writer) error {
	cfg.Stderr = stderr
	if !slices.Contains(Streams, cfg.Stream) {
		return invalid(fmt.Errorf("unknown stream %q: want count, random or usagov", cfg.Stream))
	}
	if cfg.To == "" {
		return invalid(errors.New("--to is required (e.g. --to=http://127.0.0.1:8080/pub)"))
	}
	if _, err := cfg.validate(); err != nil {
		return err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(cfg.Clock.Now().UnixNano())
	}
	var (
		src    Source
		random *Random
		replay *Replay
	)
	switch cfg.Stream {
	case "count":
		src = NewCount(cfg.Start)
	case "random":
		rc, err := cfg.Random.config(seed)
		if err != nil {
			return invalid(err)
		}
		if random, err = NewRandom(rc); err != nil {
			return invalid(err)
		}
		if cfg.Random.SecretFile != "" {
			if err := os.WriteFile(cfg.Random.SecretFile, []byte(random.Secret()+"\n"), 0o600); err != nil {
				return err
			}
		}
		if !rc.Secret {
			fmt.Fprintf(stderr, "gen: %s (seed %d)\n", random.Secret(), seed)
		} else {
			fmt.Fprintf(stderr, "gen: dist=%s with secret parameters; they are revealed at exit\n", rc.Dist)
		}
		src = random
	case "usagov":
		if cfg.File == "" {
			fmt.Fprintf(stderr, "gen: synthesising 1.usa.gov records (seed %d)\n", seed)
			src = NewSynth(seed, cfg.SkipHeartbeats)
			break
		}
		f, err := os.Open(cfg.File)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w (the repository ships 500 real records in %s)", err, SampleFile)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		replay = NewReplay(f, cfg.SkipHeartbeats)
		src = replay
	}
	_, err := Run(ctx, cfg.SendConfig, src)
	if random != nil && random.Config().Secret {
		fmt.Fprintf(stderr, "gen: the secret was %s\n", random.Secret())
	}
	if replay != nil && replay.Err() != nil {
		return fmt.Errorf("reading %s: %w", cfg.File, replay.Err())
	}
	return err
}
