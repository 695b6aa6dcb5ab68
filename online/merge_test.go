package online_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"pgregory.net/rapid"

	"github.com/quorumq/quorumq/online"
)

// TestMergeMoments_DyadicInputs_BitExactAgainstRational merges small integer
// samples whose sizes make every intermediate of the merge formula a short
// dyadic rational (n a power of two), so floating point introduces no
// rounding and the result must equal the exact moments of the union bit for
// bit. These vectors double as golden test data for the Redis Lua port.
func TestMergeMoments_DyadicInputs_BitExactAgainstRational(t *testing.T) {
	tests := []struct {
		name string
		a, b []float64
		want online.RawMoments // hand-computed, cross-checked against exact()
	}{
		{"OneAndThree", []float64{1}, []float64{5, 7, 9},
			online.RawMoments{N: 4, Mean: 5.5, M2: 35, M3: -45, M4: 565.25}},
		{"ThreeAndFive", []float64{0, 1, 2}, []float64{4, 4, 6, 8, 8},
			online.RawMoments{N: 8, Mean: 4.125, M2: 64.875, M3: 12.65625, M4: 868.587890625}},
		{"FiveAndThree", []float64{4, 4, 6, 8, 8}, []float64{0, 1, 2},
			online.RawMoments{N: 8, Mean: 4.125, M2: 64.875, M3: 12.65625, M4: 868.587890625}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			union := append(append([]float64{}, tt.a...), tt.b...)
			if e := exact(union); (online.RawMoments{N: int64(e.n), Mean: e.mean, M2: e.m2, M3: e.m3, M4: e.m4}) != tt.want {
				t.Fatalf("test vector is wrong: exact moments of union are %+v", e)
			}
			got := online.MergeMoments(rawExact(tt.a), rawExact(tt.b))
			if !bitEqual(got, tt.want) {
				t.Errorf("MergeMoments = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestMergeMoments_MatchesOpByOpRoundedReference checks that MergeMoments
// computes exactly the operation sequence documented for the Lua port,
// each operation rounded individually to float64 (as Lua does). The
// reference evaluates that sequence with math/big.Float at 53-bit precision
// and round-to-nearest-even, which is IEEE-754 double arithmetic for values
// in the normal range, independent of any fused multiply-add the Go
// compiler might emit. Results must be bit-identical. Run with GOAMD64=v3
// (or on arm64) to exercise the FMA-prevention conversions.
func TestMergeMoments_MatchesOpByOpRoundedReference(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 21))
	sample := func() online.RawMoments {
		n := 1 + r.IntN(50)
		offset := []float64{0, 1e3, -1e6, 1e9}[r.IntN(4)]
		scale := math.Pow(10, float64(r.IntN(7)-3))
		var m online.Moments
		for range n {
			_ = m.Add(offset + scale*r.ExpFloat64()) // skewed, so M3 ≠ 0
		}
		return m.Raw()
	}
	for i := range 1000 {
		a, b := sample(), sample()
		got, want := online.MergeMoments(a, b), refMerge(a, b)
		if !bitEqual(got, want) {
			t.Fatalf("case %d: MergeMoments(%+v, %+v)\n = %+v\nwant %+v (op-by-op rounded)", i, a, b, got, want)
		}
	}
}

// refMerge is the documented Lua operation sequence of MergeMoments, each
// operation performed in big.Float and rounded once to float64.
func refMerge(a, b online.RawMoments) online.RawMoments {
	if a.N == 0 {
		return b
	}
	if b.N == 0 {
		return a
	}
	na, nb := float64(a.N), float64(b.N)
	n := add(na, nb)
	d := sub(b.Mean, a.Mean)
	dn := quo(d, n)
	dn2 := mul(dn, dn)
	nanb := mul(na, nb)
	mean := add(a.Mean, mul(nb, dn))
	m2 := add(add(a.M2, b.M2), mul(mul(d, dn), nanb))
	m3 := add(add(add(a.M3, b.M3), mul(mul(mul(d, dn2), nanb), sub(na, nb))),
		mul(mul(3, dn), sub(mul(na, b.M2), mul(nb, a.M2))))
	m4 := add(add(add(add(a.M4, b.M4),
		mul(mul(mul(mul(d, dn2), dn), nanb), add(sub(mul(na, na), nanb), mul(nb, nb)))),
		mul(mul(6, dn2), add(mul(mul(na, na), b.M2), mul(mul(nb, nb), a.M2)))),
		mul(mul(4, dn), sub(mul(na, b.M3), mul(nb, a.M3))))
	return online.RawMoments{N: a.N + b.N, Mean: mean, M2: m2, M3: m3, M4: m4}
}

func rounded(op func(z, x, y *big.Float) *big.Float, x, y float64) float64 {
	z := new(big.Float).SetPrec(53).SetMode(big.ToNearestEven)
	f, _ := op(z, big.NewFloat(x), big.NewFloat(y)).Float64()
	return f
}
func add(x, y float64) float64 { return rounded((*big.Float).Add, x, y) }
func sub(x, y float64) float64 { return rounded((*big.Float).Sub, x, y) }
func mul(x, y float64) float64 { return rounded((*big.Float).Mul, x, y) }
func quo(x, y float64) float64 { return rounded((*big.Float).Quo, x, y) }

// TestMoments_MergeRandomSplits_MatchesSinglePass partitions each data set
// at random (scattered assignment and contiguous chunks, including empty
// parts), accumulates each part separately and merges the parts as a left
// fold, a right fold, a balanced tree and in random pairwise order. Every
// result must match the single pass over the whole data.
//
// Tolerances: mean 1e-12 relative. M2 and M4 relative, and skewness g1
// absolute, tol = max(1e-9, 16·ulp(mean)/σ). A merge combines partial
// means that are rounded to float64 (they must be, to be stored in Redis),
// so δ = b.Mean − a.Mean carries an absolute error of about ulp(mean): the
// δ² correction of M2 is then off by ~ulp(mean)/σ relative to M2 per merge
// level, the δ⁴ term of M4 by up to four times that, and merge trees are
// several levels deep. For well-conditioned data ulp(mean)/σ ~ 1e-16 and
// the observed differences are ≤ 2e-13, so 1e-9 is generous yet catches
// any formula error (those show up at 1e-3 or worse). For values near 1e9
// with σ ≈ 1 the bound is ≈ 2e-6 (observed ≈ 1e-8); for 1 + k·1e-9 it is
// ≈ 1.2e-8 (observed ≈ 4e-9 with 150 parts).
func TestMoments_MergeRandomSplits_MatchesSinglePass(t *testing.T) {
	sets := []struct {
		name string
		xs   []float64
	}{
		{"Normal", normal(7, 2000, 10, 3)},
		{"Exponential", exponential(8, 2000, 2)},
		{"HeavyTail", heavyTail(2000)},
		{"Uniform", uniform(9, 2000, -1, 5)},
		{"NearBillionUnitVariance", near1e9(2000)},
		{"TinyVariance", tinyVariance(1000)},
	}
	shapes := []struct {
		name  string
		merge func(r *rand.Rand, parts []online.Moments) online.Moments
	}{
		{"LeftFold", leftFold},
		{"RightFold", rightFold},
		{"Balanced", func(_ *rand.Rand, p []online.Moments) online.Moments { return balanced(p) }},
		{"RandomPairs", randomPairs},
	}
	for _, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			single := singlePass(t, set.xs)
			want := single.Raw()
			sigma := single.StdDevPopulation()
			tol := math.Max(1e-9, 16*ulp(want.Mean)/sigma)
			for seed := range uint64(6) {
				r := rand.New(rand.NewPCG(100+seed, seed))
				k := []int{1, 2, 3, 7, 32, 150}[seed]
				parts := partition(r, set.xs, k, seed%2 == 0)
				for _, shape := range shapes {
					merged := shape.merge(r, parts)
					got := merged.Raw()
					where := func(s string) string { return shape.name + " k=" + strconv.Itoa(k) + " " + s }
					if got.N != want.N {
						t.Fatalf("%s: N = %d, want %d", where("N"), got.N, want.N)
					}
					checkRel(t, where("mean"), got.Mean, want.Mean, 1e-12)
					checkRel(t, where("M2"), got.M2, want.M2, tol)
					checkRel(t, where("M4"), got.M4, want.M4, tol)
					checkAbs(t, where("g1"), merged.Skewness(), single.Skewness(), tol)
				}
			}
		})
	}
}

