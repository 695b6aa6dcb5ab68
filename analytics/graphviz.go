package analytics

import (
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
)

// Formats of `quorumq analyze show graph --format`.
const (
	FormatText = "text"
	FormatJSON = "json"
	FormatDOT  = "dot"
	FormatSVG  = "svg"
)

// GraphFormats lists them, the default first.
var GraphFormats = []string{FormatText, FormatJSON, FormatDOT, FormatSVG}

// Edges returns the edges the report shows: the graph's top edges, or
// Node's strongest links.
func (r GraphReport) Edges() []WeightedEdge {
	if r.Node == "" {
		return r.Top
	}
	out := make([]WeightedEdge, len(r.Links))
	for i, l := range r.Links {
		out[i] = WeightedEdge{From: r.Node, To: l.Node, Weight: l.Weight}
	}
	return out
}

// dotQuote writes s as a DOT quoted string.
func dotQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// penWidth scales an edge's weight to a line width of 1 to 8.
func penWidth(w, max float64) float64 {
	if max <= 0 {
		return 1
	}
	return 1 + 7*w/max
}

// WriteDOT writes the report's edges as a Graphviz digraph (render it
// with `dot -Tsvg`): nodes are the referrers and targets, each edge
// labelled with its weight, its width following it.
func (r GraphReport) WriteDOT(w io.Writer) error {
	edges := r.Edges()
	var b strings.Builder
	name := r.Prefix
	if r.Node != "" {
		name += r.Node
	}
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontsize=10];\n  edge [color=\"#2b5797\"];\n", dotQuote(name))
	if r.Node != "" {
		fmt.Fprintf(&b, "  %s [style=\"rounded,filled\", fillcolor=\"#dbe5f3\"];\n", dotQuote(r.Node))
	}
	top := maxWeight(edges)
	for _, e := range edges {
		fmt.Fprintf(&b, "  %s -> %s [label=%s, weight=%s, penwidth=%.1f];\n",
			dotQuote(e.From), dotQuote(e.To), dotQuote(fmtWeight(e.Weight)), fmtWeight(math.Max(1, math.Round(e.Weight))), penWidth(e.Weight, top))
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func maxWeight(edges []WeightedEdge) float64 {
	m := 0.0
	for _, e := range edges {
		m = math.Max(m, e.Weight)
	}
	return m
}

// Layout of WriteSVG.
const (
	svgWidth     = 1000
	svgRowHeight = 22
	svgPad       = 24
	svgLabelMax  = 48
)

// WriteSVG draws the report's edges as a standalone SVG image: the
// referrers in a column on the left, the targets on the right (with
// Node, Node alone on the left), each edge a line whose width follows
// its weight, with the weight at its end. Labels longer than 48
// characters are shortened; the full names are in each element's
// <title>.
func (r GraphReport) WriteSVG(w io.Writer) error {
	edges := r.Edges()
	var left, right []string
	seenL, seenR := map[string]int{}, map[string]int{}
	for _, e := range edges {
		if _, ok := seenL[e.From]; !ok {
			seenL[e.From] = len(left)
			left = append(left, e.From)
		}
		if _, ok := seenR[e.To]; !ok {
			seenR[e.To] = len(right)
			right = append(right, e.To)
		}
	}
	rows := max(len(left), len(right), 1)
	height := 2*svgPad + rows*svgRowHeight + svgRowHeight
	lx, rx := 360.0, 640.0
	y := func(i, n int) float64 {
		// Each column is centred vertically.
		return float64(svgPad+svgRowHeight) + float64(rows-n)*svgRowHeight/2 + float64(i)*svgRowHeight + svgRowHeight/2
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n",
		svgWidth, height, svgWidth, height)
	b.WriteString(`<rect width="100%" height="100%" fill="#ffffff"/>` + "\n")
	title := fmt.Sprintf("graph %s: top %d edges", r.Prefix, len(edges))
	if r.Node != "" {
		title = fmt.Sprintf("%s: %d strongest links", r.Node, len(edges))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", svgPad, svgPad, xmlText(title))
	top := maxWeight(edges)
	for _, e := range edges {
		y1, y2 := y(seenL[e.From], len(left)), y(seenR[e.To], len(right))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#2b5797" stroke-opacity="0.5" stroke-width="%.1f"><title>%s</title></line>`+"\n",
			lx, y1, rx, y2, penWidth(e.Weight, top), xmlText(e.From+" -> "+e.To+": "+fmtWeight(e.Weight)))
	}
	for i, n := range left {
		writeSVGNode(&b, n, lx, y(i, len(left)), "end")
	}
	for i, n := range right {
		writeSVGNode(&b, n, rx, y(i, len(right)), "start")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSVGNode(b *strings.Builder, name string, x, y float64, anchor string) {
	label := name
	if r := []rune(label); len(r) > svgLabelMax {
		label = string(r[:svgLabelMax-1]) + "…"
	}
	dx := 8.0
	if anchor == "end" {
		dx = -8
	}
	fmt.Fprintf(b, `<g><title>%s</title><circle cx="%.0f" cy="%.1f" r="5" fill="#ffffff" stroke="#2b5797" stroke-width="2"/><text x="%.0f" y="%.1f" text-anchor="%s">%s</text></g>`+"\n",
		xmlText(name), x, y, x+dx, y+4, anchor, xmlText(label))
}

// xmlText escapes s for XML character data and attribute values.
func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
