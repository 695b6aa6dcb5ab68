// Package httpapi serves the queue port (bitly simplequeue's HTTP API plus
// quorumq's extensions) and the admin endpoints on top of the replicated
// queue.
//
// Handlers depend on two small interfaces declared here, Queue and Cluster;
// in production they are the FSM and the raft node, in tests a real FSM
// driven without raft.
//
// Every response carries X-Served-By: the id of the node that executed the
// request (the leader's, when a follower relayed it).
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
// # Forwarding
//
// curl works against any node: a request that needs the leader is passed to
// it by the node that received it, in one place (server.toLeader, before any
// handler runs). Needing the leader means every write (/config, /ack,
// /nack, /touch and /stats?reset=1 included), and /stats and /dump without
// stale=1 (linearizable reads). /get and /mget count as writes:
// they pop or lease through the log when they find a message, and when they
// do not, the empty answer (and a long-poll's wait=) must come from the
// leader's state, which is authoritative; a follower's may lag. /healthz,
// /readyz, /metrics, /cluster/status and stale=1 reads are always answered
// by the node asked.
//
//   - The node leads: it serves the request itself.
//   - One hop at most: the forwarding node adds X-Quorumq-Forwarded-By: <its
//     id>. A node that receives a request carrying it and does not lead
//     answers 503 NOT_LEADER (with X-Leader-ID if it knows one) and never
//     forwards it again, so nodes that disagree about the leader cannot
//     bounce a request between them.
//   - Hold: while no leader is known, or its queue address is not (gossip
//     has not caught up), the request waits, polling every 25 ms, up to
//     Options.ForwardTimeout (--forward-timeout, default 5s) or until the
//     client goes away; then 503 NO_LEADER "no leader: ...". An election
//     looks like a slow answer, not an error. A node that wins the
//     election during the hold serves the request itself; this is how a
//     freshly started single node holds its first requests.
//   - redirect=1: 307 Temporary Redirect, Location: http://<leader's queue
//     address><the request's own URI>, empty body. 307 keeps the method
//     and body (curl -L; Go's client resends the body when it can), unlike
//     301/302/303, on which clients turn a POST into a GET.
//   - Otherwise the request is relayed: same method, URI and body (a POST
//     body is read once, bounded by MaxBodySize, so a 413 comes from the
//     node asked, and kept for a retry), end-to-end headers, plus the loop
//     guard. The leader's status, end-to-end headers and body come back,
//     the body streamed (a /dump may be large). Nothing but the client
//     bounds the answer once it has started; before that a ceiling of the
//     long-poll's wait=, 2 + one per 256 KiB of body ProposeTimeouts and a
//     margin applies, so long-polls work through a follower.
//
// What is retried, within the same ForwardTimeout budget, after waiting for
// a leader again: a request that never reached the leader (connection
// refused: the leader just died), a 503 from the leader with X-Error-Code
// NOT_LEADER, NO_LEADER or SHUTTING_DOWN (it applied nothing), and a read
// whose exchange failed at any point. A write whose exchange failed after it
// may have reached the leader is never retried, neither by this package nor
// by Go's transport (which would resend a GET on a kept-alive connection by
// itself): the answer is 503 OUTCOME_UNKNOWN, "outcome unknown ... retry
// with id=KEY". A leader's own 503 OUTCOME_UNKNOWN is relayed as is.
//
// When a node that leads at the check finds at Propose (or ConsistentRead)
// that it no longer does, nothing of the request was applied and the request
// was not itself forwarded, the request goes through the forwarding step
// once more (its body is kept) instead of failing. Once a command of the
// request was committed (the first part of a large /mput), a later "not
// the leader" answers OUTCOME_UNKNOWN, never NOT_LEADER, so that no
// forwarder resends it.
//
// # Status codes
//
//	200  success; simplequeue routes answer writes with an empty body
//	307  redirect=1 on a node that does not lead: Location is the leader
//	400  malformed or missing parameter (one line naming it)
//	404  no route (empty body)
//	405  method not allowed for the route (Allow header set)
//	409  ack, nack or touch of a message that is not in flight
//	413  message larger than MaxMsgSize or body larger than MaxBodySize
//	501  POST /cluster/leave on a node that cannot leave yet
//	503  the cluster cannot serve the request now (no leader reachable
//	     within ForwardTimeout, a forwarded request reached a node that
//	     does not lead, shutting down, consistent read timed out, not
//	     ready) or the outcome of a write is unknown; always with
//	     Retry-After: 1, and X-Leader-ID when a leader is known
//	507  the queue is full under the reject policy, or the queue cannot be
//	     created because the cluster holds too many queues (api.StatusQueueFull)
//
// A relayed answer has the leader's status, whatever it is.
//
// Every error body is one line of text ending in "\n"; the header
// X-Error-Code carries a stable upper-snake token (QUEUE_FULL,
// NOT_IN_FLIGHT, OUTCOME_UNKNOWN, NOT_LEADER, NO_LEADER, ...) for programs.
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
//     included). An empty /get is answered from the leader's state without
//     a log write, so it is not counted; the reference counts every /get
//     request.
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
