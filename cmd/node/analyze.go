package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/online"
	"github.com/quorumq/quorumq/reader"
)

const analyzeUsage = `Usage:
  quorumq analyze moments|histogram|graph --queue-addr=URL[,URL...] --queue=NAME --redis=URL [flags]
  quorumq analyze show moments|histogram|graph --redis=URL [flags]
  quorumq analyze reset moments|histogram|graph --redis=URL [--key=K|--prefix=P]

Readers that feed the tutorial's aggregates in Redis; run as many as you
like, on any nodes, into the same key:
  moments    numbers, one per message: n, mean, M2, M3, M4 in the hash --key,
             merged atomically by a Lua script (--naive: the racy
             read-modify-write of the tutorial, to watch updates get lost)
  histogram  numbers: counts per bin in the hash --key (HINCRBY); --int for
             one bin per integer, else --bins bins of --width from --min
  graph      1.usa.gov click records: ZINCRBY <prefix><r> 1 <u> (an empty r
             is "direct"; --undirected also counts <u> -> <r>)
A message is acked only after its batch is merged; message ids merged in
the last --dedup-window are not merged again, so a redelivery is counted
once (--dedup-window=0: plain merges, at least once).

  show       prints the current result (--json for JSON): moments and their
             statistics; the histogram as a bar chart fitted to --cols; the
             graph's top edges, or with --node its strongest links (--top),
             links by weight (--min-score/--max-score) and --member's rank
  reset      deletes an aggregate and its remembered message ids

Flags:
`

// runAnalyze is `quorumq analyze`.
func runAnalyze(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && cli.IsHelp(args[0]) {
			fmt.Fprint(stdout, analyzeUsage)
			return 0
		}
		fmt.Fprint(stderr, analyzeUsage)
		return 2
	}
	switch args[0] {
	case "moments", "histogram", "graph":
		return runAnalyzeReader(args[0], args[1:], stdout, stderr)
	case "show", "reset":
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			fmt.Fprintf(stderr, "quorumq analyze %s: want moments, histogram or graph\n", args[0])
			return 2
		}
		return runAnalyzeStore(args[0], args[1], args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "quorumq analyze: unknown command %q\n\n%s", args[0], analyzeUsage)
	return 2
}

// Defaults of the analyze flags.
const (
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
	defaultQueueAddr   = "http://127.0.0.1:8081"
	defaultMomentsKey  = "moments"
	defaultHistKey     = "histogram"
	defaultGraphPrefix = "graph:"
)

// aggregateFlags are the flags naming an aggregate.
type aggregateFlags struct {
	redisURL string
	key      string // moments and histogram
	prefix   string // graph
}

func (a *aggregateFlags) register(fs *flag.FlagSet, kind string) {
	fs.StringVar(&a.redisURL, "redis", defaultRedisURL, "Redis URL (redis://[:password@]host:port/db) or host:port")
	switch kind {
	case "moments":
		fs.StringVar(&a.key, "key", defaultMomentsKey, "hash holding n, mean, m2, m3, m4")
	case "histogram":
		fs.StringVar(&a.key, "key", defaultHistKey, "hash holding the counts (layout in KEY:layout)")
	case "graph":
		fs.StringVar(&a.prefix, "prefix", defaultGraphPrefix, "prefix of the node keys (one sorted set per node)")
	}
}

func (a *aggregateFlags) client() (*redis.Client, error) {
	u := a.redisURL
	if !strings.Contains(u, "://") {
		u = "redis://" + u
	}
	opts, err := redis.ParseURL(u)
	if err != nil {
		return nil, fmt.Errorf("--redis=%q: %v", a.redisURL, err)
	}
	return redis.NewClient(opts), nil
}

func (a *aggregateFlags) check(kind string) error {
	if kind == "graph" && a.prefix == "" {
		return errors.New("--prefix must not be empty (it would make every key a node)")
	}
	if kind != "graph" && a.key == "" {
		return errors.New("--key must not be empty")
	}
	return nil
}

