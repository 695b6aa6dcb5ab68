package pstohttp

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/metricsserver"
)

// DefaultSource is the reference's default --pubsub-url.
const DefaultSource = "http://127.0.0.1:80/sub?multipart=0"

// Defaults of Config (DefaultConfig).
const (
	DefaultMinLineLength  = 3
	DefaultBufferSize     = 10000
	DefaultStatsInterval  = 10 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultDrainTimeout   = 5 * time.Second
)

// Default backoffs.
var (
	DefaultReconnectBackoff = client.Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	DefaultRetryBackoff     = client.Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}
)

// Destination is where messages are forwarded.
type Destination struct {
	// Method is http.MethodGet or http.MethodPost.
	Method string
	// URL: for GET a template in which every %s is replaced by the
	// percent-encoded message; for POST the URL the message is posted to.
	URL string
}

func (d Destination) String() string { return d.Method + " " + d.URL }

// Config configures a Bridge. Start from DefaultConfig; New only
// validates (in the zero value MinLineLength 0 forwards every line,
// MaxRetries 0 never retries, and the zero buffer, timeouts and backoffs
// are errors).
type Config struct {
	// Sources are pubsub /sub URLs in newline mode. The bridge starts at a
	// random one (Rand) and moves to the next after every failure.
	Sources []string
	// Destinations, in command-line order.
	Destinations []Destination
	// RoundRobin sends message k to destination k mod n instead of every
	// message to every destination.
	RoundRobin bool
	// MaxSilence > 0: Run returns a *SilenceError once no message was
	// forwarded for that long. <= 0: off.
	MaxSilence time.Duration
	// MinLineLength drops messages shorter than this many bytes (the
	// reference drops lines shorter than 3). 0: forward everything.
	MinLineLength int
	// BufferSize is the number of messages each destination may hold
	// while its sender is busy or retrying; beyond it new messages for
	// that destination are dropped, logged and counted. At least 1.
	BufferSize int
	// SourceTimeout > 0 treats a source that sent no byte for that long as
	// dead and reconnects. 0: off (pubsub is silent while nobody
	// publishes; a dead peer is found by TCP keep-alive).
	SourceTimeout time.Duration
	// StatsInterval > 0 logs the counters at that interval. 0: only at exit.
	StatsInterval time.Duration
	// IdempotentPut adds id=<key> to destinations whose path is /put
	// (unless the URL already has id=): quorumq then stores a retried
	// message once within its dedup window (2 minutes).
	IdempotentPut bool
	// MaxRetries bounds the retries of one message to one destination;
	// -1: until it is delivered or the bridge stops.
	MaxRetries int
	// RequestTimeout bounds one request to a destination; positive.
	RequestTimeout time.Duration
	// DrainTimeout bounds the delivery of buffered messages at shutdown;
	// positive.
	DrainTimeout time.Duration
	// ReconnectBackoff paces reconnections to the sources; RetryBackoff
	// the retries of a destination. A Min above Max is lowered to Max.
	ReconnectBackoff client.Backoff
	RetryBackoff     client.Backoff

	// Logger receives progress, counters and every undelivered message.
	Logger *slog.Logger
	// RequestLog, when set, receives one line per request to a
	// destination in simplehttp's request-log format (--enable-logging).
	RequestLog io.Writer
	// HTTPClient sends every request. Its Timeout must be zero. nil:
	// client.NewHTTPClient(TLS).
	HTTPClient *http.Client
	// Token, when set, is sent as a bearer token to the sources and the
	// destinations alike (a pubsub /sub needs the consume role, a /put
	// produce: give the bridge a token with both). It goes to every
	// destination, so point --token only at the cluster's own.
	Token string
	// TLS, when set, verifies HTTPS sources and destinations (the cluster
	// CA) and makes every http:// URL an https:// one (client.HTTPS).
	TLS *tls.Config
	// Rand picks the first source among n. Default: uniformly at random.
	Rand func(n int) int
	// MetricsAddr, when set, is where Forward serves the bridge's
	// counters (Collector) as Prometheus metrics, at /metrics.
	MetricsAddr string
}

