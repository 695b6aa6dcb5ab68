// Package client is the Go client of quorumq's two HTTP ports: Queue for
// the simplequeue-compatible queue port (8081) and Pubsub for the pubsub
// port (8080). It uses only the documented HTTP API (see httpapi's package
// documentation and the README), so it also works through proxies and
// against any node.
//
// # Requests
//
// Writes and gets are POSTs with their parameters in the query string and
// the message, if any, as the raw body (binary safe, no NUL truncation);
// reads (/stats, /config without a change, /cluster/status) are GETs.
// Sending writes as POST also keeps Go's transport from resending them on
// its own after a kept-alive connection fails.
//
// Every call is bounded: by its context's deadline, or by Options.Timeout
// (default 30 s) when the context has none, and each attempt by
// Options.AttemptTimeout (default 10 s); a long-poll's wait is added to
// both. Connections are kept alive and pooled (NewTransport).
//
// # Failover
//
// A client holds one or more base addresses. A call goes to the preferred
// address, which starts as the first and then is the last one that
// answered. It moves on to the next address (round robin), after a
// jittered exponential pause (Options.Backoff, 25 ms doubling to 1 s),
// when the attempt certainly applied nothing:
//
//   - the connection could not be made;
//   - a 503 with X-Error-Code NO_LEADER, NOT_LEADER, SHUTTING_DOWN or
//     UNAVAILABLE (or a 503 without a token);
//
// and, for idempotent requests only, also when the outcome is unknown (the
// connection failed after the request was sent, or 503 OUTCOME_UNKNOWN).
// Idempotent are the reads, Config, Touch, and Put and MPut with an ID.
// Get, MGet, Ack, Nack, Pub and Put without an ID are not retried after an
// unknown outcome: the caller gets api.ErrOutcomeUnknown and decides. At most
// Options.MaxAttempts attempts are made (default two rounds over the
// addresses). There is no health tracking or load balancing beyond this;
// the reader library does its own. WithCallInfo tells which address and
// node (X-Served-By) served a call.
//
// # Errors
//
// A non-2xx answer is an *HTTPError (status, X-Error-Code token, one-line
// body) that unwraps to the error kind of package api that the token names,
// or, when the token is absent or unknown, the one its status code implies:
// compare with errors.Is, for example api.ErrQueueFull (507, also for
// TOO_MANY_QUEUES), api.ErrBadRequest (400, also for INVALID_QUEUE_NAME),
// api.ErrUnavailable (503, nothing applied: NO_LEADER, NOT_LEADER,
// SHUTTING_DOWN, UNAVAILABLE) or api.ErrOutcomeUnknown (503
// OUTCOME_UNKNOWN). Transport failures wrap api.ErrUnavailable (nothing was
// sent, or a read) or api.ErrOutcomeUnknown (a write that may have been
// applied), together with the underlying error.
//
// # Pubsub streams
//
// Subscribe and Pubsub.SubscribeTopic read the newline mode of /sub
// (multipart=0), over HTTP/1.1 chunked or HTTP/1.0 raw streams; see Stream
// for the framing rule. A stream does not reconnect: pubsub keeps nothing
// for absent subscribers, so whoever reconnects decides what a gap means
// (ps_to_http reconnects with backoff and fails over between sources).
package client
