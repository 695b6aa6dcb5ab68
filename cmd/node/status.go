package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

// runStatus is `quorumq status`: one node's view of the cluster, as a table
// (or the raw JSON of /cluster/status with --json).
func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	addr := fs.String("addr", "http://127.0.0.1:8081", "queue URL of any node")
	asJSON := fs.Bool("json", false, "print /cluster/status as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on the request")
	if err := cli.Parse(fs, args, stderr, "QUORUMQ_STATUS_"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumq status: %v\n", err)
		return 2
	}
	q, err := client.NewQueue([]string{*addr}, nil)
	if err != nil {
		fmt.Fprintf(stderr, "quorumq status: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := q.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "quorumq status: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "node %s is %s; leader %s; term %d, commit index %d, applied %d\n\n",
		st.NodeID, st.State, orNone(st.LeaderID), st.Term, st.CommitIndex, st.AppliedIndex)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATUS\tVOTER\tQUEUE\tPUBSUB\tRAFT")
	for _, m := range st.Members {
		id := m.ID
		if m.ID == st.LeaderID {
			id += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", id, m.Status, m.Voter, m.QueueAddr, m.PubsubAddr, m.RaftAddr)
	}
	tw.Flush()
	return 0
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
