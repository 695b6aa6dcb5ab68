package testport

import (
	"fmt"
	"net"
	"testing"
)

func TestReserve_DistinctBindablePortsBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := Reserve(t)
		if p < 20000 || p >= 32000 {
			t.Fatalf("port %d outside 20000-31999", p)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	p := Reserve(t)
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		t.Fatalf("reserved port %d does not bind: %v", p, err)
	}
	ln.Close()
}

// A port this process reserved is locked for other processes: a second
// lock on it fails while the first is held.
func TestReserve_LockedAgainstOtherProcesses(t *testing.T) {
	p := Reserve(t)
	if lockAcrossProcesses(p) {
		t.Fatalf("port %d could be locked again", p)
	}
}
