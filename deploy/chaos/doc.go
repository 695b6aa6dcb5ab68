// Package chaos is quorumq's fault-injection suite: it drives real
// `quorumq serve` processes under a workload while a seeded nemesis kills,
// pauses, restarts and partitions them and changes the membership, then
// heals everything, drains the queues and checks the history. The nodes
// are started and driven by the process harness internal/testkit, in the
// network namespaces of internal/netns.
//
// # Running
//
//	quorumq-chaos                      # short schedule: 90 s of faults, about 2 minutes in all
//	quorumq-chaos --long               # 10 minutes of faults (make chaos)
//	quorumq-chaos --seed=42 -v         # reproduce a schedule, print progress
//	go test ./deploy/chaos -run TestChaos -chaos.duration=90s -timeout 15m -v
//	go test ./deploy/chaos -run TestRecheck -chaos.recheck=DIR -v   # check a saved history again
//
// Partitions need network namespaces: root on Linux with iproute2's ip.
// Without them (or with --network=loopback) the nodes run on loopback and
// partition faults are skipped; the report says so. Each run writes into
// its output directory: report.json, history.jsonl (every operation),
// chaos.log (the nemesis's log with times), nodes/<id>/node.log, and for
// a non-linearizable lin queue porcupine's HTML visualization. Exit status
// (quorumq-chaos): 0 no violation, 1 violations, 2 the run could not be
// carried out.
//
// # Cluster and network
//
// Three nodes start together with --bootstrap-expect=3 (DefaultServeArgs:
// raft timeouts halved, --forward-timeout=3s, small snapshot thresholds so
// that snapshots and snapshot installs happen). With namespaces, each node
// has its own namespace and address, all on one bridge that lives in a
// namespace of its own; the chaos process has a port on the bridge and
// always reaches every node, so clients are never partitioned from the
// node they talk to, the nodes from each other are. A partition is a set
// of blackhole routes inside the node namespaces, both ways. Namespaces
// and links are named qc<pid>...; a run removes those of runs whose
// process is gone (and kills what still runs inside them). Nodes are in
// their own process groups; a run kills every node it started before it
// returns, also on SIGINT/SIGTERM.
//
// # Workload
//
// Requests go to a random member each time (followers forward), one
// attempt per request, so every attempt and its outcome is recorded:
// ok, fail (certainly not applied: the connection could not be made, or
// 503 NO_LEADER, NOT_LEADER, SHUTTING_DOWN, UNAVAILABLE) or unknown (503
// OUTCOME_UNKNOWN, a timeout or a reset after the request was sent).
//
//   - Producers put unique keys on queue "work", body = id = key, 10 % with
//     delay= 0.5 s, 2 s or 5 s, retrying the same key on every failure
//     until acknowledged or 45 s after the first attempt (well inside the
//     2-minute dedup window).
//   - Consumers mget 1-5 messages with lease=3s (long-poll 1 s), process
//     briefly, then ack them all, or nack each (half with delay=1s), or
//     skip them (the lease runs out): every delivery is recorded with
//     message id, attempts, body and times.
//   - Lin clients do plain /put of unique values and plain /get (pop) on
//     queue lin-<k>, a fresh queue every 10 s; after an unknown outcome a
//     client sits the rest of its window out, so each porcupine history
//     stays small.
//
// # Nemesis
//
// Plan draws a schedule from the seed (kinds weighted, hold 3-8 s, quiet
// gap 3-6 s; long: hold 3-15 s, gap 3-10 s): kill -9 of the leader, of a
// random node or of a majority (restarted at heal); SIGSTOP of the leader
// or a random node (SIGCONT at heal); graceful restart (SIGTERM, start);
// partitions: random halves, the leader alone, a bridge (two halves that
// both see one node); membership: a fresh node joins (it must show up as a
// non-voter, then a voter) or a node is sent POST /cluster/leave and must
// exit by itself. A node that left never comes back: added nodes get a new
// id, data directory and namespace. Targets are drawn from the seed too,
// but depend on which node leads, so two runs of a seed inject the same
// kinds at the same times, not always on the same nodes. After the
// schedule everything is healed, every member restarted, and the cluster
// must agree on a leader with all members as voters; the workload goes on
// for 10 s, then the queues are drained.
//
// # Checks
//
//   - acked-puts-delivered: every acknowledged put was delivered, and
//     every delivered message was acked by someone (ok or unknown) before
//     the drain found the queue empty: a message handed out, never acked
//     and never handed out again is lost too.
//   - no-unexpected-or-duplicate: every delivered body was put; none whose
//     every attempt was answered "not applied"; one message id per key (a
//     key stored twice breaks idempotency within the window), the id the
//     acknowledgment gave; nothing delivered before it was sent.
//     Redeliveries are counted, not violations.
//   - attempts-grow: per message, attempts are distinct and grow in
//     real-time order of deliveries.
//   - delays-honoured: no delivery before the first put attempt + delay,
//     nor before nack + delay for a redelivery asked after the nack was
//     answered, with DelayTolerance (10 ms): one machine, no skew.
//   - linearizable-put-pop: porcupine with FIFOModel per lin queue,
//     including the final drain's pops; failed ops are left out, unknown
//     ones may take effect at any time after they were sent (or never).
//     An illegal history comes with porcupine's visualization and, when a
//     simple pattern explains it, a witness (LinWitnesses).
//   - replicas-converge: after the drain every member's local /dump and
//     /stats of every queue equal the leader's.
//   - recovery-and-drain: the final heal succeeded, puts were acknowledged
//     after it, and both drains finished.
//   - no-unexpected-exits: no node process ended without the nemesis ending
//     it.
package chaos
