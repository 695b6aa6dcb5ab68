//go:build unix

package pubsub

import (
	"net"
	"syscall"
	"testing"
)

// setReceiveBuffer sets SO_RCVBUF on a socket before it connects, so that
// the advertised window is small from the start. (Shrinking it after the
// handshake can stall the connection in the kernel.)
func setReceiveBuffer(c syscall.RawConn, size int) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
	})
	if err != nil {
		return err
	}
	return serr
}

// sendBuffer reads SO_SNDBUF of a TCP connection.
func sendBuffer(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		v, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// wrappedConn stands for the wrappers a node puts around a connection
// (the connection cap's, TLS): each tells what it wraps.
type wrappedConn struct{ net.Conn }

func (w wrappedConn) NetConn() net.Conn { return w.Conn }

func TestSetSendBuffer_ThroughWrappers_ReachesTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	before := sendBuffer(t, tc)
	const want = 32 << 10 // the kernel doubles what it is given
	setSendBuffer(wrappedConn{wrappedConn{c}}, want)
	if got := sendBuffer(t, tc); got != 2*want {
		t.Fatalf("SO_SNDBUF %d after setting %d through two wrappers (was %d)", got, want, before)
	}
}
