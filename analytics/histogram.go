package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/online"
)

// Names of the float histogram's special bins.
const (
	FieldUnderflow = "underflow"
	FieldOverflow  = "overflow"
	FieldNaN       = "nan"
)

// LayoutSuffix is appended to a histogram's key to name its layout hash.
const LayoutSuffix = ":layout"

// HistogramLayout says how a histogram bins its values: one bin per
// integer (Int), or the fixed-width bins of Float.
type HistogramLayout struct {
	Int   bool
	Float online.FloatLayout // used when !Int
}

// Validate checks a float layout (an integer layout is always valid).
func (l HistogramLayout) Validate() error {
	if l.Int {
		return nil
	}
	return l.Float.Validate()
}

func (l HistogramLayout) String() string {
	if l.Int {
		return "kind=int"
	}
	return fmt.Sprintf("kind=float min=%s width=%s bins=%d", formatFloat(l.Float.Min), formatFloat(l.Float.Width), l.Float.NumBins)
}

// fields returns the layout as the layout hash's field/value pairs.
func (l HistogramLayout) fields() []any {
	if l.Int {
		return []any{"kind", "int"}
	}
	return []any{"kind", "float", "min", formatFloat(l.Float.Min), "width", formatFloat(l.Float.Width),
		"bins", strconv.Itoa(l.Float.NumBins)}
}

// parseLayout reads a layout hash.
func parseLayout(h map[string]string) (HistogramLayout, error) {
	switch h["kind"] {
	case "int":
		return HistogramLayout{Int: true}, nil
	case "float":
		lo, err1 := strconv.ParseFloat(h["min"], 64)
		w, err2 := strconv.ParseFloat(h["width"], 64)
		n, err3 := strconv.Atoi(h["bins"])
		if err1 != nil || err2 != nil || err3 != nil {
			return HistogramLayout{}, fmt.Errorf("bad float layout %v", h)
		}
		l := HistogramLayout{Float: online.FloatLayout{Min: lo, Width: w, NumBins: n}}
		return l, l.Validate()
	}
	return HistogramLayout{}, fmt.Errorf("unknown layout kind %q", h["kind"])
}

