package testkit

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

func TestAwaitStopped_WaitsForTheStopNotTheSignal(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	if err := awaitStopped(cmd.Process.Pid, 300*time.Millisecond); err == nil {
		t.Fatal("a running process was reported stopped")
	}
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := awaitStopped(cmd.Process.Pid, 5*time.Second); err != nil {
		t.Fatalf("after SIGSTOP: %v", err)
	}
}
