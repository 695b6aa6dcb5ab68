package node

import (
	"context"
	"errors"
	"fmt"
	"os"
)

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
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	}
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
