// Package pubsub is quorumq's pubsub: the registry of this node's
// subscribers by topic, the stream framing of bitly pubsub's /sub, the
// per-subscriber output queues and the slow-client kick (the local half),
// and the cluster fan-out, the cluster-wide /clients and route mode (the
// cluster half).
//
// A Hub keeps, per topic, its subscribers in connect order. Publish frames
// each message once per stream mode and appends it to every subscriber's
// queue; it never writes to a connection, so a publisher never waits for a
// slow subscriber. Each subscriber has one writer goroutine (the goroutine
// of its /sub request) that drains its queue to the connection.
//
// # Stream format
//
// Subscribe takes the connection over (http.Hijacker) and writes the
// response itself, byte for byte as the reference (spec 3.3): a lowercase
// content-type header, Transfer-Encoding: chunked and Date for HTTP/1.1,
// Connection: close when asked; then, with multipart=0, "\r\n" once and
// "m\n" per message, or by default a multipart/x-mixed-replace stream with
// the boundary xXPubSubXx. On HTTP/1.1 each piece is exactly one chunk and
// the terminating zero chunk is never sent; HTTP/1.0 gets the raw stream.
//
// # Slow subscribers
//
// A subscriber's pending bytes are the bytes queued for it plus the bytes
// its writer has taken but the kernel has not yet accepted. When a message
// would take them past Options.MaxPendingBytes the subscriber is kicked as
// in the reference (spec 3.5): kicked_clients grows by one, its pending
// output is discarded (a write in progress is interrupted) and replaced by
// the raw text "ERROR_TOO_SLOW. kicked for having <n> pending bytes\n",
// outside chunk framing, and it gets no more messages. The notice follows
// whatever the kernel had already accepted, which may end inside a
// message, as in the reference. A subscriber never holds more than
// MaxPendingBytes of output, or one message when a single message is
// larger than the limit (it still goes to a subscriber with nothing
// pending). Small frames are copied together into blocks, so memory
// follows the pending bytes even for bodies of many tiny messages.
//
// # Cluster fan-out
//
// Every node gossips its subscriber set (topic → number of local
// subscribers; package cluster, DESIGN.md "Subscriber sets"): the hub
// reports changes through Options.OnChange and the set through
// TopicCounts. A publish on node A (Fanout.Publish, after Hub.Publish for
// A's own subscribers) goes once to every other alive node whose gossiped
// set has subscribers of the topic, in parallel, over plain HTTP between
// pubsub ports with pooled keep-alive connections:
//
//	POST /internal/deliver?topic=T
//	X-Quorumq-Hop: 1
//	X-Quorumq-From: <A's id>
//	Content-Type: application/x-quorumq-deliver
//	body: one or more records, each a uvarint message count, then per
//	      message a uvarint length and the bytes (AppendDeliveryRecord)
//
// Length-prefixed rather than newline-joined, so the format does not rely
// on /pub's rule that messages hold no "\n". The receiver hands each
// record to its own subscribers (Hub.Deliver) and never forwards: one
// hop, no loops. It answers one line per record, the number of its
// subscribers that were sent the record's last message; the /pub reply's
// <C> is A's own count plus those.
//
// Timeouts: the publish waits for the answers at most Timeout
// (--fanout-timeout, default 1 s); a peer that is dead, partitioned or
// stopped (SIGSTOP) never holds it longer. Each delivery's deadline is
// the publish's: a request not answered by then is aborted, and a
// delivery still queued at its deadline is not sent.
//
// Ordering: each peer has one bounded queue (QueueLen, default 1024
// publishes) and one sender goroutine, so the publishes of one node reach
// a peer in the order they were made, all topics together; publishes of
// the same topic waiting together travel in one request (up to 256
// records or 1 MiB). Nothing is ordered across publishing nodes: two
// messages published on two nodes at the same moment may reach the
// subscribers of a third in either order.
//
// At most once: a delivery that fails, is refused, is not answered in
// time, expires in its queue or finds the queue full (overflow) is
// counted (Hub.RecordRemoteFailure: /stats "Remote failures" and
// "Remote messages dropped"; quorumq_pubsub_fanout_deliveries_total by
// peer and result) and never resent, also when the peer may in fact have
// delivered it (an answer that came too late). The gossiped sets lag the
// real ones by well under a second: a subscriber that connected a moment
// ago on another node may miss messages.
//
// # Cluster-wide /clients
//
// Fanout.Clients lists this node's subscribers first, in connect order,
// then every other alive node's, by node id, each in its connect order;
// every line of /clients ends in " node:<id>". The other nodes are asked
// in parallel (GET /internal/clients, JSON, within Timeout); one that does
// not answer is left out of the listing and logged, never failing it.
//
// # Route mode
//
// With --route=TOPIC:QUEUE (Router) every message published on TOPIC on
// this node with /pub (not the deliveries from other nodes, so each
// message is enqueued once cluster-wide) is first enqueued into QUEUE
// through this node's queue port (POST /mput, forwarded to the leader,
// committed through raft), then published. The /pub reply waits for the
// enqueue; if it fails the answer is 503 ROUTE_FAILED (413 if a message is
// larger than the queue takes) and nothing is published, so the publisher
// can retry. Empty messages are published but not enqueued.
//
// # Differences from bitly pubsub 1.2
//
//   - Gone subscribers are noticed at once: the writer goroutine's
//     companion reads the connection, and EOF or a read error removes the
//     subscriber from current_connections, /clients and the <C> of /pub.
//     The reference notices only when a write fails, typically at the
//     second publish after the client left (spec 3.4). A client that
//     half-closes its sending side is treated as gone, as Go's net/http
//     does for request contexts.
//   - A kicked subscriber is closed as soon as the notice is written, not
//     at the first publish after that. The limit is checked before a
//     message is queued, so the pending bytes stay within MaxPendingBytes;
//     the reference checks the bytes already pending, so its subscribers
//     can hold the limit plus one message.
//   - A subscriber whose connection accepts no bytes for
//     Options.WriteTimeout (default 50 s, libevent's write timeout) is
//     dropped, as in the reference.
//   - total_connections counts subscribes only; the reference also adds one
//     per published message (a listed quirk). messages_sent counts the
//     (message, subscriber) pairs actually queued; the reference also counts
//     subscribers it then skips as slow. messages_received counts messages
//     published on this node; those delivered from other nodes count in
//     Stats.RemoteReceived ("Remote messages received"), so the sum over
//     the nodes counts each publish once.
//   - A HEAD request gets the response head a GET would get, and the
//     connection is closed: it does not become a subscriber. The reference
//     streams to it, which leaves a ghost subscriber behind every
//     ps_to_http (spec 4.2).
//   - WebSocket subscribers speak RFC 6455 (github.com/coder/websocket):
//     each message is one text frame, or one binary frame when it is not
//     valid UTF-8; frames from the client are ignored (pings and the close
//     handshake are answered). The reference spoke a pre-standard variant
//     (64-byte fragments, no masking, no version negotiation) that today's
//     clients do not accept. Cross-origin browser pages are refused unless
//     Options.WebSocketOrigins allows them. A kicked WebSocket subscriber
//     gets the ERROR_TOO_SLOW line as a text message, then a close frame
//     with status 1008 (policy violation).
package pubsub
