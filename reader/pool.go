package reader

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/quorumq/quorumq/api"
	"github.com/quorumq/quorumq/client"
)

// Health tracking of nodes: after n consecutive failures a node is skipped
// for a jittered [d/2, d], d = min(nodeDownMin·2^(n-1), nodeDownMax).
const (
	nodeDownMin = 500 * time.Millisecond
	nodeDownMax = 30 * time.Second
	// statusTimeout bounds one /cluster/status probe.
	statusTimeout = 3 * time.Second
	// minRefreshGap spaces out refreshes asked for by failures.
	minRefreshGap = 500 * time.Millisecond
)

// node is one queue port the reader talks to.
type node struct {
	url        string
	id         string // node id, once learned ("" until then)
	configured bool   // from Config.Addrs: never dropped
	q          *client.Queue

	// guarded by pool.mu
	failures  int
	downUntil time.Time
}

// NodeInfo describes a node the reader knows, for Reader.Nodes.
type NodeInfo struct {
	URL        string
	ID         string
	Leader     bool
	Configured bool
	// Down: recent requests failed; the node is skipped until DownUntil.
	Down      bool
	DownUntil time.Time
}

// pool is the set of nodes and the routing policy.
type pool struct {
	balance  Balance
	discover bool
	opts     client.Options // of the client of each node
	log      *slog.Logger

	mu       sync.Mutex
	nodes    []*node
	leaderID string
	rr       int
	now      func() time.Time

	refreshReq chan struct{}
}

func newPool(addrs []string, balance Balance, discover bool, opts client.Options, log *slog.Logger) (*pool, error) {
	p := &pool{balance: balance, discover: discover, opts: opts, log: log, now: time.Now, refreshReq: make(chan struct{}, 1)}
	for _, a := range addrs {
		u, err := p.normalizeURL(a)
		if err != nil {
			return nil, err
		}
		if p.find(u) != nil {
			continue
		}
		n, err := p.newNode(u)
		if err != nil {
			return nil, err
		}
		n.configured = true
		p.nodes = append(p.nodes, n)
	}
	return p, nil
}

// nodeOptions are the options of the client of each node: cfg's HTTP
// client (else one with cfg.TLS), token and TLS, and one attempt, since
// the pool itself moves between nodes.
func nodeOptions(cfg Config) client.Options {
	o := client.DefaultOptions()
	o.HTTPClient, o.Token, o.TLS, o.MaxAttempts = cfg.HTTPClient, cfg.Token, cfg.TLS, 1
	if o.HTTPClient == nil {
		o.HTTPClient = client.NewHTTPClient(cfg.TLS)
	}
	return o
}

// normalizeURL returns the base URL a client of a has: the scheme comes
// from the options, https:// with TLS, so that a discovered member's
// host:port is dialled as the configured nodes are.
func (p *pool) normalizeURL(a string) (string, error) {
	q, err := client.NewQueue([]string{a}, &p.opts)
	if err != nil {
		return "", err
	}
	return q.Addrs()[0], nil
}

func (p *pool) newNode(u string) (*node, error) {
	q, err := client.NewQueue([]string{u}, &p.opts)
	if err != nil {
		return nil, err
	}
	return &node{url: u, q: q}, nil
}

// find returns the node with base URL u; p.mu held or not yet shared.
func (p *pool) find(u string) *node {
	for _, n := range p.nodes {
		if n.url == u {
			return n
		}
	}
	return nil
}

// pick returns the node for the next request: the leader under
// BalanceLeader when it is known and up, otherwise the next node that is up
// (round robin), otherwise the one that comes back first.
func (p *pool) pick() *node {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.balance == BalanceLeader && p.leaderID != "" {
		for _, n := range p.nodes {
			if n.id == p.leaderID && !now.Before(n.downUntil) {
				return n
			}
		}
	}
	for range p.nodes {
		p.rr = (p.rr + 1) % len(p.nodes)
		if n := p.nodes[p.rr]; !now.Before(n.downUntil) {
			return n
		}
	}
	best := p.nodes[0]
	for _, n := range p.nodes[1:] {
		if n.downUntil.Before(best.downUntil) {
			best = n
		}
	}
	return best
}

