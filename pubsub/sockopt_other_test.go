//go:build !unix

package pubsub

import "syscall"

// setReceiveBuffer leaves the default receive buffer on this platform.
func setReceiveBuffer(syscall.RawConn, int) error { return nil }
