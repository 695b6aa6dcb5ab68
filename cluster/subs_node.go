package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/cluster/internal/membership"
	"github.com/quorumq/quorumq/cluster/internal/subscriberset"
)

// Subscribers is the node's side of pubsub: it gossips this node's
// subscriber set (topic → subscribers connected here) and knows the sets of
// the other alive nodes, so that a publish goes only to the nodes that need
// it.
type Subscribers struct {
	ch *subscriberset.Channel
}

// SubscriberPeer is another alive node as the subscriber-set gossip knows
// it: ID, PubsubAddr, the Version of its set and, from Peers only, its
// Topics (topic → subscribers connected there).
type SubscriberPeer = subscriberset.Peer

// subsMetaTimeout bounds the wait for a subscriber-set NodeMeta update to
// reach one member; the update is queued regardless.
const subsMetaTimeout = 500 * time.Millisecond

// Subscribers returns the node's subscriber-set gossip.
func (n *Node) Subscribers() *Subscribers { return n.subscribers }

// SetSource registers the function that reports this node's pubsub
// subscribers: topic → number of subscribers connected here. The node reads
// it 50 ms after the first Changed of a burst and gossips the set when it changed.
// Until a source is set, the node has no subscribers.
func (s *Subscribers) SetSource(f func() map[string]int) { s.ch.SetSource(f) }

// Changed tells the node that its local subscribers may have changed (a
// subscribe or a disconnect). It never blocks; bursts of calls make one new
// version.
func (s *Subscribers) Changed() { s.ch.Changed() }

// Flush announces the local subscriber set at once, without the debounce,
// and waits (at most about half a second) for the NodeMeta update to go
// out. A node shutting down calls it after disconnecting its subscribers,
// so that the others stop sending to it right away instead of when gossip
// declares it dead.
func (s *Subscribers) Flush() { s.ch.Flush() }

// WithTopic returns the other alive nodes whose gossiped subscriber set has
// at least one subscriber of topic, sorted by id, without their topics. The
// sets lag the real ones by the debounce plus a gossip round (well under a
// second on a LAN): a subscriber that connected a moment ago may not be
// counted yet.
func (s *Subscribers) WithTopic(topic string) []SubscriberPeer {
	if topic == "" {
		return nil
	}
	return s.ch.PeersWith(topic)
}

// Peers returns every other alive node that advertises a pubsub address,
// sorted by id, with the subscriber set known for it (if any).
func (s *Subscribers) Peers() []SubscriberPeer { return s.ch.PeersWith("") }

// Local returns this node's own subscriber-set entry in the gossip's wire
// format, which the pubsub port serves at api.PathSubs for peers that
// learned a version without its topics.
func (s *Subscribers) Local() []byte { return s.ch.LocalBytes() }

// Collectors returns the subscriber-set gossip's metrics, for the caller to
// register: quorumq_pubsub_subscriber_set_updates_total{source},
// quorumq_pubsub_subscriber_set_fetches_total{result},
// quorumq_pubsub_subscriber_set_version and quorumq_pubsub_subscriber_sets_known.
func (s *Subscribers) Collectors() []prometheus.Collector { return s.ch.Collectors() }

// announceSubs puts this node's subscriber-set version and digest into its
// NodeMeta and gossips it.
func (n *Node) announceSubs(version uint64, digest [8]byte) {
	n.members.UpdateMetaWithin(func(m *membership.NodeMeta) {
		m.SubsVersion, m.SubsDigest = version, digest
	}, subsMetaTimeout)
}

// subsEvents passes memberlist's events, after the member table, to the
// subscriber-set channel. memberlist never calls it concurrently.
type subsEvents struct {
	subs *subscriberset.Channel
}

var _ memberlist.EventDelegate = subsEvents{}

func (d subsEvents) NotifyJoin(n *memberlist.Node) {
	d.alive(n)
}

func (d subsEvents) NotifyUpdate(n *memberlist.Node) {
	d.alive(n)
}

func (d subsEvents) NotifyLeave(n *memberlist.Node) {
	d.subs.MemberGone(n.Name)
}

// alive tells the channel of a member and what its NodeMeta says of its
// pubsub port and subscriber set.
func (d subsEvents) alive(n *memberlist.Node) {
	meta, err := membership.DecodeMeta(n.Meta)
	d.subs.MemberAlive(n.Name, meta.PubsubAddr, meta.SubsVersion, err == nil)
}
