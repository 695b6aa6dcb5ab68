package online_test

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/stat"

	"github.com/quorumq/quorumq/online"
)

// TestMoments_HardInputs_MatchExactRational compares the single-pass
// accumulator against exact rational arithmetic on inputs that defeat the
// naive formula.
//
// Tolerances (u = 2⁻⁵³ ≈ 1.1e-16):
//   - mean: 1e-15 relative (a few ulps). With the compensated running mean
//     the result is in practice the correctly rounded mean.
//   - M2 and M4: 1e-13 relative. Both are sums of non-negative terms, each
//     update contributes O(u) relative error and the errors largely cancel
//     (≈ sqrt(n)·u ≈ 5e-15 for n = 2000). Observed ≤ 3e-15; 1e-13 leaves
//     ~30× headroom yet is 10⁵ times tighter than uncompensated Welford
//     achieves on the 1e9 case (≈ 2e-8) and 10¹³ times tighter than the
//     naive formula (100% error).
//   - skewness g1 and excess kurtosis g2: 1e-12·max(1, |exact|). M3 is a
//     signed sum that can cancel to ~0 (symmetric data), so it is checked
//     through the dimensionless g1 with an absolute floor rather than
//     relative to M3 itself.
func TestMoments_HardInputs_MatchExactRational(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
	}{
		{"NearBillionUnitVariance", near1e9(2000)},
		{"TinyVarianceAscending", tinyVariance(1000)},
		{"TinyVarianceDescending", reversed(tinyVariance(1000))},
		{"UnixNanosMicrosecondSpread", unixNanos(2000)},
		{"HeavyTailParetoWithOutliers", heavyTail(2000)},
		{"NegativeOffsetSymmetric", []float64{-1e12 - 3, -1e12 - 1, -1e12 + 1, -1e12 + 3, -1e12 - 3, -1e12 + 3}},
		{"Normal", normal(7, 2000, 10, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := singlePass(t, tt.xs)
			want := exact(tt.xs)
			got := m.Raw()
			if got.N != int64(want.n) {
				t.Fatalf("N = %d, want %d", got.N, want.n)
			}
			checkRel(t, "mean", got.Mean, want.mean, 1e-15)
			checkRel(t, "M2", got.M2, want.m2, 1e-13)
			checkRel(t, "M4", got.M4, want.m4, 1e-13)
			checkRel(t, "VarianceSample", m.VarianceSample(), want.varSample, 1e-13)
			checkAbs(t, "Skewness", m.Skewness(), want.g1, 1e-12*math.Max(1, math.Abs(want.g1)))
			checkAbs(t, "ExcessKurtosis", m.ExcessKurtosis(), want.g2, 1e-12*math.Max(1, math.Abs(want.g2)))
		})
	}
}

// TestMoments_NearBillionUnitVariance_NaiveFormulaFails documents why the
// package exists: on values 1e9 + O(1), (Σx² − (Σx)²/n)/(n−1) has no
// correct digits, while the accumulator is accurate to ~1e-15.
func TestMoments_NearBillionUnitVariance_NaiveFormulaFails(t *testing.T) {
	xs := near1e9(2000)
	want := exact(xs).varSample

	var sum, sumSq float64
	for _, x := range xs {
		sum += x
		sumSq += x * x
	}
	n := float64(len(xs))
	naive := (sumSq - sum*sum/n) / (n - 1)

	m := singlePass(t, xs)
	naiveErr, oursErr := relErr(naive, want), relErr(m.VarianceSample(), want)
	t.Logf("exact variance %.6g: naive %.6g (rel err %.2g), Moments %.17g (rel err %.2g)",
		want, naive, naiveErr, m.VarianceSample(), oursErr)
	if naiveErr < 0.1 {
		t.Errorf("naive formula relative error %.3g, expected it to be catastrophic (≥ 0.1)", naiveErr)
	}
	if oursErr > 1e-13 {
		t.Errorf("Moments relative error %.3g, want ≤ 1e-13", oursErr)
	}
}

