package httpapi

import (
	"strconv"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/pubsub"
)

// The node-to-node routes, all under api.PathInternal and all defined
// here. They are not bitly's API and none matches one of its route globs.
// Each is served on the port where its callers reach a node: the status
// (GET api.PathStatus, the node's Status as /cluster/status answers it,
// read by the other nodes for promotion and leave) on the queue port; the
// pubsub ones, described on PubsubPeer, on the pubsub port, beside the
// subscribers they concern.

// peerRoutes are the queue port's node-to-node routes.
func (a *adminAPI) peerRoutes() []route {
	return []route{
		{name: "internal_status", path: api.PathStatus, methods: getOnly, style: adminStyle, handle: a.clusterStatus},
	}
}

// peerRoutes are the pubsub port's node-to-node routes; none without
// Options.Peer, and no /internal/subs without its SubscriberSet.
func (p *pubsubAPI) peerRoutes() []route {
	if p.o.Peer == nil {
		return nil
	}
	rs := []route{
		{name: "internal_deliver", path: api.PathDeliver, methods: postOnly, style: peerStyle,
			maxBody: 2*p.o.MaxBodySize + 1<<20, bodyName: "delivery body", handle: p.deliver},
		{name: "internal_clients", path: api.PathClients, methods: getOnly, style: peerStyle, handle: p.localClients},
		{name: "internal_pubsub_stats", path: api.PathPubsubStats, methods: getOnly, style: peerStyle, handle: p.pubsubStatsPeer},
	}
	if p.o.Peer.SubscriberSet != nil {
		rs = append(rs, route{name: "internal_subs", path: api.PathSubs, methods: getOnly, style: peerStyle, handle: p.subscriberSet})
	}
	return rs
}

// deliver is POST api.PathDeliver. With api.HeaderDeliverWithin, a
// delivery whose time is up once its body is read is refused (503) and
// not delivered: its sender has stopped waiting for the answer and counts
// it as failed, so this node must not count it as received.
func (p *pubsubAPI) deliver(r *request) (reply, error) {
	arrived := time.Now()
	if r.Header.Get(api.HeaderHop) == "" {
		return reply{}, api.ErrBadRequest.Errorf("%s is for other nodes: missing %s (publish with /pub)", api.PathDeliver, api.HeaderHop)
	}
	topic, err := topicParam(r.p)
	if err != nil {
		return reply{}, err
	}
	var within time.Duration
	if v := r.Header.Get(api.HeaderDeliverWithin); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return reply{}, api.ErrBadRequest.Errorf("%s: %q is not a positive number of milliseconds", api.HeaderDeliverWithin, v)
		}
		within = time.Duration(ms) * time.Millisecond
	}
	body, err := r.body()
	if err != nil {
		return reply{}, err
	}
	records, err := pubsub.DecodeDelivery(body)
	if err != nil {
		return reply{}, api.ErrBadRequest.Errorf("%v", err)
	}
	if late := time.Since(arrived); within > 0 && late >= within {
		return reply{}, api.ErrUnavailable.Errorf("delivery not made: its %v were up after %v (the sender has stopped waiting)", within, late.Round(time.Millisecond))
	}
	out := make([]byte, 0, 4*len(records))
	for _, msgs := range records {
		out = strconv.AppendInt(out, int64(p.o.Peer.Deliver(topic, msgs)), 10)
		out = append(out, '\n')
	}
	return reply{contentType: typeText, body: out}, nil
}

// subscriberSet is GET api.PathSubs.
func (p *pubsubAPI) subscriberSet(*request) (reply, error) {
	return reply{contentType: "application/octet-stream", body: p.o.Peer.SubscriberSet()}, nil
}

// localClients is GET api.PathClients.
func (p *pubsubAPI) localClients(*request) (reply, error) {
	return reply{contentType: typeJSON, body: pubsub.EncodeClients(p.o.Hub.Clients())}, nil
}
