package node

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumq/quorumq/cluster"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/pubsub"
)

// newPubsub builds the pubsub port: the local hub, whose subscriber set
// the node gossips; the fan-out to the other nodes' subscribers along the
// gossiped sets; the cluster-wide /clients; the node-to-node /internal/
// routes; and, with Routes, the router into the queues. opts are the queue
// port's options (the admin endpoints are served on both ports). queueAddr
// is this node's advertised queue port, where routed publishes are
// enqueued.
func (s *Server) newPubsub(cfg Config, reg *prometheus.Registry, opts httpapi.Options, queueAddr string) (http.Handler, error) {
	node := s.node
	var err error
	hubOpts := cfg.Hub
	hubOpts.Logger = cfg.Logger
	hubOpts.OnChange = node.Subscribers().Changed
	s.hub, err = pubsub.NewHub(hubOpts)
	if err != nil {
		return nil, err
	}
	node.Subscribers().SetSource(s.hub.TopicCounts)
	fo := cfg.Fanout
	fo.Self, fo.Hub, fo.Directory, fo.Peer = node.ID(), s.hub, peerDirectory{node.Subscribers()}, s.peer
	fo.Registerer, fo.Logger = reg, cfg.Logger
	if s.fanout, err = pubsub.NewFanout(fo); err != nil {
		return nil, err
	}
	if err := registerAll(reg, append(node.Subscribers().Collectors(), pubsub.NewHubCollector(s.hub))); err != nil {
		return nil, err
	}
	opts.Hub = s.hub
	opts.Fanout = s.fanout
	opts.FanoutTimeout = fo.Timeout
	opts.Clients = s.fanout.Clients
	opts.Peer = &httpapi.PubsubPeer{Deliver: s.hub.Deliver, SubscriberSet: node.Subscribers().Local}
	if ro := cfg.Router; len(ro.Routes) > 0 {
		ro.QueueAddr, ro.NodeID, ro.Registerer, ro.Logger = queueAddr, node.ID(), reg, cfg.Logger
		ro.Timeout = max(ro.Timeout, cfg.HTTP.ForwardTimeout+pubsub.DefaultRouteTimeout/2)
		if s.router, err = pubsub.NewRouter(ro); err != nil {
			return nil, err
		}
		opts.Route = s.router.Enqueue
		s.log.Info("pubsub routes", "routes", fmt.Sprint(ro.Routes))
	}
	h, err := httpapi.NewPubsubHandler(opts)
	if err != nil {
		return nil, err
	}
	if cfg.wrapPubsub != nil {
		h = cfg.wrapPubsub(h)
	}
	return h, nil
}

// closePubsub disconnects the subscribers, tells the other nodes that this
// one has none left, and stops the fan-out. Safe on a partly built pubsub.
func (s *Server) closePubsub() {
	if s.hub != nil {
		s.hub.Close()
		if s.node != nil {
			s.node.Subscribers().Flush()
		}
	}
	if s.fanout != nil {
		s.fanout.Close()
	}
	if s.router != nil {
		s.router.Close()
	}
}

func registerAll(reg prometheus.Registerer, cs []prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
	}
	return nil
}

// peerDirectory is the raft node's gossiped subscriber sets as the
// fan-out sees them.
type peerDirectory struct{ s *cluster.Subscribers }

func (d peerDirectory) SubscriberPeers(topic string) []pubsub.Peer {
	return toPeers(d.s.WithTopic(topic))
}

func (d peerDirectory) Peers() []pubsub.Peer { return toPeers(d.s.Peers()) }

func toPeers(ps []cluster.SubscriberPeer) []pubsub.Peer {
	out := make([]pubsub.Peer, len(ps))
	for i, p := range ps {
		out[i] = pubsub.Peer{ID: p.ID, Addr: p.PubsubAddr}
	}
	return out
}
