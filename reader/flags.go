package reader

import (
	"flag"
	"slices"
	"strings"

	"github.com/quorumq/quorumq/client"
)

// RegisterFlags defines on fs the flags every reader program shares,
// writing into c, whose values are the flags' defaults: --queue-url
// (Addrs: repeatable or comma-separated; the first use replaces the
// default), --queue, --concurrency, and --token and --tls-ca for a secured
// cluster (client.RegisterSecurityFlags). A program sets its own defaults
// in c before it calls RegisterFlags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	addrsUsage := "queue port URL of a node (repeatable or comma-separated"
	if !c.DisableDiscovery {
		addrsUsage += "; the other nodes are discovered"
	}
	fs.Var(&addrsFlag{addrs: &c.Addrs}, "queue-url", addrsUsage+")")
	queueUsage := "queue to read"
	if c.Queue == "" {
		queueUsage += " (default: the queue named default)"
	}
	fs.StringVar(&c.Queue, "queue", c.Queue, queueUsage)
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "messages processed at once")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
}

// addrsFlag is --queue-url: the addresses given replace the default
// rather than add to it.
type addrsFlag struct {
	addrs *[]string
	given client.AddrList
}

func (f *addrsFlag) String() string {
	if f == nil || f.addrs == nil {
		return ""
	}
	return strings.Join(*f.addrs, ",")
}

func (f *addrsFlag) Set(v string) error {
	if err := f.given.Set(v); err != nil {
		return err
	}
	*f.addrs = slices.Clone(f.given)
	return nil
}
