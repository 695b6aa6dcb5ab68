//go:build linux

package chaos

import "syscall"

// childAttr puts each node in its own process group, so that a Ctrl-C on
// the terminal reaches the chaos process only, which cleans up.
//
// Pdeathsig is deliberately not set: the kernel sends it when the thread
// that forked the child exits (go.dev/issue/27505), and in practice nodes
// were SIGKILLed in the middle of runs. Leftovers of a chaos process that
// was itself killed -9 are removed by the next run (netns.RemoveStale kills
// the processes inside stale namespaces).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
