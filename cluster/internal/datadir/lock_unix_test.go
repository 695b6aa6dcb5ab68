//go:build unix

package datadir

import (
	"errors"
	"testing"
)

// A held lock refuses a second one, even in the same process, until it is
// released.
func TestLock_SecondRefusedUntilUnlocked(t *testing.T) {
	dir := t.TempDir()
	l, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Lock: err = %v, want ErrInUse", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after Unlock: %v", err)
	}
	l2.Unlock()
}
