package online

import (
	"fmt"
	"math"
	"slices"
)

// IntHistogram counts occurrences of each distinct int64 value (for example
// message sizes or per-key delivery counts). Memory is proportional to the
// number of distinct values.
//
// The zero value is an empty histogram ready for use. An IntHistogram is
// not safe for concurrent mutation.
type IntHistogram struct {
	counts map[int64]uint64
	total  uint64
}

// IntBin is one entry of an [IntHistogram]: a value and how many times it
// was added.
type IntBin struct {
	Value int64
	Count uint64
}

// Add records one occurrence of v.
func (h *IntHistogram) Add(v int64) { h.AddN(v, 1) }

// AddN records count occurrences of v. AddN with count 0 is a no-op and
// does not create an entry for v.
func (h *IntHistogram) AddN(v int64, count uint64) {
	if count == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make(map[int64]uint64)
	}
	h.counts[v] += count
	h.total += count
}

// Count returns the number of recorded occurrences of v (0 if none).
func (h *IntHistogram) Count(v int64) uint64 { return h.counts[v] }

// Total returns the number of recorded occurrences of all values.
func (h *IntHistogram) Total() uint64 { return h.total }

// Len returns the number of distinct values recorded.
func (h *IntHistogram) Len() int { return len(h.counts) }

// Bins returns the recorded values with their counts, sorted by ascending
// value (negative values first). Only values with a non-zero count are
// listed. The slice is a fresh copy owned by the caller.
func (h *IntHistogram) Bins() []IntBin {
	bins := make([]IntBin, 0, len(h.counts))
	for v, c := range h.counts {
		bins = append(bins, IntBin{Value: v, Count: c})
	}
	slices.SortFunc(bins, func(a, b IntBin) int {
		switch {
		case a.Value < b.Value:
			return -1
		case a.Value > b.Value:
			return 1
		}
		return 0
	})
	return bins
}

// Merge adds every count of other into h. A nil or empty other is a no-op;
// h.Merge(h) doubles every count.
func (h *IntHistogram) Merge(other *IntHistogram) {
	if other == nil {
		return
	}
	// h.Merge(h) is allowed: updating existing keys while ranging over
	// the same map is well defined and visits each key once.
	if h.counts == nil && len(other.counts) > 0 {
		h.counts = make(map[int64]uint64, len(other.counts))
	}
	for v, c := range other.counts {
		h.counts[v] += c
	}
	h.total += other.total
}

// MaxFloatBins is the largest NumBins accepted by [FloatLayout.Validate]
// (16 Mi bins, 128 MiB of counters), to turn a mistyped configuration into
// an error rather than an enormous allocation.
const MaxFloatBins = 1 << 24

// FloatLayout describes the fixed-width bins of a [FloatHistogram]: NumBins
// bins of width Width starting at Min. Bin i is the half-open interval
//
//	[Edge(i), Edge(i+1)),  Edge(i) = Min + float64(i)*Width
//
// (edges are computed exactly like this, in float64), so a value lying
// exactly on an edge belongs to the upper bin. Values below Min are counted
// as underflow and values at or above Max = Edge(NumBins) as overflow.
type FloatLayout struct {
	Min     float64 // lower edge of bin 0; finite
	Width   float64 // bin width; finite and > 0
	NumBins int     // number of regular bins; 1 ≤ NumBins ≤ MaxFloatBins
}

// Edge returns the lower edge of bin i, Min + float64(i)*Width. Edge(NumBins)
// is the exclusive upper bound Max of the last bin. Edge does not check i.
//
// The product is explicitly rounded before the addition (no fused
// multiply-add), so an edge has the same value wherever it is computed and
// [FloatLayout.Bin] agrees exactly with Edge.
func (l FloatLayout) Edge(i int) float64 { return l.Min + float64(float64(i)*l.Width) }

// Max returns the exclusive upper bound of the last bin, Edge(NumBins).
func (l FloatLayout) Max() float64 { return l.Edge(l.NumBins) }

// Validate returns an error wrapping [ErrInvalidLayout] unless Min and Width
// are finite, Width > 0, 1 ≤ NumBins ≤ [MaxFloatBins], Max is finite and the
// computed edges are strictly increasing (which fails when Width is below
// the float64 resolution at Min, e.g. Min = 1e9, Width = 1e-9).
func (l FloatLayout) Validate() error {
	switch {
	case !isFinite(l.Min):
		return fmt.Errorf("%w: Min = %v is not finite", ErrInvalidLayout, l.Min)
	case !isFinite(l.Width) || !(l.Width > 0):
		return fmt.Errorf("%w: Width = %v is not finite and positive", ErrInvalidLayout, l.Width)
	case l.NumBins < 1 || l.NumBins > MaxFloatBins:
		return fmt.Errorf("%w: NumBins = %d not in [1, %d]", ErrInvalidLayout, l.NumBins, MaxFloatBins)
	case !isFinite(l.Max()):
		return fmt.Errorf("%w: Max = %v is not finite", ErrInvalidLayout, l.Max())
	}
	prev := l.Edge(0)
	for i := 1; i <= l.NumBins; i++ {
		e := l.Edge(i)
		if !(e > prev) {
			return fmt.Errorf("%w: edges %d and %d coincide at %v (Width below float64 resolution)",
				ErrInvalidLayout, i-1, i, e)
		}
		prev = e
	}
	return nil
}

