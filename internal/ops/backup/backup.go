// Package backup is `quorumq backup` and `quorumq restore`: the client
// side of GET /backup and POST /restore. It tries the nodes in turn and
// follows a follower's 307 to the leader itself, with the token (an HTTP
// client drops credentials on a redirect to another host).
package backup

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/cli"
)

// Defaults of Config.
const (
	// DefaultTimeout bounds a whole backup or restore.
	DefaultTimeout = 30 * time.Minute
	// maxRedirects bounds the 307s followed (a leader that moves twice).
	maxRedirects = 3
	// maxErrorBody bounds what is read of an error answer.
	maxErrorBody = 4 << 10
)

// ErrInvalid marks bad flags (exit status 2).
var ErrInvalid = errors.New("invalid configuration")

// Config configures Backup and Restore. Start from DefaultConfig.
type Config struct {
	// Addrs are queue port URLs of nodes (any of them: followers redirect
	// to the leader). Tried in order.
	Addrs client.AddrList
	// Stale backs up the state of the first node that answers, as it has
	// applied it, instead of the leader's.
	Stale bool
	// Timeout bounds the whole operation; positive.
	Timeout time.Duration
	// Token and TLS reach a secured cluster (the admin role is needed).
	Token string
	TLS   *tls.Config
	// Logger receives progress.
	Logger *slog.Logger
}

// DefaultConfig returns DefaultTimeout, the leader's state and
// slog.Default().
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, Logger: slog.Default()}
}

// RegisterFlags defines the flags both commands share.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Addrs, "queue-addrs", "queue port URLs of the nodes, comma-separated or repeated (any node: followers redirect to the leader)")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "bound on the whole operation")
	client.RegisterSecurityFlags(fs, &c.Token, &c.TLS)
}

func (c Config) validate() error {
	var errs cli.Problems
	if len(c.Addrs) == 0 {
		errs.Add("no --queue-addrs")
	}
	if c.Timeout <= 0 {
		errs.Add("--timeout must be positive")
	}
	if c.Logger == nil {
		errs.Add("no logger")
	}
	return errs.Err(ErrInvalid)
}

// Backup streams a backup of the cluster's queue state into the file
// out, through a temporary file beside it that is synced and renamed
// into place once the backup is whole; out "-" writes to stdout instead.
// It returns the bytes written.
func Backup(ctx context.Context, cfg Config, out string, stdout io.Writer) (int64, error) {
	if err := cfg.validate(); err != nil {
		return 0, err
	}
	if out == "" {
		return 0, cli.Mark(errors.New("no --out (a file, or - for stdout)"), ErrInvalid)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	path := api.PathBackup
	if cfg.Stale {
		path += "?stale=1"
	}
	resp, err := call(ctx, cfg, http.MethodGet, path, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out == "-" {
		n, err := io.Copy(stdout, resp.Body)
		if err != nil {
			return n, fmt.Errorf("backup cut short after %d bytes: %w", n, err)
		}
		return n, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, resp.Body)
	if err != nil {
		tmp.Close()
		return n, fmt.Errorf("backup cut short after %d bytes: %w", n, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return n, err
	}
	cfg.Logger.Info("backup written", "file", out, "bytes", n, "served_by", resp.Header.Get(api.HeaderServedBy))
	return n, nil
}

// Restore sends the backup in file in to the cluster's leader, which
// replaces the queue state of every node with it.
func Restore(ctx context.Context, cfg Config, in string) (api.RestoreInfo, error) {
	var info api.RestoreInfo
	if err := cfg.validate(); err != nil {
		return info, err
	}
	if in == "" {
		return info, cli.Mark(errors.New("no --in (a backup file)"), ErrInvalid)
	}
	f, err := os.Open(in)
	if err != nil {
		return info, err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	resp, err := call(ctx, cfg, http.MethodPost, api.PathRestore, f)
	if err != nil {
		return info, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxErrorBody)).Decode(&info); err != nil {
		return info, fmt.Errorf("restore: the answer: %w", err)
	}
	cfg.Logger.Info("restored", "file", in, "bytes", info.Bytes, "index", info.Index, "leader", resp.Header.Get(api.HeaderServedBy))
	return info, nil
}

// call sends the request to the nodes in turn until one answers 200,
// following 307s (with the token), and returns that answer. body, when
// set, is sent from its start on every attempt.
func call(ctx context.Context, cfg Config, method, path string, body *os.File) (*http.Response, error) {
	hc := client.NewHTTPClient(cfg.TLS)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var errs []error
	for _, addr := range cfg.Addrs {
		target := base(addr, cfg.TLS != nil) + path
		for hop := 0; hop <= maxRedirects; hop++ {
			resp, err := send(ctx, hc, cfg.Token, method, target, body)
			if err != nil {
				errs = append(errs, err)
				break
			}
			if resp.StatusCode == http.StatusTemporaryRedirect {
				loc := resp.Header.Get("Location")
				resp.Body.Close()
				if loc == "" {
					errs = append(errs, fmt.Errorf("%s: 307 without a Location", client.RedactURL(target)))
					break
				}
				cfg.Logger.Debug("following the leader", "from", client.RedactURL(target), "to", client.RedactURL(loc))
				target = loc
				continue
			}
			if resp.StatusCode == http.StatusOK {
				return resp, nil
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			err = fmt.Errorf("%s %s: %d %s", method, client.RedactURL(target), resp.StatusCode, strings.TrimSpace(string(msg)))
			if resp.StatusCode != http.StatusServiceUnavailable {
				// The cluster said no: another node would say the same.
				return nil, err
			}
			errs = append(errs, err)
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func send(ctx context.Context, hc *http.Client, token, method, target string, body *os.File) (*http.Response, error) {
	var rd io.Reader
	var size int64
	if body != nil {
		if _, err := body.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		fi, err := body.Stat()
		if err != nil {
			return nil, err
		}
		rd, size = io.NopCloser(body), fi.Size()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, client.RedactError(err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	client.SetToken(req, token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, client.RedactError(err)
	}
	return resp, nil
}

// base is addr as a URL without a trailing slash: http:// when it has no
// scheme, https:// with TLS.
func base(addr string, tls bool) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if tls {
		addr = client.HTTPS(addr)
	}
	if u, err := url.Parse(addr); err == nil {
		u.Path = strings.TrimSuffix(u.Path, "/")
		return u.String()
	}
	return strings.TrimSuffix(addr, "/")
}
