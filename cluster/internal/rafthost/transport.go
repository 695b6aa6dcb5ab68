package rafthost

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// newTransport opens raft's TCP transport. Unlike raft.NewTCPTransport it
// accepts a host name as the advertised address: peers then store and dial
// the name ("node1:8300"), so a node whose container comes back with a new
// IP stays reachable (raft-patterns §8.3).
//
// With t, every connection is mutual TLS: a peer without a certificate
// from the cluster CA cannot connect either way, and each RPC received
// must name the node of its connection's certificate (idConn).
func newTransport(bind, advertise string, t *TLS, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	layer := &streamLayer{Listener: ln, advertise: ln.Addr(), tls: t}
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("advertise address %q: %w", advertise, err)
		}
		if port == "0" { // bound to port 0: advertise the port we got
			port = strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		}
		layer.advertise = hostAddr(net.JoinHostPort(host, port))
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: transportPool,
		Timeout: transportTimeout,
		Logger:  logger,
	}), nil
}

// TLS is the raft transport's mutual TLS.
type TLS struct {
	// Server accepts peers (it must require and verify a client
	// certificate); Client dials them (it must verify theirs).
	Server, Client *tls.Config
	// PeerID is the node id of a verified client certificate.
	PeerID func(*tls.ConnectionState) (string, error)
}

// handshakeTimeout bounds the TLS handshake of an accepted connection.
const handshakeTimeout = transportTimeout

// streamLayer is a raft.StreamLayer over TCP, or mutual TLS with tls.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *TLS
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls == nil {
		return d.Dial("tcp", string(address))
	}
	return tls.DialWithDialer(d, "tcp", string(address), s.tls.Client)
}

// Accept returns the next connection. The TLS handshake is left to the
// connection's first read, in the transport's goroutine for it, so that
// one slow peer does not hold up the accept loop.
func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil || s.tls == nil {
		return c, err
	}
	tc := tls.Server(c, s.tls.Server)
	return newIDConn(tc, func() (string, error) {
		tc.SetDeadline(time.Now().Add(handshakeTimeout))
		defer tc.SetDeadline(time.Time{})
		if err := tc.Handshake(); err != nil {
			return "", fmt.Errorf("raft TLS handshake from %s: %w", c.RemoteAddr(), err)
		}
		cs := tc.ConnectionState()
		return s.tls.PeerID(&cs)
	}), nil
}

// hostAddr is an advertised "host:port" whose host may be a name.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// pipelineStall is how long one pipelined AppendEntries may wait to be
// handed to the pipeline's decoder before the pipeline is closed.
const pipelineStall = transportTimeout

// guardedTransport is raft's TCP transport with a watchdog on its
// pipelines. raft v1.7.3's pipeline (at 2 RPCs in flight its channels are
// unbuffered) deadlocks when a follower's answer ends raft's pipeline
// decoder (a newer term) while the replicate loop sends once more: the
// send waits for the transport's decoder, which waits for the gone
// reader, and raft closes the pipeline only after the send returns. That
// replicate goroutine then never stops, its heartbeats go on, and
// raft.Shutdown waits for it forever (seen in a chaos run: a leaving
// node's shutdown stuck in raft.Shutdown, the stacks in pipelineSend and
// decodeResponses). Closing the pipeline unblocks the send with an
// error; raft then stops the pipeline and replicates with single
// AppendEntries, which see the stop of replication, until a pipeline
// works again. Turning pipelining off instead (MaxRPCsInFlight 1) cost a
// quarter of a single client's put rate.
type guardedTransport struct {
	*raft.NetworkTransport
	stall time.Duration
}

func (t guardedTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	return guardedPipeline{AppendPipeline: p, stall: t.stall}, nil
}

// guardedPipeline closes its pipeline when a send waits longer than
// stall. A slow follower that merely holds the pipeline back costs a
// fallback to single AppendEntries, not correctness.
type guardedPipeline struct {
	raft.AppendPipeline
	stall time.Duration
}

func (p guardedPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	watchdog := time.AfterFunc(p.stall, func() { p.AppendPipeline.Close() })
	defer watchdog.Stop()
	return p.AppendPipeline.AppendEntries(args, resp)
}
