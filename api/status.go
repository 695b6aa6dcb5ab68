package api

// Status is the answer of GET /cluster/status: a node's view of the
// cluster.
type Status struct {
	NodeID       string   `json:"node_id"`
	State        string   `json:"state"` // leader, follower, candidate, shutdown
	LeaderID     string   `json:"leader_id"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []Member `json:"members"`
}

// Status.State values.
const (
	StateLeader    = "leader"
	StateFollower  = "follower"
	StateCandidate = "candidate"
	StateShutdown  = "shutdown"
)

// Member is one server as a node sees it: the union of the raft
// configuration and the gossip members.
type Member struct {
	ID string `json:"id"`
	// Status is the gossip status: alive, dead, left, or unknown for a
	// configuration entry gossip has never shown the node. (suspect is
	// part of the contract but memberlist does not expose it: a suspect
	// member reports alive until it is declared dead.)
	Status string `json:"status"`
	Voter  bool   `json:"voter"`
	// Suffrage is voter or nonvoter for servers in the raft
	// configuration, none for gossip members outside it (fresh nodes
	// waiting to be added, members that left).
	Suffrage   string `json:"suffrage,omitempty"`
	QueueAddr  string `json:"queue_addr"`
	PubsubAddr string `json:"pubsub_addr"`
	RaftAddr   string `json:"raft_addr"`
}

// Member.Status values.
const (
	MemberAlive   = "alive"
	MemberSuspect = "suspect"
	MemberDead    = "dead"
	MemberLeft    = "left"
	// MemberUnknown is a server in the raft configuration that gossip has
	// never shown the node (it was down since the node started, or it is
	// in another network).
	MemberUnknown = "unknown"
)

// Member.Suffrage values.
const (
	SuffrageVoter    = "voter"
	SuffrageNonvoter = "nonvoter"
	SuffrageNone     = "none"
)

// Leader is the current leader as a node knows it.
type Leader struct {
	ID         string
	QueueAddr  string // host:port of its queue port ("" until gossip has it)
	PubsubAddr string
	RaftAddr   string
}
