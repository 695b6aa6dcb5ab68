// Package systemtest holds tests that run the real quorumq binary as separate
// processes on loopback: durability across kill -9, clusters, failover. The
// package has no code of its own; everything is in its tests.
package systemtest
