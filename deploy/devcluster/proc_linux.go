package devcluster

import "syscall"

// sysProcAttr puts each node in its own process group, so a Ctrl-C in the
// terminal reaches devcluster alone and it stops the nodes itself, and asks
// the kernel to send the node SIGTERM if devcluster dies without stopping
// them (kill -9), so no node outlives it holding the ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