// DefaultConfig returns the defaults of the command line: the reference's
// source, no destination, slog.Default() and (made by New, with TLS) a
// client with client.NewTransport.
func DefaultConfig() Config {
	return Config{
		Logger:           slog.Default(),
		Sources:          []string{DefaultSource},
		MaxSilence:       -1,
		MinLineLength:    DefaultMinLineLength,
		BufferSize:       DefaultBufferSize,
		StatsInterval:    DefaultStatsInterval,
		MaxRetries:       -1,
		RequestTimeout:   DefaultRequestTimeout,
		DrainTimeout:     DefaultDrainTimeout,
		ReconnectBackoff: DefaultReconnectBackoff,
		RetryBackoff:     DefaultRetryBackoff,
	}
}

// ErrInvalid marks a Config that New refuses.
var ErrInvalid = errors.New("ps_to_http: invalid configuration")

// ErrNoDestination is the reference's start-up error.
var ErrNoDestination = errors.New("--destination-get-url or --destination-post-url required")

// Validate reports every problem of c on one line.
func (c Config) Validate() error {
	var errs []error
	if len(c.Sources) == 0 {
		errs = append(errs, errors.New("no --pubsub-url"))
	}
	for _, s := range c.Sources {
		if err := checkURL(s); err != nil {
			errs = append(errs, fmt.Errorf("--pubsub-url=%q: %v", client.RedactURL(s), err))
		}
	}
	if len(c.Destinations) == 0 {
		errs = append(errs, ErrNoDestination)
	}
	for _, d := range c.Destinations {
		switch d.Method {
		case http.MethodGet:
			if !strings.Contains(d.URL, "%s") {
				errs = append(errs, fmt.Errorf("--destination-get-url=%q: must contain %%s (replaced by the message)", client.RedactURL(d.URL)))
				continue
			}
			if err := checkURL(strings.ReplaceAll(d.URL, "%s", "x")); err != nil {
				errs = append(errs, fmt.Errorf("--destination-get-url=%q: %v", client.RedactURL(d.URL), err))
			}
		case http.MethodPost:
			if err := checkURL(d.URL); err != nil {
				errs = append(errs, fmt.Errorf("--destination-post-url=%q: %v", client.RedactURL(d.URL), err))
			}
		default:
			errs = append(errs, fmt.Errorf("destination %q: method must be GET or POST", client.RedactURL(d.URL)))
		}
	}
	if c.MinLineLength < 0 {
		errs = append(errs, fmt.Errorf("--min-line-length=%d: must not be negative", c.MinLineLength))
	}
	if c.BufferSize < 0 {
		errs = append(errs, fmt.Errorf("--buffer-size=%d: must not be negative", c.BufferSize))
	}
	if c.MaxRetries < -1 {
		errs = append(errs, fmt.Errorf("--max-retries=%d: want -1 (unlimited) or more", c.MaxRetries))
	}
	if c.BufferSize == 0 {
		errs = append(errs, errors.New("--buffer-size=0: want at least 1"))
	}
	if c.RequestTimeout <= 0 || c.DrainTimeout <= 0 {
		errs = append(errs, errors.New("--request-timeout and --drain-timeout must be positive"))
	}
	if c.ReconnectBackoff.Max <= 0 || c.RetryBackoff.Max <= 0 || c.ReconnectBackoff.Min <= 0 || c.RetryBackoff.Min <= 0 {
		errs = append(errs, errors.New("--reconnect-max-backoff and --retry-max-backoff must be positive"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("no logger"))
	}
	if len(errs) == 0 {
		return nil
	}
	return problems(errs)
}

// problems is errors.Join on one line: errors.Is still finds each.
type problems []error

func (p problems) Unwrap() []error { return p }

func (p problems) Error() string {
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return client.RedactError(err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("want an http:// or https:// URL")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// RegisterFlags defines the ps_to_http flags on fs, writing into c, which
// should hold DefaultConfig. --pubsub-url, --destination-get-url and
// --destination-post-url may be repeated; the two destination flags fill
// one list in command-line order. Durations accept a Go duration (1m30s)
// or a number of seconds, as the reference's --max-silence.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&sourcesFlag{c: c}, "pubsub-url", "pubsub /sub URL in newline mode to read from; repeat for failover")
	fs.Var(&destFlag{c: c, method: http.MethodGet}, "destination-get-url", "URL to GET for every message (repeatable); must contain %s, replaced by the percent-encoded message, e.g. http://127.0.0.1:8081/put?data=%s")
	fs.Var(&destFlag{c: c, method: http.MethodPost}, "destination-post-url", "URL to POST every message to, as the body (repeatable), e.g. http://127.0.0.1:8080/pub")
	fs.BoolVar(&c.RoundRobin, "round-robin", c.RoundRobin, "send message k to destination k mod n instead of every message to every destination")
	fs.Var(&durationFlag{p: &c.MaxSilence, off: "-1"}, "max-silence", "exit (status 0) when no message was forwarded for longer than this (seconds or a duration; -1: never)")
	fs.IntVar(&c.MinLineLength, "min-line-length", c.MinLineLength, "drop messages shorter than this many bytes, as the reference does with 3 (0: forward every message)")
	fs.IntVar(&c.BufferSize, "buffer-size", c.BufferSize, "messages each destination may hold while it is slow or down; beyond, new messages for it are dropped, logged and counted")
	fs.Var(&durationFlag{p: &c.SourceTimeout, off: "0"}, "source-timeout", "reconnect when the source sent no byte for this long (0: off; only useful when publishers send heartbeats)")
	fs.Var(&durationFlag{p: &c.StatsInterval, off: "0"}, "stats-interval", "log the counters on stderr at this interval (0: only at exit)")
	fs.BoolVar(&c.IdempotentPut, "idempotent-put", c.IdempotentPut, "add id=<key> to destinations whose path is /put, so quorumq stores a retried message once")
	fs.IntVar(&c.MaxRetries, "max-retries", c.MaxRetries, "retries of one message to one destination before it is logged and dropped (-1: until delivered)")
	fs.Var(&durationFlag{p: &c.RequestTimeout}, "request-timeout", "bound on one request to a destination (seconds or a duration; must be positive)")
	fs.Var(&durationFlag{p: &c.DrainTimeout}, "drain-timeout", "at exit, how long buffered messages may still be delivered (seconds or a duration; must be positive)")
	fs.Var(&durationFlag{p: &c.RetryBackoff.Max}, "retry-max-backoff", "longest pause between retries to a destination (seconds or a duration; must be positive)")
	fs.Var(&durationFlag{p: &c.ReconnectBackoff.Max}, "reconnect-max-backoff", "longest pause between reconnections to the sources (seconds or a duration; must be positive)")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
	metricsserver.RegisterFlag(fs, &c.MetricsAddr)
}

// sourcesFlag is the repeatable --pubsub-url: the first use replaces the
// default.
type sourcesFlag struct {
	c   *Config
	set bool
}

func (f *sourcesFlag) String() string {
	if f == nil || f.c == nil {
		return ""
	}
	return strings.Join(f.c.Sources, " ")
}

func (f *sourcesFlag) Set(v string) error {
	if err := checkURL(v); err != nil {
		return err
	}
	if !f.set {
		f.c.Sources, f.set = nil, true
	}
	f.c.Sources = append(f.c.Sources, v)
	return nil
}

// destFlag appends to Config.Destinations, so GET and POST destinations
// keep their command-line order.
type destFlag struct {
	c      *Config
	method string
}

func (f *destFlag) String() string {
	if f == nil || f.c == nil {
		return ""
	}
	var urls []string
	for _, d := range f.c.Destinations {
		if d.Method == f.method {
			urls = append(urls, d.URL)
		}
	}
	return strings.Join(urls, " ")
}

func (f *destFlag) Set(v string) error {
	f.c.Destinations = append(f.c.Destinations, Destination{Method: f.method, URL: v})
	return nil
}

// durationFlag takes a Go duration or a number of seconds. off, when not
// "", is how the help shows a value <= 0 of a flag that such a value turns
// off; a flag without off (one that Validate wants positive) shows every
// value as the duration it is.
type durationFlag struct {
	p   *time.Duration
	off string
}

func (f *durationFlag) String() string {
	if f == nil || f.p == nil {
		return ""
	}
	d := *f.p
	if d <= 0 && f.off != "" {
		return f.off
	}
	// 1m0s -> 1m, 1h0m0s -> 1h
	str := d.String()
	if strings.HasSuffix(str, "m0s") {
		str = str[:len(str)-2]
	}
	if strings.HasSuffix(str, "h0m") {
		str = str[:len(str)-2]
	}
	return str
}

func (f *durationFlag) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > int64(1<<63-1)/int64(time.Second) {
			return errors.New("too large")
		}
		*f.p = time.Duration(n) * time.Second
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return errors.New("want a number of seconds or a duration such as 30s")
	}
	*f.p = d
	return nil
}
