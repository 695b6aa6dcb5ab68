package httpapi

import (
	"errors"
	"net/http"
	"slices"
)

// NewQueueHandler returns the queue port's handler: simplequeue's routes
// and quorumq's extensions, the admin endpoints, and the node-to-node
// status (api.PathStatus). Options.Queue and Options.Cluster are
// required; the options are checked, not completed: start from
// DefaultOptions.
func NewQueueHandler(o Options) (http.Handler, error) {
	var required []error
	if o.Queue == nil {
		required = append(required, errors.New("Options.Queue is required"))
	}
	if o.Cluster == nil {
		required = append(required, errors.New("Options.Cluster is required"))
	}
	if err := o.validate(required...); err != nil {
		return nil, err
	}
	e := newEngine(&o)
	q := &queueAPI{o: o, m: e.m, log: e.log}
	a := newAdminAPI(&o)
	e.routes = slices.Concat(q.routes(), a.routes(), a.peerRoutes())
	e.observeLatency(o.Registerer, e.log)
	e.fwd = newForwarder(o.Cluster, &o, e.m, e.log)
	q.batch = e.fwd.batch
	q.handovers = newHandovers(&o, e.fwd, e.m, e.log)
	e.fwd.handovers = q.handovers
	return e, nil
}

// NewPubsubHandler returns the pubsub port's handler: bitly pubsub's API
// (spec section 3) with topic=NAME; with Options.Cluster, the admin
// endpoints; with Options.Peer, the node-to-node routes under /internal/.
// Options.Hub is required; the options are checked, not completed: start
// from DefaultOptions.
//
// topic=NAME on /pub and /sub ([A-Za-z0-9._-]{1,64}; absent: the topic
// "default") keeps topics apart; 400 for an invalid name. /stats and
// /clients cover every topic. With a Fanout, /pub reaches the subscribers
// of every node and /stats adds the remote counters after the reference's
// lines and keys; with Route set, /pub enqueues into the route's queue
// before publishing (route mode).
func NewPubsubHandler(o Options) (http.Handler, error) {
	var required []error
	if o.Hub == nil {
		required = append(required, errors.New("Options.Hub is required"))
	}
	if err := o.validate(required...); err != nil {
		return nil, err
	}
	e := newEngine(&o)
	p := &pubsubAPI{o: o, log: e.log}
	var admin []route
	if o.Cluster != nil {
		admin = newAdminAPI(&o).routes()
	}
	// The admin routes come first: bitly's /pub glob would take
	// /pubsub/topics for a publish.
	e.routes = slices.Concat(admin, p.routes(), p.peerRoutes())
	e.observeLatency(o.Registerer, e.log)
	return e, nil
}

func newEngine(o *Options) *engine {
	log := o.Logger.With("component", "httpapi")
	return &engine{cluster: o.Cluster, m: newMetrics(o.Registerer, log), log: log,
		auth: o.Auth, internalAuth: o.InternalAuth, nodeID: o.NodeID}
}
