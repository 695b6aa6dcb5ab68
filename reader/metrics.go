package reader

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a reader's counters since New. They are exact: every delivery
// is counted once, under exactly one outcome, when its ack or nack has been
// answered (or has failed for good).
type Stats struct {
	// Delivered counts messages handed to this reader (every delivery).
	Delivered int64
	// Processed counts messages whose tasks all succeeded (EventDone).
	Processed int64
	// Failed counts attempts in which at least one task, Preprocess or
	// Validate failed.
	Failed int64
	// Retried counts failed attempts given back for another try
	// (EventRetry).
	Retried int64
	// GivenUp counts messages given up after MaxTries (EventGiveUp).
	GivenUp int64
	// Skipped counts messages Validate turned down (EventSkipped).
	Skipped int64
	// NotDue counts deliveries given back unprocessed because their
	// retry_on was still ahead (EventNotDue).
	NotDue int64
	// Released counts deliveries given back unprocessed or unfinished at
	// shutdown (EventReleased).
	Released int64
	// LeaseLost counts acks, nacks and touches that found the lease gone.
	LeaseLost int64
	// SettleErrors counts acks and nacks that failed for good.
	SettleErrors int64
	// InFlight is the number of leases the reader holds now.
	InFlight int64
	// TaskFailures counts failures per task name (Preprocess and Validate
	// as "__preprocess").
	TaskFailures map[string]int64
}

// counters are the atomics behind Stats and the Prometheus collector.
type counters struct {
	delivered, processed, failed, retried, givenUp, skipped, notDue, released,
	leaseLost, settleErrors, inFlight atomic.Int64

	mu           sync.Mutex
	taskFailures map[string]*atomic.Int64
}

func newCounters(tasks []string) *counters {
	c := &counters{taskFailures: map[string]*atomic.Int64{}}
	for _, t := range append(slices.Clone(tasks), preprocessTimer) {
		c.taskFailures[t] = new(atomic.Int64)
	}
	return c
}

func (c *counters) taskFailed(name string) {
	c.mu.Lock()
	v, ok := c.taskFailures[name]
	if !ok {
		// A task name from a message's tasks_left that this reader does
		// not have.
		v = new(atomic.Int64)
		c.taskFailures[name] = v
	}
	c.mu.Unlock()
	v.Add(1)
}

func (c *counters) count(k EventKind) {
	switch k {
	case EventDone:
		c.processed.Add(1)
	case EventRetry:
		c.retried.Add(1)
	case EventNotDue:
		c.notDue.Add(1)
	case EventGiveUp:
		c.givenUp.Add(1)
	case EventSkipped:
		c.skipped.Add(1)
	case EventReleased:
		c.released.Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Delivered: c.delivered.Load(), Processed: c.processed.Load(), Failed: c.failed.Load(),
		Retried: c.retried.Load(), GivenUp: c.givenUp.Load(), Skipped: c.skipped.Load(),
		NotDue: c.notDue.Load(), Released: c.released.Load(), LeaseLost: c.leaseLost.Load(),
		SettleErrors: c.settleErrors.Load(), InFlight: c.inFlight.Load(),
		TaskFailures: map[string]int64{},
	}
	c.mu.Lock()
	for k, v := range c.taskFailures {
		s.TaskFailures[k] = v.Load()
	}
	c.mu.Unlock()
	return s
}

// collector exports the counters to Prometheus, labelled with the queue.
type collector struct {
	c     *counters
	queue string
	descs map[string]*prometheus.Desc
	task  *prometheus.Desc
}

var counterHelp = []struct{ name, help string }{
	{"delivered", "Messages handed to the reader (every delivery)."},
	{"processed", "Messages whose tasks all succeeded and were acked."},
	{"failed", "Attempts in which a task, Preprocess or Validate failed."},
	{"retried", "Failed attempts given back with a retry envelope."},
	{"given_up", "Messages given up after MaxTries."},
	{"skipped", "Messages Validate turned down (acked)."},
	{"not_due", "Deliveries given back unprocessed because their retry_on was ahead."},
	{"released", "Deliveries given back at shutdown."},
	{"lease_lost", "Acks, nacks and touches that found the lease gone."},
	{"settle_errors", "Acks and nacks that failed for good."},
}

func newCollector(c *counters, queue string) *collector {
	if queue == "" {
		queue = "default"
	}
	col := &collector{c: c, queue: queue, descs: map[string]*prometheus.Desc{}}
	for _, h := range counterHelp {
		col.descs[h.name] = prometheus.NewDesc("quorumq_reader_"+h.name+"_total", h.help, nil, prometheus.Labels{"queue": queue})
	}
	col.descs["in_flight"] = prometheus.NewDesc("quorumq_reader_in_flight", "Leases the reader holds.", nil, prometheus.Labels{"queue": queue})
	col.task = prometheus.NewDesc("quorumq_reader_task_failures_total", "Task failures by task (Preprocess and Validate as __preprocess).", []string{"task"}, prometheus.Labels{"queue": queue})
	return col
}

func (col *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range col.descs {
		ch <- d
	}
	ch <- col.task
}

func (col *collector) Collect(ch chan<- prometheus.Metric) {
	s := col.c.snapshot()
	vals := map[string]int64{
		"delivered": s.Delivered, "processed": s.Processed, "failed": s.Failed, "retried": s.Retried,
		"given_up": s.GivenUp, "skipped": s.Skipped, "not_due": s.NotDue, "released": s.Released,
		"lease_lost": s.LeaseLost, "settle_errors": s.SettleErrors,
	}
	for name, v := range vals {
		ch <- prometheus.MustNewConstMetric(col.descs[name], prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(col.descs["in_flight"], prometheus.GaugeValue, float64(s.InFlight))
	for _, task := range slices.Sorted(maps.Keys(s.TaskFailures)) {
		ch <- prometheus.MustNewConstMetric(col.task, prometheus.CounterValue, float64(s.TaskFailures[task]), task)
	}
}

// progressLoop logs a progress line every interval until ctx ends.
func (r *Reader) progressLoop(ctx context.Context) {
	if r.cfg.ProgressInterval <= 0 {
		return
	}
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	last, lastAt := r.counters.snapshot(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := r.counters.snapshot()
			r.logProgress("reader progress", s, last, now.Sub(lastAt))
			last, lastAt = s, now
		}
	}
}

// logProgress logs s, with the rate of finished messages since prev over
// elapsed.
func (r *Reader) logProgress(msg string, s, prev Stats, elapsed time.Duration) {
	done := func(s Stats) int64 { return s.Processed + s.GivenUp + s.Skipped }
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done(s)-done(prev)) / elapsed.Seconds()
	}
	r.log.Info(msg,
		"processed", s.Processed, "failed", s.Failed, "retried", s.Retried, "given_up", s.GivenUp,
		"skipped", s.Skipped, "not_due", s.NotDue, "released", s.Released, "lease_lost", s.LeaseLost,
		"in_flight", s.InFlight, "finished_per_s", float64(int64(rate*10))/10,
		"backoff", r.backoff.current(), "leader", r.pool.leader(), "nodes", len(r.pool.info()))
}
