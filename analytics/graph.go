package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Direct is the node name of a click without a referrer: the 1.usa.gov
// stream itself writes "direct" for those, and an empty or missing r is
// normalised to it.
const Direct = "direct"

// Edge is one click: from the referrer to the target.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// ErrNotClick is returned by ParseClick for records that are not clicks:
// heartbeats and records without a target url.
var ErrNotClick = errors.New("analytics: not a click record")

// ParseClick reads one 1.usa.gov record (a JSON object) and returns its
// edge: the referrer r to the long url u. Normalisation: r and u are used
// as they are, byte for byte (URLs are case-sensitive, and the stream
// already writes them consistently), except that an empty or missing r is
// Direct. A record without a non-empty u, such as the stream's heartbeats
// {"_heartbeat_": T}, is not a click and gives ErrNotClick; text that is
// not a JSON object is an error too.
func ParseClick(record []byte) (Edge, error) {
	var rec struct {
		R *string `json:"r"`
		U *string `json:"u"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(record), &rec); err != nil {
		return Edge{}, fmt.Errorf("analytics: click record: %w", err)
	}
	if rec.U == nil || *rec.U == "" {
		return Edge{}, ErrNotClick
	}
	e := Edge{From: Direct, To: *rec.U}
	if rec.R != nil && *rec.R != "" {
		e.From = *rec.R
	}
	return e, nil
}

// graphScript adds the (increment, member) pairs of its arguments to the
// sorted sets KEYS[1..] (one pair per key, in order) with ZINCRBY.
var graphScript = redis.NewScript(dedupPrelude + `
for i = 1, #KEYS do
  redis.call('ZINCRBY', KEYS[i], ARGV[base + 2 * (i - 1)], ARGV[base + 2 * (i - 1) + 1])
end
return {'ok'}
`)

// Graph is a weighted graph in Redis: node X's links are the sorted set
// Prefix+X, whose members are the nodes X links to and whose scores are
// the weights (the number of clicks). Undirected graphs also count every
// click in the target's set, so both sets agree; a self-loop (a page that
// refers to itself) is counted once.
type Graph struct {
	rdb        redis.Cmdable
	prefix     string
	undirected bool
	// DedupWindow > 0 makes AddBatch skip the ids it added within the
	// window (see the package documentation). 0: every item is added.
	DedupWindow time.Duration
}

// NewGraph returns the graph stored under prefix.
func NewGraph(rdb redis.Cmdable, prefix string, undirected bool) *Graph {
	return &Graph{rdb: rdb, prefix: prefix, undirected: undirected}
}

// Prefix returns the prefix of the node keys.
func (g *Graph) Prefix() string { return g.prefix }

// Key returns the sorted set of node's links.
func (g *Graph) Key(node string) string { return g.prefix + node }

// increments returns the weight to add per (from, to) pair for the edges
// whose keep flag is set (all when keep is nil), in order of first
// appearance.
func (g *Graph) increments(edges []Edge, keep []bool) (map[Edge]int64, []Edge) {
	counts := map[Edge]int64{}
	var order []Edge
	add := func(e Edge) {
		if counts[e] == 0 {
			order = append(order, e)
		}
		counts[e]++
	}
	for i, e := range edges {
		if keep != nil && !keep[i] {
			continue
		}
		add(e)
		if g.undirected && e.From != e.To {
			add(Edge{From: e.To, To: e.From})
		}
	}
	return counts, order
}

// Add counts one click per edge (ZINCRBY prefix+from 1 to, and the reverse
// when undirected), one ZINCRBY per distinct pair, in one MULTI/EXEC
// pipeline.
func (g *Graph) Add(ctx context.Context, edges []Edge) error {
	counts, order := g.increments(edges, nil)
	if len(order) == 0 {
		return nil
	}
	_, err := g.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range order {
			p.ZIncrBy(ctx, g.Key(e.From), float64(counts[e]), e.To)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("analytics: adding to graph %s: %w", g.prefix, err)
	}
	return nil
}

// AddBatch counts edges[i] for message ids[i] in one script call. With a
// DedupWindow, items whose id was added within the window (or repeats
// within the batch) are left out; without one, ids may be nil.
func (g *Graph) AddBatch(ctx context.Context, ids []string, edges []Edge) (BatchResult, error) {
	var total BatchResult
	for _, c := range chunks(len(edges), maxBatchIDs/2) {
		var cids []string
		if ids != nil {
			cids = ids[c[0]:c[1]]
		}
		part := edges[c[0]:c[1]]
		b, err := newBatchCall(g.rdb, graphScript, g.DedupWindow, g.prefix, cids, len(part))
		if err != nil {
			return total, err
		}
		b.argsFor = func(keep []bool) ([]string, []any, bool) {
			counts, order := g.increments(part, keep)
			if len(order) == 0 {
				return nil, nil, false
			}
			keys := make([]string, len(order))
			args := make([]any, 0, 2*len(order))
			for i, e := range order {
				keys[i] = g.Key(e.From)
				args = append(args, strconv.FormatInt(counts[e], 10), e.To)
			}
			return keys, args, true
		}
		_, r, err := b.run(ctx)
		if err != nil {
			return total, fmt.Errorf("analytics: adding to graph %s: %w", g.prefix, err)
		}
		total.Applied += r.Applied
		total.Duplicates += r.Duplicates
	}
	return total, nil
}

// Link is a neighbour and the weight of the link to it.
type Link struct {
	Node   string  `json:"node"`
	Weight float64 `json:"weight"`
}

// Links returns node's n strongest links, strongest first (ZREVRANGE
// WITHSCORES); n <= 0 returns all.
func (g *Graph) Links(ctx context.Context, node string, n int) ([]Link, error) {
	stop := int64(n - 1)
	if n <= 0 {
		stop = -1
	}
	zs, err := g.rdb.ZRevRangeWithScores(ctx, g.Key(node), 0, stop).Result()
	if err != nil {
		return nil, err
	}
	return toLinks(zs), nil
}

// Rank returns member's rank among node's links, 0 for the strongest
// (ZREVRANK); ok is false when node has no link to member.
func (g *Graph) Rank(ctx context.Context, node, member string) (rank int64, ok bool, err error) {
	rank, err = g.rdb.ZRevRank(ctx, g.Key(node), member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	return rank, err == nil, err
}

// Weight returns the weight of the link from node to member (0 if none).
func (g *Graph) Weight(ctx context.Context, node, member string) (float64, error) {
	w, err := g.rdb.ZScore(ctx, g.Key(node), member).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return w, err
}

// RangeByScore returns node's links with weights in [min, max]
// (ZRANGEBYSCORE WITHSCORES, weakest first, or ZREVRANGEBYSCORE when
// strongestFirst). min and max use Redis's syntax: a number, "(" before a
// number for an open bound, "-inf", "+inf". limit > 0 returns at most that
// many.
func (g *Graph) RangeByScore(ctx context.Context, node, min, max string, limit int, strongestFirst bool) ([]Link, error) {
	opt := &redis.ZRangeBy{Min: min, Max: max}
	if limit > 0 {
		opt.Count = int64(limit)
	}
	var zs []redis.Z
	var err error
	if strongestFirst {
		zs, err = g.rdb.ZRevRangeByScoreWithScores(ctx, g.Key(node), opt).Result()
	} else {
		zs, err = g.rdb.ZRangeByScoreWithScores(ctx, g.Key(node), opt).Result()
	}
	if err != nil {
		return nil, err
	}
	return toLinks(zs), nil
}

// Nodes returns every node that has links, sorted (SCAN MATCH prefix*).
func (g *Graph) Nodes(ctx context.Context) ([]string, error) {
	var nodes []string
	iter := g.rdb.Scan(ctx, 0, escapeGlob(g.prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); strings.HasPrefix(k, g.prefix) {
			nodes = append(nodes, k[len(g.prefix):])
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	slices.Sort(nodes)
	return slices.Compact(nodes), nil
}

// WeightedEdge is an edge with its weight.
type WeightedEdge struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Weight float64 `json:"weight"`
}

// TopEdges returns the n heaviest edges of the whole graph, heaviest first
// (ties by from, then to), reading each node's n strongest links.
func (g *Graph) TopEdges(ctx context.Context, n int) ([]WeightedEdge, error) {
	nodes, err := g.Nodes(ctx)
	if err != nil || n <= 0 {
		return nil, err
	}
	var all []WeightedEdge
	for _, c := range chunks(len(nodes), 500) {
		cmds := make([]*redis.ZSliceCmd, 0, c[1]-c[0])
		_, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, node := range nodes[c[0]:c[1]] {
				cmds = append(cmds, p.ZRevRangeWithScores(ctx, g.Key(node), 0, int64(n-1)))
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for i, cmd := range cmds {
			for _, l := range toLinks(cmd.Val()) {
				all = append(all, WeightedEdge{From: nodes[c[0]+i], To: l.Node, Weight: l.Weight})
			}
		}
		slices.SortFunc(all, compareEdges)
		if len(all) > n {
			all = all[:n]
		}
	}
	return all, nil
}

func compareEdges(a, b WeightedEdge) int {
	switch {
	case a.Weight > b.Weight:
		return -1
	case a.Weight < b.Weight:
		return 1
	}
	if c := strings.Compare(a.From, b.From); c != 0 {
		return c
	}
	return strings.Compare(a.To, b.To)
}

// Reset deletes every node of the graph and its sets of merged ids, and
// returns the number of nodes deleted.
func (g *Graph) Reset(ctx context.Context) (int, error) {
	n, err := deleteMatching(ctx, g.rdb, escapeGlob(g.prefix)+"*")
	if err != nil {
		return n, err
	}
	return n, resetSeen(ctx, g.rdb, g.prefix)
}

func toLinks(zs []redis.Z) []Link {
	out := make([]Link, len(zs))
	for i, z := range zs {
		s, _ := z.Member.(string)
		out[i] = Link{Node: s, Weight: z.Score}
	}
	return out
}
