// Package peertest gives tests a node-to-node client.
package peertest

import (
	"testing"

	"github.com/quorumq/quorumq/internal/peer"
)

// Client returns a peer.Client with the default options whose pool is
// closed when the test ends.
func Client(tb testing.TB) *peer.Client {
	tb.Helper()
	c, err := peer.New(peer.DefaultOptions())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.CloseIdleConnections)
	return c
}
