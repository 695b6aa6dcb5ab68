// Package redistest starts a private redis-server for tests: its own
// process on a free loopback port, with persistence off and its working
// directory in t.TempDir(), stopped when the test ends. Tests that need
// Redis call Start, which skips the test with a clear message when no
// redis-server binary is installed (CI installs one).
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvBinary names the environment variable that overrides the redis-server
// binary (default: redis-server on $PATH, then /usr/bin/redis-server).
const EnvBinary = "QUORUMQ_REDIS_SERVER"

// Server is a running redis-server child process.
type Server struct {
	// Addr is host:port.
	Addr string
	// URL is redis://Addr/0, for flags such as analyze's --redis.
	URL string

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// Binary returns the redis-server binary to run, or "" if there is none
// (also when EnvBinary names a file that does not exist).
func Binary() string {
	if b := os.Getenv(EnvBinary); b != "" {
		if _, err := os.Stat(b); err != nil {
			return ""
		}
		return b
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/redis-server"); err == nil {
		return "/usr/bin/redis-server"
	}
	return ""
}

// Start starts a redis-server for t and stops it in t.Cleanup. It skips t
// when no binary is found and fails it when the server does not answer
// PING within 20 s.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skipf("redis-server not found (install redis-server, or set %s): skipping a test that needs a real Redis", EnvBinary)
	}
	var lastErr error
	for range 5 {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err // most likely the port was taken meanwhile
	}
	t.Fatalf("redistest: could not start %s: %v", bin, lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", dir+"/redis.log", "--daemonize", "no")
	killWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	s.URL = "redis://" + s.Addr + "/0"
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)

	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(dir + "/redis.log")
			return nil, fmt.Errorf("redis-server exited: %s", strings.TrimSpace(string(log)))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("no answer to PING on %s: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Client returns a client of s, closed when t ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// Stop kills the server and waits for it. It is called by the cleanup of
// the test that started it; calling it earlier is allowed.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
