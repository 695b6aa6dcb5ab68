package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/quorumq/quorumq/deploy/devcluster"
	"github.com/quorumq/quorumq/internal/cli"
)

const devclusterUsage = `Usage: quorumq devcluster [--nodes=N] [--base-dir=DIR] [--base-port=P] [-- serve flags...]

Runs N "quorumq serve" nodes on 127.0.0.1 as child processes, each started
with --bootstrap-expect=N and --join=<every node's gossip address>, and
prints their output prefixed with [node<i>]. Node i (from 1) uses the ports
P+10(i-1): +0 pubsub, +1 queue, +2 raft, +3 gossip; id node<i>; data in
DIR/node<i>. Run it again on the same DIR and the nodes rejoin with their
data. Ctrl-C (or SIGTERM) stops every node. Flags after "--" are passed to
every node's serve command, e.g. -- --log-level=debug.

Flags:
`

// runDevcluster is `quorumq devcluster`.
func runDevcluster(args []string, stdout, stderr io.Writer) int {
	own, serveArgs := args, []string(nil)
	if i := slices.Index(args, "--"); i >= 0 {
		own, serveArgs = args[:i], args[i+1:]
	}
	var cfg devcluster.Config
	fs := flag.NewFlagSet("devcluster", flag.ContinueOnError)
	fs.IntVar(&cfg.Nodes, "nodes", devcluster.DefaultNodes, fmt.Sprintf("number of nodes (1 to %d)", devcluster.MaxNodes))
	fs.StringVar(&cfg.BaseDir, "base-dir", devcluster.DefaultBaseDir, "parent of the nodes' data directories (DIR/node<i>)")
	fs.IntVar(&cfg.BasePort, "base-port", devcluster.DefaultBasePort, "first port; node i uses base-port+10(i-1) to +3")
	fs.StringVar(&cfg.Binary, "binary", "", "quorumq binary to run the nodes with (default: this one)")
	fs.DurationVar(&cfg.StopTimeout, "stop-timeout", devcluster.DefaultStopTimeout, "how long to wait for the nodes after SIGTERM before SIGKILL")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devclusterUsage)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, own, stderr, envDevcluster); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq devcluster: %v\n", err)
		return 2
	}
	cfg.ServeArgs = serveArgs

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal stops the nodes in order; a second one ends
	// devcluster at once (on Linux the kernel then sends the nodes SIGTERM).
	go func() { <-ctx.Done(); stop() }()
	if err := devcluster.Run(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "quorumq devcluster: %v\n", err)
		return 1
	}
	return 0
}
