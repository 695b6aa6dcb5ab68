// Package api is quorumq's wire contract, shared by the server, its
// clients and the nodes among themselves: the error kinds with their
// stable tokens and HTTP statuses, the header names, the queue and topic
// name rule, how durations and "no lease" are written, the paths of the
// node-to-node routes, and the JSON answers (/cluster/status, the queue
// routes' answers and how a message body is written in them).
//
// It imports nothing of quorumq's, so that every layer can depend on it
// and none has to restate it.
package api