func runAnalyzeReader(kind string, args []string, stdout, stderr io.Writer) int {
	name := "analyze " + kind
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var agg aggregateFlags
	agg.register(fs, kind)
	var (
		addrs, queue, balance      string
		logFlags                   cli.LogFlags
		cfg                        analytics.ReaderConfig
		noDiscovery, jsonOut       bool
		progress                   time.Duration
		naive, intBins, undirected bool
		layout                     online.FloatLayout
	)
	fs.StringVar(&addrs, "queue-addr", defaultQueueAddr, "queue-port URL of one or more nodes, comma-separated (the others are discovered)")
	fs.StringVar(&queue, "queue", "", `queue to read (default: the queue "default")`)
	fs.IntVar(&cfg.Batch, "batch", analytics.DefaultBatch, "most messages merged into Redis at once")
	fs.IntVar(&cfg.Concurrency, "concurrency", analytics.DefaultConcurrency, "messages in flight (leased and waiting for their batch)")
	fs.DurationVar(&cfg.Flush, "flush-interval", analytics.DefaultFlush, "longest wait for a batch to fill before it is merged")
	fs.DurationVar(&cfg.Lease, "lease", reader.DefaultLease, "lease of each message; an unacked message comes back after it")
	fs.BoolVar(&cfg.ExitWhenEmpty, "exit-when-empty", false, "exit 0 once the queue has had nothing ready, leased or deferred for --empty-for")
	fs.DurationVar(&cfg.EmptyFor, "empty-for", analytics.DefaultEmptyFor, "how long the queue must stay empty for --exit-when-empty")
	fs.DurationVar(&cfg.DedupWindow, "dedup-window", analytics.DefaultDedupWindow, "how long merged message ids are remembered so that redeliveries are not counted twice (0: off, at least once)")
	fs.IntVar(&cfg.MaxTries, "max-tries", analytics.DefaultMaxTries, "attempts of a message whose merge keeps failing before it is given up")
	fs.DurationVar(&cfg.RequeueDelay, "requeue-delay", analytics.DefaultRequeueDelay, "retry delay after a failed merge (times the attempt number)")
	fs.StringVar(&cfg.DeadLetter, "dead-letter", "", "queue for messages given up on (default: logged and dropped)")
	fs.StringVar(&balance, "balance", "leader", "leader (send requests to the leader) or spread (round robin over the nodes)")
	fs.BoolVar(&noDiscovery, "no-discovery", false, "use only --queue-addr, not the members the cluster reports")
	fs.DurationVar(&progress, "progress-interval", 10*time.Second, "interval of the reader's progress log line (0: never)")
	fs.BoolVar(&jsonOut, "json", false, "print the final counters as JSON on stdout")
	logFlags.Register(fs)
	switch kind {
	case "moments":
		fs.BoolVar(&naive, "naive", false, "merge with a racy read-modify-write (the tutorial's Mr. T and Bozo race); never dedups")
	case "histogram":
		fs.BoolVar(&intBins, "int", false, "one bin per integer value (messages must be integers)")
		fs.Float64Var(&layout.Min, "min", 0, "lower edge of the first bin")
		fs.Float64Var(&layout.Width, "width", 0.1, "bin width")
		fs.IntVar(&layout.NumBins, "bins", 10, "number of bins (values outside count as underflow or overflow)")
	case "graph":
		fs.BoolVar(&undirected, "undirected", false, "also link each target back to its referrer")
	}
	fs.Usage = func() {
		io.WriteString(fs.Output(), analyzeUsage)
		fs.PrintDefaults()
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "quorumq %s: %s\n", name, fmt.Sprintf(format, a...))
		return code
	}
	if err := cli.Parse(fs, args, stderr, envAnalyze); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(2, "%v", err)
	}
	if err := agg.check(kind); err != nil {
		return fail(2, "%v", err)
	}
	var err error
	if cfg.Balance, err = reader.ParseBalance(balance); err != nil {
		return fail(2, "%v", err)
	}
	cfg.Addrs = cli.CommaList(addrs)
	cfg.Queue = queue
	cfg.DisableDiscovery = noDiscovery
	cfg.ProgressInterval = progress
	if progress <= 0 {
		cfg.ProgressInterval = -1
	}
	if naive && cli.Given(fs, "dedup-window") && cfg.DedupWindow > 0 {
		return fail(2, "--naive never dedups: drop --dedup-window")
	}
	hl := analytics.HistogramLayout{Int: intBins, Float: layout}
	if intBins {
		hl.Float = online.FloatLayout{}
	}
	if err := hl.Validate(); kind == "histogram" && err != nil {
		return fail(2, "%v", err)
	}
	logger, err := logFlags.Logger(stderr)
	if err != nil {
		return fail(2, "%v", err)
	}
	cfg.Logger = logger
	redis.SetLogger(redisLogger{logger.With("component", "redis")})
	rdb, err := agg.client()
	if err != nil {
		return fail(2, "%v", err)
	}
	defer rdb.Close()
	cfg.Redis = rdb

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = rdb.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fail(1, "Redis at %s: %v", agg.redisURL, err)
	}

	var st analytics.ReaderStats
	switch kind {
	case "moments":
		st, err = analytics.RunMoments(ctx, cfg, analytics.MomentsOptions{Key: agg.key, Naive: naive})
	case "histogram":
		h, herr := analytics.NewHistogram(rdb, agg.key, hl)
		if herr != nil {
			return fail(2, "%v", herr)
		}
		st, err = analytics.RunHistogram(ctx, cfg, h)
	case "graph":
		st, err = analytics.RunGraph(ctx, cfg, analytics.NewGraph(rdb, agg.prefix, undirected))
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, st)
	if jsonOut {
		analytics.WriteJSON(stdout, st)
	}
	if err != nil {
		logger.Error(name+" failed", "err", err)
		return 1
	}
	if st.Reader.GivenUp > 0 || st.MergeErrors > 0 {
		return 1
	}
	return 0
}

