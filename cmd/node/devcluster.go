package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/quorumq/quorumq/deploy/devcluster"
)

const devclusterUsage = `Usage: quorumq devcluster [--nodes=N] [--base-dir=DIR] [--base-port=P] [-- serve flags...]

Runs N "quorumq serve" nodes on 127.0.0.1 as child processes, each started
with --bootstrap-expect=N and --join=<every node's gossip address>, and
prints their output prefixed with [node<i>]. Node i (from 1) uses the ports
P+10(i-1): +0 pubsub, +1 queue, +2 raft, +3 gossip; id node<i>; data in
DIR/node<i>, its pid in DIR/node<i>.pid. A node that dies (kill -9 <pid>)
is started again on its data after --restart-delay and rejoins
(--restart=false leaves it down). Run it again on the same DIR and the
nodes rejoin with their data. Ctrl-C (or SIGTERM) stops every node. Flags
after "--" are passed to every node's serve command, e.g. -- --log-level=debug.

Flags:
`

// runDevcluster is `quorumq devcluster`.
func runDevcluster(args []string, stdout, stderr io.Writer) int {
	own, serveArgs := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 {
		own, serveArgs = args[:i], args[i+1:]
	}
	cfg := devcluster.DefaultConfig()
	fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devclusterUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, own, stderr, envDevcluster); !ok {
		return code
	}
	cfg.ServeArgs = serveArgs
	if err := cfg.Validate(); err != nil {
		return fail(stderr, "devcluster", err, 2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the nodes in order; a second one ends
	// devcluster at once (on Linux the kernel then sends the nodes SIGTERM).
	go func() { <-ctx.Done(); stop() }()
	if err := devcluster.Run(ctx, cfg, stdout, stderr); err != nil {
		return fail(stderr, "devcluster", err, 1)
	}
	return 0
}
