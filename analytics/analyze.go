package analytics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/metricsserver"
	"github.com/quorumq/quorumq/online"
	"github.com/quorumq/quorumq/reader"
)

// Kinds are the aggregates of `quorumq analyze`.
var Kinds = []string{"moments", "histogram", "graph"}

// Defaults of Aggregate and AnalyzeConfig.
const (
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
	DefaultQueueAddr   = "http://127.0.0.1:8081"
	DefaultGraphPrefix = "graph:"
)

// ErrInvalid marks a configuration that cannot run; `quorumq analyze`
// exits 2 on it.
var ErrInvalid = errors.New("analytics: invalid configuration")

// ErrFailed is Analyze's error when the reader failed (the failure is
// logged) or gave up on messages.
var ErrFailed = errors.New("analytics: the run failed")

// invalid marks err as bad input, keeping its message.
func invalid(err error) error { return cli.Mark(err, ErrInvalid) }

// Aggregate names an aggregate in Redis.
type Aggregate struct {
	// Kind is one of Kinds.
	Kind string
	// RedisURL is redis://[:password@]host:port/db or host:port.
	RedisURL string
	// Key is the hash of moments and histogram; Prefix starts the node
	// keys of graph.
	Key, Prefix string
}

// DefaultAggregate returns the defaults of kind: the local Redis, the key
// named after the kind, the prefix "graph:".
func DefaultAggregate(kind string) Aggregate {
	a := Aggregate{Kind: kind, RedisURL: DefaultRedisURL}
	if kind == "graph" {
		a.Prefix = DefaultGraphPrefix
	} else {
		a.Key = kind
	}
	return a
}

func (a *Aggregate) register(fs *flag.FlagSet) {
	fs.StringVar(&a.RedisURL, "redis", a.RedisURL, "Redis URL (redis://[:password@]host:port/db) or host:port")
	switch a.Kind {
	case "moments":
		fs.StringVar(&a.Key, "key", a.Key, "hash holding n, mean, m2, m3, m4")
	case "histogram":
		fs.StringVar(&a.Key, "key", a.Key, "hash holding the counts (layout in KEY:layout)")
	case "graph":
		fs.StringVar(&a.Prefix, "prefix", a.Prefix, "prefix of the node keys (one sorted set per node)")
	}
}

func (a Aggregate) validate() error {
	switch {
	case a.Kind != "moments" && a.Kind != "histogram" && a.Kind != "graph":
		return invalid(fmt.Errorf("unknown aggregate %q: want moments, histogram or graph", a.Kind))
	case a.Kind == "graph" && a.Prefix == "":
		return invalid(errors.New("--prefix must not be empty (it would make every key a node)"))
	case a.Kind != "graph" && a.Key == "":
		return invalid(errors.New("--key must not be empty"))
	}
	return nil
}

// client returns a client of a.RedisURL whose internal messages go to log
// at debug level.
func (a Aggregate) client(log *slog.Logger) (*redis.Client, error) {
	u := a.RedisURL
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		return nil, invalid(fmt.Errorf("--redis=%q: %v", a.RedisURL, err))
	}
	redis.SetLogger(redisLogger{log})
	return redis.NewClient(opts), nil
}

// redisLogger sends go-redis's internal messages (such as failed dials,
// which the caller also sees as errors) to the debug log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}

// AnalyzeConfig is `quorumq analyze moments|histogram|graph`: a reader
// that merges a queue into an aggregate. Start from DefaultAnalyzeConfig.
type AnalyzeConfig struct {
	Aggregate
	// ReaderConfig is the reader; Analyze sets its Redis client from
	// Aggregate.RedisURL.
	ReaderConfig
	// Naive (moments) merges with the tutorial's racy read-modify-write
	// and never dedups.
	Naive bool
	// Layout (histogram) is the bins.
	Layout HistogramLayout
	// Undirected (graph) also links each target back to its referrer.
	Undirected bool
	// JSON prints the final counters as JSON on stdout.
	JSON bool
	// MetricsAddr, when set, is where Analyze serves the reader's
	// metrics at /metrics while it runs (in a registry of its own, which
	// replaces ReaderConfig.Registerer).
	MetricsAddr string
}

// DefaultAnalyzeConfig returns the defaults of kind: DefaultAggregate,
// DefaultReaderConfig on the local node, and 10 bins of 0.1 from 0.
func DefaultAnalyzeConfig(kind string) AnalyzeConfig {
	rc := DefaultReaderConfig()
	rc.Addrs = []string{DefaultQueueAddr}
	return AnalyzeConfig{
		Aggregate:    DefaultAggregate(kind),
		ReaderConfig: rc,
		Layout:       HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 0.1, NumBins: 10}},
	}
}

