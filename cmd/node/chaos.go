package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
)

// chaosRunner is the fault-injection runner's binary. It is its own binary
// (cmd/chaos) so that the server does not link the checker; `quorumq
// chaos` runs it.
const chaosRunner = "quorumq-chaos"

// runChaos is `quorumq chaos`: it runs quorumq-chaos, found beside this
// binary or on PATH, with the same arguments and standard streams, and
// exits with its status. SIGINT and SIGTERM reach the runner (a terminal
// sends them to both), which stops its nodes and reports.
func runChaos(args []string, stdout, stderr io.Writer) int {
	path, err := findChaosRunner()
	if err != nil {
		fmt.Fprintf(stderr, "quorumq chaos: %v\n", err)
		return 2
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// The runner handles the signals; this process only waits for it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "quorumq chaos: %v\n", err)
		return 2
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	close(sigs)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	default:
		fmt.Fprintf(stderr, "quorumq chaos: %v\n", err)
		return 1
	}
}

// findChaosRunner looks for quorumq-chaos beside this binary, then on PATH.
func findChaosRunner() (string, error) {
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), chaosRunner)
		if fi, err := os.Stat(beside); err == nil && !fi.IsDir() {
			return beside, nil
		}
	}
	if path, err := exec.LookPath(chaosRunner); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("%s is neither beside this binary nor on PATH: build it with `make build` (or go build -o bin/%s ./cmd/chaos)", chaosRunner, chaosRunner)
}
