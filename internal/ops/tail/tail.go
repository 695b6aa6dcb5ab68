// Package tail is `quorumq tail`: it prints a queue's messages as they
// are put, without consuming any (GET /dump?format=json, paged by
// after=ID), or a pubsub topic's as they are published (/sub).
package tail

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/wait"
)

// Defaults of Config.
const (
	DefaultLines    = 10
	DefaultInterval = time.Second
	// pageSize is the most /dump?format=json answers at once.
	pageSize = 1000
)

// Output formats.
const (
	FormatRaw  = "raw"
	FormatJSON = "json"
)

// reconnectBackoff paces new subscriptions after a stream failed.
var reconnectBackoff = client.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// ErrInvalid marks bad flags (exit status 2).
var ErrInvalid = errors.New("invalid configuration")

// Config configures Run. Start from DefaultConfig.
type Config struct {
	// Addrs are queue port URLs of nodes.
	Addrs client.AddrList
	// PubsubAddrs are pubsub port URLs for Topic; none: the members'
	// pubsub addresses from /cluster/status.
	PubsubAddrs client.AddrList
	// Queue is followed, or Topic (exactly one of them).
	Queue, Topic string
	// Lines is how many of the queue's newest ready messages are printed
	// first (0: none).
	Lines int
	// Follow keeps printing new messages until the context ends; false
	// prints the Lines and returns.
	Follow bool
	// Format is FormatRaw (each message and a newline) or FormatJSON (one
	// object a line).
	Format string
	// Interval is the time between two looks at the queue; positive.
	Interval time.Duration
	Token    string
	TLS      *tls.Config
	Logger   *slog.Logger
}

// DefaultConfig returns the defaults: the last DefaultLines messages,
// following, raw, every DefaultInterval.
func DefaultConfig() Config {
	return Config{Lines: DefaultLines, Follow: true, Format: FormatRaw, Interval: DefaultInterval, Logger: slog.Default()}
}

// RegisterFlags defines tail's flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Addrs, "queue-addrs", "queue port URLs of the nodes, comma-separated or repeated")
	fs.Var(&c.PubsubAddrs, "pubsub-addrs", "pubsub port URLs for --topic (default: the members' pubsub addresses, from /cluster/status)")
	fs.StringVar(&c.Queue, "queue", c.Queue, "queue to follow (messages are read, not consumed)")
	fs.StringVar(&c.Topic, "topic", c.Topic, "pubsub topic to follow instead of a queue")
	fs.IntVar(&c.Lines, "n", c.Lines, "print the queue's last N ready messages first")
	fs.BoolVar(&c.Follow, "follow", c.Follow, "keep printing messages as they are put (--follow=false: print the last -n and exit)")
	fs.StringVar(&c.Format, "format", c.Format, "raw (each message on a line) or json (one object a line: id, attempts, data)")
	fs.DurationVar(&c.Interval, "interval", c.Interval, "time between two looks at the queue")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
}

func (c Config) validate() error {
	var errs cli.Problems
	if (c.Queue == "") == (c.Topic == "") {
		errs.Add("give --queue or --topic")
	}
	if c.Queue != "" {
		if err := api.CheckQueueName(c.Queue); err != nil {
			errs.Add("--queue: %v", err)
		}
	}
	if c.Topic != "" {
		if !c.Follow {
			errs.Add("--topic needs --follow: pubsub keeps no messages to print")
		}
		if len(c.Addrs) == 0 && len(c.PubsubAddrs) == 0 {
			errs.Add("no --queue-addrs or --pubsub-addrs")
		}
	} else if len(c.Addrs) == 0 {
		errs.Add("no --queue-addrs")
	}
	if c.Lines < 0 {
		errs.Add("-n must not be negative")
	}
	if c.Format != FormatRaw && c.Format != FormatJSON {
		errs.Add("--format=%q: want raw or json", c.Format)
	}
	if c.Interval <= 0 {
		errs.Add("--interval must be positive")
	}
	if c.Logger == nil {
		errs.Add("no logger")
	}
	return errs.Err(ErrInvalid)
}

func (c Config) clientOptions() *client.Options {
	o := client.DefaultOptions()
	o.Token, o.TLS = c.Token, c.TLS
	return &o
}

// Run prints messages to out until ctx ends (or, without Follow, once the
// last Lines are printed).
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	defer w.Flush()
	if cfg.Topic != "" {
		return followTopic(ctx, cfg, w)
	}
	return followQueue(ctx, cfg, w)
}

