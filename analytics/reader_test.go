package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/client"
	"github.com/quorumq/quorumq/internal/testlog"
	"github.com/quorumq/quorumq/internal/tutorial/gen"
	"github.com/quorumq/quorumq/online"
)

func baseConfig(t *testing.T, addr, queue string, rdb redis.Cmdable) ReaderConfig {
	c := DefaultReaderConfig()
	c.Addrs, c.Queue, c.Redis, c.ExitWhenEmpty, c.EmptyFor = []string{addr}, queue, rdb, true, time.Second
	c.Logger, c.ProgressInterval = testlog.New(t), 0
	return c
}

// twoPass returns the exact mean and M2 of xs (big.Float sums, then one
// rounding).
func twoPass(xs []float64) (mean, m2 float64) {
	sum := new(big.Float).SetPrec(2000)
	for _, x := range xs {
		sum.Add(sum, big.NewFloat(x))
	}
	n := big.NewFloat(float64(len(xs)))
	meanB := new(big.Float).SetPrec(2000).Quo(sum, n)
	acc := new(big.Float).SetPrec(2000)
	for _, x := range xs {
		d := new(big.Float).SetPrec(2000).Sub(big.NewFloat(x), meanB)
		acc.Add(acc, d.Mul(d, d))
	}
	mean, _ = meanB.Float64()
	m2, _ = acc.Float64()
	return mean, m2
}

