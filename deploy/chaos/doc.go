// Package chaos is quorumq's fault-injection suite: it drives real
// `quorumq serve` processes (through internal/testkit, in the network
// namespaces of internal/netns) under a workload while a seeded nemesis
// kills, pauses, restarts and partitions them and changes the membership,
// and while hostile clients (large mgets, stalled subscribers, slow-body
// and idle connections) hang on every node, then heals everything, drains
// the queues and checks the history: no acknowledged put lost, no
// duplicate or unexpected delivery, attempts and delays honoured,
// put/pop/mget linearizable (porcupine; a piece it cannot decide fails),
// mget answers within the cap, /pub and the other clients served in
// time, replicas converged.
//
//	quorumq-chaos                      # short schedule, about 2 minutes
//	quorumq-chaos --long               # 10 minutes of faults (make chaos)
//	quorumq-chaos --seed=42 -v         # reproduce a schedule
//
// The workload, the nemesis and every check are described in DESIGN.md.
package chaos
