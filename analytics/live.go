package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// LiveOptions configures a Live view of the aggregates in one Redis.
// Start from DefaultLiveOptions.
type LiveOptions struct {
	// RedisURL is redis://[:password@]host:port/db or host:port.
	// Required.
	RedisURL string
	// MomentsKeys are the moments hashes shown; empty: every hash with
	// the fields n, mean, m2, m3 and m4 that discovery finds, at most
	// MaxFound.
	MomentsKeys []string
	// HistogramKeys are the histograms shown; empty: every hash with a
	// layout (KEY:layout) that discovery finds, at most MaxFound.
	HistogramKeys []string
	// GraphPrefix starts the click graph's node keys; empty: the prefix
	// (up to the first ":") most sorted sets found share, else
	// DefaultGraphPrefix.
	GraphPrefix string
	// MaxFound bounds the moments and the histograms discovered. Default
	// 16.
	MaxFound int
	// MaxScan bounds the keys discovery looks at (SCAN, by type), and the
	// nodes looked at for the links into one node (the graph stores each
	// node's outgoing links only). Default 10000.
	MaxScan int
	// DiscoverEvery is how long what discovery found is used before it
	// looks again. Default 10s.
	DiscoverEvery time.Duration
	// Every is how often Run samples the moments for their history.
	// Default 5s.
	Every time.Duration
	// History is the samples kept per moments key. Default 120 (ten
	// minutes at 5s).
	History int
	// Timeout bounds each sample and each Report. Default 5s.
	Timeout time.Duration
	// CacheFor is how long Report reuses a report for the same query:
	// dashboards poll every few seconds, and the graph's top edges read
	// the links of every node. Default 2s; 0: never.
	CacheFor time.Duration
	// Now stamps the samples. Default time.Now.
	Now func() time.Time
	// Logger receives the failed samples at debug level. Default
	// slog.Default().
	Logger *slog.Logger
}

// DefaultLiveOptions returns every default of LiveOptions; RedisURL is
// left to the caller.
func DefaultLiveOptions() LiveOptions {
	return LiveOptions{
		MaxFound: 16, MaxScan: 10000, DiscoverEvery: 10 * time.Second,
		Every: 5 * time.Second, History: 120, Timeout: 5 * time.Second, CacheFor: 2 * time.Second,
		Now: time.Now, Logger: slog.Default(),
	}
}

// MomentsSample is one point of a moments key's history.
type MomentsSample struct {
	TimeMS         int64    `json:"time_ms"`
	N              int64    `json:"n"`
	Mean           *float64 `json:"mean"`
	Variance       *float64 `json:"variance"`
	Skewness       *float64 `json:"skewness"`
	ExcessKurtosis *float64 `json:"excess_kurtosis"`
}

// LiveMoments is a moments report with its recent history, oldest first.
type LiveMoments struct {
	MomentsReport
	History []MomentsSample `json:"history"`
}

// GraphNode is a node of a LiveGraph: Weight is the sum of the weights
// of its edges shown.
type GraphNode struct {
	ID     string  `json:"id"`
	Weight float64 `json:"weight"`
}

// LiveGraph is the part of the click graph a LiveReport shows: the
// heaviest edges of the whole graph, or with Node the strongest links
// out of and into Node.
type LiveGraph struct {
	Prefix string `json:"prefix"`
	// NodeCount is the number of nodes with links.
	NodeCount int `json:"node_count"`
	// Node is the selected node, "" for the whole graph.
	Node  string         `json:"node,omitempty"`
	Nodes []GraphNode    `json:"nodes"`
	Edges []WeightedEdge `json:"edges"`
	// Partial: the graph has more than MaxScan nodes and the links into
	// Node were looked for among the first MaxScan only.
	Partial bool `json:"partial,omitempty"`
}

// LiveReport is what `quorumq analyze show` prints for every aggregate,
// as GET /analytics answers it.
type LiveReport struct {
	TimeMS     int64            `json:"time_ms"`
	Moments    []LiveMoments    `json:"moments"`
	Histograms []*HistogramData `json:"histograms"`
	Graph      LiveGraph        `json:"graph"`
}

