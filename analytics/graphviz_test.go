package analytics

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// TestGraphReport_WriteDOTQuotesNamesAndWeighsEdges checks the Graphviz
// export: every edge once, names quoted and escaped, widths by weight.
func TestGraphReport_WriteDOTQuotesNamesAndWeighsEdges(t *testing.T) {
	rep := GraphReport{Prefix: "graph:", Top: []WeightedEdge{
		{From: "direct", To: "http://a/?q=\"x\"", Weight: 4},
		{From: `t.co\x`, To: "http://b", Weight: 1},
	}}
	var b bytes.Buffer
	if err := rep.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	want := "digraph \"graph:\" {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontsize=10];\n  edge [color=\"#2b5797\"];\n" +
		"  \"direct\" -> \"http://a/?q=\\\"x\\\"\" [label=\"4\", weight=4, penwidth=8.0];\n" +
		"  \"t.co\\\\x\" -> \"http://b\" [label=\"1\", weight=1, penwidth=2.8];\n}\n"
	if b.String() != want {
		t.Fatalf("DOT:\n%s\nwant:\n%s", b.String(), want)
	}
	rep = GraphReport{Prefix: "graph:", Node: "direct", Links: []Link{{Node: "http://a", Weight: 2}}}
	b.Reset()
	rep.WriteDOT(&b)
	if !strings.Contains(b.String(), "  \"direct\" -> \"http://a\" [label=\"2\"") || !strings.Contains(b.String(), "  \"direct\" [style=") {
		t.Fatalf("a node's links as DOT:\n%s", b.String())
	}
}

// TestGraphReport_WriteSVGIsWellFormedWithEveryNodeAndEdge checks the
// image export: valid XML, one line per edge, one circle per node, and
// names that are markup shown as text.
func TestGraphReport_WriteSVGIsWellFormedWithEveryNodeAndEdge(t *testing.T) {
	rep := GraphReport{Prefix: "graph:", Top: []WeightedEdge{
		{From: "direct", To: "http://a", Weight: 4},
		{From: "direct", To: "http://b", Weight: 2},
		{From: "<script>alert(1)</script>", To: "http://a", Weight: 1},
	}}
	var b bytes.Buffer
	if err := rep.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") {
		t.Fatalf("a name was written as markup:\n%s", b.String())
	}
	counts := map[string]int{}
	texts := ""
	d := xml.NewDecoder(&b)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			counts[tok.Name.Local]++
		case xml.CharData:
			texts += string(tok)
		}
	}
	if counts["svg"] != 1 || counts["line"] != 3 || counts["circle"] != 4 {
		t.Fatalf("elements %v: want 1 svg, 3 lines, 4 circles", counts)
	}
	if !strings.Contains(texts, "<script>alert(1)</script>") {
		t.Fatalf("the name is not shown as text: %q", texts)
	}
}
