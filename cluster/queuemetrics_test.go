package cluster

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/fsm"
)

// TestQueueCollector_CountersAndOldestAge: the per-queue collector reports
// the FSM's cumulative acks, nacks, lease expiries and redeliveries, and
// the age of the next ready message against the node's clock.
func TestQueueCollector_CountersAndOldestAge(t *testing.T) {
	f := fsm.New()
	put := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	apply := func(at time.Time, cmds ...fsm.Command) {
		f.ApplyEntry(f.AppliedIndex()+1, &fsm.Entry{Now: at.UnixNano(), Commands: cmds})
	}
	apply(put, fsm.Command{Op: fsm.OpPut, Queue: "q", Messages: [][]byte{[]byte("a"), []byte("b"), []byte("c")}})
	apply(put, fsm.Command{Op: fsm.OpGet, Queue: "q", Max: 2, Lease: time.Second})
	apply(put, fsm.Command{Op: fsm.OpAck, IDs: []uint64{1}})
	apply(put.Add(2*time.Second), fsm.Command{Op: fsm.OpTick}) // b's lease ran out
	apply(put.Add(2*time.Second), fsm.Command{Op: fsm.OpGet, Queue: "q", Max: 1, Lease: time.Minute})
	apply(put.Add(2*time.Second), fsm.Command{Op: fsm.OpNack, IDs: []uint64{2}})
	apply(put.Add(2*time.Second), fsm.Command{Op: fsm.OpPut, Queue: "empty", Messages: [][]byte{[]byte("x")}})
	apply(put.Add(2*time.Second), fsm.Command{Op: fsm.OpGet, Queue: "empty", Max: 1, Lease: api.NoLease})

	reg := prometheus.NewRegistry()
	reg.MustRegister(&queueCollector{f: f, now: func() time.Time { return put.Add(90 * time.Second) }})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+"/"+m.GetLabel()[0].GetValue()] = queueMetricValue(m)
		}
	}
	for name, want := range map[string]float64{
		"quorumq_queue_acks_total/q":             1,
		"quorumq_queue_nacks_total/q":            1,
		"quorumq_queue_lease_expired_total/q":    1,
		"quorumq_queue_redelivered_total/q":      1,
		"quorumq_queue_oldest_age_seconds/q":     90,
		"quorumq_queue_oldest_age_seconds/empty": 0,
		"quorumq_queue_depth/q":                  2,
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, want)
		}
	}
}

func queueMetricValue(m *dto.Metric) float64 {
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}