// initLayoutScript stores the layout in KEYS[1] unless one is there, and
// returns what is there.
var initLayoutScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV))
end
return redis.call('HGETALL', KEYS[1])
`)

// histScript adds the (field, count) pairs of its arguments to the hash
// KEYS[1] with HINCRBY.
var histScript = redis.NewScript(dedupPrelude + `
for i = base, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {'ok'}
`)

// Histogram is a histogram in the Redis hash Key, shared by any number of
// writers: one field per bin, counted with HINCRBY.
type Histogram struct {
	rdb    redis.Cmdable
	key    string
	layout HistogramLayout
	// DedupWindow > 0 makes AddBatch skip the ids it added within the
	// window (see the package documentation). 0: every item is added.
	DedupWindow time.Duration
}

// NewHistogram returns the histogram in the hash key with the given layout.
// Call Init before adding, to store the layout or check it against the one
// stored.
func NewHistogram(rdb redis.Cmdable, key string, layout HistogramLayout) (*Histogram, error) {
	if err := layout.Validate(); err != nil {
		return nil, err
	}
	return &Histogram{rdb: rdb, key: key, layout: layout}, nil
}

// Key returns the hash's name.
func (h *Histogram) Key() string { return h.key }

// Layout returns the histogram's layout.
func (h *Histogram) Layout() HistogramLayout { return h.layout }

// Init stores the layout in Key+":layout" if there is none, atomically, and
// otherwise returns an error if the stored layout differs: two readers
// with different bins must not mix their counts in one hash.
func (h *Histogram) Init(ctx context.Context) error {
	res, err := initLayoutScript.Run(ctx, h.rdb, []string{h.key + LayoutSuffix}, h.layout.fields()...).StringSlice()
	if err != nil {
		return fmt.Errorf("analytics: storing the layout of %s: %w", h.key, err)
	}
	stored := map[string]string{}
	for i := 0; i+1 < len(res); i += 2 {
		stored[res[i]] = res[i+1]
	}
	l, err := parseLayout(stored)
	if err != nil {
		return fmt.Errorf("analytics: histogram %s: %w", h.key, err)
	}
	if l != h.layout {
		return fmt.Errorf("analytics: histogram %s has layout %v, not %v: use another key, or reset it", h.key, l, h.layout)
	}
	return nil
}

// Field returns the hash field that counts x: for an integer layout the
// integer itself (x must be integral), for a float layout the bin index,
// or underflow, overflow or nan.
func (h *Histogram) Field(x float64) (string, error) {
	if h.layout.Int {
		if x != math.Trunc(x) || math.Abs(x) >= 1<<63 {
			return "", fmt.Errorf("analytics: %v is not an integer", x)
		}
		return strconv.FormatInt(int64(x), 10), nil
	}
	if i, ok := h.layout.Float.Bin(x); ok {
		return strconv.Itoa(i), nil
	}
	switch {
	case math.IsNaN(x):
		return FieldNaN, nil
	case x < h.layout.Float.Min:
		return FieldUnderflow, nil
	default:
		return FieldOverflow, nil
	}
}

// ParseField reads one number as text (surrounding white space ignored)
// and returns its field. Integers are read exactly (no float64 rounding).
func (h *Histogram) ParseField(text []byte) (string, error) {
	s := strings.TrimSpace(string(text))
	if h.layout.Int {
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.FormatInt(v, 10), nil
		}
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", fmt.Errorf("analytics: %q is not a number", s)
	}
	return h.Field(x)
}

// Add adds xs, one HINCRBY per distinct bin, in one MULTI/EXEC pipeline
// (a batch is counted entirely or not at all).
func (h *Histogram) Add(ctx context.Context, xs []float64) error {
	fields := make([]string, len(xs))
	for i, x := range xs {
		f, err := h.Field(x)
		if err != nil {
			return err
		}
		fields[i] = f
	}
	return h.AddFields(ctx, fields)
}

// AddFields counts one occurrence of every field (from Field or
// ParseField), one HINCRBY per distinct field, in one MULTI/EXEC pipeline.
func (h *Histogram) AddFields(ctx context.Context, fields []string) error {
	counts, order := countFields(fields, nil)
	if len(order) == 0 {
		return nil
	}
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, f := range order {
			p.HIncrBy(ctx, h.key, f, counts[f])
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("analytics: adding to %s: %w", h.key, err)
	}
	return nil
}

// AddBatch counts fields[i] for message ids[i] in one script call. With a
// DedupWindow, items whose id was added within the window (or repeats
// within the batch) are left out; without one, ids may be nil.
func (h *Histogram) AddBatch(ctx context.Context, ids, fields []string) (BatchResult, error) {
	var total BatchResult
	for _, c := range chunks(len(fields), maxBatchIDs) {
		var cids []string
		if ids != nil {
			cids = ids[c[0]:c[1]]
		}
		part := fields[c[0]:c[1]]
		b, err := newBatchCall(h.rdb, histScript, h.DedupWindow, h.key, cids, len(part))
		if err != nil {
			return total, err
		}
		b.argsFor = func(keep []bool) ([]string, []any, bool) {
			counts, order := countFields(part, keep)
			if len(order) == 0 {
				return nil, nil, false
			}
			args := make([]any, 0, 2*len(order))
			for _, f := range order {
				args = append(args, f, strconv.FormatInt(counts[f], 10))
			}
			return []string{h.key}, args, true
		}
		_, r, err := b.run(ctx)
		if err != nil {
			return total, fmt.Errorf("analytics: adding to %s: %w", h.key, err)
		}
		total.Applied += r.Applied
		total.Duplicates += r.Duplicates
	}
	return total, nil
}

// countFields counts the fields whose keep flag is set (all when keep is
// nil), in order of first appearance.
func countFields(fields []string, keep []bool) (map[string]int64, []string) {
	counts := map[string]int64{}
	var order []string
	for i, f := range fields {
		if keep != nil && !keep[i] {
			continue
		}
		if counts[f] == 0 {
			order = append(order, f)
		}
		counts[f]++
	}
	return counts, order
}

// Reset deletes the histogram, its layout and its sets of merged ids.
func (h *Histogram) Reset(ctx context.Context) error {
	if err := h.rdb.Del(ctx, h.key, h.key+LayoutSuffix).Err(); err != nil {
		return err
	}
	return resetSeen(ctx, h.rdb, h.key)
}

// HistogramBin is one bin of a HistogramData.
type HistogramBin struct {
	// Label is the value ("42") or the interval ("[0.5, 1)", its edges
	// with the fewest digits that tell them apart).
	Label string
	// Value is the integer of an integer layout's bin.
	Value int64
	// Lo and Hi bound a float layout's bin [Lo, Hi), exactly.
	Lo, Hi float64
	Count  int64
}

// HistogramData is a histogram as read from Redis. Its JSON form is
//
//	{"key":K,"kind":"int","bins":[{"value":V,"count":C},...],"total":T}
//	{"key":K,"kind":"float","min":M,"width":W,"num_bins":N,
//	 "bins":[{"lo":L,"hi":H,"label":"[L, H)","count":C},...],
//	 "underflow":U,"overflow":O,"nan":X,"total":T}
//
// plus "unknown" (field -> count) when the hash has fields outside the
// layout.
type HistogramData struct {
	Key string
	// Kind is "int" or "float".
	Kind string
	// Layout is the stored layout (inferred as an integer layout when the
	// layout hash is missing).
	Layout HistogramLayout
	// Bins: for an integer layout the values present, ascending; for a
	// float layout every bin, empty ones included.
	Bins []HistogramBin
	// Underflow, Overflow and NaN count a float layout's outliers.
	Underflow, Overflow, NaN int64
	// Total is the sum of every count.
	Total int64
	// Unknown lists fields that do not belong to the layout.
	Unknown map[string]int64
}

// MarshalJSON writes the form shown on HistogramData.
func (d *HistogramData) MarshalJSON() ([]byte, error) {
	type intBin struct {
		Value int64 `json:"value"`
		Count int64 `json:"count"`
	}
	type floatBin struct {
		Lo    float64 `json:"lo"`
		Hi    float64 `json:"hi"`
		Label string  `json:"label"`
		Count int64   `json:"count"`
	}
	type common struct {
		Key  string `json:"key"`
		Kind string `json:"kind"`
	}
	type tail struct {
		Total   int64            `json:"total"`
		Unknown map[string]int64 `json:"unknown,omitempty"`
	}
	if d.Kind == "int" {
		bins := make([]intBin, len(d.Bins))
		for i, b := range d.Bins {
			bins[i] = intBin{b.Value, b.Count}
		}
		return json.Marshal(struct {
			common
			Bins []intBin `json:"bins"`
			tail
		}{common{d.Key, d.Kind}, bins, tail{d.Total, d.Unknown}})
	}
	bins := make([]floatBin, len(d.Bins))
	for i, b := range d.Bins {
		bins[i] = floatBin{b.Lo, b.Hi, b.Label, b.Count}
	}
	l := d.Layout.Float
	return json.Marshal(struct {
		common
		Min       float64    `json:"min"`
		Width     float64    `json:"width"`
		NumBins   int        `json:"num_bins"`
		Bins      []floatBin `json:"bins"`
		Underflow int64      `json:"underflow"`
		Overflow  int64      `json:"overflow"`
		NaN       int64      `json:"nan"`
		tail
	}{common{d.Key, d.Kind}, l.Min, l.Width, l.NumBins, bins, d.Underflow, d.Overflow, d.NaN, tail{d.Total, d.Unknown}})
}

// edgeLabels formats the edges of l with the fewest significant digits
// that keep them apart and within a millionth of a bin width of their
// exact values (0.30000000000000004 is shown as 0.3).
func edgeLabels(l online.FloatLayout) []string {
	edges := make([]float64, l.NumBins+1)
	for i := range edges {
		edges[i] = l.Edge(i)
	}
	out := make([]string, len(edges))
	for p := 1; p <= 17; p++ {
		ok := true
		for i, e := range edges {
			out[i] = strconv.FormatFloat(e, 'g', p, 64)
			back, _ := strconv.ParseFloat(out[i], 64)
			if math.Abs(back-e) > l.Width*1e-6 || (i > 0 && out[i] == out[i-1]) {
				ok = false
				break
			}
		}
		if ok {
			return out
		}
	}
	for i, e := range edges {
		out[i] = formatFloat(e)
	}
	return out
}

// ReadHistogram reads the histogram in the hash key and its layout.
func ReadHistogram(ctx context.Context, rdb redis.Cmdable, key string) (*HistogramData, error) {
	lay, err := rdb.HGetAll(ctx, key+LayoutSuffix).Result()
	if err != nil {
		return nil, fmt.Errorf("analytics: reading %s: %w", key+LayoutSuffix, err)
	}
	raw, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("analytics: reading %s: %w", key, err)
	}
	d := &HistogramData{Key: key}
	if len(lay) > 0 {
		if d.Layout, err = parseLayout(lay); err != nil {
			return nil, fmt.Errorf("analytics: histogram %s: %w", key, err)
		}
	} else {
		d.Layout.Int = true // a histogram written by hand: integer fields
	}
	counts := map[string]int64{}
	for f, v := range raw {
		c, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("analytics: histogram %s: field %q holds %q, not a count", key, f, v)
		}
		counts[f] = c
		d.Total += c
	}
	addUnknown := func(f string, c int64) {
		if d.Unknown == nil {
			d.Unknown = map[string]int64{}
		}
		d.Unknown[f] = c
	}
	if d.Layout.Int {
		d.Kind = "int"
		for f, c := range counts {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				addUnknown(f, c)
				continue
			}
			d.Bins = append(d.Bins, HistogramBin{Label: f, Value: v, Count: c})
		}
		slices.SortFunc(d.Bins, func(a, b HistogramBin) int { return cmpInt(a.Value, b.Value) })
		return d, nil
	}
	d.Kind = "float"
	l := d.Layout.Float
	d.Bins = make([]HistogramBin, l.NumBins)
	labels := edgeLabels(l)
	for i := range d.Bins {
		d.Bins[i] = HistogramBin{Label: "[" + labels[i] + ", " + labels[i+1] + ")", Lo: l.Edge(i), Hi: l.Edge(i + 1)}
	}
	for f, c := range counts {
		switch f {
		case FieldUnderflow:
			d.Underflow = c
			continue
		case FieldOverflow:
			d.Overflow = c
			continue
		case FieldNaN:
			d.NaN = c
			continue
		}
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i >= l.NumBins {
			addUnknown(f, c)
			continue
		}
		d.Bins[i].Count = c
	}
	return d, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
