package online_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/quorumq/quorumq/online"
)

// u is the float64 unit roundoff, 2⁻⁵³.
const u = 0x1p-53

// exactMoments holds the count, mean and central moment sums of a data set
// computed in exact rational arithmetic from the float64 inputs, then
// rounded once to float64.
type exactMoments struct {
	n          int
	mean       float64
	m2, m3, m4 float64
	varSample  float64 // M2/(n-1), NaN for n < 2
	g1, g2     float64 // population skewness and excess kurtosis
}

// exact computes the exact moments of xs in integer arithmetic. Every
// float64 is m·2^e with integer m, so with E the smallest exponent each
// input is the integer Xᵢ = mᵢ·2^(eᵢ−E) times 2^E. With S = ΣXᵢ,
//
//	mean = S/n · 2^E,   M_p = Σ (n·Xᵢ − S)^p / n^p · 2^(pE)
//
// is exact (math/big), and each result is rounded once to float64 by
// big.Rat.Float64. g1 and g2 are derived in float64 from those correctly
// rounded values, so they are within a few ulps of the true values.
func exact(xs []float64) exactMoments {
	n := len(xs)
	mant := make([]*big.Int, n)
	exps := make([]int, n)
	minExp := math.MaxInt
	for i, x := range xs {
		fr, e := math.Frexp(x) // x = fr·2^e, 0.5 ≤ |fr| < 1
		mant[i] = big.NewInt(int64(math.Ldexp(fr, 53)))
		exps[i] = e - 53
		minExp = min(minExp, exps[i])
	}
	sum := new(big.Int)
	for i := range mant {
		mant[i].Lsh(mant[i], uint(exps[i]-minExp))
		sum.Add(sum, mant[i])
	}
	bn := big.NewInt(int64(n))
	num := [5]*big.Int{nil, nil, new(big.Int), new(big.Int), new(big.Int)} // num[p] = Σ (n·Xᵢ − S)^p
	t, t2 := new(big.Int), new(big.Int)
	for _, x := range mant {
		t.Mul(x, bn).Sub(t, sum)
		t2.Mul(t, t)
		num[2].Add(num[2], t2)
		num[3].Add(num[3], new(big.Int).Mul(t2, t))
		num[4].Add(num[4], new(big.Int).Mul(t2, t2))
	}
	// scaled returns v / (n^p·k) · 2^(p·minExp) rounded to float64.
	scaled := func(v *big.Int, p int, k int64) float64 {
		numer := new(big.Int).Set(v)
		denom := new(big.Int).Exp(bn, big.NewInt(int64(p)), nil)
		denom.Mul(denom, big.NewInt(k))
		if sh := p * minExp; sh >= 0 {
			numer.Lsh(numer, uint(sh))
		} else {
			denom.Lsh(denom, uint(-sh))
		}
		f, _ := new(big.Rat).SetFrac(numer, denom).Float64()
		return f
	}
	e := exactMoments{
		n: n, mean: scaled(sum, 1, 1),
		m2: scaled(num[2], 2, 1), m3: scaled(num[3], 3, 1), m4: scaled(num[4], 4, 1),
		varSample: math.NaN(),
	}
	if n >= 2 {
		e.varSample = scaled(num[2], 2, int64(n-1)) // M2/(n−1)
	}
	nf := float64(n)
	e.g1 = math.Sqrt(nf) * e.m3 / math.Pow(e.m2, 1.5)
	e.g2 = nf*e.m4/(e.m2*e.m2) - 3
	return e
}

// relErr returns |got-want|/|want|, or |got| if want is 0.
func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// singlePass feeds xs one at a time into a fresh accumulator.
func singlePass(tb testing.TB, xs []float64) online.Moments {
	tb.Helper()
	var m online.Moments
	for i, x := range xs {
		if err := m.Add(x); err != nil {
			tb.Fatalf("Add(xs[%d]=%v): %v", i, x, err)
		}
	}
	return m
}

// Deterministic data sets. Each generator owns its seed.

// near1e9 returns n values 1e9 + k/2 with k ≈ N(0, 4) an integer, i.e. an
// offset of 1e9 with variance ≈ 1. All values are exactly representable.
func near1e9(n int) []float64 {
	r := rand.New(rand.NewPCG(1, 1))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = 1e9 + math.Round(2*r.NormFloat64())/2
	}
	return xs
}

// tinyVariance returns 1 + k·1e-9 for k = 0..n-1 (spread ~3e-7 around 1).
func tinyVariance(n int) []float64 {
	xs := make([]float64, n)
	for k := range xs {
		xs[k] = 1 + float64(k)*1e-9
	}
	return xs
}

// heavyTail returns n Pareto(α=1.5, xm=1) samples, which have infinite
// variance in the limit, plus three huge outliers, shuffled.
func heavyTail(n int) []float64 {
	r := rand.New(rand.NewPCG(2, 2))
	xs := make([]float64, 0, n+3)
	for range n {
		xs = append(xs, math.Pow(1-r.Float64(), -1/1.5))
	}
	xs = append(xs, 1e6, 3.5e7, 2e8)
	r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
	return xs
}

// normal returns n samples of N(mu, sigma²).
func normal(seed uint64, n int, mu, sigma float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 3))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mu + sigma*r.NormFloat64()
	}
	return xs
}

// exponential returns n Exp(1)·scale samples (skewness 2, excess kurtosis 6).
func exponential(seed uint64, n int, scale float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 4))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = scale * r.ExpFloat64()
	}
	return xs
}

// uniform returns n samples of U[lo, hi).
func uniform(seed uint64, n int, lo, hi float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 5))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = lo + (hi-lo)*r.Float64()
	}
	return xs
}

// unixNanos returns n timestamps around 1.7e18 ns (2023) with a spread of a
// few hundred microseconds. float64 spacing at 1.7e18 is 256, so values are
// drawn as exact multiples of 256.
func unixNanos(n int) []float64 {
	r := rand.New(rand.NewPCG(6, 6))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = 1.7e18 + 256*math.Round(1000*r.NormFloat64())
	}
	return xs
}

// reversed returns a reversed copy of xs.
func reversed(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[len(xs)-1-i] = x
	}
	return out
}