// TestMoments_MergeWithEmpty_IsIdentity checks that merging with an empty
// accumulator on either side, via the method or MergeMoments, returns the
// other side bit for bit, and that an empty accumulator that absorbed m
// keeps behaving exactly like m afterwards.
func TestMoments_MergeWithEmpty_IsIdentity(t *testing.T) {
	m := singlePass(t, near1e9(100))
	want := m.Raw()

	right := m
	right.Merge(online.Moments{})
	if got := right.Raw(); !bitEqual(got, want) {
		t.Errorf("m.Merge(empty) = %+v, want %+v", got, want)
	}

	var left online.Moments
	left.Merge(m)
	if got := left.Raw(); !bitEqual(got, want) {
		t.Errorf("empty.Merge(m) = %+v, want %+v", got, want)
	}
	_, _ = left.Add(1e9+0.25), m.Add(1e9+0.25)
	if got, want := left.Raw(), m.Raw(); !bitEqual(got, want) {
		t.Errorf("after Add: empty.Merge(m) = %+v diverged from m = %+v", got, want)
	}

	var zero online.RawMoments
	if got := online.MergeMoments(zero, want); !bitEqual(got, want) {
		t.Errorf("MergeMoments(zero, r) = %+v, want %+v", got, want)
	}
	if got := online.MergeMoments(want, zero); !bitEqual(got, want) {
		t.Errorf("MergeMoments(r, zero) = %+v, want %+v", got, want)
	}
	if got := online.MergeMoments(zero, zero); got != zero {
		t.Errorf("MergeMoments(zero, zero) = %+v, want zero", got)
	}
	var e online.Moments
	e.Merge(online.Moments{})
	if e.Count() != 0 || !math.IsNaN(e.Mean()) {
		t.Errorf("empty.Merge(empty): Count = %d, Mean = %v; want 0, NaN", e.Count(), e.Mean())
	}
}

