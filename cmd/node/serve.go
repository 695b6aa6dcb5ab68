package main

import (
	"flag"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/node"
)

// envPrefix starts the environment variable of every serve flag
// (--max-depth: QUORUMQ_MAX_DEPTH), as docker-compose configures nodes.
const envPrefix = "QUORUMQ_"

const serveUsage = `Usage: quorumq serve [flags]

Runs one node: the simplequeue API on --queue-addr (port 8081), pubsub on
--pubsub-addr (8080), Raft on --raft-addr (8300) and gossip on --gossip-addr
(7946), with its data in --data-dir. Alone it is a one-node cluster; give
every node of a cluster the same --join list and --bootstrap-expect=N.
SIGTERM or SIGINT: graceful shutdown; SIGHUP: reload certificates, gossip
keys and tokens, reopen the overflow log.

Flags:
`

func serve(args []string, stderr io.Writer) int {
	cfg := node.DefaultConfig()
	var logFlags cli.LogFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	logFlags.Register(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envPrefix); !ok {
		return code
	}
	logger, err := logFlags.Logger(stderr)
	if err != nil {
		return fail(stderr, "serve", err, 2)
	}
	cfg.Logger = logger
	cfg.OpenAnalytics = openAnalytics
	cfg.Version = version
	if err := cfg.Validate(); err != nil {
		return fail(stderr, "serve", err, 2)
	}

	// Signals first, so a SIGTERM during start-up is not lost.
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, syscall.SIGHUP)
	defer signal.Stop(reopen)
	if err := node.Run(cfg, node.Signals{Stop: stop, Reopen: reopen}); err != nil {
		logger.Error("quorumq serve", "err", err)
		return 1
	}
	return 0
}
