package cluster

// LeaderInfo is the current leader as this node knows it.
type LeaderInfo struct {
	ID         string
	QueueAddr  string // host:port of its queue port ("" if not known yet)
	PubsubAddr string
	RaftAddr   string
}

// Leader returns the known leader and its addresses. ok is false while no
// leader is known. Until gossip carries the other nodes' addresses, only this
// node's own addresses are known.
func (n *Node) Leader() (info LeaderInfo, ok bool) {
	addr, id := n.raft.LeaderWithID()
	if id == "" {
		return LeaderInfo{}, false
	}
	info = LeaderInfo{ID: string(id), RaftAddr: string(addr)}
	if string(id) == n.id {
		info.QueueAddr, info.PubsubAddr = n.opts.QueueAddr, n.opts.PubsubAddr
	}
	return info, true
}
