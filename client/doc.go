// Package client is the Go client of quorumq's two HTTP ports: [Queue] for
// the simplequeue-compatible queue port (8081) and [Pubsub] for the pubsub
// port (8080). It uses only the documented HTTP API, so it works through
// proxies and against any node.
//
// Every call is bounded by its context or Options.Timeout. A client holds
// one or more node addresses and moves to the next when an attempt
// certainly applied nothing (no connection, 503 NO_LEADER and the like),
// and after an unknown outcome only for idempotent calls (reads, Config,
// Touch, Put and MPut with an ID). A non-2xx answer is an *[HTTPError]
// that unwraps to an error kind of package api: compare with errors.Is,
// for example api.ErrQueueFull or api.ErrOutcomeUnknown. Subscribe reads
// pubsub's newline streams; a stream does not reconnect. The failover and
// error rules in full are in DESIGN.md.
//
// A secured cluster serves HTTPS with certificates from its own CA and
// wants a bearer token: set Options.TLS (TLSConfig of the CA file) and
// Options.Token. A 401 or 403 answer is not retried; tokens never appear
// in URLs or errors (RedactURL).
package client
