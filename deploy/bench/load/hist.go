package load

import (
	"math"
	"math/bits"
	"time"
)

// Histogram records durations in a log-linear layout, as HdrHistogram does:
// values below 2*subBuckets nanoseconds get a bucket each, and every
// power-of-two range above is split into subBuckets equal buckets, so any
// recorded value is reported within 1/subBuckets (0.8 %) of itself. It
// covers 0 to 2^62 ns in a fixed array, records without allocating, and is
// not safe for concurrent use: give each worker its own and Merge them.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // ns
	min    int64
	max    int64
}

const (
	subBits     = 7
	subBuckets  = 1 << subBits
	histBuckets = (63-subBits)*subBuckets + subBuckets
)

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	e := bits.Len64(uint64(v)) - subBits - 1
	if e < 0 {
		e = 0
	}
	return e*subBuckets + int(uint64(v)>>uint(e))
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) int64 {
	if i < 2*subBuckets {
		return int64(i)
	}
	e := i/subBuckets - 1
	m := int64(i - e*subBuckets)
	lo := m << uint(e)
	return lo + (int64(1)<<uint(e))/2
}

// Record adds one value.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	i := bucketOf(v)
	if i >= histBuckets {
		i = histBuckets - 1
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Reset forgets everything recorded.
func (h *Histogram) Reset() { *h = Histogram{} }

// Count is the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the exact mean of the values recorded.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Max is the largest value recorded, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest value recorded, exactly.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Quantile returns the value below which a fraction q (0..1) of the
// recorded values fall, to within the histogram's precision. Quantile(1)
// is Max.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketValue(i)
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
