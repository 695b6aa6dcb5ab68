package crashpoint

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct {
		in   string
		name string
		n    int64
		bad  bool
	}{
		{"", "", 0, false},
		{"fsm-apply", "fsm-apply", 1, false},
		{"segment-roll:7", "segment-roll", 7, false},
		{"x:0", "", 0, true},
		{"x:-1", "", 0, true},
		{"x:y", "", 0, true},
		{":3", "", 0, true},
	} {
		name, n, err := Parse(c.in)
		if (err != nil) != c.bad || name != c.name || n != c.n {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d, error %v", c.in, name, n, err, c.name, c.n, c.bad)
		}
	}
}
