// Package pstohttp is `quorumq ps_to_http`: a bridge that subscribes to a
// pubsub stream in newline mode and forwards every message as an HTTP
// request to one or more destinations, typically a queue's /put or another
// pubsub's /pub. It keeps the options and request formats of bitly's
// ps_to_http 0.5.4 (spec section 4) and adds what the original lacked:
// reconnection, source failover, retries, a bounded buffer with counted
// drops, and counters.
//
// # What it does, as the reference
//
//   - --destination-get-url=URL: GET URL with every %s replaced by the
//     message percent-encoded by the reference's rule: A-Z a-z 0-9 and
//     ! $ ' ( ) * , - . / : = @ _ ~ stay, every other byte is %XX in upper
//     case (space is %20). {"a":"b c"} becomes %7B%22a%22:%22b%20c%22%7D.
//   - --destination-post-url=URL: POST with the message as the body
//     (Content-Length set, no Content-Type, no trailing newline).
//   - Without --round-robin every message goes to every destination, in
//     command-line order (GET and POST destinations interleaved as given);
//     with it, message k goes to destination k mod n. k counts forwarded
//     messages, so dropped short lines do not shift the rotation.
//   - Messages shorter than --min-line-length bytes (default 3, the
//     reference's fixed rule) are dropped; 0 forwards every message,
//     empty ones included.
//   - --max-silence=N: exit with status 0 once no message was forwarded
//     for N seconds. Short lines do not count as messages, as in the
//     reference. The check is exact (the reference checked every N
//     seconds, so it waited between N and 2N).
//
// # What differs, and why
//
//   - Framing: a message is a line between two "\n" of the stream; the
//     one "\r\n" pubsub sends at connect is skipped, and a "\r" inside or
//     at the end of a message is kept (client.Stream). The reference also
//     split lines on "\r" and "\n\r", which cut and altered messages that
//     pubsub delivers intact (pubsub's /pub keeps "\r"). Messages are
//     binary safe (the reference stopped at a NUL byte).
//   - Reconnect: when the source cannot be reached or its stream ends, the
//     bridge reconnects after a jittered exponential backoff (250 ms
//     doubling up to --reconnect-max-backoff, 10 s), moving to the next
//     --pubsub-url each time (failover; the first one is picked at random,
//     as the reference did). The backoff starts over after a connection
//     that delivered a message or lasted 10 s. The reference exited
//     instead and relied on a supervisor. Pubsub keeps nothing for absent
//     subscribers, so messages published while no source is connected are
//     not seen; every message a source delivers after a reconnect is
//     forwarded.
//   - Idle source: the reference died after 50 s without data (libevent's
//     read timeout), so quiet streams needed heartbeat messages. Here a
//     silent stream is normal; a dead peer is detected by TCP keep-alive
//     (about 30 s). --source-timeout=D, off by default, reconnects after D
//     without a byte, for setups with heartbeats. The HEAD "encoding
//     autodetection" request that the reference left connected as a ghost
//     subscriber is not made: Go's HTTP client reads chunked and HTTP/1.0
//     raw streams alike.
//   - Retries: each destination has one sender that delivers its messages
//     one at a time, in order, and retries a failed request (connection
//     error, timeout, 5xx, 408, 425, 429) with a jittered exponential
//     backoff (100 ms up to --retry-max-backoff, 10 s) until it succeeds,
//     --max-retries is used up (default -1: no limit) or the bridge stops.
//     Other 4xx answers are permanent: the message is logged and counted
//     as failed, and the next one goes. The reference sent each request
//     once and ignored the answer. One request at a time per destination
//     keeps each destination's order; the reference used 10 connections
//     per destination.
//   - Buffer: between the source and each destination's sender sits a
//     buffer of --buffer-size messages (default 10000). When a slow or
//     dead destination fills it, new messages for that destination are
//     dropped; the source is never blocked (pubsub would kick a slow
//     subscriber and every destination would lose messages). Every message
//     that does not reach a destination (buffer full, rejected, retries
//     used up, not delivered before exit) is logged on stderr with the
//     destination, the reason and the first 256 bytes (at most 100 lines
//     per 10 s; beyond that counted as unlogged_drops) and counted.
//   - At-least-once: a request that timed out may have been applied, so a
//     retry may deliver a message twice. --idempotent-put adds
//     id=<run>-<destination>-<seq> to destinations whose path is /put (and
//     that have no id= of their own), so that quorumq stores a retried
//     message once within its 2-minute dedup window. It is off by default
//     because destination URLs are the user's and are not rewritten
//     otherwise.
//   - Counters: every --stats-interval (default 10 s) one log line on
//     stderr with received, skipped, reconnects, source_errors, the
//     current source, and per destination d<i>: forwarded, retried,
//     failed, dropped, buffered; again at exit.
//   - Exit: SIGINT, SIGTERM and SIGHUP (the reference's exit signals)
//     stop reading the source, give the senders --drain-timeout (5 s) to
//     deliver the buffer, then exit 0; what is left is logged and counted
//     as dropped. The per-request log of the reference (spec 1.8) is
//     written to stdout only with --enable-logging; progress and errors
//     go to stderr as structured logs. URLs are parsed by net/url, so the
//     reference's port-parsing quirk and its printf treatment of other %
//     sequences in GET URLs are gone: %s is the only placeholder, and the
//     URL must be valid once it is replaced.
package pstohttp
