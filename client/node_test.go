package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/node"
	"github.com/quorumq/quorumq/internal/node/nodetest"
)

// startNode runs a real single-node cluster in-process on loopback ports.
func startNode(t *testing.T) *node.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real node")
	}
	return nodetest.StartReady(t, func(c *node.Config) { c.HTTP.MaxMsgSize = 1024 })
}

// Test_Node_QueueContract: every Queue call against a real node: the
// at-least-once cycle (lease, touch, nack with new data and reason, ack),
// JSON mget with a binary body, idempotent puts, automatic mput
// separators, stats, config, status and the error kinds of 400, 409, 413
// and 507.
func Test_Node_QueueContract(t *testing.T) {
	s := startNode(t)
	q := mustQueue(t, s.QueueAddr)
	ctx := ctxT(t)

	id, err := q.Put(ctx, "jobs", []byte("resize photo 17"), PutOptions{ID: "p17"})
	if err != nil || id == "" {
		t.Fatalf("put: %q %v", id, err)
	}
	if again, err := q.Put(ctx, "jobs", []byte("resize photo 17"), PutOptions{ID: "p17"}); err != nil || again != id {
		t.Fatalf("duplicate put: %q %v, want %q", again, err, id)
	}
	m, err := q.Get(ctx, "jobs", GetOptions{Lease: 30 * time.Second})
	if err != nil || m == nil || m.ID != id || m.Attempts != 1 || string(m.Data) != "resize photo 17" {
		t.Fatalf("get: %+v %v", m, err)
	}
	if err := q.Touch(ctx, m.ID, time.Minute); err != nil {
		t.Fatalf("touch: %v", err)
	}
	if err := q.Nack(ctx, m.ID, NackOptions{Reason: "timeout", NewData: []byte(`{"retry":2}`)}); err != nil {
		t.Fatalf("nack: %v", err)
	}
	m, err = q.Get(ctx, "jobs", GetOptions{Lease: 30 * time.Second})
	if err != nil || m == nil || m.ID != id || m.Attempts != 2 || string(m.Data) != `{"retry":2}` || m.LastError != "timeout" {
		t.Fatalf("redelivery: %+v %v", m, err)
	}
	if err := q.Ack(ctx, m.ID); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := q.Ack(ctx, m.ID); !errors.Is(err, api.ErrNotInFlight) {
		t.Fatalf("second ack: %v", err)
	}
	if m, err := q.Get(ctx, "jobs", GetOptions{Wait: 200 * time.Millisecond}); err != nil || m != nil {
		t.Fatalf("empty long-poll: %+v %v", m, err)
	}

	batch := [][]byte{[]byte("one\ntwo"), {0xff, 0x00, 0x01}, []byte("three")}
	if err := q.MPut(ctx, "batch", batch, MPutOptions{}); err != nil {
		t.Fatalf("mput: %v", err)
	}
	msgs, err := q.MGet(ctx, "batch", 10, GetOptions{Lease: time.Minute})
	if err != nil || len(msgs) != 3 {
		t.Fatalf("mget: %+v %v", msgs, err)
	}
	for i, m := range msgs {
		if !bytes.Equal(m.Data, batch[i]) || m.Attempts != 1 || m.ID == "" {
			t.Fatalf("message %d: %+v", i, m)
		}
	}
	if err := q.Ack(ctx, msgs[0].ID, msgs[1].ID, msgs[2].ID); err != nil {
		t.Fatalf("ack batch: %v", err)
	}

	if _, err := q.Put(ctx, "later", []byte("x"), PutOptions{Delay: time.Hour}); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx, "later")
	if err != nil || st.Puts != 1 || st.Deferred != 1 || st.Depth != 0 {
		t.Fatalf("stats: %+v %v", st, err)
	}

	cfg, err := q.Config(ctx, "small", ConfigChange{MaxDepth: Ptr(int64(1)), Lease: Ptr(30 * time.Second)})
	if err != nil || cfg.MaxDepth != 1 || cfg.Lease != 30*time.Second || cfg.Overflow != "reject" {
		t.Fatalf("config: %+v %v", cfg, err)
	}
	if cfg, err := q.Config(ctx, "small", ConfigChange{}); err != nil || cfg.MaxDepth != 1 {
		t.Fatalf("config read: %+v %v", cfg, err)
	}
	if _, err := q.Put(ctx, "small", []byte("1"), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(ctx, "small", []byte("2"), PutOptions{}); !errors.Is(err, api.ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
	if _, err := q.Put(ctx, "bad name!", []byte("x"), PutOptions{}); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("bad queue name: %v", err)
	}
	if _, err := q.Put(ctx, "", bytes.Repeat([]byte("x"), 2000), PutOptions{}); !errors.Is(err, api.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}

	var info CallInfo
	status, err := q.Status(WithCallInfo(ctx, &info))
	if err != nil || status.State != "leader" || status.NodeID == "" || status.LeaderID != status.NodeID || info.ServedBy != status.NodeID {
		t.Fatalf("status: %+v %v (info %+v)", status, err, info)
	}
}

// Test_Node_PubsubContract: Pub and SubscribeTopic against a real node:
// the subscriber receives the published messages in order, "\r" kept, and
// Pub reports it in the subscriber count.
func Test_Node_PubsubContract(t *testing.T) {
	s := startNode(t)
	p, err := NewPubsub([]string{s.PubsubAddr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	sub, err := p.SubscribeTopic(ctx, "clicks", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// The subscription is registered once the head is answered; publish
	// until it is counted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := p.Pub(ctx, "clicks", [][]byte{[]byte("first")})
		if err != nil {
			t.Fatal(err)
		}
		if c == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscriber is never counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c, err := p.Pub(ctx, "clicks", [][]byte{[]byte("a\r"), {}, []byte("b c")}); err != nil || c != 1 {
		t.Fatalf("pub: %d %v", c, err)
	}
	var got []string
	for len(got) < 4 {
		m, err := sub.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(m))
	}
	if got[0] != "first" || got[1] != "a\r" || got[2] != "" || got[3] != "b c" {
		t.Fatalf("got %q", got)
	}
}
