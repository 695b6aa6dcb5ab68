package rafthost

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/quorumq/quorumq/internal/certs"
	"github.com/quorumq/quorumq/internal/certs/certstest"
)

func tlsFor(m *certs.Material) *TLS {
	return &TLS{Server: m.MutualConfig(), Client: m.ClientConfig(), PeerID: certs.PeerNodeID}
}

func mustTransport(t *testing.T, tl *TLS) *raft.NetworkTransport {
	t.Helper()
	tr, err := newTransport("127.0.0.1:0", "", tl, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// answerVotes answers every RequestVote the transport receives, and
// reports the ids they claimed.
func answerVotes(t *testing.T, tr *raft.NetworkTransport) <-chan string {
	got := make(chan string, 16)
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		for {
			select {
			case rpc := <-tr.Consumer():
				if req, ok := rpc.Command.(*raft.RequestVoteRequest); ok {
					got <- string(req.RPCHeader.ID)
				}
				rpc.Respond(&raft.RequestVoteResponse{Term: 1}, nil)
			case <-done:
				return
			}
		}
	}()
	return got
}

func vote(from, id string, term uint64) *raft.RequestVoteRequest {
	return &raft.RequestVoteRequest{
		RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(id), Addr: []byte(from)},
		Term:               term,
		LeadershipTransfer: true,
	}
}

// TestTransport_MutualTLS_RPCMustNameItsCertificatesNode: over mutual TLS
// an RPC from node n2 that names n2 is served; one from n2's connection
// that claims to be n1 is refused before raft sees it; a peer without a
// certificate of the cluster CA cannot connect at all.
func TestTransport_MutualTLS_RPCMustNameItsCertificatesNode(t *testing.T) {
	ca := certstest.NewCA(t)
	n1 := mustTransport(t, tlsFor(certstest.Material(t, ca.Node(t, "n1"))))
	votes := answerVotes(t, n1)
	n2 := mustTransport(t, tlsFor(certstest.Material(t, ca.Node(t, "n2"))))
	target := n1.LocalAddr()

	var resp raft.RequestVoteResponse
	if err := n2.RequestVote("n1", target, vote(string(n2.LocalAddr()), "n2", 5), &resp); err != nil {
		t.Fatalf("genuine vote request: %v", err)
	}
	if id := <-votes; id != "n2" {
		t.Fatalf("served a vote from %q", id)
	}

	if err := n2.RequestVote("n1", target, vote(string(n2.LocalAddr()), "n1", 1000), &resp); err == nil {
		t.Fatal("a vote request naming another node was answered")
	}

	other := certstest.NewCA(t) // same node id, wrong CA
	rogue := mustTransport(t, tlsFor(certstest.Material(t, other.Node(t, "n2"))))
	if err := rogue.RequestVote("n1", target, vote(string(rogue.LocalAddr()), "n2", 1000), &resp); err == nil {
		t.Fatal("a peer of another CA was answered")
	}
	plain := mustTransport(t, nil)
	if err := plain.RequestVote("n1", target, vote(string(plain.LocalAddr()), "n2", 1000), &resp); err == nil {
		t.Fatal("a plain TCP peer was answered")
	}
	select {
	case id := <-votes:
		t.Fatalf("raft saw a refused request claiming %q", id)
	default:
	}
}

// TestTransport_MutualTLS_SnapshotStreamsThrough: an InstallSnapshot's
// data after its checked header reaches raft intact.
func TestTransport_MutualTLS_SnapshotStreamsThrough(t *testing.T) {
	ca := certstest.NewCA(t)
	n1 := mustTransport(t, tlsFor(certstest.Material(t, ca.Node(t, "n1"))))
	n2 := mustTransport(t, tlsFor(certstest.Material(t, ca.Node(t, "n2"))))
	data := make([]byte, 3<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	got := make(chan []byte, 1)
	go func() {
		rpc := <-n1.Consumer()
		b, _ := io.ReadAll(rpc.Reader)
		got <- b
		rpc.Respond(&raft.InstallSnapshotResponse{Success: true}, nil)
	}()
	req := &raft.InstallSnapshotRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("n2"), Addr: []byte(n2.LocalAddr())},
		Term:      2, LastLogIndex: 10, LastLogTerm: 2, Size: int64(len(data)),
		SnapshotVersion: raft.SnapshotVersionMax,
	}
	var resp raft.InstallSnapshotResponse
	if err := n2.InstallSnapshot("n1", n1.LocalAddr(), req, &resp, bytesReader(data)); err != nil || !resp.Success {
		t.Fatalf("install snapshot: %v %+v", err, resp)
	}
	select {
	case b := <-got:
		if string(b) != string(data) {
			t.Fatalf("snapshot data: %d bytes, differs", len(b))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no snapshot")
	}
}

type byteReader struct{ b []byte }

func bytesReader(b []byte) io.Reader { return &byteReader{b} }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

var _ net.Conn = (*idConn)(nil)
