package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/quorumq/quorumq/internal/cli"
	"github.com/quorumq/quorumq/internal/ops/backup"
)

const backupUsage = `Usage: quorumq backup --queue-addrs=URL[,URL...] --out=FILE [flags]

Writes a consistent snapshot of the cluster's queue state (every queue, its
settings and counters, ready, deferred, leased and dead-lettered messages)
to FILE: GET /backup on the leader (a follower redirects; --stale takes the
first node's applied state instead). FILE appears only once the backup is
whole; --out=- writes to stdout. Needs the admin role.

Flags:
`

const restoreUsage = `Usage: quorumq restore --queue-addrs=URL[,URL...] --in=FILE [flags]

Replaces the queue state of the whole cluster with a backup made by
"quorumq backup": POST /restore on the leader (a follower redirects), which
checks the backup, takes it up and sends it to every follower as a
snapshot. Everything the queues held before is gone. Meant for disaster
recovery into a fresh or stopped-writing cluster. Needs the admin role.

Flags:
`

// runBackup is `quorumq backup`.
func runBackup(args []string, stdout, stderr io.Writer) int {
	cfg := backup.DefaultConfig()
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var out string
	fs.StringVar(&out, "out", "", "file to write the backup to (- for stdout)")
	fs.BoolVar(&cfg.Stale, "stale", false, "back up the first node that answers, as it has applied the log, instead of the leader")
	return runOps(fs, args, stderr, envBackup, backupUsage, backup.ErrInvalid, func(ctx context.Context, logger *slog.Logger) error {
		cfg.Logger = logger
		n, err := backup.Backup(ctx, cfg, out, stdout)
		if err == nil && out != "-" {
			fmt.Fprintf(stderr, "backup: %d bytes written to %s\n", n, out)
		}
		return err
	})
}

// runRestore is `quorumq restore`.
func runRestore(args []string, stdout, stderr io.Writer) int {
	cfg := backup.DefaultConfig()
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	var in string
	fs.StringVar(&in, "in", "", "backup file to restore")
	return runOps(fs, args, stderr, envRestore, restoreUsage, backup.ErrInvalid, func(ctx context.Context, logger *slog.Logger) error {
		cfg.Logger = logger
		info, err := backup.Restore(ctx, cfg, in)
		if err == nil {
			fmt.Fprintf(stdout, "restored %d bytes; the cluster's state starts at index %d\n", info.Bytes, info.Index)
		}
		return err
	})
}

// runOps runs an operator tool whose flags fs holds: it parses them with
// parseOps, then calls run with the logger and a context that SIGINT or
// SIGTERM ends, and turns its error into the exit status (2 for an error
// marked invalid).
func runOps(fs *flag.FlagSet, args []string, stderr io.Writer, prefix, usage string, invalid error, run func(context.Context, *slog.Logger) error) int {
	logger, code, ok := parseOps(fs, args, stderr, prefix, usage)
	if !ok {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitStatus(stderr, fs.Name(), run(ctx, logger), invalid)
}

// parseOps parses the flags of an operator tool with its usage text and
// the log flags, and returns the logger they ask for. ok false means the
// command is over with exit status code.
func parseOps(fs *flag.FlagSet, args []string, stderr io.Writer, prefix, usage string) (logger *slog.Logger, code int, ok bool) {
	var logFlags cli.LogFlags
	logFlags.Register(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), usage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, prefix); !ok {
		return nil, code, false
	}
	l, err := logFlags.Logger(stderr)
	if err != nil {
		return nil, fail(stderr, fs.Name(), err, 2), false
	}
	return l, 0, true
}
