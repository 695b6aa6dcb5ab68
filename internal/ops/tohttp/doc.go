// Package tohttp is `quorumq to_http`: an at-least-once forwarder from a
// queue to an HTTP endpoint, built on the reader library (leases,
// retries with a growing delay, back-off while the endpoint fails, load
// balancing across the nodes).
//
// Each message is sent as one request: a POST whose body is the message,
// or a GET of a URL template whose %s is replaced by the percent-encoded
// message. A 2xx answer acks the message. A 4xx other than 408 and 429 is
// a permanent failure: the message is dead-lettered (or dropped) at once.
// A 5xx, 408, 429, a timeout or a connection error is a transient failure:
// the message is given back with a delay that grows with its attempts,
// until MaxAttempts attempts have failed, after which it is dead-lettered
// (or dropped) too. A forwarder that dies loses nothing: its leases end
// and the messages come back.
package tohttp
