package rafthost

import (
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
func newTransport(bind, advertise string, logger hclog.Logger) (*raft.NetworkTransport, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	layer := &streamLayer{Listener: ln, advertise: ln.Addr()}
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

// streamLayer is a raft.StreamLayer over plain TCP.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return (&net.Dialer{Timeout: timeout}).Dial("tcp", string(address))
}

// hostAddr is an advertised "host:port" whose host may be a name.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }
