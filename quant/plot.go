package quant

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// PlotData returns what a weight histogram of site shows: the weights
// (channel 0 only for per-channel quantizers, whose levels differ per
// channel), the quantizer's levels for them, the outlier threshold (OLAQ,
// else 0) and a subtitle.
func PlotData(s Site) (w, levels []float32, threshold float32, note string, err error) {
	f := s.Op
	if f.Spec.Role != WeightRole || s.Tensor.Param == nil || f.Q == nil {
		return nil, nil, 0, "", fmt.Errorf("%s is not a fitted weight quantizer", s.Node.Name)
	}
	data := s.Tensor.Param.Data
	w = data.Data
	perChannel := func(c int) {
		inner := len(w) / c
		w = w[:inner]
		note = fmt.Sprintf("channel 0 of %d", c)
	}
	switch q := f.Q.(type) {
	case *Uniform:
		if c := len(q.Scale); c > 1 && len(w)%c == 0 {
			perChannel(c)
		}
		levels = q.ChannelLevels(0)
	case *WEQ:
		levels = q.Levels()
		if c := len(q.Scales); q.PerChannel && c > 0 && len(w)%c == 0 {
			perChannel(c)
			for i := range levels {
				levels[i] *= q.Scales[0]
			}
		}
	case *OLAQ:
		levels = q.Levels()
		threshold = q.T
		note = fmt.Sprintf("dense grid below |w| < T = %.4g; %.2f%% outliers (%s)", q.T, 100*q.Stats.OutlierFraction(), q.Format)
	default:
		levels = f.Q.Levels()
	}
	if f.Baked {
		note += " (imported: weights already quantized)"
	}
	return w, levels, threshold, note, nil
}

// WeightHistogramSVG draws a histogram of w (80 bins) with the levels
// marked as vertical lines (and ±threshold dashed when non-zero) as a
// self-contained SVG document.
func WeightHistogramSVG(title, subtitle string, w, levels []float32, threshold float32) []byte {
	const (
		width, height      = 720.0, 320.0
		left, right        = 50.0, 20.0
		top, bottom        = 50.0, 40.0
		bins               = 80
		plotW, plotH       = width - left - right, height - top - bottom
		maxLines           = 300
		levelColor, tColor = "#d62728", "#1f77b4"
	)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range w {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	for _, v := range levels {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	if !(hi > lo) {
		lo, hi = lo-1, lo+1
		if math.IsInf(lo, 0) {
			lo, hi = -1, 1
		}
	}
	pad := (hi - lo) * 0.02
	lo, hi = lo-pad, hi+pad
	counts := make([]int, bins)
	peak := 1
	for _, v := range w {
		i := min(int((float64(v)-lo)/(hi-lo)*bins), bins-1)
		counts[max(i, 0)]++
		peak = max(peak, counts[max(i, 0)])
	}
	x := func(v float64) float64 { return left + (v-lo)/(hi-lo)*plotW }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="20" font-size="15">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(&b, `<text x="%g" y="38" fill="#555">%s</text>`+"\n", left, html.EscapeString(subtitle))
	bw := plotW / bins
	for i, c := range counts {
		if c == 0 {
			continue
		}
		h := float64(c) / float64(peak) * plotH
		fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="#999"/>`+"\n", left+float64(i)*bw, top+plotH-h, bw*0.92, h)
	}
	lv := slices.Compact(slices.Sorted(slices.Values(levels)))
	opacity := 0.9
	if len(lv) > 64 {
		opacity = 0.25
	}
	for i, v := range lv {
		if len(lv) > maxLines && i%(len(lv)/maxLines+1) != 0 {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.2f" y1="%g" x2="%.2f" y2="%g" stroke="%s" stroke-opacity="%g" stroke-width="1.2"/>`+"\n", x(float64(v)), top, x(float64(v)), top+plotH, levelColor, opacity)
	}
	if threshold > 0 {
		for _, t := range []float64{-float64(threshold), float64(threshold)} {
			if t > lo && t < hi {
				fmt.Fprintf(&b, `<line x1="%.2f" y1="%g" x2="%.2f" y2="%g" stroke="%s" stroke-dasharray="5,4" stroke-width="1.5"/>`+"\n", x(t), top, x(t), top+plotH, tColor)
			}
		}
	}
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top+plotH, left+plotW, top+plotH)
	for _, v := range []float64{lo + pad, 0, hi - pad} {
		if v < lo || v > hi {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.2f" y="%g" text-anchor="middle">%.3g</text>`+"\n", x(v), top+plotH+16, v)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end" fill="#555">%d weights, %d levels (red)</text>`+"\n", left+plotW, top+plotH+32, len(w), len(lv))
	b.WriteString("</svg>\n")
	return b.Bytes()
}
