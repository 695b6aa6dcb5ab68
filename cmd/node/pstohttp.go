package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/tutorial/pstohttp"
)

const psToHTTPUsage = `Usage: quorumq ps_to_http --destination-get-url=URL|--destination-post-url=URL [flags]

Subscribes to a pubsub stream in newline mode and forwards every message
as an HTTP request: a GET with %s in the URL replaced by the URL-encoded
message, or a POST with the message as the body. Options and request
formats are bitly ps_to_http 0.5.4's; unlike it, this bridge reconnects
with backoff, fails over between --pubsub-url sources, retries failed
destinations in order, buffers up to --buffer-size messages per
destination (dropped messages are logged and counted) and logs counters
every --stats-interval. SIGINT, SIGTERM or SIGHUP: deliver the buffer for
up to --drain-timeout, then exit 0. --max-silence also exits 0.

Flags:
`

// runPsToHTTP is `quorumq ps_to_http`.
func runPsToHTTP(args []string, stdout, stderr io.Writer) int {
	cfg := pstohttp.DefaultConfig()
	fs := flag.NewFlagSet("ps_to_http", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var logFlags cli.LogFlags
	var requestLog bool
	fs.BoolVar(&requestLog, "enable-logging", false, "log every request to a destination on stdout in simplehttp's format")
	logFlags.Register(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), psToHTTPUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envPsToHTTP); !ok {
		return code
	}
	logger, err := logFlags.Logger(stderr)
	if err != nil {
		return fail(stderr, fs.Name(), err, 2)
	}
	cfg.Logger = logger.With("component", "ps_to_http")
	if requestLog {
		cfg.RequestLog = stdout
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	err = pstohttp.Forward(ctx, cfg)
	if err != nil && !errors.Is(err, pstohttp.ErrInvalid) {
		logger.Error("ps_to_http failed", "err", err)
		return 1
	}
	return exitStatus(stderr, fs.Name(), err, pstohttp.ErrInvalid)
}
