package cluster

// Status is the answer of GET /cluster/status (the contract in ARCHITECTURE.md).
type Status struct {
	NodeID       string   `json:"node_id"`
	State        string   `json:"state"` // leader, follower, candidate, shutdown
	LeaderID     string   `json:"leader_id"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []Member `json:"members"`
}

// Member is one server as this node sees it.
type Member struct {
	ID         string `json:"id"`
	Status     string `json:"status"` // alive, suspect, dead, left (unknown until memberlist runs)
	Voter      bool   `json:"voter"`
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
	// MemberUnknown is reported for other servers while there is no gossip
	// layer to say how they are; memberlist replaces it in the next step.
	MemberUnknown = "unknown"
)