// Test_Analyze_MomentsSeveralReadersExact: three readers over one queue
// count every number exactly once, and mean and M2 agree with a two-pass
// computation; an unparsable message is skipped.
func Test_Analyze_MomentsSeveralReadersExact(t *testing.T) {
	addr := startNode(t)
	rdb := mustRedis(t)
	r := rand.New(rand.NewPCG(1, 1))
	xs := make([]float64, 5000)
	msgs := make([][]byte, 0, len(xs)+1)
	for i := range xs {
		xs[i] = 1000 + 15*r.NormFloat64()
		msgs = append(msgs, []byte(strconv.FormatFloat(xs[i], 'g', -1, 64)))
	}
	msgs = append(msgs, []byte("not a number"))
	putAll(t, addr, "nums", msgs)

	var wg sync.WaitGroup
	stats := make([]ReaderStats, 3)
	for i := range stats {
		wg.Go(func() {
			cfg := baseConfig(t, addr, "nums", rdb)
			cfg.Batch, cfg.Concurrency = 50, 50
			var err error
			if stats[i], err = RunMoments(testCtx(t), cfg, MomentsOptions{Key: "m"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var merged, invalid int64
	for _, s := range stats {
		merged += s.Merged
		invalid += s.Invalid
		t.Logf("reader: %v", s)
	}
	if merged != int64(len(xs)) || invalid != 1 {
		t.Fatalf("merged %d, invalid %d", merged, invalid)
	}
	got, err := ReadMoments(testCtx(t), rdb, "m")
	if err != nil {
		t.Fatal(err)
	}
	mean, m2 := twoPass(xs)
	if got.N != int64(len(xs)) || relErr(got.Mean, mean) > 1e-12 || relErr(got.M2, m2) > 1e-8 {
		t.Fatalf("redis %+v, two-pass mean %v M2 %v", got, mean, m2)
	}
}

// Test_Analyze_RedeliveryAfterMergeCountedOnce: messages merged by a reader
// that then died without acking come back when their lease ends; with the
// dedup window they are not counted again, without it they are (the
// at-least-once trade-off).
func Test_Analyze_RedeliveryAfterMergeCountedOnce(t *testing.T) {
	addr := startNode(t)
	rdb := mustRedis(t)
	ctx := testCtx(t)
	q, err := client.NewQueue([]string{addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, dedup := range []bool{true, false} {
		queue := "redeliver-" + strconv.FormatBool(dedup)
		var msgs [][]byte
		for i := 1; i <= 100; i++ {
			msgs = append(msgs, []byte(strconv.Itoa(i)))
		}
		putAll(t, addr, queue, msgs)

		// The "dead" reader: leases 30 messages, merges them under their
		// ids, never acks.
		got, err := q.MGet(ctx, queue, 30, client.GetOptions{Lease: time.Second})
		if err != nil || len(got) != 30 {
			t.Fatalf("mget: %d, %v", len(got), err)
		}
		m := NewMoments(rdb, "m-"+queue)
		m.DedupWindow = time.Hour
		ids := make([]string, len(got))
		vals := make([]float64, len(got))
		for i, msg := range got {
			ids[i] = queue + "/" + msg.ID
			vals[i], _ = strconv.ParseFloat(string(msg.Data), 64)
		}
		if _, _, err := m.MergeBatch(ctx, ids, vals); err != nil {
			t.Fatal(err)
		}

		cfg := baseConfig(t, addr, queue, rdb)
		if !dedup {
			cfg.DedupWindow = 0
		}
		cfg.EmptyFor = 2 * time.Second
		st, err := RunMoments(ctx, cfg, MomentsOptions{Key: "m-" + queue})
		if err != nil {
			t.Fatal(err)
		}
		state, _ := ReadMoments(ctx, rdb, "m-"+queue)
		if dedup {
			if state.N != 100 || st.Duplicates != 30 || st.Merged != 70 {
				t.Fatalf("with dedup: n = %d, stats %v", state.N, st)
			}
			var want online.Moments
			for i := 1; i <= 100; i++ {
				want.Add(float64(i))
			}
			if relErr(state.Mean, want.Mean()) > 1e-12 || relErr(state.M2, want.Raw().M2) > 1e-9 {
				t.Fatalf("with dedup: %+v, want %+v", state, want.Raw())
			}
		} else if state.N != 130 || st.Merged != 100 {
			t.Fatalf("without dedup: n = %d (want 130: at least once), stats %v", state.N, st)
		}
	}
}

// Test_Analyze_HistogramSeveralReaders: two readers fill one integer
// histogram and a float one, exactly; a layout clash is refused.
func Test_Analyze_HistogramSeveralReaders(t *testing.T) {
	addr := startNode(t)
	rdb := mustRedis(t)
	ctx := testCtx(t)
	c, _ := gen.RandomDefaults("poisson")
	c.Lambda, c.Seed = 4, 3
	g, _ := gen.NewRandom(c)
	want := map[int64]int64{}
	var msgs [][]byte
	for range 3000 {
		m, _ := g.Next()
		v, _ := strconv.ParseInt(string(m.Data), 10, 64)
		want[v]++
		msgs = append(msgs, m.Data)
	}
	putAll(t, addr, "ints", msgs)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			h, err := NewHistogram(rdb, "h", HistogramLayout{Int: true})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := RunHistogram(ctx, baseConfig(t, addr, "ints", rdb), h); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d, err := ReadHistogram(ctx, rdb, "h")
	if err != nil {
		t.Fatal(err)
	}
	if d.Total != 3000 || len(d.Bins) != len(want) {
		t.Fatalf("total %d, %d bins", d.Total, len(d.Bins))
	}
	for _, b := range d.Bins {
		if want[b.Value] != b.Count {
			t.Errorf("value %d: %d, want %d", b.Value, b.Count, want[b.Value])
		}
	}
	var chart strings.Builder
	WriteHistogramChart(&chart, d, 60)
	t.Logf("\n%s", chart.String())

	other, _ := NewHistogram(rdb, "h", HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 1, NumBins: 10}})
	if _, err := RunHistogram(ctx, baseConfig(t, addr, "ints", rdb), other); err == nil {
		t.Fatal("a reader with another layout started")
	}
}

// Test_Analyze_GraphFromUsagov: the click graph built through the queue
// from the 1.usa.gov records (or synthesised ones) has the edge weights
// counted straight from the records; heartbeats are skipped as invalid;
// the undirected graph is symmetric.
func Test_Analyze_GraphFromUsagov(t *testing.T) {
	addr := startNode(t)
	rdb := mustRedis(t)
	ctx := testCtx(t)
	lines := usagovLines(t)
	if lines == nil {
		t.Log("shared 1.usa.gov file not found: using 2000 synthesised records")
		s := gen.NewSynth(5, false)
		for range 2000 {
			m, _ := s.Next()
			lines = append(lines, m.Data)
		}
	}
	want := map[[2]string]float64{}
	heartbeats := 0
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		u, _ := rec["u"].(string)
		if u == "" {
			heartbeats++
			continue
		}
		r, _ := rec["r"].(string)
		if r == "" {
			r = "direct"
		}
		want[[2]string{r, u}]++
	}
	for _, undirected := range []bool{false, true} {
		queue := "clicks-" + strconv.FormatBool(undirected)
		putAll(t, addr, queue, lines)
		g := NewGraph(rdb, queue+":", undirected)
		var wg sync.WaitGroup
		var invalid atomic.Int64
		for range 2 {
			wg.Go(func() {
				st, err := RunGraph(ctx, baseConfig(t, addr, queue, rdb), NewGraph(rdb, queue+":", undirected))
				if err != nil {
					t.Error(err)
				}
				invalid.Add(st.Skipped + st.Invalid)
			})
		}
		wg.Wait()
		if int(invalid.Load()) != heartbeats {
			t.Errorf("invalid %d, want %d heartbeats", invalid.Load(), heartbeats)
		}
		got := map[[2]string]float64{}
		nodes, err := g.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			links, _ := g.Links(ctx, n, 0)
			for _, l := range links {
				got[[2]string{n, l.Node}] = l.Weight
			}
		}
		exp := want
		if undirected {
			exp = map[[2]string]float64{}
			for e, w := range want {
				exp[e] += w
				if e[0] != e[1] {
					exp[[2]string{e[1], e[0]}] += w
				}
			}
			for e, w := range got {
				if got[[2]string{e[1], e[0]}] != w {
					t.Fatalf("asymmetric %q", e)
				}
			}
		}
		if len(got) != len(exp) {
			t.Errorf("undirected=%v: %d edges, want %d", undirected, len(got), len(exp))
		}
		for e, w := range exp {
			if got[e] != w {
				t.Fatalf("undirected=%v: %q -> %q weight %v, want %v", undirected, e[0], e[1], got[e], w)
			}
		}
		rep, err := ReadGraphReport(ctx, g, GraphQuery{Top: 5})
		if err != nil || len(rep.Top) != 5 || rep.Nodes != len(nodes) {
			t.Fatalf("report %+v, %v", rep, err)
		}
		var b strings.Builder
		rep.WriteText(&b)
		t.Logf("\n%s", b.String())
	}
}

// Test_Batcher_FlushesWhenFullOrLate: a batch is flushed as soon as it is
// full, otherwise after the interval; every submitter gets the flush's
// error.
func Test_Batcher_FlushesWhenFullOrLate(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	fail := errors.New("boom")
	b := newBatcher(4, 200*time.Millisecond, func(items []*pending) error {
		mu.Lock()
		sizes = append(sizes, len(items))
		mu.Unlock()
		if items[0].val == "fail" {
			return fail
		}
		return nil
	})
	defer b.stop()
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if err := b.submit(ctx, strconv.Itoa(i), i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if time.Since(start) > 150*time.Millisecond*10 {
		t.Logf("a full batch took %v (slow machine?)", time.Since(start))
	}
	start = time.Now()
	if err := b.submit(ctx, "x", "fail"); !errors.Is(err, fail) {
		t.Fatalf("err %v", err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("a lone item was flushed after %v, before the interval", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) != 2 || sizes[0] != 4 || sizes[1] != 1 {
		t.Fatalf("batch sizes %v", sizes)
	}
	b.stop()
	if err := b.submit(ctx, "late", 1); !errors.Is(err, errStopped) {
		t.Fatalf("after stop: %v", err)
	}
}

// Test_Show_Rendering: the moments report derives the statistics (null
// when undefined) and the bar chart fits the columns.
func Test_Show_Rendering(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	rep, err := ReadMomentsReport(ctx, rdb, "none")
	if err != nil || rep.N != 0 || rep.Mean != nil {
		t.Fatalf("empty: %+v %v", rep, err)
	}
	m := NewMoments(rdb, "m")
	var acc online.Moments
	acc.AddAll(1, 2, 3, 4)
	m.Merge(ctx, acc.Raw())
	rep, err = ReadMomentsReport(ctx, rdb, "m")
	if err != nil || rep.N != 4 || *rep.Mean != 2.5 || *rep.Variance != 5.0/3 {
		t.Fatalf("%+v %v", rep, err)
	}
	var js strings.Builder
	WriteJSON(&js, rep)
	if !strings.Contains(js.String(), `"n":4`) || !strings.Contains(js.String(), `"mean":2.5`) {
		t.Fatalf("json %s", js.String())
	}

	h, _ := NewHistogram(rdb, "fh", HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 0.25, NumBins: 4}})
	h.Init(ctx)
	h.Add(ctx, []float64{0.1, 0.3, 0.3, 0.9, 5, -1})
	d, _ := ReadHistogram(ctx, rdb, "fh")
	for _, cols := range []int{40, 60, 100} {
		var b strings.Builder
		if err := WriteHistogramChart(&b, d, cols); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		if len(lines) != 1+4+2 {
			t.Fatalf("chart:\n%s", b.String())
		}
		widest := 0
		for _, l := range lines[1:] {
			widest = max(widest, len([]rune(l)))
		}
		if widest != cols {
			t.Fatalf("widest row %d columns, want %d:\n%s", widest, cols, b.String())
		}
	}
}
