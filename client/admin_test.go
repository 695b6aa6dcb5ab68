package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
)

// Test_Node_AdminContract: Queues, DumpPage, Redrive and Purge against a
// real node: a message nacked past max_attempts is listed in the
// dead-letter queue with its origin and error, redriven back with its
// attempts reset, and what is left is purged.
func Test_Node_AdminContract(t *testing.T) {
	s := startNode(t)
	q := mustQueue(t, s.QueueAddr)
	ctx := ctxT(t)
	if _, err := q.Config(ctx, "jobs", ConfigChange{MaxAttempts: Ptr(uint32(1)), DeadLetter: Ptr("jobs.dead")}); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	id, err := q.Put(ctx, "jobs", []byte("poison"), PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := q.Get(ctx, "jobs", GetOptions{Lease: time.Minute})
	if err != nil || m == nil {
		t.Fatalf("get: %+v %v", m, err)
	}
	if err := q.Nack(ctx, m.ID, NackOptions{Reason: "parse error"}); err != nil {
		t.Fatal(err)
	}
	if err := q.MPut(ctx, "jobs.dead", [][]byte{[]byte("own"), {0xff}}, MPutOptions{}); err != nil {
		t.Fatal(err)
	}

	infos, err := q.Queues(ctx)
	if err != nil || len(infos) != 2 || infos[0].Name != "jobs" || infos[1].Name != "jobs.dead" {
		t.Fatalf("queues: %+v %v", infos, err)
	}
	jobs, dead := infos[0], infos[1]
	if jobs.Dead != 1 || jobs.Nacks != 1 || jobs.Gets != 1 || jobs.Depth != 0 || !jobs.Oldest.IsZero() ||
		jobs.Config.MaxAttempts != 1 || jobs.Config.DeadLetter != "jobs.dead" {
		t.Fatalf("jobs: %+v", jobs)
	}
	if dead.Depth != 3 || dead.Oldest.Before(before.Add(-2*time.Second)) || dead.Oldest.After(time.Now()) || dead.OldestAge < 0 {
		t.Fatalf("jobs.dead: %+v, want depth 3 and the poison's put time", dead)
	}

	page, err := q.DumpPage(ctx, "jobs.dead", DumpOptions{Limit: 2})
	if err != nil || page.Total != 3 || len(page.Messages) != 2 {
		t.Fatalf("dump page: %+v %v", page, err)
	}
	if p := page.Messages[0]; p.ID != id || p.Attempts != 1 || string(p.Data) != "poison" || p.DeadFrom != "jobs" || p.Error != "parse error" {
		t.Fatalf("dead message: %+v", p)
	}
	next, err := q.DumpPage(ctx, "jobs.dead", DumpOptions{After: page.Messages[1].ID})
	if err != nil || len(next.Messages) != 1 || !bytes.Equal(next.Messages[0].Data, []byte{0xff}) {
		t.Fatalf("page after %s: %+v %v", page.Messages[1].ID, next, err)
	}

	moved, left, err := q.Redrive(ctx, "jobs.dead", RedriveOptions{})
	if err != nil || moved != 1 || left != 2 {
		t.Fatalf("redrive: moved %d left %d %v, want 1 and 2 (messages without an origin stay)", moved, left, err)
	}
	m, err = q.Get(ctx, "jobs", GetOptions{Lease: time.Minute})
	if err != nil || m == nil || m.ID != id || m.Attempts != 1 || m.LastError != "" {
		t.Fatalf("redriven message: %+v %v, want a fresh start", m, err)
	}
	if moved, left, err = q.Redrive(ctx, "jobs.dead", RedriveOptions{To: "jobs", Max: 1}); err != nil || moved != 1 || left != 1 {
		t.Fatalf("redrive to jobs, max 1: %d %d %v", moved, left, err)
	}
	if n, err := q.Purge(ctx, "jobs"); err != nil || n != 1 {
		t.Fatalf("purge jobs: %d %v, want the redriven own (the leased poison stays)", n, err)
	}
	if n, err := q.Purge(ctx, "jobs.dead"); err != nil || n != 1 {
		t.Fatalf("purge jobs.dead: %d %v", n, err)
	}
	if _, _, err := q.Redrive(ctx, "jobs.dead", RedriveOptions{To: "jobs.dead"}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("redrive into itself: %v, want a bad request", err)
	}
	if st, err := q.Stats(ctx, "jobs"); err != nil || st.InFlight != 1 || st.Depth != 0 {
		t.Fatalf("jobs after purge: %+v %v", st, err)
	}
}
