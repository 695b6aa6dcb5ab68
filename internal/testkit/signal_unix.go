//go:build unix

package testkit

import (
	"os"
	"syscall"
)

func signalKill(p *os.Process) {
	p.Signal(syscall.SIGCONT) // a stopped process dies on SIGKILL too; this is for clarity in ps
	p.Signal(syscall.SIGKILL)
}
func signalTerm(p *os.Process) error   { return p.Signal(syscall.SIGTERM) }
func signalStop(p *os.Process) error   { return p.Signal(syscall.SIGSTOP) }
func signalCont(p *os.Process) error   { return p.Signal(syscall.SIGCONT) }
func signalHangup(p *os.Process) error { return p.Signal(syscall.SIGHUP) }
