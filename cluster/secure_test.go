package cluster

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/certs/certstest"
)

// forger sends raft RPCs of its choosing: a bare NetworkTransport whose
// dials are plain TCP, or TLS with a given client configuration.
type forger struct {
	net.Listener
	tls *tls.Config
}

func (f *forger) Addr() net.Addr { return f.Listener.Addr() }

func (f *forger) Dial(a raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if f.tls == nil {
		return d.Dial("tcp", string(a))
	}
	return tls.DialWithDialer(d, "tcp", string(a), f.tls)
}

func newForger(t *testing.T, c *tls.Config) *raft.NetworkTransport {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: &forger{Listener: ln, tls: c}, MaxPool: 1, Timeout: 2 * time.Second, Logger: hclog.NewNullLogger(),
	})
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestCluster_MutualTLS_ForgedVotesMoveNothing: on a cluster whose raft
// transport is mutual TLS, a RequestVote with leadership transfer and a
// huge term, claiming to come from another voter, is refused whether it
// comes over plain TCP, over TLS with another CA's certificate, or over
// TLS with a real member's certificate that names a different node: the
// leader keeps leading and the term does not move.
func TestCluster_MutualTLS_ForgedVotesMoveNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	ca := certstest.NewCA(t)
	opts := make([]Options, 3)
	mats := map[string]*certs.Material{}
	for i := range opts {
		opts[i] = clusterOptions(t, 3)
		id := []string{"n1", "n2", "n3"}[i]
		opts[i].NodeID = id
		mats[id] = certstest.Material(t, ca.Node(t, id))
		opts[i].TLS = mats[id]
	}
	withSeeds(opts)
	nodes := startNodes(t, opts)
	leader := leaderOf(t, nodes, time.Minute)
	var victim *tnode // a voter other than the leader, whose id is claimed
	for _, n := range nodes {
		if n != leader {
			victim = n
		}
	}
	var thief string // a third member, whose certificate is used
	for _, n := range nodes {
		if n != leader && n != victim {
			thief = n.ID()
		}
	}
	term := leader.Status().Term
	rogue := certstest.Material(t, certstest.NewCA(t).Node(t, victim.ID()))
	for name, c := range map[string]*tls.Config{
		"plain TCP":                   nil,
		"another CA's certificate":    rogue.ClientConfig(),
		"a member naming another one": mats[thief].ClientConfig(),
	} {
		tr := newForger(t, c)
		req := &raft.RequestVoteRequest{
			RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(victim.ID()), Addr: []byte(victim.opts.RaftBind)},
			Term:               term + 1000,
			LastLogIndex:       1 << 40,
			LastLogTerm:        term + 999,
			LeadershipTransfer: true,
		}
		var resp raft.RequestVoteResponse
		if err := tr.RequestVote(raft.ServerID(leader.ID()), raft.ServerAddress(leader.opts.RaftBind), req, &resp); err == nil {
			t.Errorf("%s: the forged vote request was answered: %+v", name, resp)
		}
	}
	// The cluster still works, on the same term, under the same leader.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leader.ConsistentRead(ctx); err != nil {
		t.Fatal(err)
	}
	if st := leader.Status(); st.Term != term || st.State != "leader" {
		t.Fatalf("after forged votes: term %d -> %d, state %s", term, st.Term, st.State)
	}
}
