package testkit

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// FreePort returns a loopback port that was free for TCP and UDP (as
// memberlist needs) a moment ago and that no FreePort of this process
// returned before: the kernel may hand a port out again once its
// listener is closed. It is the default port source of a Cluster; tests
// pass internal/testport's instead (ClusterOptions.Port).
func FreePort() (int, error) {
	for range 200 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", Loopback(port))
		ln.Close()
		if err != nil {
			continue
		}
		pc.Close()
		portsMu.Lock()
		fresh := !portsGiven[port]
		portsGiven[port] = true
		portsMu.Unlock()
		if fresh {
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port for TCP and UDP")
}

// Loopback is 127.0.0.1:port.
func Loopback(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }
