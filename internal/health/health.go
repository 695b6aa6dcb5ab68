// Package health is `quorumq health`: the container health check. It asks
// the node serving in the same container for /readyz, finding the port and
// the scheme in the node's own environment (QUORUMQ_QUEUE_ADDR,
// QUORUMQ_TLS_CERT, QUORUMQ_TLS_CA), so an image needs no HTTP client and
// the check needs no arguments.
package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// Config says where the node listens and how it speaks.
type Config struct {
	// Addr is the node's queue listen address (host:port, as serve's
	// --queue-addr); the check dials 127.0.0.1 on its port, since a node
	// bound to 0.0.0.0 answers there. Default 0.0.0.0:8081, serve's.
	Addr string
	// TLS: the node serves HTTPS only (it was given a certificate).
	TLS bool
	// CAFile is trusted for the node's certificate, which names
	// 127.0.0.1 when `quorumq certs` made it. Empty with TLS: the answer
	// is not verified; it comes from loopback and carries no secret.
	CAFile string
	// Timeout bounds the whole check; default 3 s, below the compose
	// file's healthcheck timeout.
	Timeout time.Duration
}

// ErrInvalid marks a configuration the check cannot use;
// ErrNotReady a node that answered, but not ready.
var (
	ErrInvalid  = errors.New("invalid health configuration")
	ErrNotReady = errors.New("node not ready")
)

// FromEnv reads serve's variables through getenv (os.Getenv).
func FromEnv(getenv func(string) string) Config {
	c := Config{Addr: getenv("QUORUMQ_QUEUE_ADDR"), CAFile: getenv("QUORUMQ_TLS_CA"), Timeout: 3 * time.Second}
	if c.Addr == "" {
		c.Addr = "0.0.0.0:8081"
	}
	c.TLS = getenv("QUORUMQ_TLS_CERT") != ""
	return c
}

// URL is the /readyz address the check asks.
func (c Config) URL() (string, error) {
	_, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" {
		return "", fmt.Errorf("%w: queue address %q has no port", ErrInvalid, c.Addr)
	}
	scheme := "http"
	if c.TLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/readyz", nil
}

// Check asks the node once; nil means ready (200).
func Check(ctx context.Context, c Config) error {
	url, err := c.URL()
	if err != nil {
		return err
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if c.TLS {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.CAFile == ""}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("%w: no certificate in %s", ErrInvalid, c.CAFile)
			}
		}
		tr.TLSClientConfig = cfg
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d: %s", ErrNotReady, url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
