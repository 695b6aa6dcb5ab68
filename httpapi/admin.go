package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/internal/auth"
)

// leaveTimeout bounds POST /cluster/leave.
const leaveTimeout = 30 * time.Second

// adminAPI serves the admin endpoints, on both ports.
type adminAPI struct {
	o       *Options
	cluster Cluster
	// pubsubNodes is Options.PubsubNodes; analyticsSrc Options.Analytics.
	pubsubNodes  func(ctx context.Context) ([]PubsubNode, error)
	analyticsSrc Analytics
	// metrics answers /metrics: promhttp over the Gatherer.
	metrics func(w http.ResponseWriter, r *http.Request) error
}

func newAdminAPI(o *Options) *adminAPI {
	prom := promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
	return &adminAPI{
		o:            o,
		cluster:      o.Cluster,
		pubsubNodes:  o.PubsubNodes,
		analyticsSrc: o.Analytics,
		metrics:      func(w http.ResponseWriter, r *http.Request) error { prom.ServeHTTP(w, r); return nil },
	}
}

// routes lists the admin endpoints: exact paths, reads take GET and HEAD.
// /healthz and /readyz are open to anyone, for load balancers and
// orchestrators; the other reads need a token (any role); every change
// needs the admin role (and a route added here for a membership change
// must say so: needs: roleAccess(auth.Admin)).
func (a *adminAPI) routes() []route {
	monitor, admin := roleAccess(auth.Monitor), roleAccess(auth.Admin)
	return append([]route{
		{name: "healthz", path: "/healthz", methods: getOnly, style: adminStyle, handle: a.healthz},
		{name: "readyz", path: "/readyz", methods: getOnly, style: adminStyle, handle: a.readyz},
		{name: "metrics", path: "/metrics", methods: getOnly, style: adminStyle, needs: monitor, handle: a.serveMetrics},
		{name: "cluster_status", path: "/cluster/status", methods: getOnly, style: adminStyle, needs: monitor, handle: a.clusterStatus},
		{name: "cluster_leave", path: "/cluster/leave", methods: postOnly, style: adminStyle, needs: admin, handle: a.leave},
	}, slices.Concat(a.consoleRoutes(monitor), a.backupRoutes(a.o))...)
}

// healthz is GET /healthz: 200 while the process serves.
func (a *adminAPI) healthz(*request) (reply, error) {
	return reply{body: []byte("ok\n")}, nil
}

// readyz is GET /readyz: 200 once the node knows a leader and has applied
// up to its commit index, else 503.
func (a *adminAPI) readyz(*request) (reply, error) {
	if !a.cluster.Ready() {
		return reply{}, api.ErrUnavailable.Errorf("not ready")
	}
	return reply{body: []byte("ready\n")}, nil
}

// clusterStatus is GET /cluster/status (and the node-to-node
// api.PathStatus): this node's view of the cluster.
func (a *adminAPI) clusterStatus(*request) (reply, error) {
	st := a.cluster.Status()
	if st.Members == nil {
		st.Members = []api.Member{}
	}
	body, err := json.Marshal(st)
	if err != nil {
		return reply{}, err
	}
	return reply{contentType: typeJSON, body: append(body, '\n')}, nil
}

// serveMetrics is GET /metrics: the Gatherer in Prometheus text format.
func (a *adminAPI) serveMetrics(*request) (reply, error) {
	return reply{serve: a.metrics}, nil
}

// leave is POST /cluster/leave: this node leaves the cluster for good. The
// process exit that follows is the caller's business.
func (a *adminAPI) leave(r *request) (reply, error) {
	l, ok := a.cluster.(Leaver)
	if !ok {
		return reply{}, api.ErrNotSupported.Errorf("leave is not supported by this node yet")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), leaveTimeout)
	defer cancel()
	if err := l.Leave(ctx); err != nil {
		return reply{}, err
	}
	return reply{body: []byte("left the cluster\n")}, nil
}
