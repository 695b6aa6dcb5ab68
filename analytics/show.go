package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/quorumq/quorumq/online"
)

// MomentsReport is the current state of a moments hash and the statistics
// derived from it. Undefined statistics (too few observations, zero
// variance) are nil, null in JSON.
type MomentsReport struct {
	Key                string   `json:"key"`
	N                  int64    `json:"n"`
	Mean               *float64 `json:"mean"`
	Variance           *float64 `json:"variance"`            // sample, M2/(n-1)
	VariancePopulation *float64 `json:"variance_population"` // M2/n
	StdDev             *float64 `json:"stddev"`              // sample
	Skewness           *float64 `json:"skewness"`            // population g1
	ExcessKurtosis     *float64 `json:"excess_kurtosis"`     // population g2
	M2                 float64  `json:"m2"`
	M3                 float64  `json:"m3"`
	M4                 float64  `json:"m4"`
}

// ReadMomentsReport reads the moments hash key.
func ReadMomentsReport(ctx context.Context, rdb redis.Cmdable, key string) (MomentsReport, error) {
	raw, err := ReadMoments(ctx, rdb, key)
	if err != nil {
		return MomentsReport{}, err
	}
	m, err := online.MomentsFromRaw(raw)
	if err != nil {
		return MomentsReport{}, err
	}
	opt := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	return MomentsReport{
		Key: key, N: raw.N, Mean: opt(m.Mean()), Variance: opt(m.VarianceSample()),
		VariancePopulation: opt(m.VariancePopulation()), StdDev: opt(m.StdDevSample()),
		Skewness: opt(m.Skewness()), ExcessKurtosis: opt(m.ExcessKurtosis()),
		M2: raw.M2, M3: raw.M3, M4: raw.M4,
	}, nil
}

// WriteText writes the report as aligned "name value" lines.
func (r MomentsReport) WriteText(w io.Writer) error {
	f := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'g', 10, 64)
	}
	_, err := fmt.Fprintf(w, "key              %s\nn                %d\nmean             %s\nvariance         %s  (sample; population %s)\nstddev           %s\nskewness         %s\nexcess kurtosis  %s\n",
		r.Key, r.N, f(r.Mean), f(r.Variance), f(r.VariancePopulation), f(r.StdDev), f(r.Skewness), f(r.ExcessKurtosis))
	return err
}

// WriteJSON writes v as one JSON line.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxFilledIntBins bounds the gaps an integer histogram's chart fills with
// empty rows (a wider span lists only the values seen).
const maxFilledIntBins = 200

