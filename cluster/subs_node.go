package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// SetSubscriberSource registers the function that reports this node's
// pubsub subscribers: topic → number of subscribers connected here. The
// node reads it subsDebounce after each SubscribersChanged and gossips the
// set when it changed. Until a source is set, the node has no subscribers.
func (n *Node) SetSubscriberSource(f func() map[string]int) { n.subs.setSource(f) }

// SubscribersChanged tells the node that its local subscribers may have
// changed (a subscribe or a disconnect). It never blocks; bursts of calls
// make one new version.
func (n *Node) SubscribersChanged() { n.subs.changed() }

// FlushSubscribers announces the local subscriber set at once, without
// the debounce, and waits (at most about half a second) for the NodeMeta
// update to go out. A node shutting down calls it after disconnecting its
// subscribers, so that the others stop sending to it right away instead
// of when gossip declares it dead.
func (n *Node) FlushSubscribers() { n.subs.flushNow() }

// SubscriberPeers returns the other alive nodes whose gossiped subscriber
// set has at least one subscriber of topic, sorted by id. The sets lag
// the real ones by the debounce plus a gossip round (well under a second
// on a LAN): a subscriber that connected a moment ago may not be counted
// yet.
func (n *Node) SubscriberPeers(topic string) []SubscriberPeer {
	if topic == "" {
		return nil
	}
	return n.subs.peersWith(topic)
}

// PubsubPeers returns every other alive node that advertises a pubsub
// address, sorted by id, with the subscriber set known for it (if any).
func (n *Node) PubsubPeers() []SubscriberPeer { return n.subs.peersWith("") }

// LocalSubscriberSet returns this node's own subscriber-set entry in the
// gossip channel's wire format, which the pubsub port serves at api.PathSubs
// for peers that learned a version without its topics.
func (n *Node) LocalSubscriberSet() []byte { return n.subs.localBytes() }

// SubscriberSetCollectors returns the subscriber-set gossip's metrics, for
// the caller to register: quorumq_pubsub_subscriber_set_updates_total{source},
// quorumq_pubsub_subscriber_set_fetches_total{result},
// quorumq_pubsub_subscriber_set_version and quorumq_pubsub_subscriber_sets_known.
func (n *Node) SubscriberSetCollectors() []prometheus.Collector { return n.subs.collectors() }

// announceSubs puts this node's subscriber-set version and digest into its
// NodeMeta and gossips it.
func (n *Node) announceSubs(version uint64, digest [8]byte) {
	n.updateMetaWithin(func(m *nodeMeta) {
		m.SubsVersion, m.SubsDigest = version, digest
	}, subsMetaTimeout)
}
