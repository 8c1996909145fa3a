package report

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// palette colors the series of a chart, in order.
var palette = []string{"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f"}

const chartFont = `font-family="Helvetica, Arial, sans-serif" font-size="12"`

// esc escapes text for SVG/XML content and attribute values.
func esc(s string) string { return html.EscapeString(s) }

// Series is one line of a LineChart. Points whose X or Y is not finite
// are left out.
type Series struct {
	Name string
	X, Y []float64
}

// LineChart is a line chart with numeric axes. With XLabels, the X values
// are indices into XLabels and the axis is labelled with them.
type LineChart struct {
	Title, XLabel, YLabel string
	XLabels               []string
	Series                []Series
	// ZeroY includes 0 in the Y axis.
	ZeroY bool
}

// axis is a linear scale from data values to pixels.
type axis struct {
	lo, hi, step float64
}

// niceAxis returns a scale with round ticks, about n of them, covering
// [lo, hi].
func niceAxis(lo, hi float64, n int) axis {
	if !(hi > lo) {
		d := math.Max(math.Abs(lo)*0.1, 1)
		if lo == 0 && hi == 0 {
			d = 1
		}
		lo, hi = lo-d, hi+d
	}
	raw := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	return axis{lo: math.Floor(lo/step+1e-9) * step, hi: math.Ceil(hi/step-1e-9) * step, step: step}
}

// ticks are the axis's tick values.
func (a axis) ticks() []float64 {
	var t []float64
	for i := 0; ; i++ {
		v := a.lo + float64(i)*a.step
		if v > a.hi+a.step/2 {
			return t
		}
		t = append(t, v)
	}
}

// label formats a tick value with just the decimals its step needs.
func (a axis) label(v float64) string {
	d := max(0, int(-math.Floor(math.Log10(a.step)+1e-9)))
	s := strconv.FormatFloat(v, 'f', d, 64)
	if strings.Trim(s, "-0.") == "" {
		s = strings.TrimPrefix(s, "-")
	}
	return s
}

