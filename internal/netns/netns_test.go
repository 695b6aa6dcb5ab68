package netns

import (
	"errors"
	"net"
	"testing"
)

func TestPartitionPairs(t *testing.T) {
	for _, c := range []struct {
		name   string
		groups [][]int
		want   [][2]int
	}{
		{"isolate one", [][]int{{1}, {2, 3}}, [][2]int{{1, 2}, {1, 3}}},
		{"bridge keeps its links", [][]int{{1, 2}, {2, 3}}, [][2]int{{1, 3}}},
		{"bridge of five", [][]int{{1, 2, 3}, {3, 4, 5}}, [][2]int{{1, 4}, {1, 5}, {2, 4}, {2, 5}}},
		{"three groups", [][]int{{1}, {2}, {3}}, [][2]int{{1, 2}, {1, 3}, {2, 3}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := PartitionPairs(c.groups...)
			if len(got) != len(c.want) {
				t.Fatalf("cuts %v, want %v", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Fatalf("cuts %v, want %v", got, c.want)
				}
			}
		})
	}
}

func TestStaleName(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"qq999999999-1-sw", true}, // no such process
		{"qq999999999-1h3", true},
		{"qq1-1", false}, // init is alive
		{"qqx-1", false},
		{"eth0", false},
		{"qmq999999999-1", false},
	} {
		if got := staleName(c.name); got != c.want {
			t.Errorf("staleName(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestNet_PartitionCutsBothWaysAndHeals needs root; it skips with the
// reason otherwise.
func TestNet_PartitionCutsBothWaysAndHeals(t *testing.T) {
	nn, err := New(t.Logf)
	if errors.Is(err, ErrUnavailable) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nn.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for want := 1; want <= 3; want++ {
		if got, err := nn.AddSlot(); err != nil || got != want {
			t.Fatalf("AddSlot = %d, %v; want %d", got, err, want)
		}
	}
	// The creating process reaches every slot (AddSlot checked); a
	// partition adds blackhole routes between the node namespaces only.
	if err := nn.Partition([]int{1}, []int{2, 3}); err != nil {
		t.Fatal(err)
	}
	if got := nn.Cuts(); len(got) != 4 {
		t.Fatalf("cuts %v, want 1<->2 and 1<->3", got)
	}
	if err := nn.Partition([]int{1}, []int{2}); err != nil { // idempotent
		t.Fatal(err)
	}
	if got := nn.Cuts(); len(got) != 4 {
		t.Fatalf("cuts after repeating a cut: %v", got)
	}
	if err := nn.Heal(); err != nil {
		t.Fatal(err)
	}
	if got := nn.Cuts(); len(got) != 0 {
		t.Fatalf("cuts after heal: %v", got)
	}
	if ip := net.ParseIP(nn.IP(2)); ip == nil || ip.To4()[3] != 3 {
		t.Fatalf("IP(2) = %q, want S.3", nn.IP(2))
	}
}
