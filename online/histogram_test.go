package online_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/quorumq/quorumq/online"
)

func TestIntHistogram_ZeroValue_CountsAndSortedBins(t *testing.T) {
	var h online.IntHistogram
	if got := h.Bins(); len(got) != 0 || h.Total() != 0 || h.Len() != 0 {
		t.Fatalf("zero value: Bins = %v, Total = %d, Len = %d; want empty", got, h.Total(), h.Len())
	}
	for _, v := range []int64{3, -2, 7, 3, 0, -2, 3, math.MinInt64, math.MaxInt64} {
		h.Add(v)
	}
	h.AddN(7, 5)
	h.AddN(100, 0) // no-op, must not create an entry

	want := []online.IntBin{
		{Value: math.MinInt64, Count: 1},
		{Value: -2, Count: 2},
		{Value: 0, Count: 1},
		{Value: 3, Count: 3},
		{Value: 7, Count: 6},
		{Value: math.MaxInt64, Count: 1},
	}
	if got := h.Bins(); !slices.Equal(got, want) {
		t.Errorf("Bins() = %v, want %v", got, want)
	}
	if h.Total() != 14 || h.Len() != 6 {
		t.Errorf("Total, Len = %d, %d; want 14, 6", h.Total(), h.Len())
	}
	if h.Count(-2) != 2 || h.Count(100) != 0 {
		t.Errorf("Count(-2), Count(100) = %d, %d; want 2, 0", h.Count(-2), h.Count(100))
	}
}

func TestIntHistogram_Merge_AddsCountsAndTotals(t *testing.T) {
	var a, b online.IntHistogram
	for _, v := range []int64{-1, 1, 1, 2} {
		a.Add(v)
	}
	for _, v := range []int64{1, 2, 5, -9} {
		b.Add(v)
	}
	a.Merge(&b)
	want := []online.IntBin{{-9, 1}, {-1, 1}, {1, 3}, {2, 2}, {5, 1}}
	if got := a.Bins(); !slices.Equal(got, want) || a.Total() != 8 {
		t.Errorf("after merge: Bins = %v, Total = %d; want %v, 8", got, a.Total(), want)
	}
	if got := b.Bins(); len(got) != 4 || b.Total() != 4 {
		t.Errorf("merge modified its argument: %v", got)
	}

	// Identity cases: nil, empty, and merging into an empty histogram.
	a.Merge(nil)
	a.Merge(&online.IntHistogram{})
	var c online.IntHistogram
	c.Merge(&a)
	if got := c.Bins(); !slices.Equal(got, want) || c.Total() != 8 {
		t.Errorf("empty.Merge(a): Bins = %v, Total = %d; want %v, 8", got, c.Total(), want)
	}

	// Self-merge doubles.
	c.Merge(&c)
	for i := range want {
		want[i].Count *= 2
	}
	if got := c.Bins(); !slices.Equal(got, want) || c.Total() != 16 {
		t.Errorf("c.Merge(&c): Bins = %v, Total = %d; want %v, 16", got, c.Total(), want)
	}
}

func TestFloatLayout_Validate_RejectsUnusableLayouts(t *testing.T) {
	tests := []struct {
		name   string
		layout online.FloatLayout
	}{
		{"ZeroWidth", online.FloatLayout{Min: 0, Width: 0, NumBins: 10}},
		{"NegativeWidth", online.FloatLayout{Min: 0, Width: -1, NumBins: 10}},
		{"NaNWidth", online.FloatLayout{Min: 0, Width: math.NaN(), NumBins: 10}},
		{"InfWidth", online.FloatLayout{Min: 0, Width: math.Inf(1), NumBins: 10}},
		{"NaNMin", online.FloatLayout{Min: math.NaN(), Width: 1, NumBins: 10}},
		{"InfMin", online.FloatLayout{Min: math.Inf(-1), Width: 1, NumBins: 10}},
		{"NoBins", online.FloatLayout{Min: 0, Width: 1, NumBins: 0}},
		{"NegativeBins", online.FloatLayout{Min: 0, Width: 1, NumBins: -3}},
		{"TooManyBins", online.FloatLayout{Min: 0, Width: 1, NumBins: online.MaxFloatBins + 1}},
		{"MaxOverflows", online.FloatLayout{Min: 0, Width: math.MaxFloat64 / 2, NumBins: 4}},
		{"WidthBelowResolution", online.FloatLayout{Min: 1e9, Width: 1e-9, NumBins: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.layout.Validate(); !errors.Is(err, online.ErrInvalidLayout) {
				t.Errorf("Validate() = %v, want ErrInvalidLayout", err)
			}
			h, err := online.NewFloatHistogram(tt.layout)
			if !errors.Is(err, online.ErrInvalidLayout) || h != nil {
				t.Errorf("NewFloatHistogram() = %v, %v; want nil, ErrInvalidLayout", h, err)
			}
		})
	}
}

