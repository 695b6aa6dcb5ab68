// Package systemtest holds tests that run the real quorumq binary as separate
// processes on loopback (or in network namespaces): durability across kill
// -9, clusters, failover, partitions, pubsub fan-out, the reader fleet and
// devcluster. The processes are started and driven by internal/testkit; the
// package has no code of its own, only its tests and their fail-fast
// helpers.
//
// The tests of what crosses the wire between nodes or between a client and
// the cluster (forwarding, redirects, fan-out, membership, raft failover,
// partitions, ps_to_http, the reader fleet) run twice, as subtests open
// and secured: on a secured cluster the nodes serve HTTPS, talk mutual TLS
// to each other, encrypt their gossip and want a token, and the test, its
// clients and the tools it starts trust the cluster CA and send the admin
// token (mode_test.go, user_test.go). go test -run '/secured' runs only
// the secured ones (and the tests that have no modes).
package systemtest
