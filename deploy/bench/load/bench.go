package load

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

// DefaultConfig returns the defaults of a quorumq run: put mode against
// the local node's leader, 64 workers, 100-byte messages, the mode's batch
// (Batch 0), 10 s measured after 1 s of warm-up, closed loop, queue and
// topic "bench", 30 s leases and request bound, one subscriber per node.
func DefaultConfig() Config {
	return Config{
		Mode:    ModePut,
		Targets: []string{"http://127.0.0.1:8081"},
		Queue:   "bench",
		Topic:   "bench",
		Size:    100,
		Lease:   30 * time.Second,
		Timeout: 30 * time.Second,
		RunConfig: RunConfig{
			Concurrency: 64,
			Duration:    10 * time.Second,
			Warmup:      time.Second,
		},
	}
}

// ErrInvalid marks a Config or BenchConfig that validation refuses.
var ErrInvalid = errors.New("invalid bench configuration")

// invalid is an ErrInvalid naming the problem.
func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c RunConfig) Validate() error {
	switch {
	case c.Concurrency < 1:
		return invalid("concurrency=%d: want at least 1", c.Concurrency)
	case c.Duration < 0 || c.Count < 0 || (c.Duration == 0 && c.Count == 0):
		return invalid("duration=%v count=%d: want a positive duration or count", c.Duration, c.Count)
	case c.Warmup < 0:
		return invalid("warmup=%v: must not be negative", c.Warmup)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return invalid("rate=%v: want a finite rate >= 0", c.Rate)
	}
	return nil
}

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c Config) Validate() error {
	switch {
	case !validMode(c.Mode):
		return invalid("unknown mode %q (want one of %s)", c.Mode, strings.Join(Modes, ", "))
	case len(c.Targets) == 0:
		return invalid("no target")
	case c.Queue == "" || c.Topic == "":
		return invalid("queue and topic must not be empty")
	case c.Size < 1:
		return invalid("size=%d: want at least 1 byte", c.Size)
	case c.Batch < 0:
		return invalid("batch=%d: must not be negative (0: the mode's batch)", c.Batch)
	case c.Lease <= 0:
		return invalid("lease=%v: must be positive", c.Lease)
	case c.Timeout <= 0:
		return invalid("timeout=%v: must be positive", c.Timeout)
	case c.Prefill < 0:
		return invalid("prefill=%d: must not be negative", c.Prefill)
	case c.Subscribers < 0:
		return invalid("subscribers=%d: must not be negative (0: one per node)", c.Subscribers)
	}
	for _, t := range c.Targets {
		if _, err := hostPort(t, c.TLS != nil); err != nil {
			return invalid("%v", err)
		}
	}
	return c.RunConfig.Validate()
}

func validMode(m string) bool {
	for _, x := range Modes {
		if m == x {
			return true
		}
	}
	return false
}

// AutoPrefill is BenchConfig.Prefill's value for "enough for the run".
const AutoPrefill = -1

// BenchConfig is `quorumq bench`: a run and how its report is printed.
type BenchConfig struct {
	// Config is the run; its Prefill may be AutoPrefill: Count×Batch
	// messages before a counted run, else 200000.
	Config
	// JSON prints the report as one JSON object instead of text.
	JSON bool
	// Quiet leaves out the live progress line on stderr.
	Quiet bool
}

// DefaultBenchConfig returns DefaultConfig with an automatic prefill,
// text output and a progress line.
func DefaultBenchConfig() BenchConfig {
	c := BenchConfig{Config: DefaultConfig()}
	c.Prefill = AutoPrefill
	return c
}

// RegisterFlags defines the bench flags on fs, writing into c, whose
// values are the flags' defaults.
func (c *BenchConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Mode, "mode", c.Mode, strings.Join(Modes[:len(Modes)-1], ", ")+" or "+Modes[len(Modes)-1])
	fs.Func("targets", fmt.Sprintf("comma-separated queue-port URLs of the nodes (default %q)", strings.Join(c.Targets, ",")), func(v string) error {
		c.Targets = cli.CommaList(v)
		return nil
	})
	fs.BoolVar(&c.Spread, "spread", c.Spread, "spread the workers over --targets instead of sending everything to the leader")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "workers, each with its own kept-alive connection")
	fs.IntVar(&c.Size, "size", c.Size, "message size in bytes")
	fs.IntVar(&c.Batch, "batch", c.Batch, "messages per request (0: 100 for mput and mget, else 1)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to measure (after --warmup)")
	fs.Int64Var(&c.Count, "count", c.Count, "stop after this many requests instead (0: use --duration)")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "run this long before measuring")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "offer this many requests/s in total (open loop); 0: as fast as answered")
	fs.StringVar(&c.Queue, "queue", c.Queue, "queue name")
	fs.StringVar(&c.Topic, "topic", c.Topic, "pubsub topic")
	fs.DurationVar(&c.Lease, "lease", c.Lease, "lease of the lease mode")
	fs.IntVar(&c.Prefill, "prefill", c.Prefill, "messages to put before a get, mget or lease run (-1: enough for --count, else 200000)")
	fs.IntVar(&c.Subscribers, "subscribers", c.Subscribers, "pubsub subscribers, spread over every node (0: one per node)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound on each request")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
	fs.BoolVar(&c.JSON, "json", c.JSON, "print one JSON object instead of text")
	fs.BoolVar(&c.Quiet, "quiet", c.Quiet, "no progress line on stderr")
}

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c BenchConfig) Validate() error {
	if c.Prefill == AutoPrefill {
		c.Prefill = 0
	}
	return c.Config.Validate()
}

// run is the Config c describes: the mode's batch and an automatic
// prefill resolved, the progress line on stderr unless Quiet.
func (c BenchConfig) run(stderr io.Writer) Config {
	r := c.Config
	if r.Batch == 0 {
		r.Batch = DefaultBatch(r.Mode)
	}
	if r.Prefill == AutoPrefill {
		r.Prefill = 200000
		if r.Count > 0 {
			r.Prefill = int(r.Count) * r.Batch
		}
	}
	if !c.Quiet && cli.IsTerminal(stderr) {
		r.Progress = stderr // "\r" and escape codes would litter a file or pipe
	}
	return r
}

// ErrNothingMeasured is Bench's error when no request succeeded.
var ErrNothingMeasured = errors.New("no request succeeded")

// Bench runs cfg and prints its report to stdout (text, or JSON with
// cfg.JSON), the progress line to stderr. It returns an error wrapping
// ErrInvalid for a bad cfg, ErrNothingMeasured after a run in which every
// request failed, or the run's error.
func Bench(ctx context.Context, cfg BenchConfig, stdout, stderr io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	rep, err := RunQuorumq(ctx, cfg.run(stderr))
	if err != nil {
		return err
	}
	if cfg.JSON {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		rep.WriteText(stdout)
	}
	if rep.Ops == 0 || rep.Errors == rep.Ops {
		return ErrNothingMeasured
	}
	return nil
}
