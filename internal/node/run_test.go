package node

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testlog"
)

// hungServer is a shutdown whose step ignores its context.
type hungServer struct {
	release chan struct{}
}

func (h hungServer) Shutdown(context.Context) error { <-h.release; return nil }
func (h hungServer) ShutdownStep() string           { return "raft node shutdown: memberlist shutdown" }

// A shutdown that does not return within --shutdown-timeout does not keep
// the process: Run gives up on it with ErrShutdownHung, logging the step
// that hung and, at debug level, every goroutine's stack.
func TestShutdownWithin_HungStep_GivesUpNamingTheStep(t *testing.T) {
	h := hungServer{release: make(chan struct{})}
	defer close(h.release)
	var out testlog.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))

	done := make(chan error, 1)
	go func() { done <- shutdownWithin(h, log, 10*time.Millisecond) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("shutdownWithin did not give up on a hung shutdown")
	}
	if !errors.Is(err, ErrShutdownHung) || !strings.Contains(err.Error(), "memberlist shutdown") {
		t.Fatalf("err %v, want ErrShutdownHung naming the step", err)
	}
	logged := out.String()
	if !strings.Contains(logged, `step="raft node shutdown: memberlist shutdown"`) {
		t.Fatalf("the log does not name the step that hung:\n%s", logged)
	}
	if !strings.Contains(logged, "goroutines of the hung shutdown") || !strings.Contains(logged, "hungServer.Shutdown") {
		t.Fatalf("the debug log lacks the goroutines' stacks:\n%.2000s", logged)
	}
}
