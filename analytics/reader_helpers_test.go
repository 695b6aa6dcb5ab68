package analytics

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/testport"
	"github.com/quorumq/quorumq/internal/testwait"
)

// startNode starts a single-node cluster in process and returns its
// queue-port base URL once it is ready.
func startNode(t *testing.T) string {
	t.Helper()
	s, err := node.Start(node.Config{
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
	path := usagovFile(t)
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
