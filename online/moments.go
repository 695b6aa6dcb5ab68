package online

import (
	"fmt"
	"math"
)

// RawMoments is the persisted state of a [Moments] accumulator: the count,
// the mean, and the central moment sums
//
//	M2 = Σ (xᵢ - mean)²,  M3 = Σ (xᵢ - mean)³,  M4 = Σ (xᵢ - mean)⁴.
//
// The fields map one-to-one onto the Redis hash fields n, mean, m2, m3 and
// m4 used by the analytics package. N is an int64 because Redis stores n as
// an integer; all arithmetic converts it to float64, which is exact for
// counts up to 2⁵³.
//
// The zero value is the state of an empty accumulator. A RawMoments read
// from external storage should be checked with [RawMoments.Validate] (or
// converted with [MomentsFromRaw]) before use.
type RawMoments struct {
	N    int64   // number of observations (Redis field "n")
	Mean float64 // arithmetic mean; 0 when N == 0 (Redis field "mean")
	M2   float64 // Σ (x - Mean)² (Redis field "m2")
	M3   float64 // Σ (x - Mean)³ (Redis field "m3")
	M4   float64 // Σ (x - Mean)⁴ (Redis field "m4")
}

// Validate performs consistency checks on r, for example after reading it
// from storage. It returns an error wrapping [ErrInvalidMoments] if N is
// negative, any float field is NaN or infinite, M2 or M4 is negative, or
// N is zero while some other field is non-zero.
func (r RawMoments) Validate() error {
	switch {
	case r.N < 0:
		return fmt.Errorf("%w: negative count %d", ErrInvalidMoments, r.N)
	case !isFinite(r.Mean) || !isFinite(r.M2) || !isFinite(r.M3) || !isFinite(r.M4):
		return fmt.Errorf("%w: non-finite field in %+v", ErrInvalidMoments, r)
	case r.M2 < 0 || r.M4 < 0:
		return fmt.Errorf("%w: negative even moment in %+v", ErrInvalidMoments, r)
	case r.N == 0 && (r.Mean != 0 || r.M2 != 0 || r.M3 != 0 || r.M4 != 0):
		return fmt.Errorf("%w: non-zero fields with zero count in %+v", ErrInvalidMoments, r)
	}
	return nil
}

// MergeMoments returns the state of the union of the two samples summarised
// by a and b, using the exact pairwise combination of Chan, Golub & LeVeque
// (1979) for M2 and Pébay (2008) for M3 and M4. It is the
// reference implementation that the Redis Lua merge script must mirror.
//
// With δ = b.Mean − a.Mean and n = a.N + b.N the formulas are
//
//	mean = a.mean + δ·nb/n
//	M2   = M2a + M2b + δ²·na·nb/n
//	M3   = M3a + M3b + δ³·na·nb·(na − nb)/n² + 3δ·(na·M2b − nb·M2a)/n
//	M4   = M4a + M4b + δ⁴·na·nb·(na² − na·nb + nb²)/n³
//	           + 6δ²·(na²·M2b + nb²·M2a)/n² + 4δ·(na·M3b − nb·M3a)/n
//
// and they are evaluated with exactly the following operations, in this
// order, every operator left-associative and every intermediate rounded to
// float64 (the Go code forbids fused multiply-add with explicit conversions),
// so a literal Lua transcription produces bit-identical results:
//
//	if a.n == 0 then return b end          -- also covers both empty
//	if b.n == 0 then return a end
//	local na, nb = a.n, b.n                -- counts as doubles
//	local n    = na + nb
//	local d    = b.mean - a.mean
//	local dn   = d / n
//	local dn2  = dn * dn
//	local nanb = na * nb
//	mean = a.mean + nb * dn
//	m2   = a.m2 + b.m2 + d * dn * nanb
//	m3   = a.m3 + b.m3 + d * dn2 * nanb * (na - nb)
//	       + 3 * dn * (na * b.m2 - nb * a.m2)
//	m4   = a.m4 + b.m4 + d * dn2 * dn * nanb * (na * na - nanb + nb * nb)
//	       + 6 * dn2 * (na * na * b.m2 + nb * nb * a.m2)
//	       + 4 * dn * (na * b.m3 - nb * a.m3)
//	n    = a.n + b.n                       -- stored back as an integer
//
// An empty side is returned unchanged rather than run through the
// formulas, so merging with an empty accumulator is an exact identity.
//
// Bit-identity also needs lossless storage of the doubles: in Lua pass the
// numbers straight to redis.call (Redis formats them with %.17g), never
// through tostring or .. (Lua's %.14g); in Go write them with
// strconv.FormatFloat(x, 'g', -1, 64).
//
// MergeMoments does not validate its arguments; invalid input yields
// meaningless output. Counts above 2⁵³ lose exactness in the float64
// conversion.
func MergeMoments(a, b RawMoments) RawMoments {
	if a.N == 0 {
		return b
	}
	if b.N == 0 {
		return a
	}
	na, nb := float64(a.N), float64(b.N)
	n := na + nb
	d := b.Mean - a.Mean
	dn := d / n
	dn2 := dn * dn
	nanb := na * nb

	// Every product that feeds an addition or subtraction is wrapped in
	// float64(...): the Go spec allows x*y+z to be fused into a single FMA
	// (and the compiler does so, e.g. on arm64 or with GOAMD64=v3), but an
	// explicit conversion forces rounding, matching Lua's one-op-at-a-time
	// evaluation.
	mean := a.Mean + float64(nb*dn)
	m2 := a.M2 + b.M2 + float64(d*dn*nanb)
	m3 := a.M3 + b.M3 + float64(d*dn2*nanb*(na-nb)) +
		float64(3*dn*(float64(na*b.M2)-float64(nb*a.M2)))
	m4 := a.M4 + b.M4 +
		float64(d*dn2*dn*nanb*(float64(na*na)-nanb+float64(nb*nb))) +
		float64(6*dn2*(float64(na*na*b.M2)+float64(nb*nb*a.M2))) +
		float64(4*dn*(float64(na*b.M3)-float64(nb*a.M3)))

	return RawMoments{N: a.N + b.N, Mean: mean, M2: m2, M3: m3, M4: m4}
}

