// Package testport hands tests loopback ports for nodes they start.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Reserve returns a loopback port that was free for both TCP and UDP a
// moment ago (memberlist needs the same port for both) and that no other
// Reserve or Free of this process returned; see Free. It fails the test
// when there is none.
func Reserve(tb testing.TB) int {
	tb.Helper()
	port, err := Free()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// Free returns a loopback port that was free for both TCP and UDP a moment
// ago and that no other Free of this process returned. Nodes started
// together need each other's ports before any of them binds, so the port
// cannot be held open. It comes from 20000-31999, below the kernel's
// ephemeral range (32768 and up by default), so an outgoing connection
// cannot take it between the check and the bind. The test binaries of
// other packages, run at the same time by go test, draw from the same
// range: a lock file per port, held until this process exits, keeps them
// from handing out the same port (a node restarted on its port would
// otherwise find it taken).
func Free() (int, error) {
	for range 200 {
		port := 20000 + rand.IntN(12000)
		mu.Lock()
		taken := given[port]
		given[port] = true
		mu.Unlock()
		if taken || !lockAcrossProcesses(port) {
			continue
		}
		tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return port, nil
	}
	return 0, errors.New("no free loopback port for TCP and UDP")
}
