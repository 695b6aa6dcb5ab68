package analyze

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
	"github.com/quorumq/quorumq/server"
)

// startNode starts a single-node cluster in process and returns its
// queue-port base URL once it is ready.
func startNode(t *testing.T) string {
	t.Helper()
	s, err := server.Start(server.Config{
		NodeID:     "n1",
		DataDir:    t.TempDir(),
		QueueAddr:  "127.0.0.1:0",
		PubsubAddr: "127.0.0.1:0",
		RaftAddr:   fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t)),
		GossipAddr: fmt.Sprintf("127.0.0.1:%d", testport.Reserve(t)),
		Logger:     testlog.New(t),
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
