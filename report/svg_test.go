package report

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
)

// svgTexts parses an SVG and returns the character data of its <text>
// elements (the labels as a reader sees them).
func svgTexts(t *testing.T, svg string) []string {
	t.Helper()
	checkXML(t, "chart", svg)
	var texts []string
	d := xml.NewDecoder(strings.NewReader(svg))
	inText := false
	for {
		tok, err := d.Token()
		if err != nil {
			return texts
		}
		switch e := tok.(type) {
		case xml.StartElement:
			inText = e.Name.Local == "text"
		case xml.EndElement:
			inText = false
		case xml.CharData:
			if inText {
				texts = append(texts, string(e))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestReportLineChartEscapesAndSkipsGaps(t *testing.T) {
	evil := `a<b & "c" 'd'`
	c := LineChart{Title: evil, XLabel: "epoch", YLabel: "loss",
		Series: []Series{{Name: evil, X: []float64{1, 2, 3, 4}, Y: []float64{0.5, math.NaN(), 0.25, math.Inf(1)}}, {Name: "empty"}}}
	svg := c.SVG()
	texts := svgTexts(t, svg)
	if !contains(texts, evil) {
		t.Errorf("label %q not in the chart's texts %q", evil, texts)
	}
	if strings.Contains(svg, "<b") || strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Errorf("unescaped label or non-finite coordinate in\n%s", svg)
	}
	// The two finite points make one polyline of two points.
	if n := strings.Count(svg, "<circle"); n != 2 {
		t.Errorf("%d points drawn, want 2", n)
	}
	for _, want := range []string{"0.25", "0.50", "epoch", "loss"} {
		if !contains(texts, want) {
			t.Errorf("no axis text %q in %q", want, texts)
		}
	}
	empty := LineChart{Title: "nothing"}.SVG()
	if !contains(svgTexts(t, empty), "no data") {
		t.Errorf("empty chart: %s", empty)
	}
}

func TestReportLineChartCategoryLabelsRotateWhenCrowded(t *testing.T) {
	labels := make([]string, 30)
	x, y := make([]float64, 30), make([]float64, 30)
	for i := range labels {
		labels[i] = "layer3.2.add&" + string(rune('a'+i%26))
		x[i], y[i] = float64(i), float64(i*i)
	}
	svg := LineChart{Title: "t", XLabels: labels, Series: []Series{{"s", x, y}}}.SVG()
	texts := svgTexts(t, svg)
	if !contains(texts, "layer3.2.add&c") || !strings.Contains(svg, "rotate(-60)") {
		t.Errorf("crowded category labels not all drawn rotated: %q", texts)
	}
	few := LineChart{Title: "t", XLabels: []string{"a", "b"}, Series: []Series{{"s", []float64{0, 1}, []float64{1, 2}}}}.SVG()
	if strings.Contains(few, "rotate(-60)") {
		t.Error("two short labels rotated")
	}
}

func TestReportBarChart(t *testing.T) {
	c := BarChart{Title: "SQNR", ValueLabel: "dB", Categories: []string{"conv<1>", "a very long layer name that is cut short in the chart"},
		Series: []Bars{{Name: "weights", Values: []float64{12.5, -3}}, {Name: "inputs", Values: []float64{math.NaN(), 7.25}}}}
	svg := c.SVG()
	texts := svgTexts(t, svg)
	for _, want := range []string{"conv<1>", "12.5", "-3.00", "7.25", "weights", "inputs", "dB"} {
		if !contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
	if n := strings.Count(svg, "<rect"); n != 1+3+2 { // background, three bars, two legend boxes
		t.Errorf("%d rects, want 6:\n%s", n, svg)
	}
	// The long name is cut in the label and complete in its tooltip.
	if !contains(texts, "a very long layer name that is cut …") || !strings.Contains(svg, "<title>a very long layer name that is cut short in the chart</title>") {
		t.Errorf("long category label: %q", texts)
	}
}

func TestReportNiceAxis(t *testing.T) {
	for _, c := range []struct {
		lo, hi          float64
		wantLo, wantHi  float64
		step            float64
		first, lastText string
	}{
		{0.753, 0.94, 0.75, 0.95, 0.05, "0.75", "0.95"},
		{0, 20002, 0, 25000, 5000, "0", "25000"},
		{-3, 12.5, -5, 15, 5, "-5", "15"},
		{5, 5, 4, 6, 0.5, "4.0", "6.0"},
	} {
		a := niceAxis(c.lo, c.hi, 5)
		ticks := a.ticks()
		if a.lo > c.lo || a.hi < c.hi || math.Abs(a.step-c.step) > 1e-9 {
			t.Errorf("niceAxis(%g, %g) = %+v, want step %g covering the range", c.lo, c.hi, a, c.step)
			continue
		}
		if math.Abs(a.lo-c.wantLo) > 1e-9 || math.Abs(a.hi-c.wantHi) > 1e-9 {
			t.Errorf("niceAxis(%g, %g) = [%g, %g], want [%g, %g]", c.lo, c.hi, a.lo, a.hi, c.wantLo, c.wantHi)
		}
		if a.label(ticks[0]) != c.first || a.label(ticks[len(ticks)-1]) != c.lastText {
			t.Errorf("niceAxis(%g, %g) ticks %v labelled %s…%s", c.lo, c.hi, ticks, a.label(ticks[0]), a.label(ticks[len(ticks)-1]))
		}
	}
}
