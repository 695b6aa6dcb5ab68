//go:build unix

package testport

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

var (
	lockMu sync.Mutex
	locks  []*os.File // held open, so their locks last as long as the process
)

// lockAcrossProcesses takes port's lock file in the temporary directory,
// shared by every test process of the machine. It reports false when
// another process holds it. A directory that cannot be made leaves the
// port unlocked (true): the in-process check still applies.
func lockAcrossProcesses(port int) bool {
	dir := filepath.Join(os.TempDir(), "quorumq-testport")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return true
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d.lock", port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	lockMu.Lock()
	locks = append(locks, f)
	lockMu.Unlock()
	return true
}
