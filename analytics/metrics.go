package analytics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/reader"
)

// runnerCollector reports a reader run's merge counters at scrape time,
// labelled with the analysis (moments, histogram, graph):
// quorumq_analyze_messages_{merged,duplicate,invalid,skipped}_total,
// quorumq_analyze_batches_total and quorumq_analyze_merge_errors_total.
type runnerCollector struct{ r *runner }

var (
	analysisLabel    = []string{"analysis"}
	descAnMerged     = prometheus.NewDesc("quorumq_analyze_messages_merged_total", "Messages merged into the aggregate in Redis.", analysisLabel, nil)
	descAnDuplicates = prometheus.NewDesc("quorumq_analyze_messages_duplicate_total", "Redelivered messages not merged again (their id was merged within --dedup-window).", analysisLabel, nil)
	descAnInvalid    = prometheus.NewDesc("quorumq_analyze_messages_invalid_total", "Messages that did not parse (acked, not counted).", analysisLabel, nil)
	descAnSkipped    = prometheus.NewDesc("quorumq_analyze_messages_skipped_total", "Messages that are not data by design, such as heartbeats.", analysisLabel, nil)
	descAnBatches    = prometheus.NewDesc("quorumq_analyze_batches_total", "Batches merged into Redis.", analysisLabel, nil)
	descAnMergeErrs  = prometheus.NewDesc("quorumq_analyze_merge_errors_total", "Batches whose merge failed after its retries (their messages come back).", analysisLabel, nil)
	runnerDescs      = []*prometheus.Desc{descAnMerged, descAnDuplicates, descAnInvalid, descAnSkipped, descAnBatches, descAnMergeErrs}
)

// Describe implements prometheus.Collector.
func (c runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range runnerDescs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c runnerCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.r.stats
	for _, m := range []struct {
		d *prometheus.Desc
		v int64
	}{
		{descAnMerged, s.merged.Load()}, {descAnDuplicates, s.dupes.Load()}, {descAnInvalid, s.invalid.Load()},
		{descAnSkipped, s.skipped.Load()}, {descAnBatches, s.batches.Load()}, {descAnMergeErrs, s.mergeErrors.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v), c.r.agg.task)
	}
}

// registerRun registers the run's and its reader's collectors in reg (nil:
// none) and returns what unregisters them.
func registerRun(reg prometheus.Registerer, r *runner, rd *reader.Reader) (func(), error) {
	if reg == nil {
		return func() {}, nil
	}
	cs := append([]prometheus.Collector{runnerCollector{r}}, rd.Collectors()...)
	var done []prometheus.Collector
	unregister := func() {
		for _, c := range done {
			reg.Unregister(c)
		}
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			unregister()
			return nil, err
		}
		done = append(done, c)
	}
	return unregister, nil
}