// RegisterFlags defines the flags of c.Kind on fs, writing into c, whose
// values are the flags' defaults.
func (c *AnalyzeConfig) RegisterFlags(fs *flag.FlagSet) {
	c.Aggregate.register(fs)
	fs.Func("queue-addr", fmt.Sprintf("queue-port URL of one or more nodes, comma-separated (the others are discovered) (default %q)", strings.Join(c.Addrs, ",")),
		func(v string) error { c.Addrs = cli.CommaList(v); return nil })
	fs.StringVar(&c.Queue, "queue", c.Queue, `queue to read (default: the queue "default")`)
	fs.IntVar(&c.Batch, "batch", c.Batch, "most messages merged into Redis at once")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "messages in flight (leased and waiting for their batch)")
	fs.DurationVar(&c.Flush, "flush-interval", c.Flush, "longest wait for a batch to fill before it is merged")
	fs.DurationVar(&c.Lease, "lease", c.Lease, "lease of each message; an unacked message comes back after it")
	fs.BoolVar(&c.ExitWhenEmpty, "exit-when-empty", c.ExitWhenEmpty, "exit 0 once the queue has had nothing ready, leased or deferred for --empty-for")
	fs.DurationVar(&c.EmptyFor, "empty-for", c.EmptyFor, "how long the queue must stay empty for --exit-when-empty")
	fs.DurationVar(&c.DedupWindow, "dedup-window", c.DedupWindow, "how long merged message ids are remembered so that redeliveries are not counted twice (0: off, at least once)")
	fs.IntVar(&c.MaxTries, "max-tries", c.MaxTries, "attempts of a message whose merge keeps failing before it is given up")
	fs.DurationVar(&c.RequeueDelay, "requeue-delay", c.RequeueDelay, "retry delay after a failed merge (times the attempt number)")
	fs.StringVar(&c.DeadLetter, "dead-letter", c.DeadLetter, "queue for messages given up on (default: logged and dropped)")
	fs.Func("balance", fmt.Sprintf("leader (send requests to the leader) or spread (round robin over the nodes) (default %q)", c.Balance),
		func(v string) (err error) { c.Balance, err = reader.ParseBalance(v); return err })
	fs.BoolVar(&c.DisableDiscovery, "no-discovery", c.DisableDiscovery, "use only --queue-addr, not the members the cluster reports")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
	fs.DurationVar(&c.ProgressInterval, "progress-interval", c.ProgressInterval, "interval of the reader's progress log line (0: never)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print the final counters as JSON on stdout")
	metricsserver.RegisterFlag(fs, &c.MetricsAddr)
	switch c.Kind {
	case "moments":
		fs.BoolVar(&c.Naive, "naive", c.Naive, "merge with a racy read-modify-write (the tutorial's Mr. T and Bozo race); never dedups")
	case "histogram":
		fs.BoolVar(&c.Layout.Int, "int", c.Layout.Int, "one bin per integer value (messages must be integers)")
		fs.Float64Var(&c.Layout.Float.Min, "min", c.Layout.Float.Min, "lower edge of the first bin")
		fs.Float64Var(&c.Layout.Float.Width, "width", c.Layout.Float.Width, "bin width")
		fs.IntVar(&c.Layout.Float.NumBins, "bins", c.Layout.Float.NumBins, "number of bins (values outside count as underflow or overflow)")
	case "graph":
		fs.BoolVar(&c.Undirected, "undirected", c.Undirected, "also link each target back to its referrer")
	}
}

// layout is the histogram's layout: an integer one has no float bins.
func (c AnalyzeConfig) layout() HistogramLayout {
	if c.Layout.Int {
		return HistogramLayout{Int: true}
	}
	return c.Layout
}

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c AnalyzeConfig) Validate() error {
	if err := c.Aggregate.validate(); err != nil {
		return err
	}
	if c.Naive && c.DedupWindow > 0 && c.DedupWindow != DefaultDedupWindow {
		return invalid(errors.New("--naive never dedups: drop --dedup-window"))
	}
	if c.Kind == "histogram" {
		if err := c.layout().Validate(); err != nil {
			return invalid(err)
		}
	}
	return c.ReaderConfig.Validate()
}

// Analyze runs the reader c describes until ctx ends (or the queue stays
// empty, with ExitWhenEmpty), then writes its counters to stderr (and as
// JSON to stdout with c.JSON). The error wraps ErrInvalid for a bad c,
// ErrFailed when the reader failed or gave up on messages.
func Analyze(ctx context.Context, c AnalyzeConfig, stdout, stderr io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	name := "analyze " + c.Kind
	rdb, err := c.client(c.Logger.With("component", "redis"))
	if err != nil {
		return err
	}
	defer rdb.Close()
	if c.MetricsAddr != "" {
		reg := metricsserver.NewRegistry()
		c.Registerer = reg
		stopMetrics, err := metricsserver.Serve(c.MetricsAddr, reg, c.Logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	c.Redis = rdb
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("Redis at %s: %v", c.RedisURL, err)
	}

	var st ReaderStats
	switch c.Kind {
	case "moments":
		st, err = RunMoments(ctx, c.ReaderConfig, MomentsOptions{Key: c.Key, Naive: c.Naive})
	case "histogram":
		h, herr := NewHistogram(rdb, c.Key, c.layout())
		if herr != nil {
			return invalid(herr)
		}
		st, err = RunHistogram(ctx, c.ReaderConfig, h)
	case "graph":
		st, err = RunGraph(ctx, c.ReaderConfig, NewGraph(rdb, c.Prefix, c.Undirected))
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, st)
	if c.JSON {
		WriteJSON(stdout, st)
	}
	if err != nil {
		c.Logger.Error(name+" failed", "err", err)
		return fmt.Errorf("%w: %v", ErrFailed, err)
	}
	if st.Reader.GivenUp > 0 || st.MergeErrors > 0 {
		return fmt.Errorf("%w: %d messages given up, %d failed merges", ErrFailed, st.Reader.GivenUp, st.MergeErrors)
	}
	return nil
}

// terminalColumns is $COLUMNS, else 80.
func terminalColumns() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
