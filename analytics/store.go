package analytics

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StoreConfig is `quorumq analyze show|reset`: an aggregate and how to
// print it. Start from DefaultStoreConfig.
type StoreConfig struct {
	Aggregate
	// JSON (show) prints JSON instead of text.
	JSON bool
	// Format (show graph) is one of GraphFormats: text (the default),
	// json (as JSON), dot (Graphviz) or svg (an image).
	Format string
	// Cols (show histogram) is the width of the chart.
	Cols int
	// Query (show graph) picks the links shown.
	Query GraphQuery
	// Timeout bounds the whole command.
	Timeout time.Duration
}

// DefaultStoreConfig returns the defaults of kind: DefaultAggregate, a
// chart as wide as $COLUMNS (else 80), the top 10 links, a minute.
func DefaultStoreConfig(kind string) StoreConfig {
	return StoreConfig{Aggregate: DefaultAggregate(kind), Cols: terminalColumns(), Query: GraphQuery{Top: 10}, Format: FormatText, Timeout: time.Minute}
}

// RegisterFlags defines the flags of verb (show or reset) and c.Kind on
// fs, writing into c, whose values are the flags' defaults.
func (c *StoreConfig) RegisterFlags(fs *flag.FlagSet, verb string) {
	c.Aggregate.register(fs)
	if verb != "show" {
		return
	}
	fs.BoolVar(&c.JSON, "json", c.JSON, "print JSON")
	switch c.Kind {
	case "histogram":
		fs.IntVar(&c.Cols, "cols", c.Cols, "width of the chart in columns, $COLUMNS when that is set")
	case "graph":
		q := &c.Query
		fs.StringVar(&q.Node, "node", q.Node, "show this node's links (default: the whole graph's top edges)")
		fs.IntVar(&q.Top, "top", q.Top, "number of links or edges")
		fs.StringVar(&q.Member, "member", q.Member, "with --node: this neighbour's rank (ZREVRANK) and weight")
		fs.StringVar(&q.MinScore, "min-score", q.MinScore, `with --node: links weighing at least this (ZRANGEBYSCORE; "(5" for more than 5)`)
		fs.StringVar(&q.MaxScore, "max-score", q.MaxScore, "with --node: links weighing at most this")
		fs.StringVar(&c.Format, "format", c.Format, "text, json (as --json), dot (Graphviz: render with dot -Tpng) or svg (an image)")
	}
}

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c StoreConfig) Validate() error {
	if err := c.Aggregate.validate(); err != nil {
		return err
	}
	switch q := c.Query; {
	case q.Node == "" && (q.Member != "" || q.MinScore != "" || q.MaxScore != ""):
		return invalid(errors.New("--member, --min-score and --max-score need --node"))
	case c.Cols < 1:
		return invalid(fmt.Errorf("--cols=%d: want at least 1", c.Cols))
	case !slices.Contains(GraphFormats, c.Format):
		return invalid(fmt.Errorf("--format=%q: want %s", c.Format, strings.Join(GraphFormats, ", ")))
	case c.JSON && c.Format != FormatText && c.Format != FormatJSON:
		return invalid(fmt.Errorf("--json and --format=%s: pick one", c.Format))
	case c.Format != FormatText && c.Format != FormatJSON && c.Kind != "graph":
		return invalid(fmt.Errorf("--format=%s is for show graph", c.Format))
	case q.Top < 1:
		return invalid(fmt.Errorf("--top=%d: want at least 1", q.Top))
	case c.Timeout <= 0:
		return invalid(fmt.Errorf("timeout %v must be positive", c.Timeout))
	}
	return nil
}

// Show writes the aggregate c names to w: text, or JSON with c.JSON. The
// error wraps ErrInvalid for a bad c.
func Show(ctx context.Context, c StoreConfig, w io.Writer) error {
	return withStore(ctx, c, func(ctx context.Context, rdb redis.Cmdable) error {
		var (
			v    any
			text func() error
			err  error
		)
		switch c.Kind {
		case "moments":
			var rep MomentsReport
			rep, err = ReadMomentsReport(ctx, rdb, c.Key)
			v, text = rep, func() error { return rep.WriteText(w) }
		case "histogram":
			var d *HistogramData
			d, err = ReadHistogram(ctx, rdb, c.Key)
			v, text = d, func() error { return WriteHistogramChart(w, d, c.Cols) }
		default:
			var rep GraphReport
			rep, err = ReadGraphReport(ctx, NewGraph(rdb, c.Prefix, false), c.Query)
			v, text = rep, func() error { return rep.WriteText(w) }
			switch c.Format {
			case FormatDOT:
				text = func() error { return rep.WriteDOT(w) }
			case FormatSVG:
				text = func() error { return rep.WriteSVG(w) }
			}
		}
		switch {
		case err != nil:
			return err
		case c.JSON || c.Format == FormatJSON:
			return WriteJSON(w, v)
		}
		return text()
	})
}

// Reset deletes the aggregate c names and its remembered message ids; for
// a graph it writes the number of nodes deleted to w.
func Reset(ctx context.Context, c StoreConfig, w io.Writer) error {
	return withStore(ctx, c, func(ctx context.Context, rdb redis.Cmdable) error {
		switch c.Kind {
		case "moments":
			return NewMoments(rdb, c.Key).Reset(ctx)
		case "histogram":
			h, err := NewHistogram(rdb, c.Key, HistogramLayout{Int: true})
			if err != nil {
				return err
			}
			return h.Reset(ctx)
		default:
			n, err := NewGraph(rdb, c.Prefix, false).Reset(ctx)
			if err == nil {
				fmt.Fprintf(w, "deleted %d nodes\n", n)
			}
			return err
		}
	})
}

// withStore validates c and runs f with a client of c's Redis, within
// c.Timeout.
func withStore(ctx context.Context, c StoreConfig, f func(context.Context, redis.Cmdable) error) error {
	if err := c.Validate(); err != nil {
		return err
	}
	rdb, err := c.client(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	return f(ctx, rdb)
}
