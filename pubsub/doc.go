// Package pubsub is quorumq's pubsub: the registry of this node's
// subscribers by topic, the stream framing of bitly pubsub's /sub, the
// per-subscriber output queues and the slow-client kick (the local half),
// and the cluster fan-out, the cluster-wide /clients and route mode (the
// cluster half).
//
// A Hub keeps, per topic, its subscribers in connect order. Publish frames
// a publish once per stream mode into one shared batch and hands every
// subscriber a piece of it (O(subscribers) work, the bytes in memory once);
// it never writes to a connection, so a publisher never waits for a slow
// subscriber. Each subscriber has one writer goroutine (the goroutine of
// its /sub request) that drains its pieces to the connection.
//
// Subscribe writes bitly pubsub's stream byte for byte; a subscriber that
// falls more than MaxPendingBytes behind is kicked as the reference does,
// and when the node as a whole holds MaxBufferedBytes the subscribers
// furthest behind are kicked.
// Fanout delivers a publish to the subscribers of the other nodes (one
// hop, at most once, along the gossiped subscriber sets); Router enqueues
// the messages of routed topics into queues before they are published.
// DESIGN.md describes the stream format, the slow-client rule, the node
// budget, the fan-out's timeouts, ordering and counters, route mode, the differences from bitly
// pubsub and the trade-offs.
package pubsub
