//go:build unix

package datadir

import (
	"os"
	"syscall"
)

// lockExclusive takes an exclusive flock without waiting. flock locks
// belong to the open file, so a second open in the same process is refused
// too.
func lockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
