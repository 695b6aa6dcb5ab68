// Package httpapi serves the queue port (bitly simplequeue's HTTP API plus
// quorumq's extensions) and the admin endpoints on top of the replicated
// queue.
//
// Handlers depend on two small interfaces declared here, Queue and Cluster;
// in production they are the FSM and the raft node, in tests a real FSM
// driven without raft.
//
// # Routes
//
// Admin routes are exact paths and are matched first: /healthz, /readyz,
// /metrics, /cluster/status and POST /cluster/leave. Queue routes are
// simplequeue's prefix globs, tried in this order: /put*, /get*, /mget*,
// /mput*, /dump*, /stats*, then the extensions /ack*, /nack*, /touch* and
// /config*. So /getanything is /get, as in the reference. No match: 404 with
// an empty body. /exit is not served.
//
// GET and POST run the same code, as in the original. HEAD is refused with
// 405 on every request that would change state (put, get, mget, mput, ack,
// nack, touch, config, stats?reset=1): the reference's "HEAD /get pops an
// item" is a listed defect. Other methods get 405 instead of libevent's 400
// HTML page.
//
// Query strings are parsed with libevent 1.4's rules (see parseQuery), and
// request bodies are read only for POST, never form-decoded.
//
// # Status codes
//
//	200  success; simplequeue routes answer writes with an empty body
//	400  malformed or missing parameter (one line naming it)
//	404  no route (empty body)
//	405  method not allowed for the route (Allow header set)
//	409  ack, nack or touch of a message that is not in flight
//	413  message larger than MaxMsgSize or body larger than MaxBodySize
//	501  POST /cluster/leave on a node that cannot leave yet
//	503  the cluster cannot serve the request now (no leader, not the
//	     leader, shutting down, consistent read timed out, not ready) or the
//	     outcome of a write is unknown; always with Retry-After: 1
//	507  the queue is full under the reject policy, or the queue cannot be
//	     created because the cluster holds too many queues (StatusQueueFull)
//
// Every error body is one line of text ending in "\n"; the header
// X-Error-Code carries a stable upper-snake token (QUEUE_FULL,
// NOT_IN_FLIGHT, OUTCOME_UNKNOWN, ...) for programs.
//
// # Counters: differences from simplequeue
//
// The six /stats counters keep their names and formats, but count outcomes
// rather than requests:
//
//   - puts counts stored messages. A /put that answers 400, a /put with an
//     empty data= and a duplicate id= retry store nothing and count nothing;
//     the reference adds 1 for every /put request whatever the outcome.
//   - gets counts messages handed out (popped or leased, redeliveries
//     included). An empty /get is answered from local state without a log
//     write, so it is not counted; the reference counts every /get request.
//   - depth counts ready messages only: leased (in_flight) and delayed
//     (deferred) messages are reported separately in the JSON form.
//
// # Other deliberate differences
//
//   - /mput skips empty records (the reference hangs on them); an empty
//     separator= is a 400.
//   - /get, /mget and /dump are binary safe: output is not cut at a NUL byte.
//     (Query-string values still end at a decoded NUL, as in libevent.)
//   - A /mput whose records do not fit in one log entry of about 256 KiB is
//     proposed as several put commands, in order. Such a large /mput is not
//     atomic: on an error part of it may be stored. Smaller ones are one
//     command and all-or-nothing.
//   - Evicted messages are written to the overflow log when the eviction is
//     applied, not buffered until exit; the queue itself is replicated and
//     is not flushed to the overflow log on shutdown.
package httpapi
