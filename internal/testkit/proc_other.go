//go:build !linux

package testkit

import "syscall"

// sysProcAttr: elsewhere children share the starter's process group
// whatever the Lifetime, so a Ctrl-C reaches them too; quorumq stops on it
// as on SIGTERM.
func sysProcAttr(Lifetime) *syscall.SysProcAttr { return nil }
