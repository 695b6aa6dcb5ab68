// Package systemtest holds tests that run the real quorumq binary as separate
// processes on loopback (or in network namespaces): durability across kill
// -9, clusters, failover, partitions, pubsub fan-out, the reader fleet and
// devcluster. The processes are started and driven by internal/testkit; the
// package has no code of its own, only its tests and their fail-fast
// helpers.
package systemtest
