package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"
)

// lastResortGrace is how long past --shutdown-timeout Run waits for a
// shutdown whose steps ignore their context before it gives up on it.
const lastResortGrace = 2 * time.Second

// ErrShutdownHung is Run's error when the shutdown did not return within
// --shutdown-timeout (and lastResortGrace): the process exits anyway.
var ErrShutdownHung = errors.New("shutdown hung")

// Signals are what the process hands the running node: Stop for SIGINT
// and SIGTERM, Reopen for SIGHUP (Server.Reload).
type Signals struct {
	Stop   <-chan os.Signal
	Reopen <-chan os.Signal
}

// Run starts the node and serves until a stop signal, a completed leave
// (POST /cluster/leave) or a fatal serving error, then shuts down within
// cfg.ShutdownTimeout. It returns nil after a clean stop. The caller
// registers the signals before calling Run, so one sent during start-up is
// not lost.
func Run(cfg Config, sigs Signals) error {
	srv, err := Start(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	log := srv.log
	shutdown := func() error { return shutdownWithin(srv, log, cfg.ShutdownTimeout) }
	for {
		select {
		case <-sigs.Reopen:
			err := srv.Reload()
			if errors.Is(err, ErrReopen) {
				shutdown()
				return err
			}
			if err != nil {
				log.Error("reload: kept what could not be reloaded", "err", err)
			} else {
				log.Info("reloaded", "tls", srv.tls != nil, "gossip_keys", srv.cfg.GossipKeyFile != "", "overflow_log", srv.cfg.OverflowLog)
			}
		case sig := <-sigs.Stop:
			log.Info("shutting down", "signal", sig.String())
			return shutdown()
		case <-srv.Left():
			log.Info("left the cluster; stopping")
			return shutdown()
		case err := <-srv.Err():
			shutdown()
			return fmt.Errorf("fatal: %w", err)
		}
	}
}

// shutdowner is what shutdownWithin stops: a *Server.
type shutdowner interface {
	Shutdown(context.Context) error
	ShutdownStep() string
}

// shutdownWithin shuts srv down within timeout. Every step of the shutdown
// is bounded by its context, but a step that is not (or a bug) must not
// keep the process up: past timeout and lastResortGrace it logs the step
// that hung, every goroutine's stack at debug level, and returns
// ErrShutdownHung so that the process exits.
func shutdownWithin(srv shutdowner, log *slog.Logger, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	last := time.NewTimer(timeout + lastResortGrace)
	defer last.Stop()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	case <-last.C:
		step := srv.ShutdownStep()
		log.Error("shutdown did not finish within --shutdown-timeout; exiting anyway", "step", step, "shutdown_timeout", timeout)
		if log.Enabled(context.Background(), slog.LevelDebug) {
			var b bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&b, 2)
			log.Debug("goroutines of the hung shutdown", "stacks", b.String())
		}
		return fmt.Errorf("%w: %s", ErrShutdownHung, step)
	}
}
