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
	"slices"
	"strings"
	"syscall"

	"github.com/quorumq/quorumq/analytics"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/node"
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
             links by weight (--min-score/--max-score) and --member's rank;
             the graph also as Graphviz (--format=dot) or as an SVG image
             (--format=svg)
  reset      deletes an aggregate and its remembered message ids

Flags:
`

// runAnalyze is `quorumq analyze`.
func runAnalyze(args []string, stdout, stderr io.Writer) int {
	help := kindsHelp("analyze", []string{"moments", "histogram", "graph", "show KIND", "reset KIND"}, analyzeUsage, envAnalyze)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && cli.IsHelp(args[0]) {
			fmt.Fprint(stdout, help)
			return 0
		}
		fmt.Fprint(stderr, help)
		return 2
	}
	switch args[0] {
	case "moments", "histogram", "graph":
		return runAnalyzeReader(args[0], args[1:], stdout, stderr)
	case "show", "reset":
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			if len(args) == 2 && cli.IsHelp(args[1]) {
				fmt.Fprint(stdout, help)
				return 0
			}
			fmt.Fprintf(stderr, "quorumq analyze %s: want moments, histogram or graph\n", args[0])
			return 2
		}
		return runAnalyzeStore(args[0], args[1], args[2:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "quorumq analyze: unknown command %q\n\n%s", args[0], help)
	return 2
}

// runAnalyzeReader is `quorumq analyze moments|histogram|graph`.
func runAnalyzeReader(kind string, args []string, stdout, stderr io.Writer) int {
	cfg := analytics.DefaultAnalyzeConfig(kind)
	fs := flag.NewFlagSet("analyze "+kind, flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var logFlags cli.LogFlags
	logFlags.Register(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), analyzeUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envAnalyze); !ok {
		return code
	}
	logger, err := logFlags.Logger(stderr)
	if err != nil {
		return fail(stderr, fs.Name(), err, 2)
	}
	cfg.Logger = logger

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = analytics.Analyze(ctx, cfg, stdout, stderr)
	if errors.Is(err, analytics.ErrFailed) {
		return 1 // logged by Analyze
	}
	return exitStatus(stderr, fs.Name(), err, analytics.ErrInvalid)
}

// runAnalyzeStore is `quorumq analyze show|reset moments|histogram|graph`.
func runAnalyzeStore(verb, kind string, args []string, stdout, stderr io.Writer) int {
	if !slices.Contains(analytics.Kinds, kind) {
		fmt.Fprintf(stderr, "quorumq analyze %s: unknown aggregate %q: want moments, histogram or graph\n", verb, kind)
		return 2
	}
	cfg := analytics.DefaultStoreConfig(kind)
	fs := flag.NewFlagSet("analyze "+verb+" "+kind, flag.ContinueOnError)
	cfg.RegisterFlags(fs, verb)
	fs.Usage = func() {
		io.WriteString(fs.Output(), analyzeUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envAnalyze); !ok {
		return code
	}
	do := analytics.Show
	if verb == "reset" {
		do = analytics.Reset
	}
	return exitStatus(stderr, fs.Name(), do(context.Background(), cfg, stdout), analytics.ErrInvalid)
}

// openAnalytics opens the live view of serve's --analytics-redis.
func openAnalytics(redisURL string, log *slog.Logger) (node.Analytics, error) {
	o := analytics.DefaultLiveOptions()
	o.RedisURL, o.Logger = redisURL, log
	l, err := analytics.NewLive(o)
	if err != nil {
		return nil, err
	}
	return liveAnalytics{l}, nil
}

// liveAnalytics is an analytics.Live as the node serves it.
type liveAnalytics struct{ *analytics.Live }

func (l liveAnalytics) AnalyticsReport(ctx context.Context, q httpapi.AnalyticsQuery) (any, error) {
	return l.Report(ctx, q.Node, q.Top)
}
