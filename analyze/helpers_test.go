package analyze

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testwait"
	"github.com/quorumq/quorumq/server"
)

// reservePort returns a loopback port that was free for TCP and UDP a
// moment ago, below the ephemeral range.
func reservePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.IntN(12000)
		reservedMu.Lock()
		taken := reserved[port]
		reserved[port] = true
		reservedMu.Unlock()
		if taken {
			continue
		}
		tl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		tl.Close()
		if err != nil {
			continue
		}
		ul.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

var (
	reservedMu sync.Mutex
	reserved   = map[int]bool{}
)

// quietLogger logs warnings and errors to t.Log.
func quietLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// startNode starts a single-node cluster in process and returns its
// queue-port base URL once it is ready.
func startNode(t *testing.T) string {
	t.Helper()
	s, err := server.Start(server.Config{
		NodeID:     "n1",
		DataDir:    t.TempDir(),
		QueueAddr:  "127.0.0.1:0",
		PubsubAddr: "127.0.0.1:0",
		RaftAddr:   fmt.Sprintf("127.0.0.1:%d", reservePort(t)),
		GossipAddr: fmt.Sprintf("127.0.0.1:%d", reservePort(t)),
		Logger:     quietLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	base := "http://" + s.QueueAddr
	testwait.For(t, 30*time.Second, "node ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	return base
}

func mustRedis(t *testing.T) *redis.Client {
	return redistest.Start(t).Client(t)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// putAll puts msgs on queue with /mput in chunks.
func putAll(t *testing.T, base, queue string, msgs [][]byte) {
	t.Helper()
	q, err := client.NewQueue([]string{base}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < len(msgs); lo += 1000 {
		hi := min(lo+1000, len(msgs))
		if err := q.MPut(context.Background(), queue, msgs[lo:hi], client.MPutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// usagovLines returns the shared 1.usa.gov sample's lines, or nil when
// this checkout has none.
func usagovLines(t *testing.T) [][]byte {
	path := os.Getenv("QUORUMQ_USAGOV_FILE")
	if path == "" {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			return nil
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		for _, rel := range []string{"../shared/data", "../../shared/data", "shared/data"} {
			p := filepath.Join(root, rel, "usagov_bitly_2012-03-16.jsonl")
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t.Logf("using %s", path)
	return readLines(t, f)
}

func readLines(t *testing.T, r io.Reader) [][]byte {
	var lines [][]byte
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
