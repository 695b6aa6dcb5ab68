package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/api"
)

// Test-only views of a Node.

// LeaderID returns the id of the leader this node knows, or "".
func (n *Node) LeaderID() string { return n.leaderID() }

// GossipAddr returns the host:port other members use to reach this node's
// gossip port (the real port when GossipBind has port 0).
func (n *Node) GossipAddr() string { return n.members.GossipAddr() }

// WaitForLeader blocks until a leader is known and returns its id. It fails
// with api.ErrNoLeader (wrapping ctx.Err()) when ctx ends first, and with
// api.ErrShuttingDown once Shutdown has begun.
func (n *Node) WaitForLeader(ctx context.Context) (string, error) {
	const poll = 10 * time.Millisecond
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if id := n.leaderID(); id != "" {
			return id, nil
		}
		if n.host.IntakeClosed() {
			return "", fmt.Errorf("wait for leader: %w", api.ErrShuttingDown)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return "", fmt.Errorf("wait for leader: %w (%w)", api.ErrNoLeader, ctx.Err())
		}
	}
}

// shutdownLikeCrash is Shutdown without the leadership transfer: peers see
// what a killed process shows them.
func (n *Node) shutdownLikeCrash(ctx context.Context) error {
	n.shutdownOnce.Do(func() { n.shutdownErr = n.shutdown(ctx, false) })
	return n.shutdownErr
}

// metricValue returns the sum of the samples (for a histogram, the sample
// counts) of the metric called name among n's collectors whose labels
// include want.
func metricValue(t testing.TB, n *Node, name string, want map[string]string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(n.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue samples
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}