// Moments is a single-pass accumulator of the count, mean and central
// moments up to order four of a stream of float64 observations.
//
// Updates use Welford's recurrence for the mean and M2 and Pébay's (2008)
// one-observation recurrences for M3 and M4, so no large sums of powers are
// ever formed and the results do not suffer from catastrophic cancellation
// when the mean is large relative to the spread (see the package doc).
// In addition, the running mean is carried in memory with a compensation
// term (as the unevaluated sum of two float64s, Mean + lo with |lo| at most
// half an ulp of Mean), so each deviation x − mean is computed to full
// precision even when |mean| ≫ spread, e.g. timestamps or values near 1e9
// with unit variance. The compensation is internal and not part of
// [RawMoments]: [Moments.Raw] reports Mean alone (the compensation is
// below its rounding error), and [MomentsFromRaw] and a merge of two
// non-empty accumulators start again from zero compensation. That changes
// no reported value; it only limits the accuracy of later updates to that
// of plain Welford.
//
// The zero value is an empty accumulator ready for use. A Moments is a
// plain value: copying it copies the state. It is not safe for concurrent
// mutation.
//
// Any finite observation is accepted, but M4 overflows to +Inf when
// deviations from the mean exceed about 1e75 (M2 at about 1e150), after
// which the higher statistics are meaningless.
type Moments struct {
	r  RawMoments
	lo float64 // low-order part of the running mean
}

// MomentsFromRaw returns an accumulator with state r, for example as read
// back from Redis. It returns an error wrapping [ErrInvalidMoments] if r
// fails [RawMoments.Validate].
func MomentsFromRaw(r RawMoments) (Moments, error) {
	if err := r.Validate(); err != nil {
		return Moments{}, err
	}
	return Moments{r: r}, nil
}

// Raw returns the accumulator state, suitable for persisting (for example
// to the Redis hash fields n, mean, m2, m3, m4) and for [MergeMoments].
func (m Moments) Raw() RawMoments { return m.r }

// Add incorporates the observation x. If x is NaN or ±Inf, Add returns an
// error wrapping [ErrNonFinite] and leaves m unchanged.
func (m *Moments) Add(x float64) error {
	if !isFinite(x) {
		return fmt.Errorf("%w: %v", ErrNonFinite, x)
	}
	m.add(x)
	return nil
}

// AddAll incorporates every observation in xs. It is atomic: if any element
// is NaN or ±Inf, none are added and the returned error wraps
// [ErrNonFinite] and names the first offending index.
func (m *Moments) AddAll(xs ...float64) error {
	for i, x := range xs {
		if !isFinite(x) {
			return fmt.Errorf("%w: xs[%d] = %v", ErrNonFinite, i, x)
		}
	}
	for _, x := range xs {
		m.add(x)
	}
	return nil
}

// add is the Welford/Pébay update for one finite observation. It is,
// mathematically, [MergeMoments] specialised to b = {N: 1, Mean: x}:
//
//	δ = x − mean, δn = δ/n, t = δ·δn·(n−1)
//	mean += δn
//	M4 += t·δn²·(n² − 3n + 3) + 6·δn²·M2 − 4·δn·M3
//	M3 += t·δn·(n − 2) − 3·δn·M2
//	M2 += t
//
// with n the new count and M2, M3 the values before this update. The mean
// is the double-double Mean + lo: δ is formed as (x − Mean) − lo, where
// x − Mean is exact whenever x is within a factor of two of Mean (Sterbenz),
// and mean += δn is an exact two-sum whose rounding error is kept in lo.
func (m *Moments) add(x float64) {
	r := &m.r
	r.N++
	if r.N == 1 {
		// The general update would give M2 += δ·δn·0, which is NaN when
		// δ·δn overflows (|x| > ~1e154); the first observation is exact.
		r.Mean, m.lo = x, 0
		return
	}
	n := float64(r.N)
	d := (x - r.Mean) - m.lo
	dn := d / n
	dn2 := dn * dn
	t := d * dn * (n - 1)
	s, e := twoSum(r.Mean, dn)
	r.Mean, m.lo = twoSum(s, e+m.lo)
	r.M4 += t*dn2*(n*n-3*n+3) + 6*dn2*r.M2 - 4*dn*r.M3
	r.M3 += t*dn*(n-2) - 3*dn*r.M2
	r.M2 += t
}