// TestFloatHistogram_EdgeValues_GoToUpperBin pins the half-open bins
// [Edge(i), Edge(i+1)) on a layout with negative values, and the routing of
// out-of-range and non-finite input.
func TestFloatHistogram_EdgeValues_GoToUpperBin(t *testing.T) {
	l := online.FloatLayout{Min: -1, Width: 0.5, NumBins: 4} // edges -1, -0.5, 0, 0.5, 1
	below := func(x float64) float64 { return math.Nextafter(x, math.Inf(-1)) }
	const under, over, nan = -1, -2, -3
	tests := []struct {
		x    float64
		want int // bin index, or under/over/nan
	}{
		{-1, 0}, {below(-1), under}, {-0.75, 0}, {below(-0.5), 0},
		{-0.5, 1}, {-0.25, 1},
		{0, 2}, {math.Copysign(0, -1), 2}, {below(0), 1},
		{0.5, 3}, {below(1), 3},
		{1, over}, {1e300, over}, {-1e300, under},
		{math.Inf(1), over}, {math.Inf(-1), under}, {math.NaN(), nan},
	}
	h, err := online.NewFloatHistogram(l)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := make([]uint64, l.NumBins)
	var wantUnder, wantOver, wantNaN uint64
	for _, tt := range tests {
		i, ok := h.Bin(tt.x)
		switch tt.want {
		case under, over, nan:
			if ok || i != -1 {
				t.Errorf("Bin(%v) = %d, %v; want -1, false", tt.x, i, ok)
			}
		default:
			if !ok || i != tt.want {
				t.Errorf("Bin(%v) = %d, %v; want %d, true", tt.x, i, ok, tt.want)
			}
		}
		h.Add(tt.x)
		switch tt.want {
		case under:
			wantUnder++
		case over:
			wantOver++
		case nan:
			wantNaN++
		default:
			wantCounts[tt.want]++
		}
	}
	for i, w := range wantCounts {
		if got := h.Count(i); got != w {
			t.Errorf("Count(%d) = %d, want %d", i, got, w)
		}
	}
	if h.Underflow() != wantUnder || h.Overflow() != wantOver || h.NaNs() != wantNaN {
		t.Errorf("Underflow, Overflow, NaNs = %d, %d, %d; want %d, %d, %d",
			h.Underflow(), h.Overflow(), h.NaNs(), wantUnder, wantOver, wantNaN)
	}
	if h.Total() != uint64(len(tests)) {
		t.Errorf("Total = %d, want %d (every Add is counted)", h.Total(), len(tests))
	}

	wantBins := []online.FloatBin{
		{Lo: -1, Hi: -0.5, Count: wantCounts[0]},
		{Lo: -0.5, Hi: 0, Count: wantCounts[1]},
		{Lo: 0, Hi: 0.5, Count: wantCounts[2]},
		{Lo: 0.5, Hi: 1, Count: wantCounts[3]},
	}
	if got := h.Bins(); !slices.Equal(got, wantBins) {
		t.Errorf("Bins() = %v, want %v", got, wantBins)
	}
}

