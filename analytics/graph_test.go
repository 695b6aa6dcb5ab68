package analytics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// usagovFile returns the whole 1.usa.gov recording when it is next to
// this checkout (../shared/data), else the repository's sample of it
// (data/usagov_sample.jsonl).
func usagovFile(t *testing.T) string {
	if f := os.Getenv("QUORUMQ_USAGOV_FILE"); f != "" {
		return f
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return ""
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	for _, rel := range []string{"../shared/data", "../../shared/data", "shared/data"} {
		p := filepath.Join(root, rel, "usagov_bitly_2012-03-16.jsonl")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p := filepath.Join(root, "data", "usagov_sample.jsonl")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

// smallSample is a hand-made stream: a heartbeat, a record without r, one
// with an empty r, repeated edges, a self-loop and a record without u.
const smallSample = `{"_heartbeat_": 1331923260}
{"a": "x", "r": "http://t.co/a", "u": "http://nasa.gov/1", "t": 1331923247}
{"r": "http://t.co/a", "u": "http://nasa.gov/1", "t": 1331923248}
{"r": "direct", "u": "http://nasa.gov/2", "t": 1331923249}
{"u": "http://nasa.gov/2", "t": 1331923250}
{"r": "", "u": "http://nasa.gov/1", "t": 1331923251}
{"r": "http://nasa.gov/1", "u": "http://nasa.gov/1", "t": 1331923252}
{"r": "http://t.co/b", "c": "US", "t": 1331923253}
{"r": "http://t.co/a", "u": "http://nasa.gov/3?x=[1]*", "t": 1331923254}
`

// clickLines returns the records of the shared sample, or smallSample.
func clickLines(t *testing.T) [][]byte {
	data := []byte(smallSample)
	if f := usagovFile(t); f != "" {
		var err error
		if data, err = os.ReadFile(f); err != nil {
			t.Fatal(err)
		}
		t.Logf("using %s", f)
	} else {
		t.Logf("shared 1.usa.gov file not found: using a small built-in sample")
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			lines = append(lines, bytes.Clone(sc.Bytes()))
		}
	}
	return lines
}

// expectedEdges counts edges straight from the records, independently of
// ParseClick: r (empty or missing: "direct") to u, for records with a u.
func expectedEdges(t *testing.T, lines [][]byte, undirected bool) map[[2]string]float64 {
	want := map[[2]string]float64{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatal(err)
		}
		u, _ := rec["u"].(string)
		if u == "" {
			continue
		}
		r, _ := rec["r"].(string)
		if r == "" {
			r = "direct"
		}
		want[[2]string{r, u}]++
		if undirected && r != u {
			want[[2]string{u, r}]++
		}
	}
	return want
}

// readGraph reads every edge of g through Nodes and Links.
func readGraph(t *testing.T, g *Graph) map[[2]string]float64 {
	ctx := testCtx(t)
	nodes, err := g.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]float64{}
	for _, n := range nodes {
		links, err := g.Links(ctx, n, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			got[[2]string{n, l.Node}] = l.Weight
		}
	}
	return got
}

func compareEdgeMaps(t *testing.T, got, want map[[2]string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d edges, want %d", len(got), len(want))
	}
	bad := 0
	for e, w := range want {
		if got[e] != w && bad < 10 {
			t.Errorf("edge %q -> %q: weight %v, want %v", e[0], e[1], got[e], w)
			bad++
		}
	}
}