// pos maps v to [p0, p1].
func (a axis) pos(v, p0, p1 float64) float64 {
	return p0 + (v-a.lo)/(a.hi-a.lo)*(p1-p0)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// shorten cuts s to n runes with an ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// svgOpen starts an SVG element of the given size with a white background
// and a centered title.
func svgOpen(sb *strings.Builder, w, h float64, title string) {
	fmt.Fprintf(sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" %s role="img">`+"\n", w, h, w, h, chartFont)
	fmt.Fprintf(sb, `<title>%s</title>`+"\n", esc(title))
	fmt.Fprintf(sb, `<rect width="%g" height="%g" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(sb, `<text x="%g" y="20" font-size="14" text-anchor="middle">%s</text>`+"\n", w/2, esc(title))
}

// legend draws the series names in a column at (x, y).
func legend(sb *strings.Builder, x, y float64, names []string) {
	for i, n := range names {
		fmt.Fprintf(sb, `<rect x="%g" y="%g" width="12" height="12" fill="%s"/>`, x, y+float64(i)*18, palette[i%len(palette)])
		fmt.Fprintf(sb, `<text x="%g" y="%g">%s</text>`+"\n", x+18, y+float64(i)*18+11, esc(shorten(n, 24)))
	}
}

// SVG renders the chart. It never fails: a chart without finite points is
// drawn empty with a note.
func (c LineChart) SVG() string {
	const w, h, left, right, top = 720.0, 320.0, 64.0, 190.0, 34.0
	bottom := 48.0
	// Rotate category labels that would not fit side by side.
	longest := 0
	for _, l := range c.XLabels {
		longest = max(longest, len([]rune(shorten(l, 22))))
	}
	rotate := len(c.XLabels) > 0 && 7*float64(longest) > (w-left-right)/float64(len(c.XLabels))
	if rotate {
		bottom = 30 + 5.5*float64(longest)
	}
	height := h + bottom - 48
	x0, x1, y0, y1 := left, w-right, height-bottom, top
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	if c.ZeroY {
		ymin, ymax = 0, 0
	}
	points := 0
	for _, s := range c.Series {
		for i := range min(len(s.X), len(s.Y)) {
			if finite(s.X[i]) && finite(s.Y[i]) {
				xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
				ymin, ymax = math.Min(ymin, s.Y[i]), math.Max(ymax, s.Y[i])
				points++
			}
		}
	}
	var sb strings.Builder
	svgOpen(&sb, w, height, c.Title)
	if points == 0 {
		fmt.Fprintf(&sb, `<text x="%g" y="%g" text-anchor="middle" fill="#666">no data</text>`+"\n</svg>", w/2, height/2)
		return sb.String()
	}
	ya := niceAxis(ymin, ymax, 5)
	var xa axis
	if c.XLabels != nil {
		xa = axis{lo: -0.5, hi: float64(len(c.XLabels)) - 0.5, step: 1}
	} else {
		xa = niceAxis(xmin, xmax, 6)
		if xmin == xmax {
			xa = axis{lo: xmin - 1, hi: xmax + 1, step: 1}
		}
	}
	px := func(v float64) float64 { return xa.pos(v, x0, x1) }
	py := func(v float64) float64 { return ya.pos(v, y0, y1) }
	for _, t := range ya.ticks() {
		fmt.Fprintf(&sb, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#e3e3e3"/>`, x0, py(t), x1, py(t))
		fmt.Fprintf(&sb, `<text x="%g" y="%.1f" text-anchor="end" dy="4">%s</text>`+"\n", x0-6, py(t), ya.label(t))
	}
	if c.XLabels != nil {
		every := max(1, (len(c.XLabels)+39)/40)
		for i, l := range c.XLabels {
			if i%every != 0 {
				continue
			}
			x := px(float64(i))
			if rotate {
				fmt.Fprintf(&sb, `<text transform="translate(%.1f,%g) rotate(-60)" text-anchor="end" font-size="10">%s</text>`+"\n", x+3, y0+10, esc(shorten(l, 22)))
			} else {
				fmt.Fprintf(&sb, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, y0+18, esc(l))
			}
		}
	} else {
		for _, t := range xa.ticks() {
			fmt.Fprintf(&sb, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(t), y0+18, xa.label(t))
		}
	}
	fmt.Fprintf(&sb, `<polyline points="%g,%g %g,%g %g,%g" fill="none" stroke="#333"/>`+"\n", x0, y1, x0, y0, x1, y0)
	if c.XLabel != "" {
		fmt.Fprintf(&sb, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, height-8, esc(c.XLabel))
	}
	if c.YLabel != "" {
		fmt.Fprintf(&sb, `<text transform="translate(16,%g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (y0+y1)/2, esc(c.YLabel))
	}
	var names []string
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		names = append(names, s.Name)
		var pts []string
		for j := range min(len(s.X), len(s.Y)) {
			if finite(s.X[j]) && finite(s.Y[j]) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j])))
			}
		}
		if len(pts) == 0 {
			continue
		}
		fmt.Fprintf(&sb, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), color)
		if len(pts) <= 60 {
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&sb, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], color)
			}
			sb.WriteString("\n")
		}
	}
	legend(&sb, x1+16, y1+4, names)
	sb.WriteString("</svg>")
	return sb.String()
}

// Bars is one series of a BarChart: one value per category (NaN: no bar).
type Bars struct {
	Name   string
	Values []float64
}

// BarChart is a horizontal bar chart: one row per category, one bar per
// series in each row.
type BarChart struct {
	Title, ValueLabel string
	Categories        []string
	Series            []Bars
}

// SVG renders the chart.
func (c BarChart) SVG() string {
	const w, top, barH, gap = 720.0, 34.0, 11.0, 7.0
	longest := 4
	for _, l := range c.Categories {
		longest = max(longest, len([]rune(shorten(l, 36))))
	}
	left := math.Min(10+6.5*float64(longest), 250)
	right := 70.0
	if len(c.Series) > 1 {
		right = 170
	}
	ns := max(1, len(c.Series))
	rowH := float64(ns)*barH + gap
	height := top + 10 + float64(len(c.Categories))*rowH + 44
	vmin, vmax := 0.0, 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			if finite(v) {
				vmin, vmax = math.Min(vmin, v), math.Max(vmax, v)
			}
		}
	}
	var sb strings.Builder
	svgOpen(&sb, w, height, c.Title)
	va := niceAxis(vmin, vmax, 5)
	x0, x1 := left, w-right
	yTop, yBot := top+10, height-44
	px := func(v float64) float64 { return va.pos(v, x0, x1) }
	for _, t := range va.ticks() {
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#e3e3e3"/>`, px(t), yTop, px(t), yBot)
		fmt.Fprintf(&sb, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(t), yBot+16, va.label(t))
	}
	for i, cat := range c.Categories {
		y := yTop + float64(i)*rowH
		fmt.Fprintf(&sb, `<text x="%g" y="%.1f" text-anchor="end" font-size="11">%s<title>%s</title></text>`+"\n",
			x0-6, y+float64(ns)*barH/2+4, esc(shorten(cat, 36)), esc(cat))
		for j, s := range c.Series {
			if i >= len(s.Values) || !finite(s.Values[i]) {
				continue
			}
			v := s.Values[i]
			a, b := px(math.Min(0, v)), px(math.Max(0, v))
			by := y + float64(j)*barH
			fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%g" fill="%s"><title>%s %s: %s</title></rect>`,
				a, by, math.Max(b-a, 0.5), barH-1, palette[j%len(palette)], esc(cat), esc(s.Name), esc(formatValue(v)))
			fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" font-size="10">%s</text>`+"\n", b+3, by+barH-2, esc(formatValue(v)))
		}
	}
	fmt.Fprintf(&sb, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#333"/>`+"\n", px(0), yTop-4, px(0), yBot)
	if c.ValueLabel != "" {
		fmt.Fprintf(&sb, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (x0+x1)/2, height-8, esc(c.ValueLabel))
	}
	if len(c.Series) > 1 {
		var names []string
		for _, s := range c.Series {
			names = append(names, s.Name)
		}
		legend(&sb, x1+40, yTop, names)
	}
	sb.WriteString("</svg>")
	return sb.String()
}

// formatValue prints a bar's value with three significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}
