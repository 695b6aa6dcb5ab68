package cluster

import "errors"

// Errors returned by Node. Callers compare with errors.Is.
var (
	// ErrNotLeader means this node is not the leader; the request was not
	// enqueued, so forwarding or retrying it elsewhere is safe.
	ErrNotLeader = errors.New("not the leader")
	// ErrNoLeader means no leader was known before the wait ran out.
	ErrNoLeader = errors.New("no leader")
	// ErrOutcomeUnknown means a write was handed to raft but leadership was
	// lost, or the wait ran out, before it was known to be applied: it may or
	// may not take effect. Retry with an idempotency key.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrShuttingDown means the node is stopping and takes no new requests.
	ErrShuttingDown = errors.New("node is shutting down")
	// ErrInvalidOptions wraps every problem Open finds in its Options.
	ErrInvalidOptions = errors.New("invalid cluster options")
	// ErrNodeIDMismatch means the data directory belongs to another node id.
	// Reusing a data directory under a new id (or an id on a wiped directory)
	// could let one server vote twice, so Open refuses (raft-patterns §9.3).
	ErrNodeIDMismatch = errors.New("node id does not match the data directory")
	// ErrLastVoter means Leave was refused because this node is the only
	// voter: the cluster cannot continue without it. Nothing was changed.
	ErrLastVoter = errors.New("cannot leave: this node is the last voter")
	// ErrLeft means the data directory belongs to a node that left the
	// cluster for good: its log is history the cluster no longer counts on,
	// so it must not come back as a member. Start with an empty data
	// directory to join as a new node.
	ErrLeft = errors.New("this node left the cluster")
)