// Live reads the aggregates of one Redis for a dashboard and keeps a
// short history of the moments, sampled by Run.
type Live struct {
	o   LiveOptions
	rdb *redis.Client

	mu      sync.Mutex
	history map[string][]MomentsSample // each at most o.History, oldest first
	// cache holds recent reports by query, at most maxCached.
	cache map[liveQuery]cachedReport
	// found is what discovery found last (at found.at).
	found aggregates
}

// aggregates names the aggregates a report shows.
type aggregates struct {
	moments, histograms []string
	prefix              string
	at                  time.Time
}

// maxCached bounds the reports cached: a dashboard asks a few queries.
const maxCached = 32

type liveQuery struct {
	node string
	top  int
}

type cachedReport struct {
	rep LiveReport
	at  time.Time
}

// NewLive checks o and returns a Live with its Redis client (no
// connection is made yet). Close releases it.
func NewLive(o LiveOptions) (*Live, error) {
	switch {
	case o.RedisURL == "":
		return nil, invalid(errors.New("analytics: no Redis address"))
	case o.MaxFound < 1 || o.MaxScan < 1 || o.History < 1:
		return nil, invalid(fmt.Errorf("analytics: MaxFound %d, MaxScan %d and History %d must be positive", o.MaxFound, o.MaxScan, o.History))
	case o.Every <= 0 || o.Timeout <= 0 || o.CacheFor < 0 || o.DiscoverEvery < 0:
		return nil, invalid(fmt.Errorf("analytics: Every %v and Timeout %v must be positive, CacheFor %v and DiscoverEvery %v not negative",
			o.Every, o.Timeout, o.CacheFor, o.DiscoverEvery))
	case o.Now == nil || o.Logger == nil:
		return nil, invalid(errors.New("analytics: Now and Logger are required"))
	}
	rdb, err := Aggregate{RedisURL: o.RedisURL}.client(o.Logger)
	if err != nil {
		return nil, err
	}
	return &Live{o: o, rdb: rdb, history: map[string][]MomentsSample{}, cache: map[liveQuery]cachedReport{}}, nil
}

// Close closes the Redis client.
func (l *Live) Close() error { return l.rdb.Close() }