// Bin returns the index of the bin containing x, i.e. the i with
// Edge(i) ≤ x < Edge(i+1), and true. It returns (-1, false) if x is NaN or
// outside [Min, Max); -Inf and +Inf are outside. The result is meaningless
// for a layout that fails [FloatLayout.Validate].
func (l FloatLayout) Bin(x float64) (int, bool) {
	if math.IsNaN(x) || x < l.Min || x >= l.Max() {
		return -1, false
	}
	// Estimate, then correct against the edges as Edge computes them so
	// that Bin and Edge agree exactly even when (x-Min)/Width rounds
	// across an integer (e.g. Width = 0.1).
	i := int(math.Floor((x - l.Min) / l.Width))
	i = min(max(i, 0), l.NumBins-1)
	for x < l.Edge(i) {
		i--
	}
	for x >= l.Edge(i+1) {
		i++
	}
	return i, true
}

// FloatHistogram counts float64 observations in fixed-width bins laid out
// by a [FloatLayout], with separate counters for values below Min
// (underflow, including -Inf), at or above Max (overflow, including +Inf)
// and NaN. Nothing is ever rejected, so Total always equals the number of
// Add calls.
//
// Create one with [NewFloatHistogram]; the zero value has no bins and is
// not useful. A FloatHistogram is not safe for concurrent mutation.
type FloatHistogram struct {
	layout    FloatLayout
	counts    []uint64
	underflow uint64
	overflow  uint64
	nan       uint64
	total     uint64
}

// FloatBin is one regular bin of a [FloatHistogram]: the half-open interval
// [Lo, Hi) and its count.
type FloatBin struct {
	Lo, Hi float64
	Count  uint64
}

// NewFloatHistogram returns an empty histogram with layout l, or an error
// wrapping [ErrInvalidLayout] if l fails [FloatLayout.Validate].
func NewFloatHistogram(l FloatLayout) (*FloatHistogram, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &FloatHistogram{layout: l, counts: make([]uint64, l.NumBins)}, nil
}

// Layout returns the histogram's bin layout.
func (h *FloatHistogram) Layout() FloatLayout { return h.layout }

// Add records x: in its bin if Min ≤ x < Max, otherwise in the underflow
// (x < Min, including -Inf), overflow (x ≥ Max, including +Inf) or NaN
// counter.
func (h *FloatHistogram) Add(x float64) {
	h.total++
	if i, ok := h.layout.Bin(x); ok {
		h.counts[i]++
		return
	}
	switch {
	case math.IsNaN(x):
		h.nan++
	case x < h.layout.Min:
		h.underflow++
	default:
		h.overflow++
	}
}

// Bin returns the index of the bin that x falls into; see [FloatLayout.Bin].
func (h *FloatHistogram) Bin(x float64) (int, bool) { return h.layout.Bin(x) }

// Edge returns the lower edge of bin i; see [FloatLayout.Edge].
func (h *FloatHistogram) Edge(i int) float64 { return h.layout.Edge(i) }

// Count returns the count of bin i. Like a slice index, it panics if i is
// not in [0, NumBins); an out-of-range index is a programming error.
func (h *FloatHistogram) Count(i int) uint64 { return h.counts[i] }

// Underflow returns the number of observations below Min, including -Inf.
func (h *FloatHistogram) Underflow() uint64 { return h.underflow }

// Overflow returns the number of observations at or above Max, including
// +Inf.
func (h *FloatHistogram) Overflow() uint64 { return h.overflow }

// NaNs returns the number of NaN observations.
func (h *FloatHistogram) NaNs() uint64 { return h.nan }

// Total returns the number of observations recorded: the sum of all bin
// counts plus underflow, overflow and NaN.
func (h *FloatHistogram) Total() uint64 { return h.total }

// Bins returns all NumBins regular bins in ascending order, including empty
// ones, with Lo = Edge(i) and Hi = Edge(i+1). The slice is a fresh copy
// owned by the caller.
func (h *FloatHistogram) Bins() []FloatBin {
	bins := make([]FloatBin, len(h.counts))
	for i, c := range h.counts {
		bins[i] = FloatBin{Lo: h.layout.Edge(i), Hi: h.layout.Edge(i + 1), Count: c}
	}
	return bins
}

// Merge adds every counter of other into h. It returns an error wrapping
// [ErrLayoutMismatch], leaving h unchanged, unless both histograms have
// identical layouts (==, field by field). A nil other is a no-op.
func (h *FloatHistogram) Merge(other *FloatHistogram) error {
	if other == nil {
		return nil
	}
	if h.layout != other.layout {
		return fmt.Errorf("%w: %+v vs %+v", ErrLayoutMismatch, h.layout, other.layout)
	}
	for i, c := range other.counts {
		h.counts[i] += c
	}
	h.underflow += other.underflow
	h.overflow += other.overflow
	h.nan += other.nan
	h.total += other.total
	return nil
}
