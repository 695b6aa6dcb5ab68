// Package analytics keeps stream aggregates in Redis so that many readers,
// on many machines, can feed one result: the tutorial's "great dictionary
// in the sky". It has three aggregates, each readable by any Redis client:
//
//   - [Moments]: count, mean and central moment sums M2, M3, M4 of a
//     stream of numbers, in one hash. Each reader folds a batch locally
//     into an [online.Moments] and merges it into the hash atomically with
//     a Lua port of [online.MergeMoments], so concurrent readers never
//     lose an update.
//   - [Histogram]: counts per bin in one hash (HINCRBY), integer bins or
//     fixed-width float bins with the layout stored beside it.
//   - [Graph]: a weighted click graph as one sorted set per node
//     (ZINCRBY), with the tutorial's queries: strongest links, ranks,
//     score ranges and the node list.
//
// # Redis layout
//
//	<key>                 hash  n, mean, m2, m3, m4           (Moments)
//	<key>                 hash  <bin> -> count                 (Histogram)
//	<key>:layout          hash  kind, min, width, bins         (Histogram)
//	<prefix><node>        zset  member <node'> score weight    (Graph)
//	quorumq:seen:<name>:<g> set message ids merged in time window g
//
// Moments fields hold decimal text: n an integer, the others doubles
// written with %.17g, which reads back bit for bit (any client can parse
// them; Go with strconv.ParseFloat). Histogram bins are the integer value
// itself ("42", "-3") for an integer layout, and the bin index ("0" to
// bins-1) plus "underflow", "overflow" and "nan" for a float layout whose
// bin i is [min + i·width, min + (i+1)·width) (see [online.FloatLayout]).
// The layout hash has kind "int" or "float"; a float layout also has min,
// width (shortest round-trip decimals) and bins. Graph weights are zset
// scores (doubles, exact for counts up to 2⁵³).
//
// # Merging moments in Lua
//
// The merge script is a literal transcription of the operation order that
// [online.MergeMoments] documents: Redis's Lua evaluates one operation at a
// time in float64, exactly as the Go reference does (which forbids fused
// multiply-add), so the hash ends up bit-identical to what the Go merge
// gives. Numbers travel as text both ways: the Go side writes them with
// strconv.FormatFloat(x, 'g', -1, 64) and the script reads them with
// tonumber; the script formats its results itself with
// string.format('%.17g') before storing and returning them, because Redis
// truncates a Lua number returned from a script to an integer and Lua's own
// tostring keeps only 14 digits.
//
// # Exactly once per message
//
// The batch methods ([Moments.MergeBatch], [Histogram.AddBatch],
// [Graph.AddBatch]) take the queue message id of every item. With a dedup
// window (the DedupWindow field, > 0) one script call checks the ids
// against the sets of ids merged recently, and only if none was merged
// before does it apply the whole batch and record the ids, atomically; if
// some were, it changes nothing and names them, and the Go side drops them
// and tries again with the rest. So a message that is redelivered after
// its batch was merged (a reader died between the merge and its ack, or an
// ack was lost, or a lease ran out mid-batch) is counted once, provided it
// comes back within the window. Ids are remembered per generation of
// DedupWindow seconds of Redis's clock (TIME) in the sets
// quorumq:seen:<name>:<generation>, each expiring two windows after it
// starts, so an id is remembered for at least one window and at most two.
// The id should name the queue as well as the message (message ids are
// unique within a cluster, not across clusters): the readers below use
// "<queue>/<id>". A cluster that is wiped and restarts its ids from 1
// within the window would see its first messages taken for duplicates;
// [Moments.Reset], [Histogram.Reset] and [Graph.Reset] clear the sets with
// the aggregate.
//
// Without a window the batch methods are plain atomic merges: at least
// once, so a message redelivered after its batch was merged is counted
// twice.
//
// The scripts use keys they compute (the seen sets), so they need a
// standalone Redis (or a primary of a replicated one), version 5 or newer
// (scripts replicated by effects, which allows TIME before writes); Redis
// Cluster is not supported.
//
// # Readers
//
// [RunMoments], [RunHistogram] and [RunGraph] run the aggregates as
// readers of a quorumq queue: each reader is a reader.Reader whose task hands every
// message to a batcher, and the batcher merges a batch into a Redis
// aggregate (moments, histogram or click graph)
// when it is full or after a short flush interval. Any number of readers,
// on any nodes, may feed the same aggregate.
//
// # Readers count each message once
//
// A message's task returns only after its batch is merged into Redis, and
// the reader acks a message only after its task returned, so an acked
// message is always counted. The other direction (counted but not acked:
// the reader died after the merge, the ack was lost, or the lease ran out
// while the batch waited) would count a redelivered message twice; to
// prevent that, every item carries the id "<queue>/<message id>" and the
// merge script skips ids merged within ReaderConfig.DedupWindow (see the
// batch methods above). With the window (the default, one hour) each message
// is counted exactly once as long as its redelivery comes within the
// window; with DedupWindow 0 the merges are plain (the histogram and graph
// then use a MULTI/EXEC pipeline of HINCRBY/ZINCRBY) and a redelivery
// after a merge is counted twice: at-least-once.
//
// A message that does not parse (not a number, not a click record) is
// skipped: acked without being counted, and counted as invalid (a 1.usa.gov
// heartbeat as skipped). A merge
// that fails (Redis down) fails the batch's tasks; the reader gives the
// messages back with its retry delay, and gives up on a message after
// MaxTries (then it is not counted; set DeadLetter to keep it).
package analytics
