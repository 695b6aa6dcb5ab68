package systemtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/testwait"
)

// TestNode_KillDashNine_NoAckedPutLost: concurrent puts run while the node
// is killed with SIGKILL; after a restart on the same data directory every
// acknowledged message is there exactly once, each writer's messages in the
// order it wrote them, and nothing appears that was never sent.
func TestNode_KillDashNine_NoAckedPutLost(t *testing.T) {
	inModes(t, testNode_KillDashNine_NoAckedPutLost)
}

func testNode_KillDashNine_NoAckedPutLost(t *testing.T, m mode) {
	n := mustStartNode(t, m)
	const writers, perWriter = 16, 40

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  = map[string]bool{}
		count atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				msg := fmt.Sprintf("w%02d-%04d", w, i)
				mu.Lock()
				sent[msg] = true
				mu.Unlock()
				code, _, err := n.post(ctx, n.QueueURL+"/put", []byte(msg))
				if err != nil {
					return // the node is gone
				}
				if code == http.StatusOK {
					mu.Lock()
					acked[msg] = true
					mu.Unlock()
					count.Add(1)
				}
			}
		}(w)
	}
	// Kill in the middle of the stream of puts.
	testwait.For(t, 30*time.Second, "half of the puts acknowledged", func() bool {
		return count.Load() >= writers*perWriter/2
	})

	n.kill9()
	cancel()
	wg.Wait()
	t.Logf("acknowledged %d of %d attempted puts before SIGKILL", len(acked), len(sent))

	n.mustStart()
	body := n.mustGet(n.QueueURL + "/dump")
	items := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	seen := map[string]int{}
	lastSeq := map[string]int{}
	for _, it := range items {
		if it == "" {
			continue
		}
		if !sent[it] {
			t.Fatalf("found %q, which was never sent", it)
		}
		seen[it]++
		var w, seq int
		fmt.Sscanf(it, "w%02d-%04d", &w, &seq)
		key := fmt.Sprintf("w%02d", w)
		if last, ok := lastSeq[key]; ok && seq <= last {
			t.Fatalf("writer %s: %q stored after seq %d", key, it, last)
		}
		lastSeq[key] = seq
	}
	for msg := range acked {
		if seen[msg] != 1 {
			t.Fatalf("acknowledged %q found %d times after restart", msg, seen[msg])
		}
	}
	for msg, c := range seen {
		if c != 1 {
			t.Fatalf("%q stored %d times", msg, c)
		}
	}
}

// TestNode_SIGTERM_ShutsDownCleanlyAndKeepsData: a graceful stop exits 0,
// soon even with a long-poll parked, and a restart serves the same queue.
func TestNode_SIGTERM_ShutsDownCleanlyAndKeepsData(t *testing.T) {
	n := mustStartNode(t, open)
	for i := 0; i < 5; i++ {
		if code, _, err := n.post(context.Background(), n.QueueURL+"/put", []byte(fmt.Sprintf("m%d", i))); err != nil || code != 200 {
			t.Fatalf("put: %d %v", code, err)
		}
	}
	// An idle long-poll must not hold up shutdown: it is parked before the
	// SIGTERM, and the node must be gone well before serve's 30 s
	// shutdown timeout would have cut the poll off.
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		n.do(context.Background(), http.MethodGet, n.QueueURL+"/get?queue=idle&wait=60s", nil)
	}()
	waitParked(t, n, 1)
	stopping := time.Now()
	n.terminate()
	if took := time.Since(stopping); took > 15*time.Second {
		t.Fatalf("SIGTERM to exit took %v with a long-poll parked", took.Round(time.Millisecond))
	} else {
		t.Logf("SIGTERM to exit with a long-poll parked: %v", took.Round(time.Millisecond))
	}
	select {
	case <-polled:
	case <-time.After(15 * time.Second):
		t.Fatal("the parked long-poll got no answer when the node stopped")
	}
	n.mustStart()
	if got := n.mustGet(n.QueueURL + "/dump"); got != "m0\nm1\nm2\nm3\nm4\n" {
		t.Fatalf("dump after restart: %q", got)
	}
}
