package quant

import (
	"errors"
	"fmt"
	"math"
)

// Log-domain histogram geometry (methods.md §3.1): bin b holds the positive
// values with floor(16·log2 x) = b, i.e. x ∈ [2^(b/16), 2^((b+1)/16)). Bins
// are clamped to [LogMinBin, LogMaxBin), covering 2^−32 … 2^32; values
// outside land in the end bins.
const (
	LogBinsPerOctave = 16
	LogMinBin        = -32 * LogBinsPerOctave
	LogMaxBin        = 32 * LogBinsPerOctave
	logNumBins       = LogMaxBin - LogMinBin
)

// ErrNoPositive is returned by a log-domain search over data without a
// positive value; callers keep their previous parameters (training) or
// treat the tensor as constant zero.
var ErrNoPositive = errors.New("quant: no positive values for the log-domain quantizer")

// LogHistogram accumulates the 1/16-octave histogram of positive values over
// many batches, for calibration.
type LogHistogram struct {
	Counts   [logNumBins]int64
	Positive int64
}

// LogBin returns the clamped histogram bin floor(16·log2 x) of x > 0.
func LogBin(x float32) int {
	b := int(math.Floor(LogBinsPerOctave * math.Log2(float64(x))))
	return min(max(b, LogMinBin), LogMaxBin-1)
}

// Observe adds the positive, finite values of x.
func (h *LogHistogram) Observe(x []float32) {
	for _, v := range x {
		if v > 0 && !math.IsInf(float64(v), 1) {
			h.Counts[LogBin(v)-LogMinBin]++
			h.Positive++
		}
	}
}

// Reset clears the histogram.
func (h *LogHistogram) Reset() { *h = LogHistogram{} }

// LogQuant is the WEQ log-domain activation quantizer (methods.md §3): the
// levels are 0 and 2^((F + k·s)/16) for k = 0..L−2, with step s = 2H
// sixteenths of an octave (base 2^(s/16)).
//
// Forward: y = 0 for x ≤ 0; otherwise k = round((16·log2 x − F)/s), rounding
// half up (so level k takes the bins [F + k·s − H, F + k·s + H), exactly the
// bins the search assigned to it); y = 0 if k < 0, k saturates at L−2. It is
// evaluated by comparing x with the float32 thresholds 2^((F + k·s − H)/16),
// which equals the log-space rounding up to the float32 rounding of the
// thresholds and is what an ONNX export can reproduce bit for bit.
//
// Backward: the ReLU mask (STE), 1 for x > 0 and 0 otherwise, including the
// values flushed to 0 or saturated (Mask).
type LogQuant struct {
	// L is the level count including the zero level (≥ 2).
	L int
	// H is the half step in bins (1..16); the step is s = 2H.
	H int
	// F is the absolute bin of the lowest non-zero level 2^(F/16).
	F int
	// Score is the weighted entropy of the search that chose (H, F).
	Score float64

	thresh []float32 // thresh[k] = lower edge of level k
	values []float32 // values[k] = 2^((F + k·s)/16)
}

// NewLogQuant returns the quantizer with given parameters (e.g. stored
// calibration results).
func NewLogQuant(levels, h, f int) (*LogQuant, error) {
	if levels < 2 || levels > 1<<16 {
		return nil, fmt.Errorf("quant: log quantizer level count %d out of range [2, 65536]", levels)
	}
	if h < 1 || h > 16 {
		return nil, fmt.Errorf("quant: log quantizer half step %d out of range [1, 16]", h)
	}
	if f < 4*LogMinBin || f > 4*LogMaxBin {
		return nil, fmt.Errorf("quant: log quantizer offset %d out of range", f)
	}
	q := &LogQuant{L: levels, H: h, F: f}
	q.tables()
	return q, nil
}

func (q *LogQuant) tables() {
	n := q.L - 1
	q.thresh = make([]float32, n)
	q.values = make([]float32, n)
	s := q.Step()
	for k := range n {
		p := q.F + k*s
		q.thresh[k] = float32(math.Exp2(float64(p-q.H) / LogBinsPerOctave))
		q.values[k] = float32(math.Exp2(float64(p) / LogBinsPerOctave))
	}
}

// Step returns s = 2H in sixteenths of an octave.
func (q *LogQuant) Step() int { return 2 * q.H }

// Base returns 2^(s/16), the ratio of adjacent levels.
func (q *LogQuant) Base() float64 { return math.Exp2(float64(q.Step()) / LogBinsPerOctave) }

