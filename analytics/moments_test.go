package analytics

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/analytics/redistest"
	"github.com/quorumq/quorumq/online"
)

func mustRedis(t *testing.T) *redis.Client {
	t.Helper()
	return redistest.Start(t).Client(t)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func sameBits(a, b online.RawMoments) bool {
	return a.N == b.N && math.Float64bits(a.Mean) == math.Float64bits(b.Mean) &&
		math.Float64bits(a.M2) == math.Float64bits(b.M2) && math.Float64bits(a.M3) == math.Float64bits(b.M3) &&
		math.Float64bits(a.M4) == math.Float64bits(b.M4)
}

// datasets are the streams the merge tests run on: well conditioned, a
// large mean with a small spread, heavy tails, tiny and huge magnitudes.
func datasets(r *rand.Rand) map[string][]float64 {
	gen := func(n int, f func() float64) []float64 {
		xs := make([]float64, n)
		for i := range xs {
			xs[i] = f()
		}
		return xs
	}
	return map[string][]float64{
		"normal":     gen(3000, func() float64 { return r.NormFloat64()*3 + 10 }),
		"large mean": gen(3000, func() float64 { return 1e9 + r.NormFloat64() }),
		"lognormal":  gen(3000, func() float64 { return math.Exp(2 * r.NormFloat64()) }),
		"tiny":       gen(500, func() float64 { return 1e-300 * r.Float64() }),
		"huge":       gen(500, func() float64 { return 1e60 * (r.Float64() - 0.5) }),
		"integers":   gen(2000, func() float64 { return float64(r.IntN(7)) }),
	}
}

// Test_Moments_LuaMergeIsBitExact: merging random splits of a stream with
// the Lua script gives, after every merge, bit for bit the state
// online.MergeMoments gives, both as returned and as stored in the hash.
func Test_Moments_LuaMergeIsBitExact(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	r := rand.New(rand.NewPCG(1, 2))
	for name, xs := range datasets(r) {
		for trial := range 4 {
			key := fmt.Sprintf("bits:%s:%d", name, trial)
			m := NewMoments(rdb, key)
			var want online.RawMoments
			for lo := 0; lo < len(xs); {
				hi := min(len(xs), lo+1+r.IntN(max(1, len(xs)/(3+trial*5))))
				var part online.Moments
				if err := part.AddAll(xs[lo:hi]...); err != nil {
					t.Fatal(err)
				}
				lo = hi
				got, err := m.Merge(ctx, part.Raw())
				if err != nil {
					t.Fatal(err)
				}
				want = online.MergeMoments(want, part.Raw())
				if !sameBits(got, want) {
					t.Fatalf("%s: Lua merge %+v, Go merge %+v", key, got, want)
				}
				stored, err := m.Get(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(stored, want) {
					t.Fatalf("%s: stored %+v, Go merge %+v", key, stored, want)
				}
			}
			if want.N != int64(len(xs)) {
				t.Fatalf("%s: n = %d", key, want.N)
			}
		}
	}
}

// Test_Moments_LuaMergeIsBitExactOnArbitraryStates: the script and
// online.MergeMoments agree bit for bit on random valid states, including
// the empty-side identities, and the hash holds decimal text any client
// can read.
func Test_Moments_LuaMergeIsBitExactOnArbitraryStates(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	r := rand.New(rand.NewPCG(3, 4))
	randRaw := func() online.RawMoments {
		if r.IntN(8) == 0 {
			return online.RawMoments{}
		}
		scale := math.Pow(10, float64(r.IntN(20)-10))
		return online.RawMoments{
			N: 1 + r.Int64N(1e6), Mean: (r.Float64() - 0.5) * scale * 100,
			M2: r.Float64() * scale * scale, M3: (r.Float64() - 0.5) * scale * scale * scale,
			M4: r.Float64() * math.Pow(scale, 4),
		}
	}
	for i := range 300 {
		key := "arb:" + strconv.Itoa(i)
		a, b := randRaw(), randRaw()
		m := NewMoments(rdb, key)
		if _, err := m.Merge(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := m.Merge(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if want := online.MergeMoments(a, b); !sameBits(got, want) {
			t.Fatalf("merge(%+v, %+v): Lua %+v, Go %+v", a, b, got, want)
		}
	}
	// The fields are plain text.
	m := NewMoments(rdb, "text")
	if _, err := m.Merge(ctx, online.RawMoments{N: 2, Mean: 0.1, M2: 0.5}); err != nil {
		t.Fatal(err)
	}
	h, err := rdb.HGetAll(ctx, "text").Result()
	if err != nil {
		t.Fatal(err)
	}
	if h["n"] != "2" || h["mean"] != "0.10000000000000001" || h["m2"] != "0.5" || h["m3"] != "0" {
		t.Fatalf("hash fields %v", h)
	}
}

// Test_Moments_ConcurrentMergesMatchSinglePass: many goroutines merging
// batches of one stream at once end with exactly the stream's count and
// the single-pass mean and M2 (to 1e-12 and 1e-8 relative).
func Test_Moments_ConcurrentMergesMatchSinglePass(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	r := rand.New(rand.NewPCG(5, 6))
	xs := make([]float64, 40000)
	for i := range xs {
		xs[i] = 50 + 7*r.NormFloat64()
	}
	var single online.Moments
	single.AddAll(xs...)

	m := NewMoments(rdb, "concurrent")
	m.DedupWindow = time.Hour
	const workers = 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for lo := w * 50; lo < len(xs); lo += workers * 50 {
				hi := min(lo+50, len(xs))
				ids := make([]string, hi-lo)
				for i := range ids {
					ids[i] = "q/" + strconv.Itoa(lo+i)
				}
				if _, _, err := m.MergeBatch(ctx, ids, xs[lo:hi]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := m.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := single.Raw()
	if got.N != want.N {
		t.Fatalf("n = %d, want %d", got.N, want.N)
	}
	if e := relErr(got.Mean, want.Mean); e > 1e-12 {
		t.Errorf("mean %v vs %v: relative error %g", got.Mean, want.Mean, e)
	}
	if e := relErr(got.M2, want.M2); e > 1e-8 {
		t.Errorf("M2 %v vs %v: relative error %g", got.M2, want.M2, e)
	}
}

func relErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// Test_Moments_NaiveReadModifyWriteLosesUpdates is the tutorial's "Mr. T
// and Bozo" race: two readers that both read the hash before either
// writes it back lose one update, deterministically; under plain
// contention the naive merge loses updates too, and the Lua merge never
// does.
func Test_Moments_NaiveReadModifyWriteLosesUpdates(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)

	// Forced interleaving: both read n = 0, both write n = 1.
	var read sync.WaitGroup
	read.Add(2)
	between := func() { read.Done(); read.Wait() }
	var wg sync.WaitGroup
	for _, x := range []float64{1, 3} {
		wg.Go(func() {
			if err := NaiveMerge(ctx, rdb, "mrt-bozo", online.RawMoments{N: 1, Mean: x}, between); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := ReadMoments(ctx, rdb, "mrt-bozo")
	if err != nil {
		t.Fatal(err)
	}
	if got.N != 1 {
		t.Fatalf("naive merges with both reads first: n = %d, want 1 (one update lost)", got.N)
	}

	// Free contention: 8 writers × 300 single-observation merges. A
	// round loses updates only if two round trips overlap, which on a
	// loaded machine is all but certain; allow many rounds to see one.
	const writers, each = 8, 300
	contend := func(key string, merge func(online.RawMoments) error) int64 {
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if err := merge(online.RawMoments{N: 1, Mean: float64(w*each + i)}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := ReadMoments(ctx, rdb, key)
		if err != nil {
			t.Fatal(err)
		}
		return got.N
	}
	lost := false
	for round := 0; round < 20 && !lost; round++ {
		key := "naive:" + strconv.Itoa(round)
		n := contend(key, func(p online.RawMoments) error { return NaiveMerge(ctx, rdb, key, p, nil) })
		t.Logf("round %d: naive read-modify-write kept n = %d of %d", round, n, writers*each)
		lost = n < writers*each
	}
	if !lost {
		t.Errorf("no update lost in 20 rounds of contended naive merges")
	}
	m := NewMoments(rdb, "atomic")
	if n := contend("atomic", func(p online.RawMoments) error { _, err := m.Merge(ctx, p); return err }); n != writers*each {
		t.Errorf("Lua merge under contention: n = %d, want %d", n, writers*each)
	}
}

// Test_Moments_MergeBatchSkipsMergedIDs: with a dedup window a batch that
// repeats ids already merged (a redelivery) merges only the new ones, and
// repeats within a batch count once; without a window everything merges.
func Test_Moments_MergeBatchSkipsMergedIDs(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	m := NewMoments(rdb, "dedup")
	m.DedupWindow = time.Minute

	_, res, err := m.MergeBatch(ctx, []string{"q/1", "q/2", "q/3"}, []float64{1, 2, 3})
	if err != nil || res != (BatchResult{Applied: 3}) {
		t.Fatalf("first batch: %+v, %v", res, err)
	}
	state, res, err := m.MergeBatch(ctx, []string{"q/2", "q/4", "q/4", "q/3", "q/5"}, []float64{2, 4, 4, 3, 5})
	if err != nil || res != (BatchResult{Applied: 2, Duplicates: 3}) {
		t.Fatalf("second batch: %+v, %v", res, err)
	}
	var want online.Moments
	want.AddAll(1, 2, 3)
	var part online.Moments
	part.AddAll(4, 5)
	w := online.MergeMoments(want.Raw(), part.Raw())
	if !sameBits(state, w) {
		t.Fatalf("state %+v, want %+v", state, w)
	}
	// Everything a duplicate: nothing changes.
	state2, res, err := m.MergeBatch(ctx, []string{"q/1", "q/5"}, []float64{1, 5})
	if err != nil || res != (BatchResult{Duplicates: 2}) || !sameBits(state2, w) {
		t.Fatalf("all duplicates: %+v %+v, %v", state2, res, err)
	}
	// The ids live in a seen set; Reset removes them with the hash.
	keys, _ := rdb.Keys(ctx, SeenPrefix+"dedup:*").Result()
	if len(keys) != 1 {
		t.Fatalf("seen sets %v", keys)
	}
	if ttl := rdb.TTL(ctx, keys[0]).Val(); ttl <= time.Minute || ttl > 3*time.Minute {
		t.Fatalf("seen set TTL %v", ttl)
	}
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, append(keys, "dedup")...).Result(); n != 0 {
		t.Fatalf("%d keys left after Reset", n)
	}

	plain := NewMoments(rdb, "plain")
	for range 2 {
		if _, _, err := plain.MergeBatch(ctx, []string{"q/1"}, []float64{1}); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := plain.Get(ctx); s.N != 2 {
		t.Fatalf("without a window: n = %d, want 2", s.N)
	}
	if _, _, err := m.MergeBatch(ctx, []string{"q/9"}, []float64{math.NaN()}); err == nil {
		t.Fatal("NaN merged")
	}
}

// Test_Moments_CorruptHashIsAnError: a hash whose fields are not numbers
// is reported, not overwritten.
func Test_Moments_CorruptHashIsAnError(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	rdb.HSet(ctx, "bad", "n", "many")
	if _, err := NewMoments(rdb, "bad").Merge(ctx, online.RawMoments{N: 1, Mean: 2}); err == nil {
		t.Fatal("merge into a corrupt hash succeeded")
	}
	if v := rdb.HGet(ctx, "bad", "n").Val(); v != "many" {
		t.Fatalf("n = %q", v)
	}
}

// Test_Lua_NumbersNeedText documents why the script formats its numbers:
// Redis turns a Lua number returned by a script into an integer, and Lua's
// tostring keeps 14 digits; string.format('%.17g') keeps every bit.
func Test_Lua_NumbersNeedText(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	if v, err := rdb.Eval(ctx, "return 0.1 + 0.2", nil).Result(); err != nil || v != int64(0) {
		t.Fatalf("returned Lua number: %v (%T), %v", v, v, err)
	}
	if v, _ := rdb.Eval(ctx, "return tostring(0.1 + 0.2)", nil).Text(); v != "0.3" {
		t.Fatalf("tostring: %q", v)
	}
	v, _ := rdb.Eval(ctx, "return string.format('%.17g', 0.1 + 0.2)", nil).Text()
	a, b := 0.1, 0.2 // variables: Go constant arithmetic would be exact
	if x, err := strconv.ParseFloat(v, 64); err != nil || x != a+b {
		t.Fatalf("%%.17g: %q", v)
	}
}
