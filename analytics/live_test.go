package analytics

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/internal/testwait"
	"github.com/quorumq/quorumq/online"
)

// newTestLive returns a Live over a fresh Redis, its clock advanced by
// hand.
func newTestLive(t *testing.T, edit func(*LiveOptions)) (*Live, *redistest.Server, *time.Time) {
	t.Helper()
	srv := redistest.Start(t)
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	o := DefaultLiveOptions()
	o.RedisURL, o.Now = srv.Addr, func() time.Time { return now }
	if edit != nil {
		edit(&o)
	}
	l, err := NewLive(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, srv, &now
}

// TestLive_ReportsEveryAggregateWithABoundedHistory feeds moments, two
// histograms and a click graph, and checks that a report holds what
// `analyze show` reads, the moments' history capped at History samples.
func TestLive_ReportsEveryAggregateWithABoundedHistory(t *testing.T) {
	l, srv, now := newTestLive(t, func(o *LiveOptions) { o.History, o.DiscoverEvery = 3, 0 })
	rdb := srv.Client(t)
	ctx := context.Background()
	m := NewMoments(rdb, "moments")
	for i, xs := range [][]float64{{1, 2}, {3}, {4, 10}, {5}} {
		if _, _, err := m.MergeBatch(ctx, nil, xs); err != nil {
			t.Fatal(err)
		}
		if err := l.Sample(ctx); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		*now = now.Add(5 * time.Second)
	}
	ih, _ := NewHistogram(rdb, "lengths", HistogramLayout{Int: true})
	fh, _ := NewHistogram(rdb, "ratios", HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 0.5, NumBins: 2}})
	for _, h := range []*Histogram{ih, fh} {
		if err := h.Init(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ih.Add(ctx, []float64{3, 3, 7}); err != nil {
		t.Fatal(err)
	}
	if err := fh.Add(ctx, []float64{0.1, 0.7, 2}); err != nil {
		t.Fatal(err)
	}
	g := NewGraph(rdb, DefaultGraphPrefix, false)
	if err := g.Add(ctx, []Edge{{"direct", "u1"}, {"direct", "u1"}, {"direct", "u2"}, {"t.co", "u1"}, {"fb", "u3"}}); err != nil {
		t.Fatal(err)
	}

	rep, err := l.Report(ctx, "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Moments) != 1 || rep.Moments[0].N != 6 || math.Abs(*rep.Moments[0].Mean-25.0/6) > 1e-9 {
		t.Fatalf("moments %+v", rep.Moments)
	}
	h := rep.Moments[0].History
	if len(h) != 3 || h[0].N != 3 || h[2].N != 6 || h[2].TimeMS-h[0].TimeMS != 10000 {
		t.Fatalf("history %+v: want the last 3 samples (n 3, 5, 6), 5 s apart", h)
	}
	keys := []string{}
	for _, d := range rep.Histograms {
		keys = append(keys, d.Key)
	}
	if !slices.Equal(keys, []string{"lengths", "ratios"}) || rep.Histograms[0].Total != 3 || rep.Histograms[1].Overflow != 1 {
		t.Fatalf("histograms %v: %+v", keys, rep.Histograms)
	}
	want := []WeightedEdge{{"direct", "u1", 2}, {"direct", "u2", 1}}
	if rep.Graph.NodeCount != 3 || !slices.Equal(rep.Graph.Edges, want) {
		t.Fatalf("graph %+v, want 3 nodes and edges %v", rep.Graph, want)
	}
	if rep.Graph.Nodes[0] != (GraphNode{"direct", 3}) || len(rep.Graph.Nodes) != 3 {
		t.Fatalf("graph nodes %+v", rep.Graph.Nodes)
	}

	// A target's links come in: the graph stores each referrer's out.
	rep, err = l.Report(ctx, "u1", 10)
	if err != nil {
		t.Fatal(err)
	}
	want = []WeightedEdge{{"direct", "u1", 2}, {"t.co", "u1", 1}}
	if rep.Graph.Node != "u1" || !slices.Equal(rep.Graph.Edges, want) || rep.Graph.Partial {
		t.Fatalf("u1's links %+v, want %v", rep.Graph, want)
	}
	rep, _ = l.Report(ctx, "direct", 1)
	if want := []WeightedEdge{{"direct", "u1", 2}}; !slices.Equal(rep.Graph.Edges, want) {
		t.Fatalf("direct's strongest link %+v, want %v", rep.Graph.Edges, want)
	}
	rep, _ = l.Report(ctx, "nobody", 5)
	if len(rep.Graph.Edges) != 0 || len(rep.Graph.Nodes) != 1 {
		t.Fatalf("a node without links: %+v", rep.Graph)
	}
}

// TestLive_RunSamplesUntilCancelled checks that Run takes a sample at
// once and returns when its context ends.
func TestLive_RunSamplesUntilCancelled(t *testing.T) {
	l, _, _ := newTestLive(t, func(o *LiveOptions) { o.Every, o.CacheFor, o.MomentsKeys = time.Hour, 0, []string{"moments"} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	testwait.For(t, 10*time.Second, "the first sample", func() bool {
		rep, err := l.Report(context.Background(), "", 1)
		return err == nil && len(rep.Moments[0].History) == 1
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// TestLive_ReusesAReportForCacheFor checks that the same query within
// CacheFor is answered from the cache, and read again after it.
func TestLive_ReusesAReportForCacheFor(t *testing.T) {
	l, srv, now := newTestLive(t, func(o *LiveOptions) { o.CacheFor = 2 * time.Second })
	ctx := context.Background()
	g := NewGraph(srv.Client(t), DefaultGraphPrefix, false)
	edges := func() int {
		rep, err := l.Report(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(rep.Graph.Edges)
	}
	if n := edges(); n != 0 {
		t.Fatalf("%d edges in an empty graph", n)
	}
	if err := g.Add(ctx, []Edge{{"direct", "u1"}}); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(time.Second)
	if n := edges(); n != 0 {
		t.Fatalf("within CacheFor: %d edges, want the cached 0", n)
	}
	if rep, _ := l.Report(ctx, "", 5); len(rep.Graph.Edges) != 1 {
		t.Fatalf("another query is not cached: %+v", rep.Graph)
	}
	*now = now.Add(time.Second)
	if n := edges(); n != 1 {
		t.Fatalf("after CacheFor: %d edges, want 1", n)
	}
}

// TestLive_DiscoversTheTutorialsAggregates checks that a Live without
// names finds the README tutorial's aggregates (moments under their own
// keys, histograms, a graph under clicks:) among other keys, and that
// names given in the options replace what it finds.
func TestLive_DiscoversTheTutorialsAggregates(t *testing.T) {
	l, srv, _ := newTestLive(t, func(o *LiveOptions) { o.DiscoverEvery = 0 })
	rdb := srv.Client(t)
	ctx := context.Background()
	for _, key := range []string{"numbers", "race"} {
		if _, _, err := NewMoments(rdb, key).MergeBatch(ctx, nil, []float64{1, 2, 3}); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := NewHistogram(rdb, "hist:poisson", HistogramLayout{Int: true})
	if err := h.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.Add(ctx, []float64{1, 2, 2})
	g := NewGraph(rdb, "clicks:", false)
	g.DedupWindow = time.Hour
	if _, err := g.AddBatch(ctx, []string{"m1", "m2"}, []Edge{{"direct", "http://a"}, {"http://t.co/x", "http://a"}}); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, "profile", "n", 1, "name", "x") // a hash, not moments
	rdb.ZAdd(ctx, "leaderboard", redis.Z{Score: 1, Member: "a"})
	rdb.Set(ctx, "plain", "x", 0)

	rep, err := l.Report(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var moments, hists []string
	for _, m := range rep.Moments {
		moments = append(moments, m.Key)
	}
	for _, d := range rep.Histograms {
		hists = append(hists, d.Key)
	}
	if !slices.Equal(moments, []string{"numbers", "race"}) || !slices.Equal(hists, []string{"hist:poisson"}) {
		t.Fatalf("found moments %v and histograms %v", moments, hists)
	}
	if rep.Graph.Prefix != "clicks:" || rep.Graph.NodeCount != 2 || len(rep.Graph.Edges) != 2 {
		t.Fatalf("found graph %+v", rep.Graph)
	}
	if err := l.Sample(ctx); err != nil {
		t.Fatal(err)
	}

	named, _, _ := newTestLive(t, func(o *LiveOptions) {
		o.RedisURL, o.MomentsKeys, o.HistogramKeys, o.GraphPrefix = srv.Addr, []string{"race"}, []string{"nothing"}, "other:"
	})
	rep, err = named.Report(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Moments) != 1 || rep.Moments[0].Key != "race" || len(rep.Histograms) != 1 || rep.Histograms[0].Total != 0 || rep.Graph.Prefix != "other:" || rep.Graph.NodeCount != 0 {
		t.Fatalf("named aggregates: %+v", rep)
	}
}

// TestLive_RefusesOptionsThatCannotWork checks NewLive's validation.
func TestLive_RefusesOptionsThatCannotWork(t *testing.T) {
	for name, edit := range map[string]func(*LiveOptions){
		"no redis":   func(o *LiveOptions) { o.RedisURL = "" },
		"no found":   func(o *LiveOptions) { o.MaxFound = 0 },
		"no history": func(o *LiveOptions) { o.History = 0 },
		"bad cache":  func(o *LiveOptions) { o.CacheFor = -1 },
		"bad url":    func(o *LiveOptions) { o.RedisURL = "redis://[::1" },
	} {
		o := DefaultLiveOptions()
		o.RedisURL = "127.0.0.1:6379"
		edit(&o)
		if _, err := NewLive(o); err == nil {
			t.Errorf("%s: NewLive accepted %+v", name, o)
		}
	}
}
