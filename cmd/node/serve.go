package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/quorumq/quorumq/fsm"
	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/pubsub"
)

// envPrefix starts the environment variable of every serve flag
// (--max-depth: QUORUMQ_MAX_DEPTH), as docker-compose configures nodes.
const envPrefix = "QUORUMQ_"

func serve(args []string, stderr io.Writer) int {
	var (
		cfg             node.Config
		join, overflow  string
		logFlags        cli.LogFlags
		shutdownTimeout time.Duration
	)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.NodeID, "node-id", "", "node id for raft and gossip (default: <hostname>-<random>, persisted in --data-dir)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./quorumq-data", "raft log, snapshots and node identity")
	fs.StringVar(&cfg.QueueAddr, "queue-addr", "0.0.0.0:8081", "simplequeue-compatible HTTP API")
	fs.StringVar(&cfg.PubsubAddr, "pubsub-addr", "0.0.0.0:8080", "pubsub-compatible HTTP API")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", "0.0.0.0:8300", "raft transport")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", "0.0.0.0:7946", "memberlist gossip (TCP and UDP)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "host other nodes use to reach this one (default: bind host, or the first non-loopback address when binding 0.0.0.0)")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of existing members")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", 1, "number of servers to wait for before the first election")
	fs.DurationVar(&cfg.ForwardTimeout, "forward-timeout", 5*time.Second, "how long a request waits for a leader before 503")

	fs.Int64Var(&cfg.MaxMsgSize, "max-msg-size", 256<<10, "largest message in bytes (413 above)")
	fs.Int64Var(&cfg.MaxBodySize, "max-body-size", 5<<20, "largest request body in bytes (413 above)")
	fs.Int64Var(&cfg.MaxDepth, "max-depth", 0, "messages a queue may hold (0: unlimited)")
	fs.Int64Var(&cfg.MaxBytes, "max-bytes", 0, "message bytes a queue may hold (0: unlimited)")
	policy := fs.String("overflow-policy", "reject", "when a queue is full: reject (non-200, nothing stored) or evict-oldest (simplequeue's behaviour)")
	fs.StringVar(&overflow, "overflow-log", "", "file that receives messages evicted by evict-oldest (reopened on SIGHUP)")
	fs.IntVar(&cfg.MaxMGet, "max-mget", 0, "upper bound for /mget?items= (0: unlimited)")
	fs.StringVar(&cfg.MGetSep, "mget-item-sep", "\n", "default separator between /mget items")
	fs.StringVar(&cfg.MPutSep, "mput-item-sep", "\n", "default separator of /mput records")
	fs.Int64Var(&cfg.MaxPendingBytes, "max-pending-bytes", 50<<20, "unsent bytes a pubsub subscriber may have before it is kicked")
	fs.DurationVar(&cfg.FanoutTimeout, "fanout-timeout", time.Second, "how long a publish waits for other nodes; a delivery not done by then counts as failed")
	fs.IntVar(&cfg.FanoutQueue, "fanout-queue", 1024, "publishes waiting per other node before more count as failed")
	fs.Func("route", "TOPIC:QUEUE: also enqueue every message published on TOPIC on this node into QUEUE before answering /pub (repeatable or comma-separated)",
		func(v string) error {
			rs, err := pubsub.ParseRoutes(v)
			cfg.Routes = append(cfg.Routes, rs...)
			return err
		})

	fs.DurationVar(&cfg.HeartbeatTimeout, "raft-heartbeat-timeout", 0, "raft heartbeat timeout (0: cluster default)")
	fs.DurationVar(&cfg.ElectionTimeout, "raft-election-timeout", 0, "raft election timeout (0: cluster default)")
	fs.DurationVar(&cfg.LeaderLeaseTimeout, "raft-leader-lease-timeout", 0, "raft leader lease timeout (0: cluster default)")
	fs.DurationVar(&cfg.CommitTimeout, "raft-commit-timeout", 0, "raft commit timeout (0: cluster default)")
	fs.Uint64Var(&cfg.SnapshotThreshold, "raft-snapshot-threshold", 0, "log entries between snapshots (0: cluster default)")
	fs.DurationVar(&cfg.SnapshotInterval, "raft-snapshot-interval", 0, "how often to check for a snapshot (0: cluster default)")
	fs.Uint64Var(&cfg.TrailingLogs, "raft-trailing-logs", 0, "log entries kept after a snapshot (0: cluster default)")
	fs.IntVar(&cfg.MaxAppendEntries, "raft-max-append-entries", 0, "entries per append RPC and apply batch (0: cluster default)")
	fs.IntVar(&cfg.PendingEntries, "raft-pending-entries", 0, "coalesced entries in raft at once: 1 makes the biggest entries, 2 overlaps slow log writes (0: cluster default, 1)")

	fs.StringVar(&cfg.DebugAddr, "debug-addr", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060 (default: off)")
	logFlags.Register(fs)
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 30*time.Second, "bound on a graceful shutdown")

	if err := cli.Parse(fs, args, stderr, envPrefix); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq serve: %v\n", err)
		return 2
	}
	logger, err := logFlags.Logger(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "quorumq serve: %v\n", err)
		return 2
	}
	switch *policy {
	case "reject":
		cfg.OverflowPolicy = fsm.OverflowReject
	case "evict-oldest":
		cfg.OverflowPolicy = fsm.OverflowEvictOldest
	default:
		fmt.Fprintf(stderr, "quorumq serve: --overflow-policy=%q: want reject or evict-oldest\n", *policy)
		return 2
	}
	if join != "" {
		for _, a := range strings.Split(join, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.Join = append(cfg.Join, a)
			}
		}
	}
	cfg.OverflowLog = overflow
	cfg.Logger = logger

	// Signals first, so a SIGTERM during start-up is not lost.
	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(stop)
	reopen := make(chan os.Signal, 1)
	signal.Notify(reopen, syscall.SIGHUP)
	defer signal.Stop(reopen)
	if err := node.Run(cfg, node.Signals{Stop: stop, Reopen: reopen}, shutdownTimeout); err != nil {
		logger.Error("quorumq serve", "err", err)
		return 1
	}
	return 0
}
