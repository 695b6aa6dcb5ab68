package main

import (
	"context"
	"flag"
	"io"

	"github.com/quorumq/quorumq/internal/status"
)

// runStatus is `quorumq status`: one node's view of the cluster, as a table
// (or the raw JSON of /cluster/status with --json).
func runStatus(args []string, stdout, stderr io.Writer) int {
	cfg := status.DefaultConfig()
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if code, ok := parse(fs, args, stderr, envStatus); !ok {
		return code
	}
	return exitStatus(stderr, fs.Name(), status.Show(context.Background(), cfg, stdout), status.ErrInvalid)
}
