// Package pstohttp is `quorumq ps_to_http`: a bridge that subscribes to a
// pubsub stream in newline mode and forwards every message as an HTTP
// request to one or more destinations, typically a queue's /put or another
// pubsub's /pub. It keeps the options and request formats of bitly's
// ps_to_http 0.5.4 and adds what the original lacked: reconnection with
// source failover, retries with backoff, a bounded buffer per destination
// with counted and logged drops, idempotency keys for /put, and counters.
// What matches the original, what differs and why is in DESIGN.md.
package pstohttp
