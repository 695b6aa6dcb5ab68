// Package reader is the Go rebuild of pysimplehttp's BaseReader: it reads a
// quorumq queue and runs a set of named tasks on every message, retrying
// only the tasks that failed, with a growing delay, until it gives up. It
// keeps BaseReader's JSON requeue envelope, so Go and Python readers can
// share a queue, but it works on leases instead of destructive gets, so a
// reader that dies loses nothing: its messages come back when their leases
// end.
//
//	r, err := reader.New(reader.Config{
//		Addrs: []string{"http://127.0.0.1:9001"},
//		Queue: "clicks",
//		Tasks: map[string]reader.Task{
//			"print": func(ctx context.Context, m *reader.Message) error {
//				fmt.Printf("%s\n", m.Body)
//				return nil
//			},
//		},
//	})
//	...
//	err = r.Run(ctx) // until ctx ends
//
// # Processing a message
//
// Each delivery goes through these steps (BaseReader's handle_message):
//
//  1. The body is read as an envelope when it is a JSON object with a
//     truthy "data" (not null, false, 0, "", [] or {}) and a numeric
//     "tries"; anything else is a raw message and is wrapped: tries 0,
//     retry_on null, started now, tasks_left every task. Unlike
//     BaseReader, which drops non-JSON bodies and stops on JSON that is
//     not an object, on an object with "data" but no "tries" and on an
//     unknown task name, every body is a message here.
//  2. An envelope whose tries already reach MaxTries is given up at once,
//     without running anything (BaseReader does the same for a message
//     that is not due).
//  3. If retry_on is ahead (by more than 250 ms, for clock differences
//     between readers), the message is given back unchanged with a nack
//     whose delay makes the server hold it until retry_on: no attempt, no
//     change of tries, and no busy cycling (BaseReader re-puts it and
//     reads it again every sleeptime_requeue).
//  4. tries is incremented: Message.Attempts counts this attempt.
//  5. Preprocess, then Validate. A Preprocess error (or a panic in either)
//     fails the attempt for every task in tasks_left, none of which runs,
//     and counts as a failure of the back-off timer "__preprocess".
//     Validate false acks the message without running a task (skipped).
//  6. Every task named in tasks_left runs, in order, on the same
//     *Message, even when an earlier one failed. A nil error is a success;
//     an error or a panic is a failure. A name this reader has no task for
//     is a failure too.
//  7. All succeeded: the message is acked (done). Some failed: if tries
//     has reached MaxTries the message is given up (below); otherwise it
//     is given back, atomically, with a new body: the envelope with
//     tasks_left reduced to the failed tasks, the new tries, and
//     retry_on = now + RequeueDelay × tries (90 s, 180 s, 270 s, ... with
//     the default), and a nack delay of the same length. Tasks that
//     succeeded are not run again on the next attempt.
//
// # Counting tries and giving up
//
// MaxTries is the number of attempts a message gets. The attempt whose
// tries reaches MaxTries is the last: if it fails, the reader gives up.
// pysimplehttp gives up when tries > max_tries after the attempt, so its
// max_tries=N allows N+1 attempts (the transcript shows max_tries=2 making
// three attempts); this package does not keep that off-by-one. A fleet
// that mixes Python readers with max_tries=N and Go readers should set
// MaxTries=N+1 to give messages the same budget. Deliveries that are not
// attempts do not count: a not-due message given back, a message released
// at shutdown, and a message whose lease ran out in a reader that died
// (the envelope on the queue is only rewritten after an attempt). A
// message that kills every reader that touches it is therefore retried
// until the queue's own max_attempts (see /config) dead-letters it: set
// max_attempts well above MaxTries as that backstop.
//
// Giving up calls Config.GiveUp once, with Message.TasksLeft naming the
// tasks that never succeeded, Message.Err the last failures and
// Message.Envelope the final envelope; then, when Config.DeadLetter names a
// queue, puts that envelope there (with an idempotency key, so a retried
// put is stored once), and acks the message. Without DeadLetter the
// message is dropped after GiveUp and a warning log with its envelope
// (BaseReader dumps it to a file). The reader acks given-up messages
// rather than leaving them to the server's dead-letter queue, because the
// server counts deliveries, not tries. GiveUp runs before the ack: a reader
// killed between the two runs it again when the message comes back, so
// "exactly once" holds except for that window.
//
// # Envelope
//
// The envelope has BaseReader's fields and types: "data" (any JSON),
// "tries" (int), "retry_on" (null or a float of Unix seconds with
// microseconds, as Python's time.time() gives; an int is accepted),
// "started" (int Unix seconds, set when first wrapped) and "tasks_left"
// (list of str). Keys are read in any order, in the stdlib-json and the
// compact ujson spellings (\/ escapes included), and keys the reader does
// not know are written back unchanged. The reader writes compact JSON in
// BaseReader's key order: started, tasks_left, tries, data, retry_on.
//
// Bodies that are not a truthy JSON value cannot be BaseReader's "data" as
// they are. The reader carries them as a JSON string and adds
// "data_encoding": "text" (the body verbatim, when it is UTF-8) or
// "base64" (any other bytes), a field BaseReader ignores and keeps. Falsy
// JSON values (0, "", [], {}, false, null) are carried as text too, since
// as data they would make the envelope unreadable. Message.Body is what the
// producer put on the queue, byte for byte, for a raw message, and the
// envelope's data afterwards: the data's JSON text as it stands in the
// envelope, or, with data_encoding, the original bytes. So a task sees the
// same Body on every attempt (up to JSON white space around a JSON body).
//
// # Leases, acks and shutdown
//
// A fetch is one /mget?format=json with lease=Lease and wait=LongPoll: it
// long-polls on an empty queue instead of sleeping. It asks for at most
// MGetItems messages and never for more than there are idle workers, so
// the reader holds at most Concurrency messages that are waiting or
// running (plus acks on their way). A message still being processed after
// Lease/3 is touched every Lease/3. Acks are batched: the acks that wait
// while one /ack is in flight go together in the next (the server applies
// all ids or none; after a 409 the batch is acked id by id). Nacks are
// sent one by one (each carries a body).
//
// An ack, nack or touch that fails without reaching the leader is retried
// on another node with a jittered backoff (50 ms doubling to 2 s), for up
// to SettleTimeout. One whose outcome is unknown (the connection broke
// after the request went out, or 503 OUTCOME_UNKNOWN) is retried too: a
// 409 on the retry then means the first try applied (Event.Uncertain). A
// 409 on a first try means the lease had ended (a stall, or a failure that
// outlasted it): the message will be delivered again (Event.LeaseLost,
// Stats.LeaseLost). Processing is at least once: tasks must tolerate
// running again after a reader crash or a lost lease.
//
// When Run's context ends the reader stops fetching (a fetch in flight gets
// half a second to return, and what it brings is given back; a long-poll
// still parked then is cut, and a message it leased at that very moment
// comes back when its lease ends), lets running tasks finish for up to ShutdownGrace, then cancels the
// tasks' context; whatever still runs shortly after, and any message not
// started, is given back at once (nack, delay 0). A given-back attempt does
// not count: tries stay as they were, and tasks that succeeded in it are
// removed from tasks_left. Run returns once its acks and nacks are
// answered.
//
// # Nodes, failover and load balancing
//
// The reader starts from Config.Addrs and asks every node it knows for
// /cluster/status every RefreshInterval and soon after any failure: nodes
// that answer are up; the freshest answer (highest term) names the leader
// and the members, whose queue addresses are added (discovery) and which
// are dropped when they leave. The node that executed each request
// (X-Served-By) is the leader, which keeps the reader's view current
// between refreshes. A node that cannot be reached or answers 503 is
// skipped for a jittered 0.5 s doubling to 30 s. Fetches back off 100 ms
// doubling to 5 s, with jitter, while they fail.
//
// Every get, ack and nack is executed by the leader; a follower only
// forwards it. With BalanceLeader (the default) the reader sends its
// requests to the leader directly, and spreads over the other nodes only
// while it knows no reachable leader; BalanceSpread sends them to every
// node in turn, as BaseReader's HostPool does. Measured with
// internal/systemtest's TestReader_FleetThroughput (3 reader processes, one per
// node of a 3-node cluster, a trivial task, 16 workers per reader, 20,000
// messages a round, rounds alternating between the modes; 13 rounds of
// each over four runs, cluster and readers sharing one 2-core machine
// that other tests kept busy, so single rounds vary twofold): leader
// median 6,270 messages/s (mean 6,210, range 3,830 to 9,820), spread
// median 5,270 (mean 5,090, range 2,420 to 7,010), about 20% in favour of
// the leader. With one worker per reader (latency bound): leader 784 and
// 554, spread 624 and 554. Going to the leader saves a hop (an extra HTTP
// exchange and a copy of every body on a follower) and was never
// measurably worse, so it is the default; BalanceSpread keeps HostPool's
// behaviour for those who want it.
//
// # Back-off
//
// Like BaseReader's BackoffTimer, each task (and "__preprocess") has an
// interval that grows by BackoffStep (3 s) on every failure and shrinks by
// the same on every success, between 0 and BackoffMax (2 m); after each
// attempt the reader fetches nothing new for the largest interval, so a
// failing dependency slows the reader down instead of burning the tries
// of every message. A task error that wraps ErrRequeueWithoutBackoff is
// retried like any failure but leaves its interval alone. BackoffStep < 0
// turns this off.
//
// # Metrics and logs
//
// Stats returns exact counters: every delivery is counted once, under one
// outcome (processed, retried, given up, skipped, not due, released), plus
// failed attempts, lost leases, settle errors, task failures per task and
// the leases held now. Collectors exports the same to Prometheus as
// quorumq_reader_*_total{queue} and quorumq_reader_in_flight{queue}.
// Config.OnEvent receives each outcome as it happens. Every
// ProgressInterval (30 s) the reader logs a progress line through slog
// (component=reader) with the counters, the rate of finished messages,
// the current back-off and the leader.
package reader
