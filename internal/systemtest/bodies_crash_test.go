package systemtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/internal/crashpoint"
	"github.com/quorumq/quorumq/internal/testwait"
)

// TestNode_CrashPoints_NoAckedPutLostNoBodyDamaged kills the node with
// SIGKILL at the moments the body store is most exposed: while entries are
// applied (bodies half written out), while a snapshot is in raft's store but
// not committed, and just after a new body segment was begun. Writers put
// bodies of many sizes (so blocks and segments fill quickly) while a reader
// pops; after a restart on the same data directory every acknowledged put
// was either popped before the crash or is queued again (a pop whose answer
// the crash cut comes back when its handover lease ends), and every body
// read, before or after, is intact.
func TestNode_CrashPoints_NoAckedPutLostNoBodyDamaged(t *testing.T) {
	for _, c := range []struct{ point string }{
		{"fsm-apply:400"},
		{"snapshot-written:3"},
		{"segment-roll:25"},
	} {
		t.Run(strings.Split(c.point, ":")[0], func(t *testing.T) {
			testCrashPoint(t, c.point)
		})
	}
}

// checkedBody is "KEY:FILLER:SUM": SUM is the first 16 hex digits of the
// SHA-256 of KEY:FILLER, so any damage shows.
func checkedBody(key string, size int, r *rand.Rand) string {
	filler := make([]byte, size)
	for i := range filler {
		filler[i] = byte('a' + r.IntN(26))
	}
	head := key + ":" + string(filler)
	sum := sha256.Sum256([]byte(head))
	return head + ":" + hex.EncodeToString(sum[:8])
}

// verifyBody returns the key of an intact body, or an error.
func verifyBody(b string) (string, error) {
	i := strings.LastIndexByte(b, ':')
	if i < 0 {
		return "", fmt.Errorf("no checksum in %.40q", b)
	}
	sum := sha256.Sum256([]byte(b[:i]))
	if hex.EncodeToString(sum[:8]) != b[i+1:] {
		return "", fmt.Errorf("checksum mismatch in a body of %d bytes starting %.40q", len(b), b)
	}
	key, _, _ := strings.Cut(b, ":")
	return key, nil
}

func testCrashPoint(t *testing.T, point string) {
	n := newNode(t, open,
		"--body-segment-size=32KiB", "--raft-snapshot-threshold=32", "--raft-snapshot-interval=200ms",
		"--raft-trailing-logs=8", "--handover-lease=2s")
	n.SetEnv([]string{crashpoint.Env + "=" + point})
	n.mustStart()

	var (
		mu        sync.Mutex
		acked     = map[string]bool{}
		delivered = map[string]bool{}
		damaged   []string
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	const writers = 6
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				code, _, err := n.post(ctx, n.QueueURL+"/put", []byte(checkedBody(key, r.IntN(3000), r)))
				if err != nil {
					return // the node is gone
				}
				if code == http.StatusOK {
					mu.Lock()
					acked[key] = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			res, err := n.do(ctx, http.MethodGet, n.QueueURL+"/get", nil)
			if err != nil {
				return
			}
			if res.code != http.StatusOK || res.body == "" {
				continue
			}
			key, err := verifyBody(res.body)
			mu.Lock()
			if err != nil {
				damaged = append(damaged, err.Error())
			} else {
				delivered[key] = true
			}
			mu.Unlock()
		}
	}()

	testwait.For(t, 90*time.Second, "the node to reach crash point "+point, func() bool { return !n.Running() })
	cancel()
	wg.Wait()
	if len(damaged) > 0 {
		t.Fatalf("bodies damaged before the crash: %v", damaged)
	}
	if !strings.Contains(n.LogTail(64<<10), "crashpoint") {
		t.Fatalf("the node exited, but not at its crash point")
	}
	t.Logf("crashed at %s after %d acknowledged puts, %d popped", point, len(acked), len(delivered))

	n.SetEnv(nil)
	n.restart()
	var queued map[string]bool
	missing := func() []string {
		queued = map[string]bool{}
		for _, b := range dumpItems(n.mustGet(n.QueueURL + "/dump")) {
			key, err := verifyBody(b)
			if err != nil {
				t.Fatalf("after restart: %v", err)
			}
			if queued[key] {
				t.Fatalf("after restart: %s queued twice", key)
			}
			queued[key] = true
		}
		var lost []string
		for key := range acked {
			if !queued[key] && !delivered[key] {
				lost = append(lost, key)
			}
		}
		return lost
	}
	// A pop the crash cut short is handed over, not lost: it is queued
	// again once its handover lease (2 s) ends.
	var lost []string
	testwait.For(t, 15*time.Second, "every acknowledged put popped before the crash or queued after it", func() bool {
		lost = missing()
		if len(lost) > 0 {
			t.Logf("not yet queued: %v (%d acked, %d popped, %d queued)", lost, len(acked), len(delivered), len(queued))
		}
		return len(lost) == 0
	})
	// The store goes on after the cut: new bodies, and the old ones, come
	// out intact.
	r := rand.New(rand.NewPCG(99, 1))
	for i := range 50 {
		n.mustPut(n.QueueURL+"/put", checkedBody(fmt.Sprintf("after-%d", i), r.IntN(5000), r))
	}
	for range len(queued) + 50 {
		code, b := n.get(n.QueueURL + "/get")
		if code != http.StatusOK || b == "" {
			t.Fatalf("get after restart: %d %q with messages left", code, b)
		}
		if _, err := verifyBody(b); err != nil {
			t.Fatalf("after restart: %v", err)
		}
	}
}
