// Package online provides pure, single-pass ("online") statistics over
// streams of numbers: [Moments] (count, mean and central moment sums up to
// order four, by Welford's and Pébay's recurrences, with a compensated
// running mean) and histograms ([IntHistogram], [FloatHistogram]) that
// merge exactly. [MergeMoments] combines partial accumulators and documents
// its formula operation by operation, so that the analytics package's Lua
// port gives bit-identical results. It does no I/O and starts no
// goroutines; none of its types is safe for concurrent mutation. The
// numerical reasoning is in DESIGN.md.
package online
