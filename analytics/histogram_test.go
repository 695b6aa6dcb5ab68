package analytics

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumq/quorumq/online"
)

// Test_Histogram_FloatBinsAndLayout: float values land in the bins
// online.FloatLayout assigns (plus underflow, overflow, nan), the layout is
// stored beside the hash, and ReadHistogram renders both back.
func Test_Histogram_FloatBinsAndLayout(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	layout := HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 0.1, NumBins: 10}}
	h, err := NewHistogram(rdb, "fh", layout)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Init(ctx); err != nil {
		t.Fatal(err)
	}
	xs := []float64{0, 0.05, 0.1, 0.3, 0.99, 1, -0.1, math.NaN(), math.Inf(1), 0.30000000000000004}
	if err := h.Add(ctx, xs); err != nil {
		t.Fatal(err)
	}
	ref, _ := online.NewFloatHistogram(layout.Float)
	for _, x := range xs {
		ref.Add(x)
	}
	d, err := ReadHistogram(ctx, rdb, "fh")
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != "float" || d.Layout != layout || len(d.Bins) != 10 {
		t.Fatalf("read %+v", d)
	}
	for i, b := range d.Bins {
		if uint64(b.Count) != ref.Count(i) || b.Lo != layout.Float.Edge(i) {
			t.Errorf("bin %d %+v, want count %d", i, b, ref.Count(i))
		}
	}
	if uint64(d.Underflow) != ref.Underflow() || uint64(d.Overflow) != ref.Overflow() || uint64(d.NaN) != ref.NaNs() || d.Total != int64(len(xs)) {
		t.Fatalf("outliers %+v, want %d/%d/%d", d, ref.Underflow(), ref.Overflow(), ref.NaNs())
	}
	if d.Bins[2].Label != "[0.2, 0.3)" || d.Bins[9].Label != "[0.9, 1)" {
		t.Fatalf("labels %q %q", d.Bins[2].Label, d.Bins[9].Label)
	}
	js, err := json.Marshal(d)
	if err != nil || !strings.Contains(string(js), `"kind":"float","min":0,"width":0.1,"num_bins":10,"bins":[{"lo":0,"hi":0.1,"label":"[0, 0.1)","count":2}`) ||
		!strings.Contains(string(js), `"underflow":1,"overflow":2,"nan":1,"total":10}`) {
		t.Fatalf("json %s, %v", js, err)
	}
	lay := rdb.HGetAll(ctx, "fh"+LayoutSuffix).Val()
	if lay["kind"] != "float" || lay["min"] != "0" || lay["width"] != "0.1" || lay["bins"] != "10" {
		t.Fatalf("layout hash %v", lay)
	}

	// A reader with other bins is refused; the same layout is accepted.
	other, _ := NewHistogram(rdb, "fh", HistogramLayout{Float: online.FloatLayout{Min: 0, Width: 0.2, NumBins: 5}})
	if err := other.Init(ctx); err == nil {
		t.Fatal("a different layout was accepted")
	}
	same, _ := NewHistogram(rdb, "fh", layout)
	if err := same.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := NewHistogram(rdb, "x", HistogramLayout{}); err == nil {
		t.Fatal("an invalid float layout was accepted")
	}
}

// Test_Histogram_IntegerFieldsAndParsing: integer layouts count each
// value in its own field, read integers exactly, and refuse fractions.
func Test_Histogram_IntegerFieldsAndParsing(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	h, _ := NewHistogram(rdb, "ih", HistogramLayout{Int: true})
	if err := h.Init(ctx); err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, s := range []string{"3", " 3\n", "+3", "-2", "3.0", "1e1", "9007199254740993"} {
		f, err := h.ParseField([]byte(s))
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		fields = append(fields, f)
	}
	for _, s := range []string{"2.5", "x", ""} {
		if _, err := h.ParseField([]byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	if err := h.AddFields(ctx, fields); err != nil {
		t.Fatal(err)
	}
	d, err := ReadHistogram(ctx, rdb, "ih")
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(d); string(js) != `{"key":"ih","kind":"int","bins":[{"value":-2,"count":1},{"value":3,"count":4},{"value":10,"count":1},{"value":9007199254740993,"count":1}],"total":7}` {
		t.Fatalf("json %s", js)
	}
	want := []HistogramBin{{Label: "-2", Value: -2, Count: 1}, {Label: "3", Value: 3, Count: 4}, {Label: "10", Value: 10, Count: 1},
		{Label: "9007199254740993", Value: 9007199254740993, Count: 1}}
	if len(d.Bins) != len(want) {
		t.Fatalf("bins %+v", d.Bins)
	}
	for i := range want {
		if d.Bins[i] != want[i] {
			t.Errorf("bin %d %+v, want %+v", i, d.Bins[i], want[i])
		}
	}
}

// Test_Histogram_PipelinedWritersAreExact: many writers adding batches at
// once, with the pipeline and with the batch script, lose nothing.
func Test_Histogram_PipelinedWritersAreExact(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	for _, batch := range []bool{false, true} {
		key := "par:" + strconv.FormatBool(batch)
		h, _ := NewHistogram(rdb, key, HistogramLayout{Int: true})
		h.DedupWindow = time.Hour
		want := map[int64]int64{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(w), 9))
				for b := range 40 {
					fields := make([]string, 100)
					ids := make([]string, 100)
					local := map[int64]int64{}
					for i := range fields {
						v := int64(r.IntN(20))
						local[v]++
						fields[i] = strconv.FormatInt(v, 10)
						ids[i] = "q/" + strconv.Itoa(w) + "-" + strconv.Itoa(b) + "-" + strconv.Itoa(i)
					}
					var err error
					if batch {
						_, err = h.AddBatch(ctx, ids, fields)
					} else {
						err = h.AddFields(ctx, fields)
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for v, c := range local {
						want[v] += c
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		d, err := ReadHistogram(ctx, rdb, key)
		if err != nil {
			t.Fatal(err)
		}
		if d.Total != 8*40*100 {
			t.Fatalf("%s: total %d", key, d.Total)
		}
		for _, b := range d.Bins {
			if want[b.Value] != b.Count {
				t.Errorf("%s: value %d count %d, want %d", key, b.Value, b.Count, want[b.Value])
			}
		}
	}
}

// Test_Histogram_AddBatchSkipsMergedIDs: a redelivered message is counted
// once within the dedup window; Reset clears counts, layout and ids.
func Test_Histogram_AddBatchSkipsMergedIDs(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	h, _ := NewHistogram(rdb, "hd", HistogramLayout{Int: true})
	h.DedupWindow = time.Minute
	h.Init(ctx)
	if r, err := h.AddBatch(ctx, []string{"a", "b"}, []string{"1", "2"}); err != nil || r.Applied != 2 {
		t.Fatal(r, err)
	}
	if r, err := h.AddBatch(ctx, []string{"b", "c"}, []string{"2", "2"}); err != nil || r != (BatchResult{Applied: 1, Duplicates: 1}) {
		t.Fatal(r, err)
	}
	if got := rdb.HGetAll(ctx, "hd").Val(); got["1"] != "1" || got["2"] != "2" || len(got) != 2 {
		t.Fatalf("hash %v", got)
	}
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if keys := rdb.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("left after reset: %v", keys)
	}
}
