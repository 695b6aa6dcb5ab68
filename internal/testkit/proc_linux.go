package testkit

import "syscall"

func sysProcAttr(l Lifetime) *syscall.SysProcAttr {
	switch l {
	case OwnGroup:
		return &syscall.SysProcAttr{Setpgid: true}
	case OwnGroupTermWithParent:
		return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	}
	return nil
}
