package main

import (
	"context"
	"flag"
	"io"
	"os"

	"github.com/quorumq/quorumq/internal/health"
)

const healthUsage = `Usage: quorumq health [--timeout=3s]

The container health check: asks the node serving in this container for
/readyz and exits 0 when it is ready (a leader is known and the node has
caught up), 1 otherwise. It reads serve's own variables: the port from
QUORUMQ_QUEUE_ADDR (8081), HTTPS when QUORUMQ_TLS_CERT is set, trusting
QUORUMQ_TLS_CA (without one, the loopback answer is not verified; /readyz
carries no secret).

Flags:
`

func runHealth(args []string, stderr io.Writer) int {
	cfg := health.FromEnv(os.Getenv)
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "bound on the check")
	fs.Usage = func() {
		io.WriteString(fs.Output(), healthUsage)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args, stderr, ""); !ok {
		return code
	}
	return exitStatus(stderr, fs.Name(), health.Check(context.Background(), cfg), health.ErrInvalid)
}
