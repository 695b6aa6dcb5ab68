package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testkit"
)

// Drain empties WorkQueue once the cluster is healed and the producers and
// consumers have stopped: leased mgets (recorded as deliveries to
// "drain") each followed by an ack, until an mget comes back empty and
// the leader's /stats shows nothing ready, in flight or deferred (leases
// of stopped consumers run out, deferred messages come due). It fails
// after timeout.
func (w *Workload) Drain(ctx context.Context, timeout time.Duration) error {
	r := w.rng(4, 0)
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		q, nd, err := w.leaderClient(ctx)
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout+time.Second)
		start := w.h.Now()
		msgs, err := q.MGet(actx, WorkQueue, 100, client.GetOptions{Lease: 30 * time.Second, Wait: 500 * time.Millisecond})
		end := w.h.Now()
		cancel()
		if err != nil {
			last = err
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if len(msgs) > 0 {
			ds := make([]Delivery, len(msgs))
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ds[i] = Delivery{MsgID: m.ID, Attempts: m.Attempts, Body: string(m.Data), Queue: WorkQueue,
					Start: start, End: end, Consumer: "drain", Node: nd.ID, Action: "ack"}
				ids[i] = m.ID
			}
			w.h.addDeliveries(ds)
			for try := 0; try < 5; try++ {
				if s := w.settle(r, "ack", ids, 0); s.Outcome != Fail || s.Code == "NOT_IN_FLIGHT" {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
		st, err := q.Stats(sctx, WorkQueue)
		cancel()
		if err != nil {
			last = err
			continue
		}
		if st.Depth == 0 && st.InFlight == 0 && st.Deferred == 0 {
			return nil
		}
		last = fmt.Errorf("%s: depth %d, in flight %d, deferred %d", WorkQueue, st.Depth, st.InFlight, st.Deferred)
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		last = ctx.Err()
	}
	return fmt.Errorf("drain of %s not done within %v: %v", WorkQueue, timeout, last)
}

// DrainLin pops every lin queue empty with plain gets, recorded as lin
// ops of client LinClients (after every other lin op ended), so that a
// lost or duplicated put shows up in the linearizability check.
func (w *Workload) DrainLin(ctx context.Context, queues []string, timeout time.Duration) error {
	r := w.rng(5, 0)
	deadline := time.Now().Add(timeout)
	var errs []error
	for _, queue := range queues {
		done := false
		for !done && time.Now().Before(deadline) && ctx.Err() == nil {
			q, nd, err := w.leaderClient(ctx)
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			op := LinOp{Client: w.cfg.LinClients, Queue: queue, Op: linGet, Node: nd.ID}
			actx, cancel := context.WithTimeout(ctx, w.cfg.AttemptTimeout)
			var info client.CallInfo
			actx = client.WithCallInfo(actx, &info)
			op.Start = w.h.Now()
			m, err := q.Get(actx, queue, client.GetOptions{})
			op.End = w.h.Now()
			cancel()
			switch {
			case m != nil && m.Attempts > 1:
				// Popped before through a node that died before it
				// confirmed the answer: given back when its handover lease
				// ended, as the lin clients' gets record it (linOp).
				op.Redelivered = []string{string(m.Data)}
			case m != nil:
				op.Value = string(m.Data)
			}
			op.Outcome, op.Code = classify(err)
			op.ServedBy = info.ServedBy
			w.h.addLin(op)
			done = op.Outcome == OK && m == nil
			if op.Outcome != OK {
				time.Sleep(jitter(r, 100*time.Millisecond))
			}
		}
		if !done {
			errs = append(errs, fmt.Errorf("lin queue %s not drained within %v", queue, timeout))
		}
	}
	return errors.Join(errs...)
}

// leaderClient returns a client of the current leader (asked of the
// running members), or of a random running member when none is agreed.
func (w *Workload) leaderClient(ctx context.Context) (*client.Queue, *testkit.Node, error) {
	lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if l, err := w.c.Leader(lctx); err == nil {
		return w.clientFor(l), l, nil
	}
	run := w.c.Running()
	if len(run) == 0 {
		return nil, nil, errors.New("no node running")
	}
	nd := run[rand.IntN(len(run))]
	return w.clientFor(nd), nd, nil
}