// twoSum returns s = fl(a+b) and the exact rounding error e, so that
// a + b = s + e exactly (Knuth's TwoSum; no magnitude precondition).
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	e = (a - (s - bb)) + (b - bb)
	return s, e
}

// Merge folds other into m, so that m summarises the union of both samples,
// exactly as [MergeMoments]. Merging with an empty accumulator (on either
// side) is an exact identity.
func (m *Moments) Merge(other Moments) {
	switch {
	case other.r.N == 0:
		return
	case m.r.N == 0:
		*m = other
		return
	}
	m.r = MergeMoments(m.r, other.r)
	m.lo = 0
}

// Count returns the number of observations added.
func (m Moments) Count() int64 { return m.r.N }

// Mean returns the arithmetic mean, or NaN if no observations were added.
func (m Moments) Mean() float64 {
	if m.r.N == 0 {
		return math.NaN()
	}
	return m.r.Mean
}

// VariancePopulation returns the population (biased) variance M2/n. It is 0
// for a single observation and NaN if no observations were added.
func (m Moments) VariancePopulation() float64 {
	if m.r.N == 0 {
		return math.NaN()
	}
	return m.r.M2 / float64(m.r.N)
}

// VarianceSample returns the unbiased sample variance M2/(n−1), the
// quantity computed by gonum's stat.Variance. It is NaN for n < 2.
func (m Moments) VarianceSample() float64 {
	if m.r.N < 2 {
		return math.NaN()
	}
	return m.r.M2 / float64(m.r.N-1)
}

// StdDevPopulation returns sqrt([Moments.VariancePopulation]): NaN if no
// observations were added, 0 for one observation.
func (m Moments) StdDevPopulation() float64 { return math.Sqrt(m.VariancePopulation()) }

// StdDevSample returns sqrt([Moments.VarianceSample]); it is NaN for n < 2.
func (m Moments) StdDevSample() float64 { return math.Sqrt(m.VarianceSample()) }

// Skewness returns the population (Fisher–Pearson, biased) skewness
//
//	g1 = m3/m2^(3/2) = sqrt(n)·M3/M2^(3/2)
//
// where m_k = M_k/n. It is NaN when n < 2 or M2 == 0 (zero variance, for
// which skewness is undefined).
func (m Moments) Skewness() float64 {
	if m.r.N < 2 || m.r.M2 == 0 {
		return math.NaN()
	}
	// (M3/M2)/sqrt(M2/n) rather than M2^1.5, which overflows far earlier.
	return m.r.M3 / m.r.M2 / math.Sqrt(m.r.M2/float64(m.r.N))
}

// ExcessKurtosis returns the population (biased) excess kurtosis
//
//	g2 = m4/m2² − 3 = n·M4/M2² − 3
//
// which is 0 for a normal distribution. It is NaN when n < 2 or M2 == 0.
func (m Moments) ExcessKurtosis() float64 {
	if m.r.N < 2 || m.r.M2 == 0 {
		return math.NaN()
	}
	return float64(m.r.N)*(m.r.M4/m.r.M2)/m.r.M2 - 3 // M2² could overflow
}

// SkewnessSample returns the adjusted Fisher–Pearson sample skewness
//
//	G1 = g1·sqrt(n(n−1))/(n−2)
//
// which is what gonum's stat.Skew computes. It is NaN when n < 3 or M2 == 0.
func (m Moments) SkewnessSample() float64 {
	if m.r.N < 3 || m.r.M2 == 0 {
		return math.NaN()
	}
	n := float64(m.r.N)
	return m.Skewness() * math.Sqrt(n*(n-1)) / (n - 2)
}

// ExcessKurtosisSample returns the bias-adjusted sample excess kurtosis
//
//	G2 = (n−1)/((n−2)(n−3)) · ((n+1)·g2 + 6)
//
// which is what gonum's stat.ExKurtosis computes. It is NaN when n < 4 or
// M2 == 0.
func (m Moments) ExcessKurtosisSample() float64 {
	if m.r.N < 4 || m.r.M2 == 0 {
		return math.NaN()
	}
	n := float64(m.r.N)
	return (n - 1) / ((n - 2) * (n - 3)) * ((n+1)*m.ExcessKurtosis() + 6)
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
