package tohttp

import (
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/reader"
)

// Defaults of Config (DefaultConfig).
const (
	DefaultMaxAttempts  = 5
	DefaultTimeout      = 10 * time.Second
	DefaultRequeueDelay = 10 * time.Second
	DefaultContentType  = "application/octet-stream"
	// deadLetterTries is how many more attempts a message gets when its
	// dead-letter put fails; past them the reader puts the message's
	// envelope on the dead-letter queue itself.
	deadLetterTries = 3
)

// ErrInvalid marks a Config that Run refuses (exit status 2).
var ErrInvalid = errors.New("to_http: invalid configuration")

// Config configures a Forwarder. Start from DefaultConfig; Run only
// validates.
type Config struct {
	// Reader reads the queue: Addrs, Queue, Concurrency, Lease,
	// RequeueDelay (a message failed n times waits n × RequeueDelay),
	// BackoffStep and BackoffMax (the whole forwarder slows down while the
	// endpoint fails), Token and TLS of the cluster. Its Tasks, MaxTries,
	// DeadLetter and GiveUp are set by the forwarder.
	Reader reader.Config
	// URL is the endpoint: for POST the URL each message is posted to,
	// for GET a template whose every %s is replaced by the
	// percent-encoded message.
	URL string
	// Method is http.MethodPost (default) or http.MethodGet.
	Method string
	// ContentType is the Content-Type of a POST.
	ContentType string
	// Timeout bounds one request to the endpoint; positive.
	Timeout time.Duration
	// MaxAttempts is how many requests a message gets before it is
	// dead-lettered (or dropped); at least 1.
	MaxAttempts int
	// DeadLetter is the queue that receives messages that failed for good
	// (the message as it was put, with an idempotency key). "": the
	// queue's own dead_letter (from /config, read at start); when that is
	// empty too, such messages are dropped (logged and counted).
	DeadLetter string
	// Drop drops messages that failed for good instead of dead-lettering
	// them, whatever DeadLetter and the queue's configuration say.
	Drop bool
	// HTTPClient sends the requests to the endpoint (never the cluster's
	// token). Its Timeout should be zero: Timeout bounds each request.
	// nil: a client with its own pooled transport.
	HTTPClient *http.Client
	// Logger receives progress, failures and every dropped message.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults: the reader's (with a RequeueDelay of
// DefaultRequeueDelay), POST with DefaultContentType, DefaultTimeout,
// DefaultMaxAttempts, the queue's own dead-letter queue, slog.Default().
func DefaultConfig() Config {
	rc := reader.DefaultConfig()
	rc.RequeueDelay = DefaultRequeueDelay
	return Config{
		Reader:      rc,
		Method:      http.MethodPost,
		ContentType: DefaultContentType,
		Timeout:     DefaultTimeout,
		MaxAttempts: DefaultMaxAttempts,
		Logger:      slog.Default(),
	}
}

// Validate reports every problem of c on one line; the error wraps
// ErrInvalid.
func (c Config) Validate() error {
	var errs cli.Problems
	switch c.Method {
	case http.MethodPost:
		if err := checkURL(c.URL); err != nil {
			errs.Add("--url=%q: %v", c.URL, err)
		}
	case http.MethodGet:
		if !strings.Contains(c.URL, "%s") {
			errs.Add("--url=%q: a GET URL must contain %%s (replaced by the message)", c.URL)
		} else if err := checkURL(strings.ReplaceAll(c.URL, "%s", "x")); err != nil {
			errs.Add("--url=%q: %v", c.URL, err)
		}
	default:
		errs.Add("--method=%q: want POST or GET", c.Method)
	}
	if c.Timeout <= 0 {
		errs.Add("--timeout must be positive")
	}
	if c.MaxAttempts < 1 {
		errs.Add("--max-attempts=%d: want at least 1", c.MaxAttempts)
	}
	if c.DeadLetter != "" {
		if err := api.CheckQueueName(c.DeadLetter); err != nil {
			errs.Add("--dead-letter: %v", err)
		} else if c.DeadLetter == queueName(c.Reader.Queue) {
			errs.Add("--dead-letter must name another queue than --queue")
		}
	}
	if len(c.Reader.Addrs) == 0 {
		errs.Add("no --queue-addrs")
	}
	if c.Logger == nil {
		errs.Add("no logger")
	}
	return errs.Err(ErrInvalid)
}

// queueName is the queue's name as the server spells it.
func queueName(q string) string {
	if q == "" {
		return "default"
	}
	return q
}

// checkURL accepts absolute http and https URLs with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("want an http:// or https:// URL")
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// RegisterFlags defines the to_http flags on fs, writing into c, which
// should hold DefaultConfig. --queue-addrs is another name of the
// reader's --queue-url.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Reader.RegisterFlags(fs)
	fs.Var(fs.Lookup("queue-url").Value, "queue-addrs", "same as --queue-url: queue port URLs of the nodes (comma-separated or repeated)")
	fs.StringVar(&c.URL, "url", c.URL, "endpoint: POST each message to it as the body, or with --method=GET a URL whose %s is replaced by the percent-encoded message")
	fs.StringVar(&c.Method, "method", c.Method, "POST or GET")
	fs.StringVar(&c.ContentType, "content-type", c.ContentType, "Content-Type of each POST")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound on one request to the endpoint")
	fs.IntVar(&c.MaxAttempts, "max-attempts", c.MaxAttempts, "requests per message before it is dead-lettered (or dropped)")
	fs.StringVar(&c.DeadLetter, "dead-letter", c.DeadLetter, "queue that receives messages that failed for good (default: the queue's dead_letter from /config; with neither they are dropped)")
	fs.BoolVar(&c.Drop, "drop-failed", c.Drop, "drop messages that failed for good (logged and counted) instead of dead-lettering them")
	fs.DurationVar(&c.Reader.RequeueDelay, "requeue-delay", c.Reader.RequeueDelay, "a message that failed n times is retried n × this later")
	fs.DurationVar(&c.Reader.Lease, "lease", c.Reader.Lease, "lease on each message; a forwarder that dies gives its messages back when their leases end")
	fs.DurationVar(&c.Reader.BackoffStep, "backoff-step", c.Reader.BackoffStep, "each failure pauses fetching by this much more, each success by this much less (0: no back-off)")
	fs.DurationVar(&c.Reader.BackoffMax, "backoff-max", c.Reader.BackoffMax, "longest pause of the back-off")
}
