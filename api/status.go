package api

import (
	"fmt"
	"strings"
)

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
	// UnreachedSeeds are this node's --join seeds (itself left out) while
	// it has reached none of them and no member has reached it.
	UnreachedSeeds []string `json:"unreached_seeds,omitempty"`
	// Bootstrap says why a node without raft state is not in a cluster
	// yet (waiting for --bootstrap-expect members, say); empty once it is.
	Bootstrap string `json:"bootstrap,omitempty"`
}

// NoLeaderReason says, in one line, why a node that knows no leader has
// none, from what it knows: it has not joined (its seeds are unreachable),
// it is not in a cluster yet (bootstrap), a majority of the voters is
// unreachable, or an election is under way. It is "" when a leader is
// known, or nothing the status holds explains why there is none. The 503 of a request that found no leader and `quorumq status`
// both say this.
func (s Status) NoLeaderReason() string {
	if s.LeaderID != "" {
		return ""
	}
	if len(s.UnreachedSeeds) > 0 {
		return fmt.Sprintf("not joined: join seeds %s unreachable; start one of them or check --join", strings.Join(s.UnreachedSeeds, ", "))
	}
	var voters, down []string
	for _, m := range s.Members {
		if !m.Voter {
			continue
		}
		voters = append(voters, m.ID)
		if m.ID != s.NodeID && m.Status != MemberAlive {
			down = append(down, m.ID)
		}
	}
	if len(voters) == 0 {
		if s.Bootstrap != "" {
			return "not in a cluster yet: " + s.Bootstrap
		}
		return "" // nothing known that would explain it
	}
	majority := len(voters)/2 + 1
	if len(voters)-len(down) < majority {
		return fmt.Sprintf("no leader: %d of %d voters unreachable (%s); a majority (%d) must be up",
			len(down), len(voters), strings.Join(down, ", "), majority)
	}
	return fmt.Sprintf("no leader: an election is under way (term %d; gossip reaches %d of %d voters)", s.Term, len(voters)-len(down), len(voters))
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
	// AppliedIndex is the member's applied index as it last reported it
	// (the node's own for itself; 0 before any report).
	AppliedIndex uint64 `json:"applied_index"`
	// Lag is the answering node's commit index minus AppliedIndex; -1
	// while the member has not reported.
	Lag int64 `json:"lag"`
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
