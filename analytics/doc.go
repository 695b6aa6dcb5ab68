// Package analytics keeps stream aggregates in Redis so that many readers,
// on many machines, can feed one result: the tutorial's "great dictionary
// in the sky".
//
//   - [Moments]: count, mean and central moment sums of a stream of
//     numbers in one hash, merged atomically by a Lua port of
//     [online.MergeMoments].
//   - [Histogram]: counts per bin in one hash, integer or fixed-width
//     float bins.
//   - [Graph]: a weighted click graph, one sorted set per node.
//
// The batch methods take each item's message id and, with a dedup window,
// count a redelivered message once. [RunMoments], [RunHistogram] and
// [RunGraph] run the aggregates as reader fleets of a quorumq queue
// (quorumq analyze). The Redis layout, the merge script and the counting
// rules are in DESIGN.md.
package analytics
