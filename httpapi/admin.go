package httpapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/quorumq/quorumq/api"
)

// leaveTimeout bounds POST /cluster/leave.
const leaveTimeout = 30 * time.Second

// healthz is GET /healthz: 200 while the process serves.
func (s *server) healthz(*request) (reply, error) {
	return reply{body: []byte("ok\n")}, nil
}

// readyz is GET /readyz: 200 once the node knows a leader and has applied
// up to its commit index, else 503.
func (s *server) readyz(*request) (reply, error) {
	if s.o.Cluster == nil || !s.o.Cluster.Ready() {
		return reply{}, api.ErrUnavailable.Errorf("not ready")
	}
	return reply{body: []byte("ready\n")}, nil
}

// clusterStatus is GET /cluster/status: this node's view of the cluster.
func (s *server) clusterStatus(*request) (reply, error) {
	if s.o.Cluster == nil {
		return reply{}, api.ErrUnavailable.Errorf("cluster status is not available on this port")
	}
	st := s.o.Cluster.Status()
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
func (s *server) serveMetrics(*request) (reply, error) {
	return reply{delegate: s.promHandler}, nil
}

// leave is POST /cluster/leave: this node leaves the cluster for good. The
// process exit that follows is the caller's business.
func (s *server) leave(r *request) (reply, error) {
	l, ok := s.o.Cluster.(Leaver)
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
