// Package crashpoint ends the process at a named point of its work, for
// tests of crash recovery. QUORUMQ_CRASHPOINT=NAME:N makes the N-th pass
// through Hit(NAME) kill the process with SIGKILL, as a power cut or the
// kernel's OOM killer would: no deferred function runs and nothing is
// flushed. Without the variable Hit costs one atomic load.
//
// Points: "fsm-apply" (after a committed entry changed the state, before
// the batch returns), "snapshot-written" (a snapshot written to raft's
// store, not yet committed there), "segment-roll" (a new body segment
// created, the sealed one not yet released).
package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// Env is the variable that arms a point.
const Env = "QUORUMQ_CRASHPOINT"

var (
	armed atomic.Bool
	point string
	left  atomic.Int64
)

func init() {
	name, n, err := Parse(os.Getenv(Env))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", Env, err)
		os.Exit(2)
	}
	if name != "" {
		point = name
		left.Store(n)
		armed.Store(true)
	}
}

// Parse reads NAME or NAME:N (N > 0, default 1); "" is no point.
func Parse(v string) (string, int64, error) {
	if v == "" {
		return "", 0, nil
	}
	name, count, found := strings.Cut(v, ":")
	n := int64(1)
	if found {
		var err error
		if n, err = strconv.ParseInt(count, 10, 64); err != nil || n <= 0 {
			return "", 0, fmt.Errorf("%q: want NAME or NAME:N with N a positive count", v)
		}
	}
	if name == "" {
		return "", 0, fmt.Errorf("%q: no point name", v)
	}
	return name, n, nil
}

// Hit counts a pass through the named point and kills the process on the
// armed pass.
func Hit(name string) {
	if !armed.Load() || name != point {
		return
	}
	if left.Add(-1) == 0 {
		fmt.Fprintf(os.Stderr, "crashpoint %s reached: killing the process\n", name)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
