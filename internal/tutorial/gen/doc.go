// Package gen generates the tutorial's streams and sends them to a node:
// counting numbers (scripts/count_to_pubsub.sh), random numbers from a
// choice of distributions, optionally with secret parameters for the
// "find my mean and variance" exercise (scripts/random_to_pubsub.py), and
// 1.usa.gov click records, replayed from a JSON-lines file at a chosen
// speed or synthesised.
//
// A [Source] yields messages; [Run] paces them (a rate in messages per
// second, and for timed sources the records' own timestamps scaled by a
// speed) and POSTs them to one URL, whose path says how: /pub and /mput
// take a newline-separated batch per request, /put one message per
// request (several requests run at once). Requests that fail with 503,
// 507, 429, 502, 504 or a transport error are retried with a jittered
// exponential backoff; /put and /mput requests carry an idempotency key
// (id=), so their retries store each message once. A message that still
// fails is counted, never silently dropped. Sources are deterministic for
// a seed.
package gen
