//go:build !linux

package devcluster

import "syscall"

// sysProcAttr: elsewhere the nodes share devcluster's process group, so a
// Ctrl-C reaches them too; they stop on it just as on devcluster's SIGTERM.
func sysProcAttr() *syscall.SysProcAttr { return nil }
