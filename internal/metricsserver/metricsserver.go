// Package metricsserver serves a Prometheus /metrics endpoint for the
// long-running tools (quorumq analyze, ps_to_http, to_http) on the address
// of their --metrics-addr flag, until the tool stops. A node serves its
// metrics on its own ports instead.
package metricsserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// FlagName is the flag every long-running tool takes.
const FlagName = "metrics-addr"

// Defaults of Options.
const (
	DefaultReadTimeout     = 10 * time.Second
	DefaultWriteTimeout    = 30 * time.Second
	DefaultIdleTimeout     = 60 * time.Second
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultMaxInFlight bounds concurrent scrapes: a scrape gathers every
	// collector, so a flood of them must not pile up.
	DefaultMaxInFlight = 4
)

// Options configures Start. Start from DefaultOptions.
type Options struct {
	// Addr is HOST:PORT to listen on; "" serves nothing. Port 0 picks a
	// free port (Server.Addr tells which).
	Addr string
	// Gatherer is what /metrics shows; NewRegistry makes a usual one.
	Gatherer prometheus.Gatherer
	// Logger receives the address served and serving errors.
	Logger *slog.Logger
	// ReadTimeout bounds reading a request (headers included),
	// WriteTimeout writing its answer, IdleTimeout a kept-alive
	// connection; ShutdownTimeout the drain once the context ends.
	ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	// MaxInFlight bounds concurrent scrapes; more are answered 503.
	MaxInFlight int
}

// DefaultOptions returns the defaults: no address, slog.Default(), the
// Default* timeouts and DefaultMaxInFlight.
func DefaultOptions() Options {
	return Options{
		Logger:          slog.Default(),
		ReadTimeout:     DefaultReadTimeout,
		WriteTimeout:    DefaultWriteTimeout,
		IdleTimeout:     DefaultIdleTimeout,
		ShutdownTimeout: DefaultShutdownTimeout,
		MaxInFlight:     DefaultMaxInFlight,
	}
}

// RegisterFlag defines --metrics-addr on fs, writing into addr (whose
// value is the default). Its variable comes with the tool's prefix, as
// for every other flag (QUORUMQ_PS_TO_HTTP_METRICS_ADDR).
func RegisterFlag(fs *flag.FlagSet, addr *string) {
	fs.StringVar(addr, FlagName, *addr, "serve Prometheus metrics at http://HOST:PORT/metrics (empty: off); no TLS and no token, so bind it to loopback or a private network")
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors and cs.
func NewRegistry(cs ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return reg
}

// Server is a running metrics endpoint.
type Server struct {
	addr string
	done chan struct{}
	err  error
}

// Start listens on o.Addr and serves GET /metrics from o.Gatherer until
// ctx ends, then drains for up to o.ShutdownTimeout. A port that cannot be
// bound is Start's error, so a tool fails at start-up rather than running
// unobserved. With o.Addr empty Start serves nothing and returns a nil
// *Server, whose methods work (Addr is "", Wait returns at once).
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Addr == "" {
		return nil, nil
	}
	if o.Gatherer == nil {
		return nil, errors.New("metricsserver: no gatherer")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("--%s=%s: %w", FlagName, o.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: o.MaxInFlight,
		Timeout:             o.WriteTimeout,
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: o.ReadTimeout,
		ReadTimeout:       o.ReadTimeout,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       o.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
	}
	s := &Server{addr: ln.Addr().String(), done: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go func() {
		defer close(s.done)
		select {
		case err := <-served:
			// Serve ended on its own: a listener failure.
			s.err = fmt.Errorf("metrics server %s: %w", s.addr, err)
			o.Logger.Error("metrics server stopped", "addr", s.addr, "err", err)
			return
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			srv.Close()
		}
		<-served
	}()
	o.Logger.Info("serving metrics", "metrics_addr", s.addr)
	return s, nil
}

// Serve starts a server of g on addr with the default options, for a tool
// that serves until it returns: stop ends the server and waits for it.
// With addr empty it serves nothing and stop does nothing.
func Serve(addr string, g prometheus.Gatherer, log *slog.Logger) (stop func(), err error) {
	ctx, cancel := context.WithCancel(context.Background())
	o := DefaultOptions()
	o.Addr, o.Gatherer, o.Logger = addr, g, log
	s, err := Start(ctx, o)
	if err != nil {
		cancel()
		return nil, err
	}
	return func() {
		cancel()
		s.Wait()
	}, nil
}

// Addr is the bound address ("" for a nil Server).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.addr
}

// Wait blocks until the server has stopped (its context ended and the
// drain finished, or its listener failed) and returns the listener's
// failure, if any.
func (s *Server) Wait() error {
	if s == nil {
		return nil
	}
	<-s.done
	return s.err
}
