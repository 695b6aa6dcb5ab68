package cluster

import (
	"errors"

	"github.com/quorumq/quorumq/cluster/internal/datadir"
)

// Errors of Open and Shutdown, beside the wire kinds of package api that Node's methods
// return (api.ErrNotLeader, api.ErrNoLeader, api.ErrOutcomeUnknown, api.ErrShuttingDown,
// api.ErrLastVoter). Callers compare with errors.Is.
var (
	// ErrInvalidOptions wraps every problem Open finds in its Options.
	ErrInvalidOptions = errors.New("invalid cluster options")
	// ErrNodeIDMismatch means the data directory belongs to another node id.
	// Reusing a data directory under a new id (or an id on a wiped directory)
	// could let one server vote twice, so Open refuses (raft-patterns §9.3).
	ErrNodeIDMismatch = datadir.ErrNodeIDMismatch
	// ErrLeft means the data directory belongs to a node that left the
	// cluster for good. Start with an empty data directory to join as a
	// new node.
	ErrLeft = datadir.ErrLeft
	// ErrLogStoreMismatch means the data directory holds a raft log of
	// another kind than Options.LogStore. Open refuses rather than start an
	// empty log beside the old one, which would make the node forget its
	// term, vote and entries.
	ErrLogStoreMismatch = datadir.ErrLogStoreMismatch
	// ErrDataDirInUse means another node, in this process or another, has
	// the data directory open.
	ErrDataDirInUse = datadir.ErrInUse
	// ErrShutdownIncomplete is Shutdown's (and Leave's) error when raft did
	// not stop before the context ended: the node answers nothing more, but
	// its data directory stays locked until the process exits.
	ErrShutdownIncomplete = errors.New("shutdown incomplete")
)

// CheckNotLeft returns an error wrapping ErrLeft when dataDir belongs to a
// node that left the cluster for good (Leave marks it before the node shuts
// down), nil otherwise. Harnesses use it to tell a node that left from one
// that stopped, when the answer to a leave was lost.
func CheckNotLeft(dataDir string) error { return datadir.CheckNotLeft(dataDir) }

// BodiesDir is where the state machine of the node in dataDir keeps
// message bodies (fsm.Options.Dir).
func BodiesDir(dataDir string) string { return datadir.Bodies(dataDir) }