// WriteHistogramChart draws d as horizontal bars, one row per bin, fitted
// to cols columns (at least 40): the label, the count and a bar scaled so
// that the largest count fills the row. An integer histogram whose span is
// at most 200 values shows the missing values as empty rows. Underflow,
// overflow and NaN rows follow a float histogram when they are not zero.
func WriteHistogramChart(w io.Writer, d *HistogramData, cols int) error {
	type row struct {
		label string
		count int64
	}
	var rows []row
	if d.Kind == "int" && len(d.Bins) > 0 {
		lo, hi := d.Bins[0].Value, d.Bins[len(d.Bins)-1].Value
		if hi-lo < maxFilledIntBins {
			counts := map[int64]int64{}
			for _, b := range d.Bins {
				counts[b.Value] = b.Count
			}
			for v := lo; v <= hi; v++ {
				rows = append(rows, row{strconv.FormatInt(v, 10), counts[v]})
			}
		} else {
			for _, b := range d.Bins {
				rows = append(rows, row{b.Label, b.Count})
			}
		}
	} else {
		for _, b := range d.Bins {
			rows = append(rows, row{b.Label, b.Count})
		}
	}
	for _, extra := range []row{{"underflow", d.Underflow}, {"overflow", d.Overflow}, {"nan", d.NaN}} {
		if extra.count > 0 {
			rows = append(rows, extra)
		}
	}
	fmt.Fprintf(w, "%s: %s, total %d\n", d.Key, d.Layout, d.Total)
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "(empty)")
		return err
	}
	labelW, countW := 0, 0
	var maxCount int64
	for _, r := range rows {
		labelW = max(labelW, len(r.label))
		countW = max(countW, len(strconv.FormatInt(r.count, 10)))
		maxCount = max(maxCount, r.count)
	}
	cols = max(cols, 40)
	labelW = min(labelW, cols/3)
	barW := max(cols-labelW-countW-3, 10)
	var b strings.Builder
	for _, r := range rows {
		label := r.label
		if len(label) > labelW {
			label = label[:labelW-1] + "…"
		}
		n := 0
		if maxCount > 0 {
			n = int(math.Round(float64(r.count) / float64(maxCount) * float64(barW)))
		}
		if n == 0 && r.count > 0 {
			n = 1 // a non-empty bin is never invisible
		}
		fmt.Fprintf(&b, "%*s %*d |%s\n", labelW, label, countW, r.count, strings.Repeat("#", n))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// GraphReport answers `analyze show graph`.
type GraphReport struct {
	Prefix string `json:"prefix"`
	// Nodes is the number of nodes with links (without Node).
	Nodes int `json:"nodes"`
	// Top are the heaviest edges of the graph (without Node).
	Top []WeightedEdge `json:"top,omitempty"`
	// Node, when asked, and its strongest links.
	Node  string `json:"node,omitempty"`
	Links []Link `json:"links,omitempty"`
	// Member's rank among Node's links (0 strongest) and its weight.
	Member string   `json:"member,omitempty"`
	Rank   *int64   `json:"rank,omitempty"`
	Weight *float64 `json:"weight,omitempty"`
}

// GraphQuery says what ReadGraphReport reads.
type GraphQuery struct {
	// Node selects one node; empty: the whole graph's top edges.
	Node string
	// Top is the number of links or edges, at least 1 (DefaultStoreConfig:
	// 10).
	Top int
	// Member, with Node, asks for its rank and weight.
	Member string
	// MinScore and MaxScore, with Node, select links by weight
	// (ZRANGEBYSCORE syntax; either may be empty for -inf/+inf), strongest
	// first, at most Top.
	MinScore, MaxScore string
}

// ReadGraphReport runs q against g.
func ReadGraphReport(ctx context.Context, g *Graph, q GraphQuery) (GraphReport, error) {
	if q.Top < 1 {
		return GraphReport{}, invalid(fmt.Errorf("top %d: want at least 1", q.Top))
	}
	r := GraphReport{Prefix: g.Prefix()}
	if q.Node == "" {
		nodes, err := g.Nodes(ctx)
		if err != nil {
			return r, err
		}
		r.Nodes = len(nodes)
		r.Top, err = g.TopEdges(ctx, q.Top)
		return r, err
	}
	r.Node = q.Node
	var err error
	if q.MinScore != "" || q.MaxScore != "" {
		lo, hi := q.MinScore, q.MaxScore
		if lo == "" {
			lo = "-inf"
		}
		if hi == "" {
			hi = "+inf"
		}
		r.Links, err = g.RangeByScore(ctx, q.Node, lo, hi, q.Top, true)
	} else {
		r.Links, err = g.Links(ctx, q.Node, q.Top)
	}
	if err != nil {
		return r, err
	}
	if q.Member != "" {
		r.Member = q.Member
		rank, ok, err := g.Rank(ctx, q.Node, q.Member)
		if err != nil {
			return r, err
		}
		if ok {
			w, err := g.Weight(ctx, q.Node, q.Member)
			if err != nil {
				return r, err
			}
			r.Rank, r.Weight = &rank, &w
		}
	}
	return r, nil
}

// WriteText writes the report as lines of "weight  from -> to".
func (r GraphReport) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Node == "" {
		fmt.Fprintf(&b, "graph %q: %d nodes; top %d edges:\n", r.Prefix, r.Nodes, len(r.Top))
		for _, e := range r.Top {
			fmt.Fprintf(&b, "%8s  %s -> %s\n", fmtWeight(e.Weight), e.From, e.To)
		}
	} else {
		fmt.Fprintf(&b, "%s: %d links\n", r.Node, len(r.Links))
		for _, l := range r.Links {
			fmt.Fprintf(&b, "%8s  -> %s\n", fmtWeight(l.Weight), l.Node)
		}
		if r.Member != "" {
			if r.Rank == nil {
				fmt.Fprintf(&b, "%s: no link\n", r.Member)
			} else {
				fmt.Fprintf(&b, "%s: rank %d (0 is the strongest), weight %s\n", r.Member, *r.Rank, fmtWeight(*r.Weight))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtWeight(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