// TestMoments_MergeProperty_AnyPartitionAnyOrder is a rapid property test:
// for any data (optionally offset by 1e9 to make it ill-conditioned), any
// assignment of observations to parts and any merge order, the merged
// result matches the single pass within a forward error bound.
//
// The bound follows from the float64 error model with a = max|x| and
// s = max x − min x: every deviation carries an absolute error of at most
// O(u·a) and every sum of n terms O(n·u) relative, giving
// |ΔM_p| ≤ C·n²·u·s^(p−1)·(s + p·a) and |Δmean| ≤ C·n·u·a, with C = 16 and
// an absolute floor of 1e-300 below which float64 is subnormal.
func TestMoments_MergeProperty_AnyPartitionAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		offset := rapid.SampledFrom([]float64{0, 1e9}).Draw(t, "offset")
		vs := rapid.SliceOfN(rapid.Float64Range(-1e6, 1e6), 0, 64).Draw(t, "values")
		k := rapid.IntRange(1, 8).Draw(t, "parts")
		owner := rapid.SliceOfN(rapid.IntRange(0, k-1), len(vs), len(vs)).Draw(t, "owner")

		var single online.Moments
		parts := make([]online.Moments, k)
		a, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
		for i, v := range vs {
			x := offset + v
			if err := single.Add(x); err != nil {
				t.Fatalf("Add(%v): %v", x, err)
			}
			if err := parts[owner[i]].Add(x); err != nil {
				t.Fatalf("Add(%v): %v", x, err)
			}
			a, lo, hi = math.Max(a, math.Abs(x)), math.Min(lo, x), math.Max(hi, x)
		}
		for len(parts) > 1 {
			i := rapid.IntRange(0, len(parts)-1).Draw(t, "i")
			j := rapid.IntRange(0, len(parts)-2).Draw(t, "j")
			if j >= i {
				j++
			}
			parts[i].Merge(parts[j])
			parts[j] = parts[len(parts)-1]
			parts = parts[:len(parts)-1]
		}

		got, want := parts[0].Raw(), single.Raw()
		if got.N != want.N {
			t.Fatalf("N = %d, want %d", got.N, want.N)
		}
		if want.N == 0 {
			if got != want {
				t.Fatalf("merged empty parts = %+v, want zero", got)
			}
			return
		}
		const c, floor = 16, 1e-300
		n, s := float64(want.N), hi-lo
		check := func(what string, got, want, tol float64) {
			if d := math.Abs(got - want); !(d <= tol+floor) {
				t.Fatalf("%s: merged %.17g, single pass %.17g, |diff| %.3g > bound %.3g", what, got, want, d, tol)
			}
		}
		check("mean", got.Mean, want.Mean, c*n*u*a)
		check("M2", got.M2, want.M2, c*n*n*u*s*(s+2*a))
		check("M3", got.M3, want.M3, c*n*n*u*s*s*(s+3*a))
		check("M4", got.M4, want.M4, c*n*n*u*s*s*s*(s+4*a))
	})
}

