package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/ops/tail"
	"github.com/quorumq/quorumq/internal/ops/top"
)

const topUsage = `Usage: quorumq top --queue-addrs=URL[,URL...] [--once] [--interval=2s]

A refreshing view of the cluster: every member as it sees itself (state,
term, commit and applied index, lag behind the leader's commit) and every
queue (GET /queues: depth, in flight, deferred, dead, bytes, put and get
rates between refreshes, age of the oldest ready message). On a terminal
each frame replaces the last; --once prints one frame and exits (exit
status 1 when a read failed). Any role may look.

Flags:
`

const tailUsage = `Usage: quorumq tail --queue-addrs=URL[,URL...] --queue=Q [-n N] [--follow] [--format=raw|json]
       quorumq tail --queue-addrs=URL[,URL...] --topic=T [--format=raw|json]

Prints a queue's messages as they are put, without consuming any: the last
-n ready messages first, then, every --interval, the ready messages put
after the last one seen (GET /dump?format=json&after=ID). A message
consumed before tail looks is not shown. With --topic it subscribes to a
pubsub topic (/sub) and prints what is published while it listens.
Needs the consume role (queues) or any role (topics).

Flags:
`

// runTop is `quorumq top`.
func runTop(args []string, stdout, stderr io.Writer) int {
	cfg := top.DefaultConfig()
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	return runOps(fs, args, stderr, envTop, topUsage, top.ErrInvalid, func(ctx context.Context, logger *slog.Logger) error {
		cfg.Logger = logger
		return top.Run(ctx, cfg, stdout, cli.IsTerminal(stdout))
	})
}

// runTail is `quorumq tail`.
func runTail(args []string, stdout, stderr io.Writer) int {
	cfg := tail.DefaultConfig()
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	return runOps(fs, args, stderr, envTail, tailUsage, tail.ErrInvalid, func(ctx context.Context, logger *slog.Logger) error {
		cfg.Logger = logger
		return tail.Run(ctx, cfg, stdout)
	})
}