// Test_ParseClick_Normalisation: r falls back to "direct", heartbeats and
// records without u are not clicks, garbage is an error.
func Test_ParseClick_Normalisation(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Edge
		err  error
	}{
		{`{"r": "http://a", "u": "http://b"}`, Edge{"http://a", "http://b"}, nil},
		{`{"u": "http://b"}`, Edge{"direct", "http://b"}, nil},
		{`{"r": "", "u": "http://b"}`, Edge{"direct", "http://b"}, nil},
		{` {"r": "direct", "u": "http://b"}` + "\n", Edge{"direct", "http://b"}, nil},
		{`{"_heartbeat_": 1331923260}`, Edge{}, ErrNotClick},
		{`{"r": "http://a", "u": ""}`, Edge{}, ErrNotClick},
	} {
		got, err := ParseClick([]byte(tc.in))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%s: %+v, %v", tc.in, got, err)
		}
	}
	for _, bad := range []string{"42", "not json", `{"u": 5}`} {
		if _, err := ParseClick([]byte(bad)); err == nil || errors.Is(err, ErrNotClick) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// Test_Graph_FromUsagovMatchesIndependentCount: the graph built from the
// 1.usa.gov records has exactly the edge weights counted straight from the
// file, directed and undirected, and the undirected one is symmetric.
func Test_Graph_FromUsagovMatchesIndependentCount(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	lines := clickLines(t)
	for _, undirected := range []bool{false, true} {
		prefix := "g" + strconv.FormatBool(undirected) + ":"
		g := NewGraph(rdb, prefix, undirected)
		g.DedupWindow = time.Hour
		var edges []Edge
		var ids []string
		for i, l := range lines {
			e, err := ParseClick(l)
			if errors.Is(err, ErrNotClick) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			edges = append(edges, e)
			ids = append(ids, "q/"+strconv.Itoa(i))
		}
		// Half through the pipeline, half through the batch script.
		half := len(edges) / 2
		if err := g.Add(ctx, edges[:half]); err != nil {
			t.Fatal(err)
		}
		for lo := half; lo < len(edges); lo += 300 {
			hi := min(lo+300, len(edges))
			if _, err := g.AddBatch(ctx, ids[lo:hi], edges[lo:hi]); err != nil {
				t.Fatal(err)
			}
		}
		got := readGraph(t, g)
		compareEdgeMaps(t, got, expectedEdges(t, lines, undirected))
		if undirected {
			for e, w := range got {
				if got[[2]string{e[1], e[0]}] != w {
					t.Errorf("asymmetric: %q->%q %v, reverse %v", e[0], e[1], w, got[[2]string{e[1], e[0]}])
				}
			}
		}
	}
}

// Test_Graph_Queries: strongest links, ranks, score ranges, the node list
// (with glob characters in names) and the global top edges.
func Test_Graph_Queries(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	g := NewGraph(rdb, "q[1]*:", false)
	var edges []Edge
	add := func(from, to string, n int) {
		for range n {
			edges = append(edges, Edge{from, to})
		}
	}
	add("A", "B", 5)
	add("A", "C", 1)
	add("A", "D", 9)
	add("C", "D", 7)
	add("D", "E", 9)
	if err := g.Add(ctx, edges); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "q[1]x:decoy", "1", 0) // matches an unescaped glob
	links, err := g.Links(ctx, "A", 2)
	if err != nil || len(links) != 2 || links[0] != (Link{"D", 9}) || links[1] != (Link{"B", 5}) {
		t.Fatalf("links %v, %v", links, err)
	}
	if r, ok, err := g.Rank(ctx, "A", "C"); err != nil || !ok || r != 2 {
		t.Fatalf("rank of C: %d %v %v", r, ok, err)
	}
	if _, ok, err := g.Rank(ctx, "A", "Z"); err != nil || ok {
		t.Fatalf("rank of Z: %v %v", ok, err)
	}
	rng, err := g.RangeByScore(ctx, "A", "2", "+inf", 0, false)
	if err != nil || len(rng) != 2 || rng[0] != (Link{"B", 5}) || rng[1] != (Link{"D", 9}) {
		t.Fatalf("range %v, %v", rng, err)
	}
	rng, err = g.RangeByScore(ctx, "A", "(1", "9", 1, true)
	if err != nil || len(rng) != 1 || rng[0] != (Link{"D", 9}) {
		t.Fatalf("range strongest first %v, %v", rng, err)
	}
	if w, _ := g.Weight(ctx, "C", "D"); w != 7 {
		t.Fatalf("weight %v", w)
	}
	nodes, err := g.Nodes(ctx)
	if err != nil || strings.Join(nodes, ",") != "A,C,D" {
		t.Fatalf("nodes %v, %v", nodes, err)
	}
	top, err := g.TopEdges(ctx, 3)
	if err != nil || len(top) != 3 || top[0] != (WeightedEdge{"A", "D", 9}) || top[1] != (WeightedEdge{"D", "E", 9}) || top[2] != (WeightedEdge{"C", "D", 7}) {
		t.Fatalf("top %v, %v", top, err)
	}
	if n, err := g.Reset(ctx); err != nil || n != 3 {
		t.Fatalf("reset %d, %v", n, err)
	}
	if rdb.Exists(ctx, "q[1]x:decoy").Val() != 1 {
		t.Fatal("reset deleted a key outside the graph")
	}
}

// Test_Graph_AddBatchSkipsMergedIDs: an undirected click redelivered
// within the window is counted once, in both directions.
func Test_Graph_AddBatchSkipsMergedIDs(t *testing.T) {
	rdb := mustRedis(t)
	ctx := testCtx(t)
	g := NewGraph(rdb, "gd:", true)
	g.DedupWindow = time.Minute
	e := []Edge{{"a", "b"}}
	for range 3 {
		if _, err := g.AddBatch(ctx, []string{"q/7"}, e); err != nil {
			t.Fatal(err)
		}
	}
	if w, _ := g.Weight(ctx, "a", "b"); w != 1 {
		t.Fatalf("a->b %v", w)
	}
	if w, _ := g.Weight(ctx, "b", "a"); w != 1 {
		t.Fatalf("b->a %v", w)
	}
}
