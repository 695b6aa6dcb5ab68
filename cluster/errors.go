package cluster

import "errors"

// Errors of Open, beside the wire kinds of package api that Node's methods
// return (api.ErrNotLeader, api.ErrNoLeader, api.ErrOutcomeUnknown, api.ErrShuttingDown,
// api.ErrLastVoter). Callers compare with errors.Is.
var (
	// ErrInvalidOptions wraps every problem Open finds in its Options.
	ErrInvalidOptions = errors.New("invalid cluster options")
	// ErrNodeIDMismatch means the data directory belongs to another node id.
	// Reusing a data directory under a new id (or an id on a wiped directory)
	// could let one server vote twice, so Open refuses (raft-patterns §9.3).
	ErrNodeIDMismatch = errors.New("node id does not match the data directory")
	// ErrLeft means the data directory belongs to a node that left the
	// cluster for good: its log is history the cluster no longer counts on,
	// so it must not come back as a member. Start with an empty data
	// directory to join as a new node.
	ErrLeft = errors.New("this node left the cluster")
)
