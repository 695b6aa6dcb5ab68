// Package cluster runs one quorumq node's replication: it hosts the queue
// state machine (package fsm) in a raft server and finds the other nodes
// by gossip. It is a facade: Open(ctx, Options) assembles the parts under
// cluster/internal (rafthost, membership, subscriberset, datadir,
// hclogadapter) and Node exposes what the server needs. DESIGN.md says
// which part owns what.
package cluster
