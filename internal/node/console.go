package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/httpapi"
	"github.com/quorumq/quorumq/pubsub"
)

// pubsubNodes lists every node's pubsub for GET /pubsub/topics: this
// node's from its hub, each other live member's from its
// api.PathClients and api.PathPubsubStats, asked at once, each within
// the fan-out timeout. A member that does not answer, or that gossip does
// not see alive, is listed with the reason; one that left is not.
func (s *Server) pubsubNodes(ctx context.Context) ([]httpapi.PubsubNode, error) {
	if s.hub == nil {
		return nil, api.ErrUnavailable.Errorf("pubsub is starting")
	}
	self := s.node.ID()
	out := []httpapi.PubsubNode{{ID: self, Clients: s.hub.Clients(), Stats: s.hub.Stats()}}
	var others []api.Member
	var down []httpapi.PubsubNode
	for _, m := range s.node.Status().Members {
		switch {
		case m.ID == self || m.Status == api.MemberLeft:
		case m.Status != api.MemberAlive:
			// Listed, not asked: its subscribers are unknown.
			down = append(down, httpapi.PubsubNode{ID: m.ID, Err: fmt.Errorf("%s is %s", m.ID, m.Status)})
		case m.PubsubAddr != "":
			others = append(others, m)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Fanout.Timeout)
	defer cancel()
	nodes := make([]httpapi.PubsubNode, len(others))
	var wg sync.WaitGroup
	for i, m := range others {
		wg.Go(func() { nodes[i] = s.remotePubsub(ctx, m) })
	}
	wg.Wait()
	return slices.Concat(out, nodes, down), nil
}

// remotePubsub asks member m for its subscribers and counters.
func (s *Server) remotePubsub(ctx context.Context, m api.Member) httpapi.PubsubNode {
	n := httpapi.PubsubNode{ID: m.ID}
	b, err := s.peer.Clients(ctx, m.PubsubAddr)
	if err == nil {
		n.Clients, err = pubsub.DecodeClients(b)
	}
	if err == nil {
		b, err = s.peer.PubsubStats(ctx, m.PubsubAddr)
	}
	if err == nil {
		var st struct {
			Kicked  uint64 `json:"kicked_clients"`
			Dropped uint64 `json:"remote_messages_dropped"`
		}
		if err = json.Unmarshal(b, &st); err == nil {
			n.Stats.KickedClients, n.Stats.RemoteDropped = st.Kicked, st.Dropped
		}
	}
	if err != nil {
		n.Clients, n.Err = nil, fmt.Errorf("no answer from %s: %w", m.ID, err)
	}
	return n
}

// Analytics is the live view of Config.AnalyticsRedis that the node
// serves on GET /analytics.
type Analytics interface {
	httpapi.Analytics
	// Run keeps what the view samples over time (the moments' history)
	// until ctx ends.
	Run(ctx context.Context)
	Close() error
}

// startAnalytics opens the live analytics of Config.AnalyticsRedis, when
// set, and runs its sampling until the node stops.
func (s *Server) startAnalytics(cfg Config) error {
	if cfg.AnalyticsRedis == "" {
		return nil
	}
	live, err := cfg.OpenAnalytics(cfg.AnalyticsRedis, cfg.Logger.With("component", "analytics"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		live.Run(ctx)
	}()
	s.analytics = live
	s.stopAnalytics = func() {
		cancel()
		<-done
		live.Close()
	}
	s.log.Info("analytics", "redis", cfg.AnalyticsRedis)
	return nil
}