func runAnalyzeStore(verb, kind string, args []string, stdout, stderr io.Writer) int {
	name := "analyze " + verb + " " + kind
	switch kind {
	case "moments", "histogram", "graph":
	default:
		fmt.Fprintf(stderr, "quorumq analyze %s: unknown aggregate %q: want moments, histogram or graph\n", verb, kind)
		return 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var agg aggregateFlags
	agg.register(fs, kind)
	var (
		jsonOut bool
		cols    int
		q       analytics.GraphQuery
	)
	if verb == "show" {
		fs.BoolVar(&jsonOut, "json", false, "print JSON")
		switch kind {
		case "histogram":
			fs.IntVar(&cols, "cols", terminalColumns(), "width of the chart (default: $COLUMNS, else 80)")
		case "graph":
			fs.StringVar(&q.Node, "node", "", "show this node's links (default: the whole graph's top edges)")
			fs.IntVar(&q.Top, "top", 10, "number of links or edges")
			fs.StringVar(&q.Member, "member", "", "with --node: this neighbour's rank (ZREVRANK) and weight")
			fs.StringVar(&q.MinScore, "min-score", "", `with --node: links weighing at least this (ZRANGEBYSCORE; "(5" for more than 5)`)
			fs.StringVar(&q.MaxScore, "max-score", "", "with --node: links weighing at most this")
		}
	}
	fs.Usage = func() {
		io.WriteString(fs.Output(), analyzeUsage)
		fs.PrintDefaults()
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "quorumq %s: %s\n", name, fmt.Sprintf(format, a...))
		return code
	}
	if err := cli.Parse(fs, args, stderr, envAnalyze); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return fail(2, "%v", err)
	}
	if err := agg.check(kind); err != nil {
		return fail(2, "%v", err)
	}
	if q.Node == "" && (q.Member != "" || q.MinScore != "" || q.MaxScore != "") {
		return fail(2, "--member, --min-score and --max-score need --node")
	}
	redis.SetLogger(redisLogger{slog.New(slog.DiscardHandler)})
	rdb, err := agg.client()
	if err != nil {
		return fail(2, "%v", err)
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if verb == "reset" {
		switch kind {
		case "moments":
			err = analytics.NewMoments(rdb, agg.key).Reset(ctx)
		case "histogram":
			var h *analytics.Histogram
			if h, err = analytics.NewHistogram(rdb, agg.key, analytics.HistogramLayout{Int: true}); err == nil {
				err = h.Reset(ctx)
			}
		case "graph":
			var n int
			n, err = analytics.NewGraph(rdb, agg.prefix, false).Reset(ctx)
			if err == nil {
				fmt.Fprintf(stdout, "deleted %d nodes\n", n)
			}
		}
		if err != nil {
			return fail(1, "%v", err)
		}
		return 0
	}

	switch kind {
	case "moments":
		var rep analytics.MomentsReport
		if rep, err = analytics.ReadMomentsReport(ctx, rdb, agg.key); err == nil {
			if jsonOut {
				err = analytics.WriteJSON(stdout, rep)
			} else {
				err = rep.WriteText(stdout)
			}
		}
	case "histogram":
		var d *analytics.HistogramData
		if d, err = analytics.ReadHistogram(ctx, rdb, agg.key); err == nil {
			if jsonOut {
				err = analytics.WriteJSON(stdout, d)
			} else {
				err = analytics.WriteHistogramChart(stdout, d, cols)
			}
		}
	case "graph":
		var rep analytics.GraphReport
		if rep, err = analytics.ReadGraphReport(ctx, analytics.NewGraph(rdb, agg.prefix, false), q); err == nil {
			if jsonOut {
				err = analytics.WriteJSON(stdout, rep)
			} else {
				err = rep.WriteText(stdout)
			}
		}
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	return 0
}

// redisLogger sends go-redis's internal messages (such as failed dials,
// which the caller also sees as errors) to the debug log.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...))
}

// terminalColumns is $COLUMNS, else 80.
func terminalColumns() int {
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
