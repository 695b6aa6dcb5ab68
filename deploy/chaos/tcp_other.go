//go:build !linux

package chaos

import (
	"net"
	"syscall"
)

// tcpClosed cannot read the socket's state here: a connection counts as
// closed only once its node's process is gone.
func tcpClosed(net.Conn) (closed, known bool) { return false, false }

// smallReceiveBuffer leaves the receive buffer alone here.
func smallReceiveBuffer(int) func(network, address string, c syscall.RawConn) error { return nil }