// TestFloatLayout_Bin_AgreesWithEdges checks, for widths that are not
// exactly representable (where (x−Min)/Width rounds across integers), that
// Bin(x) = i exactly when Edge(i) ≤ x < Edge(i+1): every edge maps to its
// own bin, the float just below it to the previous bin, and random values
// land between the edges of the bin reported.
func TestFloatLayout_Bin_AgreesWithEdges(t *testing.T) {
	layouts := []online.FloatLayout{
		{Min: 0, Width: 0.1, NumBins: 1000},
		{Min: -3.7, Width: 0.3, NumBins: 997},
		{Min: 1e9, Width: 1e-3, NumBins: 1000},
		{Min: -1e-300, Width: 1e-303, NumBins: 2000},
	}
	r := rand.New(rand.NewPCG(31, 31))
	for _, l := range layouts {
		if err := l.Validate(); err != nil {
			t.Fatalf("%+v: %v", l, err)
		}
		for i := 0; i < l.NumBins; i++ {
			e := l.Edge(i)
			if got, ok := l.Bin(e); !ok || got != i {
				t.Fatalf("%+v: Bin(Edge(%d) = %v) = %d, %v; want %d", l, i, e, got, ok, i)
			}
			if got, ok := l.Bin(math.Nextafter(e, math.Inf(-1))); i > 0 && (!ok || got != i-1) {
				t.Fatalf("%+v: Bin(just below Edge(%d)) = %d, %v; want %d", l, i, got, ok, i-1)
			}
		}
		for range 10000 {
			x := l.Min + r.Float64()*(l.Max()-l.Min)
			i, ok := l.Bin(x)
			if !ok {
				if x < l.Max() {
					t.Fatalf("%+v: Bin(%v) out of range but x < Max", l, x)
				}
				continue
			}
			if !(l.Edge(i) <= x && x < l.Edge(i+1)) {
				t.Fatalf("%+v: Bin(%v) = %d but bin is [%v, %v)", l, x, i, l.Edge(i), l.Edge(i+1))
			}
		}
	}
}

func TestFloatHistogram_Merge_SameLayoutAddsAllCounters(t *testing.T) {
	l := online.FloatLayout{Min: -10, Width: 2, NumBins: 10}
	a, _ := online.NewFloatHistogram(l)
	b, _ := online.NewFloatHistogram(l)
	all, _ := online.NewFloatHistogram(l)
	r := rand.New(rand.NewPCG(41, 41))
	for i := range 5000 {
		x := r.NormFloat64() * 8
		switch i % 97 {
		case 0:
			x = math.NaN()
		case 1:
			x = math.Inf(1)
		}
		if r.IntN(2) == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
		all.Add(x)
	}
	if err := a.Merge(b); err != nil {
		t.Fatalf("Merge: %v", err)
	}
	if !slices.Equal(a.Bins(), all.Bins()) ||
		a.Underflow() != all.Underflow() || a.Overflow() != all.Overflow() ||
		a.NaNs() != all.NaNs() || a.Total() != all.Total() {
		t.Errorf("merged halves differ from single histogram:\n got %v u=%d o=%d nan=%d total=%d\nwant %v u=%d o=%d nan=%d total=%d",
			a.Bins(), a.Underflow(), a.Overflow(), a.NaNs(), a.Total(),
			all.Bins(), all.Underflow(), all.Overflow(), all.NaNs(), all.Total())
	}
	if all.Underflow() == 0 || all.Overflow() == 0 || all.NaNs() == 0 {
		t.Fatalf("test data should exercise every counter")
	}

	before := a.Bins()
	if err := a.Merge(nil); err != nil || !slices.Equal(a.Bins(), before) {
		t.Errorf("Merge(nil) = %v or changed bins", err)
	}
}

func TestFloatHistogram_Merge_LayoutMismatchIsErrorAndNoOp(t *testing.T) {
	base := online.FloatLayout{Min: 0, Width: 1, NumBins: 10}
	others := []online.FloatLayout{
		{Min: 0.5, Width: 1, NumBins: 10},
		{Min: 0, Width: 2, NumBins: 10},
		{Min: 0, Width: 1, NumBins: 11},
		{Min: 0, Width: 0.5, NumBins: 20}, // same range, different bins
	}
	for _, ol := range others {
		h, _ := online.NewFloatHistogram(base)
		h.Add(3)
		o, err := online.NewFloatHistogram(ol)
		if err != nil {
			t.Fatal(err)
		}
		o.Add(3)
		o.Add(-1)
		if err := h.Merge(o); !errors.Is(err, online.ErrLayoutMismatch) {
			t.Errorf("Merge(%+v) into %+v = %v, want ErrLayoutMismatch", ol, base, err)
		}
		if h.Total() != 1 || h.Count(3) != 1 || h.Underflow() != 0 {
			t.Errorf("failed Merge modified receiver: total %d", h.Total())
		}
	}
}
