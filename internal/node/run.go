package node

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Signals are what the process hands the running node: Stop for SIGINT
// and SIGTERM, Reopen for SIGHUP (log rotation).
type Signals struct {
	Stop   <-chan os.Signal
	Reopen <-chan os.Signal
}

// Run starts the node and serves until a stop signal, a completed leave
// (POST /cluster/leave) or a fatal serving error, then shuts down within
// shutdownTimeout. It returns nil after a clean stop. The caller registers
// the signals before calling Run, so one sent during start-up is not lost.
func Run(cfg Config, sigs Signals, shutdownTimeout time.Duration) error {
	srv, err := Start(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	log := srv.log
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
	for {
		select {
		case <-sigs.Reopen:
			if err := srv.ReopenLogs(); err != nil {
				shutdown()
				return fmt.Errorf("reopen overflow log: %w", err)
			}
			log.Info("reopened overflow log", "path", srv.cfg.OverflowLog)
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
