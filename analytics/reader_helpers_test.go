package analytics

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/node/nodetest"
)

// startNode starts a single-node cluster in process and returns its
// queue-port base URL once it is ready.
func startNode(t *testing.T) string {
	t.Helper()
	cfg := nodetest.Config(t)
	cfg.Cluster.NodeID = "n1"
	s := nodetest.Start(t, cfg)
	nodetest.WaitReady(t, s)
	return "http://" + s.QueueAddr
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
