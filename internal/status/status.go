// Package status is `quorumq status`: one node's view of the cluster
// (members, leader, indexes), printed as a table or as JSON.
package status

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

// Config says which node to ask and how to print the answer.
type Config struct {
	// Addr is the queue URL of any node.
	Addr string
	// JSON prints /cluster/status as indented JSON instead of a table.
	JSON bool
	// Timeout bounds the request; it must be positive.
	Timeout time.Duration
	// Token and TLS are the client's credentials for a secured cluster
	// (client.Options.Token and TLS): with TLS, Addr is dialled as
	// https://.
	Token string
	TLS   *tls.Config
}

// DefaultConfig returns the defaults: the local node's queue port, a table
// and a 5 s bound.
func DefaultConfig() Config {
	return Config{Addr: "http://127.0.0.1:8081", Timeout: 5 * time.Second}
}

// ErrInvalid marks a Config that Validate refuses.
var ErrInvalid = errors.New("invalid status configuration")

// Validate reports the first problem of c, wrapping ErrInvalid.
func (c Config) Validate() error {
	switch {
	case c.Addr == "":
		return fmt.Errorf("%w: --addr is empty", ErrInvalid)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: --timeout=%v must be positive", ErrInvalid, c.Timeout)
	}
	return nil
}

// RegisterFlags defines the status flags on fs, writing into c, whose
// values are the flags' defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", c.Addr, "queue URL of any node")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print /cluster/status as JSON")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound on the request")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
}

// Show asks cfg.Addr for its view of the cluster and writes it to w.
func Show(ctx context.Context, cfg Config, w io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	opts := client.DefaultOptions()
	opts.Token, opts.TLS = cfg.Token, cfg.TLS
	q, err := client.NewQueue([]string{cfg.Addr}, &opts)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	st, err := q.Status(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return writeTable(w, st)
}

func writeTable(w io.Writer, st *api.Status) error {
	fmt.Fprintf(w, "node %s is %s; leader %s; term %d, commit index %d, applied %d\n",
		st.NodeID, st.State, orNone(st.LeaderID), st.Term, st.CommitIndex, st.AppliedIndex)
	if why := st.NoLeaderReason(); why != "" {
		fmt.Fprintln(w, why)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tSTATUS\tVOTER\tQUEUE\tPUBSUB\tRAFT")
	for _, m := range st.Members {
		id := m.ID
		if m.ID == st.LeaderID {
			id += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", id, m.Status, m.Voter, m.QueueAddr, m.PubsubAddr, m.RaftAddr)
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