// TestMoments_WellConditioned_MatchesGonum cross-checks against gonum/stat
// on data where gonum's two-pass algorithms are themselves accurate.
// (Gonum is not used on the 1e9 or tiny-variance sets: its Skew and
// ExKurtosis standardise with a naively summed mean and drift by up to
// ~1e-5 relative there, which the exact test above covers instead.)
//
// Tolerances: mean and variance 1e-13 relative (both implementations are
// within a few ulps of exact; observed ≤ 5e-15). Sample skewness G1 and
// excess kurtosis G2 1e-10·max(1, |gonum|): gonum accumulates z³ and z⁴ of
// standardised values in plain summation, and for near-zero skewness
// (|G1| ~ 1e-2) the relative difference observed is ~2e-13.
func TestMoments_WellConditioned_MatchesGonum(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
	}{
		{"Normal", normal(7, 5000, 10, 3)},
		{"Exponential", exponential(8, 5000, 2)},
		{"Uniform", uniform(9, 5000, -1, 5)},
		{"HeavyTail", heavyTail(2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := singlePass(t, tt.xs)
			checkRel(t, "Mean", m.Mean(), stat.Mean(tt.xs, nil), 1e-13)
			checkRel(t, "VarianceSample", m.VarianceSample(), stat.Variance(tt.xs, nil), 1e-13)
			checkRel(t, "VariancePopulation", m.VariancePopulation(), stat.PopVariance(tt.xs, nil), 1e-13)
			g1 := stat.Skew(tt.xs, nil)
			checkAbs(t, "SkewnessSample", m.SkewnessSample(), g1, 1e-10*math.Max(1, math.Abs(g1)))
			g2 := stat.ExKurtosis(tt.xs, nil)
			checkAbs(t, "ExcessKurtosisSample", m.ExcessKurtosisSample(), g2, 1e-10*math.Max(1, math.Abs(g2)))
		})
	}
}

// TestMoments_SmallSamples_DocumentedValues pins the definitions, including
// the NaN results for too few observations or zero variance.
func TestMoments_SmallSamples_DocumentedValues(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name                                string
		xs                                  []float64
		mean, varPop, varSample, g1, g2     float64
		sdPop, sdSample, g1Sample, g2Sample float64
	}{
		{name: "Empty", xs: nil,
			mean: nan, varPop: nan, varSample: nan, g1: nan, g2: nan,
			sdPop: nan, sdSample: nan, g1Sample: nan, g2Sample: nan},
		{name: "Single", xs: []float64{5},
			mean: 5, varPop: 0, varSample: nan, g1: nan, g2: nan,
			sdPop: 0, sdSample: nan, g1Sample: nan, g2Sample: nan},
		{name: "Pair", xs: []float64{1, 3},
			mean: 2, varPop: 1, varSample: 2, g1: 0, g2: -2,
			sdPop: 1, sdSample: math.Sqrt2, g1Sample: nan, g2Sample: nan},
		// M2 = 32, M3 = 42, M4 = 356: g1 = √8·42/32^1.5 = 42/64,
		// g2 = 8·356/32² − 3 = −7/32.
		{name: "Textbook", xs: []float64{2, 4, 4, 4, 5, 5, 7, 9},
			mean: 5, varPop: 4, varSample: 32.0 / 7, g1: 42.0 / 64, g2: -7.0 / 32,
			sdPop: 2, sdSample: math.Sqrt(32.0 / 7),
			g1Sample: 42.0 / 64 * math.Sqrt(8*7) / 6,
			g2Sample: 7.0 / (6 * 5) * (9*(-7.0/32) + 6)},
		{name: "ConstantZeroVariance", xs: []float64{42.5, 42.5, 42.5, 42.5, 42.5},
			mean: 42.5, varPop: 0, varSample: 0, g1: nan, g2: nan,
			sdPop: 0, sdSample: 0, g1Sample: nan, g2Sample: nan},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := singlePass(t, tt.xs)
			if got := m.Count(); got != int64(len(tt.xs)) {
				t.Errorf("Count = %d, want %d", got, len(tt.xs))
			}
			const tol = 1e-14
			checkRel(t, "Mean", m.Mean(), tt.mean, tol)
			checkRel(t, "VariancePopulation", m.VariancePopulation(), tt.varPop, tol)
			checkRel(t, "VarianceSample", m.VarianceSample(), tt.varSample, tol)
			checkRel(t, "StdDevPopulation", m.StdDevPopulation(), tt.sdPop, tol)
			checkRel(t, "StdDevSample", m.StdDevSample(), tt.sdSample, tol)
			checkAbs(t, "Skewness", m.Skewness(), tt.g1, tol)
			checkAbs(t, "ExcessKurtosis", m.ExcessKurtosis(), tt.g2, tol)
			checkAbs(t, "SkewnessSample", m.SkewnessSample(), tt.g1Sample, tol)
			checkAbs(t, "ExcessKurtosisSample", m.ExcessKurtosisSample(), tt.g2Sample, tol)
		})
	}
}