// rawExact returns the exact moments of xs rounded to float64 as a tuple.
func rawExact(xs []float64) online.RawMoments {
	e := exact(xs)
	return online.RawMoments{N: int64(e.n), Mean: e.mean, M2: e.m2, M3: e.m3, M4: e.m4}
}

// bitEqual reports whether two tuples are identical including the sign of
// zero.
func bitEqual(a, b online.RawMoments) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	return a.N == b.N && same(a.Mean, b.Mean) && same(a.M2, b.M2) && same(a.M3, b.M3) && same(a.M4, b.M4)
}

// partition splits xs into k accumulators, either assigning each value to
// a random part or cutting xs into k contiguous chunks at random cut points
// (so some chunks may be empty).
func partition(r *rand.Rand, xs []float64, k int, scatter bool) []online.Moments {
	parts := make([]online.Moments, k)
	if scatter {
		for _, x := range xs {
			_ = parts[r.IntN(k)].Add(x)
		}
		return parts
	}
	cuts := make([]int, k-1)
	for i := range cuts {
		cuts[i] = r.IntN(len(xs) + 1)
	}
	slices.Sort(cuts)
	start := 0
	for i := range parts {
		end := len(xs)
		if i < len(cuts) {
			end = cuts[i]
		}
		_ = parts[i].AddAll(xs[start:end]...)
		start = end
	}
	return parts
}

func leftFold(_ *rand.Rand, parts []online.Moments) online.Moments {
	var acc online.Moments
	for _, p := range parts {
		acc.Merge(p)
	}
	return acc
}

func rightFold(_ *rand.Rand, parts []online.Moments) online.Moments {
	var acc online.Moments
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		p.Merge(acc)
		acc = p
	}
	return acc
}

func balanced(parts []online.Moments) online.Moments {
	if len(parts) == 1 {
		return parts[0]
	}
	l, r := balanced(parts[:len(parts)/2]), balanced(parts[len(parts)/2:])
	l.Merge(r)
	return l
}

func randomPairs(r *rand.Rand, parts []online.Moments) online.Moments {
	ps := append([]online.Moments(nil), parts...)
	for len(ps) > 1 {
		i, j := r.IntN(len(ps)), r.IntN(len(ps)-1)
		if j >= i {
			j++
		}
		ps[i].Merge(ps[j])
		ps[j] = ps[len(ps)-1]
		ps = ps[:len(ps)-1]
	}
	return ps[0]
}

// ulp returns the spacing of float64 values at |x|.
func ulp(x float64) float64 {
	x = math.Abs(x)
	return math.Nextafter(x, math.Inf(1)) - x
}
