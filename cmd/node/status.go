package main

import (
	"context"
	"flag"
	"io"

	"github.com/quorumq/quorumq/internal/status"
)

const statusUsage = `Usage: quorumq status [--addr=URL] [--json] [flags]

Shows one node's view of the cluster: its state, the leader it knows, its
term and indexes, and every member (gossip status, voter, addresses). With
no leader known it says why: unreachable voters, join seeds it could not
reach, or what its bootstrap waits for.

Flags:
`

// runStatus is `quorumq status`: one node's view of the cluster, as a table
// (or the raw JSON of /cluster/status with --json).
func runStatus(args []string, stdout, stderr io.Writer) int {
	cfg := status.DefaultConfig()
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	fs.Usage = func() {
		io.WriteString(fs.Output(), statusUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, envStatus); !ok {
		return code
	}
	return exitStatus(stderr, fs.Name(), status.Show(context.Background(), cfg, stdout), status.ErrInvalid)
}
