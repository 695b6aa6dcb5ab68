//go:build linux

package chaos

import (
	"net"
	"syscall"
	"unsafe"
)

// tcpEstablished is TCP_ESTABLISHED of linux/tcp_states.h.
const tcpEstablished = 1

// tcpClosed reports whether the peer closed or reset c, from the kernel's
// state of the socket (TCP_INFO), without reading from it: a stalled
// subscriber must never read. known is false when the state could not be
// read.
func tcpClosed(c net.Conn) (closed, known bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false, false
	}
	var state byte
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		// struct tcp_info starts with its u8 tcpi_state; the kernel
		// copies at most len bytes.
		var info [256]byte
		l := uint32(len(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
		state = info[0]
	})
	if err != nil || errno != 0 {
		return false, false
	}
	return state != tcpEstablished, true
}

// smallReceiveBuffer sets SO_RCVBUF before connecting, so the advertised
// window stays small and the node's writes back up at once.
func smallReceiveBuffer(size int) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, size)
		}); err != nil {
			return err
		}
		return serr
	}
}
