//go:build unix

package pubsub

import "syscall"

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
