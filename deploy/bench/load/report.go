package load

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteText prints r for a person: the parameters, throughput, and the
// latency percentiles of one operation.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "mode %s  targets %s", r.Mode, strings.Join(r.Targets, ","))
	if r.Leader != "" {
		fmt.Fprintf(w, " (leader %s)", r.Leader)
	}
	fmt.Fprintf(w, "  concurrency %d  size %d  batch %d", r.Concurrency, r.Size, r.Batch)
	if r.Rate > 0 {
		fmt.Fprintf(w, "  offered %.0f ops/s", r.Rate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "elapsed %.2fs  ops %d  msgs %d  errors %d", r.Elapsed, r.Ops, r.Msgs, r.Errors)
	if r.Empty > 0 {
		fmt.Fprintf(w, "  empty %d", r.Empty)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "throughput  %.0f ops/s  %.0f msgs/s\n", r.OpsPerSec, r.MsgsPerSec)
	l := r.Latency
	fmt.Fprintf(w, "latency     mean %s  p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n",
		us(l.Mean), us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max))
	if len(r.Extra) > 0 {
		keys := make([]string, 0, len(r.Extra))
		for k := range r.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := r.Extra[k]
			if strings.HasSuffix(k, "_us") {
				fmt.Fprintf(w, "%-20s %s\n", k, us(v))
			} else {
				fmt.Fprintf(w, "%-20s %.0f\n", k, v)
			}
		}
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// us formats microseconds as a short duration.
func us(v float64) string {
	d := time.Duration(v * 1e3)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0fµs", float64(d)/1e3)
}
