package cluster

import "github.com/quorumq/quorumq/api"

// Leader returns the known leader and its addresses. ok is false while no
// leader id is known. The HTTP addresses come from the leader's NodeMeta,
// so they are empty until gossip has carried it to this node.
func (n *Node) Leader() (info api.Leader, ok bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return api.Leader{}, false
	}
	info = api.Leader{ID: string(id), RaftAddr: string(addr)}
	if string(id) == n.id {
		info.QueueAddr, info.PubsubAddr = n.opts.QueueAddr, n.opts.PubsubAddr
		return info, true
	}
	if m, known := n.members.Member(string(id)); known && m.MetaOK {
		info.QueueAddr, info.PubsubAddr = m.Meta.QueueAddr, m.Meta.PubsubAddr
	}
	return info, true
}
