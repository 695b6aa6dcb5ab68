package redistest

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel kill the server if the test process dies
// without running its cleanups.
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
