package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Subscribers is the node's side of pubsub: it gossips this node's
// subscriber set (topic → subscribers connected here) and knows the sets of
// the other alive nodes, so that a publish goes only to the nodes that need
// it.
type Subscribers struct {
	ch *subsChannel
}

// Subscribers returns the node's subscriber-set gossip.
func (n *Node) Subscribers() *Subscribers { return n.subscribers }

// SetSource registers the function that reports this node's pubsub
// subscribers: topic → number of subscribers connected here. The node reads
// it subsDebounce after each Changed and gossips the set when it changed.
// Until a source is set, the node has no subscribers.
func (s *Subscribers) SetSource(f func() map[string]int) { s.ch.setSource(f) }

// Changed tells the node that its local subscribers may have changed (a
// subscribe or a disconnect). It never blocks; bursts of calls make one new
// version.
func (s *Subscribers) Changed() { s.ch.changed() }

// Flush announces the local subscriber set at once, without the debounce,
// and waits (at most about half a second) for the NodeMeta update to go
// out. A node shutting down calls it after disconnecting its subscribers,
// so that the others stop sending to it right away instead of when gossip
// declares it dead.
func (s *Subscribers) Flush() { s.ch.flushNow() }

// WithTopic returns the other alive nodes whose gossiped subscriber set has
// at least one subscriber of topic, sorted by id, without their topics. The
// sets lag the real ones by the debounce plus a gossip round (well under a
// second on a LAN): a subscriber that connected a moment ago may not be
// counted yet.
func (s *Subscribers) WithTopic(topic string) []SubscriberPeer {
	if topic == "" {
		return nil
	}
	return s.ch.peersWith(topic)
}

// Peers returns every other alive node that advertises a pubsub address,
// sorted by id, with the subscriber set known for it (if any).
func (s *Subscribers) Peers() []SubscriberPeer { return s.ch.peersWith("") }

// Local returns this node's own subscriber-set entry in the gossip's wire
// format, which the pubsub port serves at api.PathSubs for peers that
// learned a version without its topics.
func (s *Subscribers) Local() []byte { return s.ch.localBytes() }

// Collectors returns the subscriber-set gossip's metrics, for the caller to
// register: quorumq_pubsub_subscriber_set_updates_total{source},
// quorumq_pubsub_subscriber_set_fetches_total{result},
// quorumq_pubsub_subscriber_set_version and quorumq_pubsub_subscriber_sets_known.
func (s *Subscribers) Collectors() []prometheus.Collector { return s.ch.collectors() }

// announceSubs puts this node's subscriber-set version and digest into its
// NodeMeta and gossips it.
func (n *Node) announceSubs(version uint64, digest [8]byte) {
	n.updateMetaWithin(func(m *nodeMeta) {
		m.SubsVersion, m.SubsDigest = version, digest
	}, subsMetaTimeout)
}
