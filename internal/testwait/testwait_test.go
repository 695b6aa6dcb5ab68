package testwait

import (
	"testing"
	"time"
)

func TestFor_ReturnsOnceTheConditionHolds(t *testing.T) {
	polls := 0
	For(t, 10*time.Second, "the third poll", func() bool {
		polls++
		return polls == 3
	})
	if polls != 3 {
		t.Fatalf("%d polls, want 3", polls)
	}
}

// recorder is a testing.TB that records a Fatalf instead of ending the
// test, so the timeout path can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestFor_FailsAfterTheTimeout(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if v := recover(); v != r {
				t.Fatalf("recovered %v, want the recorder's Fatalf", v)
			}
		}()
		For(r, 30*time.Millisecond, "nothing", func() bool { return false })
	}()
	if r.failed == "" {
		t.Fatal("no failure reported")
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("gave up after %v, before the timeout", d)
	}
}
