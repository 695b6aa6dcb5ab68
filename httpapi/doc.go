// Package httpapi is a node's HTTP front: one engine serves the queue port
// (bitly simplequeue's API plus quorumq's extensions, on the replicated
// queue), the pubsub port (bitly pubsub's API) and, on both, the admin
// endpoints. It owns routing, methods, body limits, error mapping through
// api.Classify, metrics, and forwarding to the leader; it depends on
// small interfaces (Queue, Cluster, PubsubHub), never on the cluster
// package.
//
// Build a port with NewQueueHandler or NewPubsubHandler from
// DefaultOptions. DESIGN.md describes the flow of a request, forwarding,
// the status codes and the trade-offs.
package httpapi
