// Package testkit starts and drives `quorumq serve` processes: the one
// process-cluster harness of the system tests (internal/systemtest), the
// chaos suite (deploy/chaos) and `quorumq devcluster` (deploy/devcluster).
//
// The parts, from the bottom up:
//
//   - Build and BuildOnce compile the quorumq binary (cmd/node of this
//     module); BuildOnce shares one build per process.
//   - Process is one restartable child process: its command line, its
//     output (a log file with a header per start, or writers), its
//     process group (Lifetime), kill -9, SIGSTOP/SIGCONT, graceful stop,
//     and a record of every exit the caller did not cause.
//   - Node is a Process that runs `quorumq serve` with its flags, data
//     directory and addresses, and talks to it: /readyz, /cluster/status,
//     /cluster/leave.
//   - Cluster plans the nodes' ports (loopback, or one network namespace
//     of internal/netns per node), starts them together, adds members,
//     finds the leader and waits for leaders and voters.
//
// Nothing here imports "testing", so the quorumq binary can link it:
// errors are returned, waits take a context and a timeout (Poll), and the
// test packages wrap what they use in their own fail-fast helpers.
package testkit