// TestMoments_ConstantInput_ExactlyZeroMoments checks that constant input,
// including a large non-dyadic constant, yields the exact mean and exactly
// zero central moments (every deviation is exactly 0).
func TestMoments_ConstantInput_ExactlyZeroMoments(t *testing.T) {
	for _, c := range []float64{0, 0.1, -7, 1e9 + 0.5, 1.7e18, 1e300} {
		xs := make([]float64, 1000)
		for i := range xs {
			xs[i] = c
		}
		got := singlePass(t, xs).Raw()
		want := online.RawMoments{N: 1000, Mean: c}
		if got != want {
			t.Errorf("constant %v: Raw() = %+v, want %+v", c, got, want)
		}
	}
}

// TestMoments_NonFiniteInput_RejectedAndStateUnchanged checks Add and the
// all-or-nothing behaviour of AddAll for NaN and ±Inf.
func TestMoments_NonFiniteInput_RejectedAndStateUnchanged(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		m := singlePass(t, []float64{1, 2, 3})
		before := m.Raw()
		if err := m.Add(bad); !errors.Is(err, online.ErrNonFinite) {
			t.Errorf("Add(%v) error = %v, want ErrNonFinite", bad, err)
		}
		if err := m.AddAll(4, 5, bad, 6); !errors.Is(err, online.ErrNonFinite) {
			t.Errorf("AddAll(4, 5, %v, 6) error = %v, want ErrNonFinite", bad, err)
		}
		if got := m.Raw(); got != before {
			t.Errorf("after rejected %v: Raw() = %+v, want unchanged %+v", bad, got, before)
		}
	}
	var m online.Moments
	if err := m.AddAll(1, 2, 3); err != nil {
		t.Fatalf("AddAll(1, 2, 3) = %v", err)
	}
	if got, want := m.Raw(), singlePass(t, []float64{1, 2, 3}).Raw(); got != want {
		t.Errorf("AddAll Raw() = %+v, want %+v (same as repeated Add)", got, want)
	}
}

// TestMomentsFromRaw_Validation checks which persisted tuples are accepted
// and that an accepted tuple round-trips through Raw unchanged.
func TestMomentsFromRaw_Validation(t *testing.T) {
	valid := singlePass(t, []float64{1, 2, 4, 8}).Raw()
	tests := []struct {
		name    string
		raw     online.RawMoments
		wantErr bool
	}{
		{"Zero", online.RawMoments{}, false},
		{"FromAccumulator", valid, false},
		{"SingleObservation", online.RawMoments{N: 1, Mean: -3}, false},
		{"NegativeSkewAllowed", online.RawMoments{N: 3, Mean: 1, M2: 2, M3: -1, M4: 2}, false},
		{"NegativeCount", online.RawMoments{N: -1}, true},
		{"NaNMean", online.RawMoments{N: 2, Mean: math.NaN(), M2: 1, M4: 1}, true},
		{"InfM3", online.RawMoments{N: 2, M2: 1, M3: math.Inf(1), M4: 1}, true},
		{"NegativeM2", online.RawMoments{N: 2, M2: -1, M4: 1}, true},
		{"NegativeM4", online.RawMoments{N: 2, M2: 1, M4: -1}, true},
		{"ZeroCountNonZeroMean", online.RawMoments{Mean: 1}, true},
		{"ZeroCountNonZeroM2", online.RawMoments{M2: 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := online.MomentsFromRaw(tt.raw)
			if tt.wantErr {
				if !errors.Is(err, online.ErrInvalidMoments) {
					t.Fatalf("MomentsFromRaw(%+v) error = %v, want ErrInvalidMoments", tt.raw, err)
				}
				if !errors.Is(tt.raw.Validate(), online.ErrInvalidMoments) {
					t.Errorf("Validate disagrees with MomentsFromRaw")
				}
				return
			}
			if err != nil {
				t.Fatalf("MomentsFromRaw(%+v) = %v, want nil", tt.raw, err)
			}
			if got := m.Raw(); got != tt.raw {
				t.Errorf("round trip Raw() = %+v, want %+v", got, tt.raw)
			}
		})
	}
}

// checkRel fails unless got and want are both NaN or |got−want| ≤ tol·|want|
// (≤ tol when want is 0).
func checkRel(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(want) || math.IsNaN(got) {
		if !(math.IsNaN(want) && math.IsNaN(got)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
		return
	}
	if e := relErr(got, want); !(e <= tol) {
		t.Errorf("%s = %.17g, want %.17g (relative error %.3g > %.1g)", what, got, want, e, tol)
	}
}

// checkAbs fails unless got and want are both NaN or |got−want| ≤ tol.
func checkAbs(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(want) || math.IsNaN(got) {
		if !(math.IsNaN(want) && math.IsNaN(got)) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
		return
	}
	if e := math.Abs(got - want); !(e <= tol) {
		t.Errorf("%s = %.17g, want %.17g (absolute error %.3g > %.1g)", what, got, want, e, tol)
	}
}
