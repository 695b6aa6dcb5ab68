package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumq/quorumq/internal/metricsserver"
	"github.com/quorumq/quorumq/internal/ops/tohttp"
)

const toHTTPUsage = `Usage: quorumq to_http --queue-addrs=URL[,URL...] --queue=Q --url=URL [flags]

Forwards every message of a queue to an HTTP endpoint, at least once: a
POST with the message as the body (or, with --method=GET, a GET of --url
with %s replaced by the percent-encoded message). It leases each message,
acks it on a 2xx answer, gives it back with a growing delay on a 5xx, 408,
429, timeout or connection error, and dead-letters it (the queue's
dead_letter, or --dead-letter; dropped when there is none) on any other
4xx or after --max-attempts requests. A forwarder that dies loses
nothing: its messages come back when their leases end. SIGINT or SIGTERM:
finish the requests in flight, give back the rest, exit 0.

Flags:
`

// runToHTTP is `quorumq to_http`.
func runToHTTP(args []string, stderr io.Writer) int {
	cfg := tohttp.DefaultConfig()
	fs := flag.NewFlagSet("to_http", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	metrics := metricsserver.DefaultOptions()
	metricsserver.RegisterFlag(fs, &metrics.Addr)
	logger, code, ok := parseOps(fs, args, stderr, envToHTTP, toHTTPUsage)
	if !ok {
		return code
	}
	cfg.Logger = logger
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := tohttp.New(cfg)
	if err == nil {
		err = f.Prepare(ctx)
	}
	var srv *metricsserver.Server
	if err == nil {
		metrics.Logger, metrics.Gatherer = logger, metricsserver.NewRegistry(f.Collectors()...)
		srv, err = metricsserver.Start(ctx, metrics)
	}
	if err == nil {
		err = f.Run(ctx)
		stop()
		srv.Wait()
	}
	if err != nil && !errors.Is(err, tohttp.ErrInvalid) {
		logger.Error("to_http failed", "err", err)
		return 1
	}
	return exitStatus(stderr, fs.Name(), err, tohttp.ErrInvalid)
}
