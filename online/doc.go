// Package online provides pure, single-pass ("online") statistics over
// streams of numbers: central moments up to order four and histograms.
// It does no I/O and starts no goroutines; its types are plain values meant
// to be embedded in other components (the Redis-backed analytics package
// persists [RawMoments] and merges them with a Lua port of [MergeMoments]).
//
// # Moments
//
// [Moments] keeps the count n, the mean and the central moment sums
// M_k = Σ (xᵢ − mean)^k for k = 2, 3, 4. The textbook formula
//
//	variance = (Σx² − (Σx)²/n) / (n − 1)
//
// subtracts two huge, nearly equal numbers when the mean is large compared
// with the spread. For values around 1e9 with unit variance, Σx² ≈ n·1e18,
// whose float64 spacing is about n·128, so the difference has no correct
// digits ("catastrophic cancellation") and can even come out negative.
// Welford's recurrence instead updates the mean and M2 with the deviation
// δ = x − mean of each new observation:
//
//	mean' = mean + δ/n
//	M2'   = M2 + δ·(x − mean') = M2 + δ²·(n−1)/n
//
// so only quantities of the size of the spread are ever added. Pébay (2008,
// "Formulas for robust, one-pass parallel computation of covariances and
// arbitrary-order statistical moments", Sandia report SAND2008-6212)
// extends the same idea to M3 and M4, and gives the pairwise merge of two
// partial accumulators (generalising Chan, Golub & LeVeque's merge for M2);
// [MergeMoments] documents that formula operation by operation so that it
// can be reproduced exactly elsewhere.
//
// Plain Welford still loses accuracy in proportion to |mean|/σ, because the
// running mean itself is rounded to float64 (around 1e9 its spacing is
// 1.2e-7, so each deviation of size 1 carries a relative error near 1e-7).
// [Moments] therefore keeps the running mean as a compensated (double-double)
// sum in memory, which makes single-pass results agree with exact rational
// arithmetic to about 1e-15 even for such data. Merged accumulators cannot
// do this, since [RawMoments] stores the mean as one float64: merging adds a
// relative error of order ulp(mean)/σ per merge (≈1e-8 for values near 1e9
// with σ = 1, negligible for well-conditioned data).
//
// From the sums the accumulator derives the population and sample variance,
// the population skewness g1 = sqrt(n)·M3/M2^(3/2) and excess kurtosis
// g2 = n·M4/M2² − 3, and their bias-adjusted sample versions G1 and G2 (as
// computed by gonum's stat.Skew and stat.ExKurtosis). Statistics that are
// undefined (no data, too few observations, zero variance) are NaN.
// Non-finite observations are rejected with [ErrNonFinite].
//
// # Histograms
//
// [IntHistogram] counts each distinct int64 value exactly.
// [FloatHistogram] counts float64 values in fixed-width half-open bins
// [Edge(i), Edge(i+1)) described by a [FloatLayout], plus underflow,
// overflow and NaN counters, so no observation is ever dropped. Histograms
// with identical layouts merge by adding counters, which makes them
// suitable for combining the views of many readers.
//
// None of the types in this package is safe for concurrent mutation.
package online