// observe records the outcome of a request sent to n with context ctx. A
// node that could not be reached, or answered 503 (no leader, shutting
// down, outcome unknown), is skipped for a while; any other answer, even an
// error, says it is up. ServedBy of a queue request names the node that
// executed it: the leader. The end of ctx itself says nothing about n.
func (p *pool) observe(ctx context.Context, n *node, info *client.CallInfo, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	refresh := false
	p.mu.Lock()
	switch {
	case err == nil || !errors.Is(err, api.ErrUnavailable) && !errors.Is(err, api.ErrOutcomeUnknown):
		n.failures, n.downUntil = 0, time.Time{}
		if err == nil && info != nil && info.ServedBy != "" && info.ServedBy != p.leaderID {
			p.leaderID = info.ServedBy
			refresh = p.byID(p.leaderID) == nil // a leader we have no address for
		}
	default:
		n.markDown(p.now())
		if errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrNotLeader) || n.id != "" && n.id == p.leaderID {
			p.leaderID = ""
		}
		refresh = true
	}
	p.mu.Unlock()
	if refresh {
		p.requestRefresh()
	}
}

// markDown counts a failure of n and skips it for a jittered while; p.mu
// held.
func (n *node) markDown(now time.Time) {
	n.failures++
	d := min(nodeDownMin<<min(n.failures-1, 10), nodeDownMax)
	n.downUntil = now.Add(d/2 + rand.N(d/2+1))
}

// byID returns the node with id; p.mu held.
func (p *pool) byID(id string) *node {
	for _, n := range p.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (p *pool) requestRefresh() {
	select {
	case p.refreshReq <- struct{}{}:
	default:
	}
}

// refreshLoop probes the nodes every interval, and soon after a failure,
// until ctx ends.
func (p *pool) refreshLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.refreshReq:
			if wait := minRefreshGap - time.Since(last); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		p.refresh(ctx)
		last = time.Now()
	}
}

// refresh asks every known node for /cluster/status, concurrently: a node
// that answers is up and tells its id; the freshest answer (highest term,
// then commit index) gives the members and the leader. Members that are
// alive and advertise a queue address are added (discovery); discovered
// nodes that are no longer members, or have left, are dropped.
func (p *pool) refresh(ctx context.Context) {
	p.mu.Lock()
	nodes := slices.Clone(p.nodes)
	p.mu.Unlock()
	type answer struct {
		n   *node
		st  *api.Status
		err error
	}
	answers := make([]answer, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, statusTimeout)
			defer cancel()
			st, err := n.q.Status(cctx)
			answers[i] = answer{n, st, err}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	var best *api.Status
	leader := ""
	var leaderTerm uint64
	for _, a := range answers {
		if a.err != nil {
			if !a.n.down(p.now()) {
				a.n.markDown(p.now())
			}
			continue
		}
		a.n.failures, a.n.downUntil = 0, time.Time{}
		if a.st.NodeID != "" {
			a.n.id = a.st.NodeID
		}
		if best == nil || a.st.Term > best.Term || a.st.Term == best.Term && a.st.CommitIndex > best.CommitIndex {
			best = a.st
		}
		if a.st.State == "leader" && a.st.Term >= leaderTerm {
			leader, leaderTerm = a.st.NodeID, a.st.Term
		}
	}
	if best == nil {
		p.log.Debug("no node answered /cluster/status", "nodes", len(nodes))
		return
	}
	if leader == "" {
		leader = best.LeaderID
	}
	if leader != p.leaderID {
		p.log.Debug("leader", "id", leader, "was", p.leaderID)
		p.leaderID = leader
	}
	if !p.discover {
		return
	}
	members := map[string]api.Member{}
	for _, m := range best.Members {
		members[m.ID] = m
	}
	// Drop discovered nodes that left or are no longer members.
	kept := p.nodes[:0]
	for _, n := range p.nodes {
		m, ok := members[n.id]
		if !n.configured && n.id != "" && (!ok || m.Status == "left") {
			p.log.Info("node removed", "url", n.url, "id", n.id)
			continue
		}
		kept = append(kept, n)
	}
	clear(p.nodes[len(kept):])
	p.nodes = kept
	// Add members we do not know yet.
	for _, m := range best.Members {
		if m.QueueAddr == "" || m.Status == "left" || m.Status == "dead" || p.byID(m.ID) != nil {
			continue
		}
		u, err := p.normalizeURL(m.QueueAddr)
		if err != nil || p.find(u) != nil {
			continue
		}
		n, err := p.newNode(u)
		if err != nil {
			continue
		}
		n.id = m.ID
		p.nodes = append(p.nodes, n)
		p.log.Info("node discovered", "url", u, "id", m.ID)
	}
}

func (n *node) down(now time.Time) bool { return now.Before(n.downUntil) }

// info lists the nodes.
func (p *pool) info() []NodeInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := make([]NodeInfo, len(p.nodes))
	for i, n := range p.nodes {
		out[i] = NodeInfo{URL: n.url, ID: n.id, Leader: n.id != "" && n.id == p.leaderID, Configured: n.configured, Down: n.down(now), DownUntil: n.downUntil}
	}
	return out
}

// leader returns the known leader's id ("" if none).
func (p *pool) leader() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaderID
}
