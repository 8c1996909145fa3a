package sim

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// segments of the stacked energy chart, bottom to top.
var chartSegments = []struct {
	name, color string
	get         func(Breakdown) float64
}{
	{"DRAM", "#4e79a7", func(b Breakdown) float64 { return b.DRAM }},
	{"global buffer", "#f28e2b", func(b Breakdown) float64 { return b.Buffer }},
	{"local (RF, NoC)", "#59a14f", func(b Breakdown) float64 { return b.Local }},
	{"MAC dense", "#e15759", func(b Breakdown) float64 { return b.MACDense }},
	{"MAC outlier", "#b07aa1", func(b Breakdown) float64 { return b.MACOutlier }},
	{"static", "#9c755f", func(b Breakdown) float64 { return b.Static }},
}

// niceStep returns a round axis step giving about n ticks up to max.
func niceStep(max float64, n int) float64 {
	if max <= 0 {
		return 1
	}
	raw := max / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// WriteSVG draws a stacked bar chart of each design's total energy by
// component (µJ).
func (rep *Report) WriteSVG(w io.Writer) error {
	const (
		width, height              = 760.0, 440.0
		left, right, top, bottom   = 70.0, 170.0, 40.0, 60.0
		plotW, plotH               = width - left - right, height - top - bottom
		barFrac                    = 0.6
		fontFamily                 = "Helvetica, Arial, sans-serif"
		tickCount                  = 5
		legendBox, legendLineSpace = 12.0, 20.0
	)
	maxE := 0.0
	for _, r := range rep.Results {
		maxE = math.Max(maxE, r.Energy.Total()/1e6)
	}
	step := niceStep(maxE, tickCount)
	top2 := math.Max(step, math.Ceil(maxE/step)*step)
	y := func(v float64) float64 { return top + plotH - v/top2*plotH }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="%s" font-size="12">`+"\n",
		width, height, width, height, fontFamily)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	title := fmt.Sprintf("%s: energy per inference by component", rep.Network)
	if rep.Highway {
		title += " (precision highway)"
	}
	fmt.Fprintf(&sb, `<text x="%g" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", left+plotW/2, html.EscapeString(title))
	for v := 0.0; v <= top2+step/2; v += step {
		fmt.Fprintf(&sb, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, y(v), left+plotW, y(v))
		fmt.Fprintf(&sb, `<text x="%g" y="%.1f" text-anchor="end" dy="4">%g</text>`+"\n", left-6, y(v), v)
	}
	fmt.Fprintf(&sb, `<text transform="translate(18,%g) rotate(-90)" text-anchor="middle">energy (µJ)</text>`+"\n", top+plotH/2)
	n := float64(len(rep.Results))
	slot := plotW / math.Max(n, 1)
	for i, r := range rep.Results {
		x := left + float64(i)*slot + slot*(1-barFrac)/2
		base := 0.0
		for _, s := range chartSegments {
			v := s.get(r.Energy) / 1e6
			if v <= 0 {
				continue
			}
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.2f" fill="%s"><title>%s %s: %.1f µJ</title></rect>`+"\n",
				x, y(base+v), slot*barFrac, y(base)-y(base+v), s.color, html.EscapeString(r.Accel), s.name, v)
			base += v
		}
		fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11">%.0f</text>`+"\n", x+slot*barFrac/2, y(base)-4, base)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x+slot*barFrac/2, top+plotH+18, html.EscapeString(r.Accel))
	}
	fmt.Fprintf(&sb, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	ly := top + 10
	for i := len(chartSegments) - 1; i >= 0; i-- {
		s := chartSegments[i]
		fmt.Fprintf(&sb, `<rect x="%g" y="%g" width="%g" height="%g" fill="%s"/>`+"\n", left+plotW+20, ly, legendBox, legendBox, s.color)
		fmt.Fprintf(&sb, `<text x="%g" y="%g">%s</text>`+"\n", left+plotW+20+legendBox+6, ly+legendBox-1, s.name)
		ly += legendLineSpace
	}
	sb.WriteString("</svg>\n")
	_, err := io.WriteString(w, sb.String())
	return err
}