// FitLog searches (h, f) on one batch (training recomputes per batch).
func FitLog(x []float32, levels int) (*LogQuant, error) {
	var h LogHistogram
	h.Observe(x)
	return h.Search(levels)
}

// Search chooses (H, F) maximizing the weighted entropy S = −Σ_{k≥1} r_k P_k
// ln P_k, r_k = 2^(p_k/16), over h = 1..16 (outer loop) and f over the
// populated bins (inner loop, ascending); the first maximum wins. Level k
// (1-based) at p_k = f + (k−1)·2h collects bins [p_k − h, p_k + h), the top
// level everything from its lower edge up, and values below level 1's lower
// edge count for the zero level (they are not in S).
func (h *LogHistogram) Search(levels int) (*LogQuant, error) {
	if levels < 2 || levels > 1<<16 {
		return nil, fmt.Errorf("quant: log quantizer level count %d out of range [2, 65536]", levels)
	}
	if h.Positive == 0 {
		return nil, ErrNoPositive
	}
	// cum[i] = count of bins < i (index space), clamped lookups.
	var cum [logNumBins + 1]int64
	lo, hi := -1, -1
	for i, c := range h.Counts {
		cum[i+1] = cum[i] + c
		if c > 0 {
			if lo < 0 {
				lo = i
			}
			hi = i
		}
	}
	below := func(bin int) int64 { // count of values in absolute bins < bin
		i := min(max(bin-LogMinBin, 0), logNumBins)
		return cum[i]
	}
	total := float64(h.Positive)
	best := &LogQuant{L: levels, Score: math.Inf(-1)}
	for hh := 1; hh <= 16; hh++ {
		s := 2 * hh
		for f := lo + LogMinBin; f <= hi+LogMinBin; f++ {
			var score float64
			for k := 1; k < levels; k++ {
				p := f + (k-1)*s
				if p-hh > hi+LogMinBin {
					break // this and higher levels are empty
				}
				var c int64
				if k == levels-1 {
					c = h.Positive - below(p-hh)
				} else {
					c = below(p+hh) - below(p-hh)
				}
				if c == 0 {
					continue
				}
				pk := float64(c) / total
				score -= math.Exp2(float64(p)/LogBinsPerOctave) * pk * math.Log(pk)
			}
			if score > best.Score {
				best.H, best.F, best.Score = hh, f, score
			}
		}
	}
	best.tables()
	return best, nil
}

// level returns the output for x (see the type doc).
func (q *LogQuant) level(x float32) float32 {
	if !(x >= q.thresh[0]) { // also x ≤ 0 and NaN
		return 0
	}
	// k = max{k : x ≥ thresh[k]}
	return q.values[sortSearchFloat(q.thresh, x)-1]
}

// Forward quantizes x into y (x and y may alias).
func (q *LogQuant) Forward(x, y []float32) error {
	if len(x) != len(y) {
		return fmt.Errorf("quant: log forward: input has %d values, output %d", len(x), len(y))
	}
	if len(q.thresh) != q.L-1 || q.L < 2 {
		return fmt.Errorf("quant: log quantizer used before Search or NewLogQuant")
	}
	for i, v := range x {
		y[i] = q.level(v)
	}
	return nil
}

// Mask writes the backward mask: the ReLU mask 1 for x > 0, else 0.
func (q *LogQuant) Mask(x, m []float32) error { return reluMask(x, m) }

// reluMask writes 1 where x > 0 and 0 elsewhere.
func reluMask(x, m []float32) error {
	if len(x) != len(m) {
		return fmt.Errorf("quant: mask: input has %d values, mask %d", len(x), len(m))
	}
	for i, v := range x {
		m[i] = 0
		if v > 0 {
			m[i] = 1
		}
	}
	return nil
}

// Levels returns 0 and the L−1 positive levels, ascending.
func (q *LogQuant) Levels() []float32 {
	return append([]float32{0}, q.values...)
}

// Describe summarizes the quantizer for a report table.
func (q *LogQuant) Describe() string {
	if len(q.values) == 0 {
		return fmt.Sprintf("weq-log L=%d (unset)", q.L)
	}
	return fmt.Sprintf("weq-log L=%d base 2^(%d/16) levels 0,%.4g..%.4g", q.L, q.Step(), q.values[0], q.values[len(q.values)-1])
}