// followQueue prints the last Lines ready messages, then, every Interval,
// the ready messages put after the last one seen. A message consumed
// before a look is never seen: tail shows what a queue holds, not every
// put.
func followQueue(ctx context.Context, cfg Config, w *bufio.Writer) error {
	q, err := client.NewQueue(cfg.Addrs, cfg.clientOptions())
	if err != nil {
		return cli.Mark(err, ErrInvalid)
	}
	head, err := q.DumpPage(ctx, cfg.Queue, client.DumpOptions{Limit: 1})
	if err != nil {
		return err
	}
	// The newest Lines, and the id to follow from (the newest message's,
	// even when none is printed).
	var after string
	if head.Total > 0 {
		n := max(int64(cfg.Lines), 1)
		page, err := q.DumpPage(ctx, cfg.Queue, client.DumpOptions{Offset: int(max(head.Total-n, 0)), Limit: int(min(n, pageSize))})
		if err != nil {
			return err
		}
		msgs := page.Messages
		if len(msgs) > 0 {
			after = msgs[len(msgs)-1].ID
		}
		if cfg.Lines == 0 {
			msgs = nil
		}
		if err := printPage(w, cfg, msgs); err != nil {
			return err
		}
	}
	if !cfg.Follow {
		return nil
	}
	fails := 0
	for {
		if err := w.Flush(); err != nil {
			return err
		}
		if wait.Sleep(ctx, cfg.Interval) != nil {
			return nil
		}
		for {
			page, err := q.DumpPage(ctx, cfg.Queue, client.DumpOptions{After: after, Limit: pageSize})
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if fails == 0 {
					cfg.Logger.Warn("reading the queue failed; retrying", "err", err)
				}
				fails++
				break
			}
			fails = 0
			if err := printPage(w, cfg, page.Messages); err != nil {
				return err
			}
			if n := len(page.Messages); n > 0 {
				after = page.Messages[n-1].ID
			}
			if len(page.Messages) < pageSize {
				break
			}
		}
	}
}

// line is a message as --format=json prints it.
type line struct {
	Queue    string `json:"queue,omitempty"`
	Topic    string `json:"topic,omitempty"`
	ID       string `json:"id,omitempty"`
	Attempts *int   `json:"attempts,omitempty"`
	Data     string `json:"data"`
	Encoding string `json:"encoding,omitempty"`
	DeadFrom string `json:"dead_from,omitempty"`
	Error    string `json:"error,omitempty"`
}

func printPage(w *bufio.Writer, cfg Config, msgs []client.DumpMessage) error {
	for _, m := range msgs {
		attempts := m.Attempts
		l := line{Queue: cfg.Queue, ID: m.ID, Attempts: &attempts, DeadFrom: m.DeadFrom, Error: m.Error}
		if err := write(w, cfg.Format, l, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// write prints one message: raw, its bytes and a newline; json, l with
// the data (base64 when it is not UTF-8).
func write(w *bufio.Writer, format string, l line, data []byte) error {
	if format == FormatRaw {
		w.Write(data)
		return w.WriteByte('\n')
	}
	l.Data, l.Encoding = api.EncodeData(data)
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	w.Write(b)
	return w.WriteByte('\n')
}

// followTopic subscribes to the topic and prints every message published
// while it is subscribed, subscribing again (on another node if need be)
// after a failure.
func followTopic(ctx context.Context, cfg Config, w *bufio.Writer) error {
	addrs := cfg.PubsubAddrs
	if len(addrs) == 0 {
		var err error
		if addrs, err = pubsubAddrs(ctx, cfg); err != nil {
			return err
		}
	}
	ps, err := client.NewPubsub(addrs, cfg.clientOptions())
	if err != nil {
		return cli.Mark(err, ErrInvalid)
	}
	for fails := 0; ctx.Err() == nil; fails++ {
		s, err := ps.SubscribeTopic(ctx, cfg.Topic, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			cfg.Logger.Warn("subscribing failed; retrying", "topic", cfg.Topic, "err", err)
			reconnectBackoff.Sleep(ctx, fails)
			continue
		}
		stop := context.AfterFunc(ctx, func() { s.Close() })
		for {
			msg, err := s.Next()
			if err != nil {
				break
			}
			fails = 0
			if err := write(w, cfg.Format, line{Topic: cfg.Topic}, msg); err != nil {
				stop()
				s.Close()
				return err
			}
			if err := w.Flush(); err != nil {
				stop()
				s.Close()
				return err
			}
		}
		stop()
		s.Close()
		if ctx.Err() == nil {
			cfg.Logger.Warn("the stream ended; subscribing again (messages published meanwhile are missed)", "topic", cfg.Topic)
			reconnectBackoff.Sleep(ctx, fails)
		}
	}
	return nil
}

// pubsubAddrs are the members' pubsub addresses, from /cluster/status.
func pubsubAddrs(ctx context.Context, cfg Config) ([]string, error) {
	q, err := client.NewQueue(cfg.Addrs, cfg.clientOptions())
	if err != nil {
		return nil, cli.Mark(err, ErrInvalid)
	}
	st, err := q.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("finding the pubsub addresses: %w", err)
	}
	var out []string
	for _, m := range st.Members {
		if m.PubsubAddr != "" && m.Status == api.MemberAlive {
			out = append(out, m.PubsubAddr)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no member with a pubsub address: give --pubsub-addrs")
	}
	return out, nil
}
