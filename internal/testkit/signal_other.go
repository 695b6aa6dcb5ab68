//go:build !unix

package testkit

import (
	"errors"
	"os"
)

var errNoSignals = errors.New("pausing processes needs SIGSTOP/SIGCONT (unix)")

func signalKill(p *os.Process)       { p.Kill() }
func signalTerm(p *os.Process) error { return p.Kill() }
func signalStop(*os.Process) error   { return errNoSignals }
func signalCont(*os.Process) error   { return errNoSignals }
func signalHangup(*os.Process) error { return errNoSignals }