// Run samples the moments every Every until ctx ends. A failed sample is
// logged and skipped: the history shows a gap.
func (l *Live) Run(ctx context.Context) {
	t := time.NewTicker(l.o.Every)
	defer t.Stop()
	for {
		if err := l.Sample(ctx); err != nil && ctx.Err() == nil {
			l.o.Logger.Debug("analytics sample failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample reads every moments key once and appends it to its history.
func (l *Live) Sample(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	agg, err := l.aggregates(ctx)
	if err != nil {
		return err
	}
	now := l.o.Now().UnixMilli()
	var errs []error
	for _, key := range agg.moments {
		r, err := ReadMomentsReport(ctx, l.rdb, key)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s := MomentsSample{TimeMS: now, N: r.N, Mean: r.Mean, Variance: r.Variance, Skewness: r.Skewness, ExcessKurtosis: r.ExcessKurtosis}
		l.mu.Lock()
		h := append(l.history[key], s)
		if len(h) > l.o.History {
			h = slices.Delete(h, 0, len(h)-l.o.History)
		}
		l.history[key] = h
		l.mu.Unlock()
	}
	l.mu.Lock()
	for key := range l.history {
		// Keys no longer found (reset) take no room.
		if !slices.Contains(agg.moments, key) {
			delete(l.history, key)
		}
	}
	l.mu.Unlock()
	return errors.Join(errs...)
}

// Report reads every aggregate: the moments with their history, the
// histograms, and the top edges of the graph, or with node the top
// strongest links out of and into node. A report of the same query made
// within CacheFor is answered again (its slices are shared: do not
// change them).
func (l *Live) Report(ctx context.Context, node string, top int) (LiveReport, error) {
	if top < 1 {
		return LiveReport{}, invalid(fmt.Errorf("top %d: want at least 1", top))
	}
	q, now := liveQuery{node, top}, l.o.Now()
	l.mu.Lock()
	c, ok := l.cache[q]
	l.mu.Unlock()
	if ok && now.Sub(c.at) < l.o.CacheFor {
		return c.rep, nil
	}
	rep, err := l.read(ctx, node, top)
	if err == nil && l.o.CacheFor > 0 {
		l.mu.Lock()
		if len(l.cache) >= maxCached {
			clear(l.cache)
		}
		l.cache[q] = cachedReport{rep: rep, at: now}
		l.mu.Unlock()
	}
	return rep, err
}

// read makes the report of Report.
func (l *Live) read(ctx context.Context, node string, top int) (LiveReport, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.Timeout)
	defer cancel()
	rep := LiveReport{TimeMS: l.o.Now().UnixMilli(), Moments: []LiveMoments{}, Histograms: []*HistogramData{}}
	agg, err := l.aggregates(ctx)
	if err != nil {
		return rep, err
	}
	for _, key := range agg.moments {
		r, err := ReadMomentsReport(ctx, l.rdb, key)
		if err != nil {
			return rep, err
		}
		l.mu.Lock()
		h := slices.Clone(l.history[key])
		l.mu.Unlock()
		if h == nil {
			h = []MomentsSample{}
		}
		rep.Moments = append(rep.Moments, LiveMoments{MomentsReport: r, History: h})
	}
	for _, key := range agg.histograms {
		d, err := ReadHistogram(ctx, l.rdb, key)
		if err != nil {
			return rep, err
		}
		rep.Histograms = append(rep.Histograms, d)
	}
	rep.Graph, err = l.graph(ctx, agg.prefix, node, top)
	return rep, err
}

// aggregates returns the aggregates to show: those LiveOptions names,
// the others as discovery last found them (looking again after
// DiscoverEvery).
func (l *Live) aggregates(ctx context.Context) (aggregates, error) {
	now := l.o.Now()
	l.mu.Lock()
	found := l.found
	l.mu.Unlock()
	if found.at.IsZero() || now.Sub(found.at) >= l.o.DiscoverEvery {
		var err error
		if found, err = l.discover(ctx); err != nil {
			return found, err
		}
		found.at = now
		l.mu.Lock()
		l.found = found
		l.mu.Unlock()
	}
	if len(l.o.MomentsKeys) > 0 {
		found.moments = l.o.MomentsKeys
	}
	if len(l.o.HistogramKeys) > 0 {
		found.histograms = l.o.HistogramKeys
	}
	if l.o.GraphPrefix != "" {
		found.prefix = l.o.GraphPrefix
	}
	return found, nil
}

// discover finds the aggregates among the first MaxScan hashes and the
// first MaxScan sorted sets of the keyspace (SCAN by type, so a large
// graph does not hide the hashes): the moments hashes (n, mean, m2, m3,
// m4), the histograms (a KEY:layout hash) and the graph's prefix (what
// most node keys start with, up to the first ":").
func (l *Live) discover(ctx context.Context) (aggregates, error) {
	var agg aggregates
	hashes, err := l.scanType(ctx, "hash")
	if err != nil {
		return agg, err
	}
	var candidates []string
	for _, k := range hashes {
		if h, ok := strings.CutSuffix(k, LayoutSuffix); ok {
			if h != "" && len(agg.histograms) < l.o.MaxFound {
				agg.histograms = append(agg.histograms, h)
			}
		} else {
			candidates = append(candidates, k)
		}
	}
	cmds := make([]*redis.SliceCmd, len(candidates))
	if len(candidates) > 0 {
		_, err = l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range candidates {
				cmds[i] = p.HMGet(ctx, k, momentsFields...)
			}
			return nil
		})
		if err != nil {
			return agg, err
		}
	}
	for i, cmd := range cmds {
		if len(agg.moments) < l.o.MaxFound && !slices.Contains(cmd.Val(), nil) {
			agg.moments = append(agg.moments, candidates[i])
		}
	}
	zsets, err := l.scanType(ctx, "zset")
	if err != nil {
		return agg, err
	}
	counts := map[string]int{}
	for _, k := range zsets {
		if p, _, ok := strings.Cut(k, ":"); ok && !strings.HasPrefix(k, SeenPrefix) {
			counts[p+":"]++
		}
	}
	agg.prefix = DefaultGraphPrefix
	for p, n := range counts {
		if best := counts[agg.prefix]; n > best || n == best && p < agg.prefix {
			agg.prefix = p
		}
	}
	slices.Sort(agg.histograms)
	slices.Sort(agg.moments)
	return agg, nil
}

// scanType returns the keys of type typ among the first MaxScan keys of
// the keyspace (about: SCAN looks at a thousand a call).
func (l *Live) scanType(ctx context.Context, typ string) ([]string, error) {
	const count = 1000
	var keys []string
	var cursor uint64
	for looked := 0; looked < l.o.MaxScan; looked += count {
		page, next, err := l.rdb.ScanType(ctx, cursor, "*", count, typ).Result()
		if err != nil {
			return nil, err
		}
		keys = append(keys, page...)
		if cursor = next; cursor == 0 {
			break
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// graph reads the part of the click graph a report shows.
func (l *Live) graph(ctx context.Context, prefix, node string, top int) (LiveGraph, error) {
	g := NewGraph(l.rdb, prefix, false)
	out := LiveGraph{Prefix: g.Prefix(), Node: node}
	nodes, err := g.Nodes(ctx)
	if err != nil {
		return out, err
	}
	out.NodeCount = len(nodes)
	if node == "" {
		out.Edges, err = g.TopEdges(ctx, top)
	} else {
		out.Edges, out.Partial, err = l.linksOf(ctx, g, nodes, node, top)
	}
	if err != nil {
		return out, err
	}
	if out.Edges == nil {
		out.Edges = []WeightedEdge{}
	}
	weights := map[string]float64{}
	if node != "" {
		weights[node] = 0 // shown even without links
	}
	for _, e := range out.Edges {
		weights[e.From] += e.Weight
		weights[e.To] += e.Weight
	}
	out.Nodes = make([]GraphNode, 0, len(weights))
	for id, w := range weights {
		out.Nodes = append(out.Nodes, GraphNode{ID: id, Weight: w})
	}
	slices.SortFunc(out.Nodes, func(a, b GraphNode) int {
		return cmp.Or(cmp.Compare(b.Weight, a.Weight), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// linksOf returns node's top strongest links out, then its top strongest
// links in, found among the first MaxScan nodes (partial when there are
// more).
func (l *Live) linksOf(ctx context.Context, g *Graph, nodes []string, node string, top int) ([]WeightedEdge, bool, error) {
	outs, err := g.Links(ctx, node, top)
	if err != nil {
		return nil, false, err
	}
	edges := make([]WeightedEdge, 0, len(outs))
	for _, o := range outs {
		edges = append(edges, WeightedEdge{From: node, To: o.Node, Weight: o.Weight})
	}
	partial := len(nodes) > l.o.MaxScan
	nodes = nodes[:min(len(nodes), l.o.MaxScan)]
	var ins []WeightedEdge
	for _, c := range chunks(len(nodes), 500) {
		cmds := make([]*redis.FloatCmd, 0, c[1]-c[0])
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, from := range nodes[c[0]:c[1]] {
				cmds = append(cmds, p.ZScore(ctx, g.Key(from), node))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, false, err
		}
		for i, cmd := range cmds {
			if w, err := cmd.Result(); err == nil && nodes[c[0]+i] != node {
				ins = append(ins, WeightedEdge{From: nodes[c[0]+i], To: node, Weight: w})
			}
		}
	}
	slices.SortFunc(ins, compareEdges)
	return append(edges, ins[:min(len(ins), top)]...), partial, nil
}
