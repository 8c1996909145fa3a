package quant

import (
	"fmt"
	"math"
	"strings"
)

// OutlierFormat is how OLAQ stores the outliers.
type OutlierFormat int

const (
	// OutlierFP16 keeps outliers as IEEE binary16 (round to nearest even,
	// saturating at ±65504), as in the papers.
	OutlierFP16 OutlierFormat = iota
	// Outlier8 codes outliers in 8 bits over their own range [T, Max]:
	// signed tensors use a sign bit and a 7-bit magnitude code (128
	// levels), unsigned tensors an 8-bit magnitude code (256 levels);
	// magnitude T + c·(Max − T)/(levels − 1), c rounded half to even,
	// magnitudes above Max saturate. Max is the tensor's largest magnitude
	// (weights) or its tracked average per-batch maximum (activations).
	Outlier8
	// OutlierFP32 keeps outliers exactly (float32).
	OutlierFP32
)

var outlierNames = []string{"fp16", "int8", "fp32"}

func (f OutlierFormat) String() string {
	if f >= 0 && int(f) < len(outlierNames) {
		return outlierNames[f]
	}
	return fmt.Sprintf("OutlierFormat(%d)", int(f))
}

// Bits returns the storage bits of one outlier value.
func (f OutlierFormat) Bits() int {
	switch f {
	case Outlier8:
		return 8
	case OutlierFP32:
		return 32
	}
	return 16
}

// ParseOutlierFormat parses fp16 (or 16), int8 (or 8) and fp32 (or float,
// 32).
func ParseOutlierFormat(s string) (OutlierFormat, error) {
	switch strings.ToLower(s) {
	case "fp16", "16", "half":
		return OutlierFP16, nil
	case "int8", "8":
		return Outlier8, nil
	case "fp32", "32", "float":
		return OutlierFP32, nil
	}
	return 0, fmt.Errorf("quant: unknown outlier format %q (want fp16, int8 or fp32)", s)
}

// OLAQStats counts what Forward saw.
type OLAQStats struct {
	Elements, Nonzero, Outliers int64
}

// OutlierFraction returns outliers per element (the r of the storage cost).
func (s OLAQStats) OutlierFraction() float64 {
	if s.Elements == 0 {
		return 0
	}
	return float64(s.Outliers) / float64(s.Elements)
}

// NonzeroOutlierFraction returns outliers per non-zero element (the ratio
// the threshold targets).
func (s OLAQStats) NonzeroOutlierFraction() float64 {
	if s.Nonzero == 0 {
		return 0
	}
	return float64(s.Outliers) / float64(s.Nonzero)
}

// OLAQ is the outlier-aware quantizer of methods.md §4. Magnitudes ≥ T are
// outliers kept in high precision (Format); the rest is uniform with step
// Δ = T/m, m = 2^(b−1)−1 (Signed) or 2^b−1 (unsigned), y = sign(x)·
// round(|x|/Δ)·Δ with rounding half to even (ONNX Round) and the code
// clamped to m. Unsigned tensors map x < 0 to 0. Ratio = 0 means no
// outliers: T = max|x| and the grid saturates (plain uniform).
//
// Weights: Fit sets T from the tensor itself (refit after every update in
// fine-tuning). Activations: Observe tracks T (and Max) as an exponential
// moving average with decay Momentum of the per-batch values, initialized by
// the first batch; evaluation uses the tracked values.
type OLAQ struct {
	Bits     int
	Signed   bool
	Ratio    float64
	Format   OutlierFormat
	Momentum float64
	// T is the threshold; Max the largest magnitude (8-bit outlier range).
	T, Max float32
	// Batches counts the fits and observed batches; 0 means unfitted.
	Batches int
	// Stats accumulates over Forward calls (ResetStats clears it).
	Stats OLAQStats

	scratch []float32
}

// DefaultMomentum is the EMA decay of activation thresholds.
const DefaultMomentum = 0.99

// NewOLAQ validates the configuration and returns an unfitted quantizer.
func NewOLAQ(bits int, signed bool, ratio float64, format OutlierFormat) (*OLAQ, error) {
	scheme := Unsigned
	if signed {
		scheme = Symmetric
	}
	if err := CheckBits(bits, scheme); err != nil {
		return nil, fmt.Errorf("quant: OLAQ: %w", err)
	}
	if !(ratio >= 0 && ratio < 1) {
		return nil, fmt.Errorf("quant: OLAQ outlier ratio %v outside [0, 1)", ratio)
	}
	if format < OutlierFP16 || format > OutlierFP32 {
		return nil, fmt.Errorf("quant: OLAQ: unknown outlier format %d", int(format))
	}
	return &OLAQ{Bits: bits, Signed: signed, Ratio: ratio, Format: format, Momentum: DefaultMomentum}, nil
}

// m returns the largest inlier code.
func (q *OLAQ) m() int32 {
	if q.Signed {
		return int32(1)<<(q.Bits-1) - 1
	}
	return int32(1)<<q.Bits - 1
}

// OutlierThreshold returns the threshold T of x at ratio r: with nnz
// non-zero finite magnitudes and k = ⌈r·nnz⌉, T is the k-th largest of them
// (so exactly k are ≥ T when the values are distinct); T = max|x| when
// k = 0. It also returns max|x| and nnz. Zeros never count.
func OutlierThreshold(x []float32, r float64) (t, maxAbs float32, nnz int) {
	t, maxAbs, nnz, _ = outlierThreshold(x, r, false, nil)
	return t, maxAbs, nnz
}

// outlierThreshold is OutlierThreshold over |x| (or over the positive x
// only, for unsigned tensors), reusing scratch; it returns the buffer.
func outlierThreshold(x []float32, r float64, positive bool, scratch []float32) (t, maxAbs float32, nnz int, buf []float32) {
	buf = scratch[:0]
	for _, v := range x {
		if positive && v < 0 {
			continue
		}
		a := abs32(v)
		if a > 0 && !math.IsInf(float64(a), 1) && !math.IsNaN(float64(a)) {
			buf = append(buf, a)
			maxAbs = max(maxAbs, a)
		}
	}
	nnz = len(buf)
	k := int(math.Ceil(r*float64(nnz) - 1e-9))
	if k <= 0 || nnz == 0 {
		return maxAbs, maxAbs, nnz, buf
	}
	k = min(k, nnz)
	return selectKth(buf, nnz-k), maxAbs, nnz, buf
}

// selectKth returns the k-th smallest (0-based) of a, reordering a
// (iterative quickselect, median-of-three pivot).
func selectKth(a []float32, k int) float32 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}

// threshold computes the per-tensor T and max of x.
func (q *OLAQ) threshold(x []float32) (t, mx float32) {
	t, mx, _, q.scratch = outlierThreshold(x, q.Ratio, !q.Signed, q.scratch)
	return t, mx
}

// Fit sets T and Max from x directly (weights).
func (q *OLAQ) Fit(x []float32) {
	q.T, q.Max = q.threshold(x)
	q.Batches = 1
}

// Observe updates the tracked T and Max with one batch (activations):
// T ← Momentum·T + (1 − Momentum)·T_batch, the first batch sets them.
func (q *OLAQ) Observe(x []float32) {
	t, mx := q.threshold(x)
	if q.Batches == 0 {
		q.T, q.Max = t, mx
	} else {
		mom := float32(q.Momentum)
		q.T = mom*q.T + (1-mom)*t
		q.Max = mom*q.Max + (1-mom)*mx
	}
	q.Batches++
}

// outlier returns the stored value of an outlier magnitude a (≥ T).
func (q *OLAQ) outlier(a float32) float32 {
	switch q.Format {
	case OutlierFP16:
		return SaturateFloat16(a)
	case Outlier8:
		levels := float32(256)
		if q.Signed {
			levels = 128
		}
		if !(q.Max > q.T) {
			return q.T
		}
		step := (q.Max - q.T) / (levels - 1)
		c := min(max(RoundHalfEven((a-q.T)/step), 0), levels-1)
		return q.T + c*step
	}
	return a
}

// Forward quantizes x into y with the current T (x and y may alias) and
// adds to Stats.
func (q *OLAQ) Forward(x, y []float32) error {
	if len(x) != len(y) {
		return fmt.Errorf("quant: OLAQ forward: input has %d values, output %d", len(x), len(y))
	}
	if q.Batches == 0 {
		return fmt.Errorf("quant: OLAQ used before Fit or Observe (no threshold)")
	}
	m := q.m()
	delta := q.T / float32(m)
	outliers := q.Ratio > 0
	var nz, out int64
	for i, v := range x {
		if !q.Signed && v < 0 {
			v = 0
		}
		if v == 0 || math.IsNaN(float64(v)) {
			y[i] = 0
			continue
		}
		nz++
		a, sgn := abs32(v), signOf(v)
		if outliers && a >= q.T {
			out++
			y[i] = sgn * q.outlier(a)
			continue
		}
		if !(delta > 0) {
			y[i] = 0
			continue
		}
		c := min(RoundHalfEven(a/delta), float32(m))
		y[i] = sgn * c * delta
	}
	q.Stats.Elements += int64(len(x))
	q.Stats.Nonzero += nz
	q.Stats.Outliers += out
	return nil
}

// ResetStats clears the accumulated Stats.
func (q *OLAQ) ResetStats() { q.Stats = OLAQStats{} }

// Mask writes the straight-through mask: all ones for signed tensors, the
// ReLU mask (x > 0) for unsigned ones (negatives are flushed to 0).
func (q *OLAQ) Mask(x, m []float32) error {
	if q.Signed {
		if len(x) != len(m) {
			return fmt.Errorf("quant: OLAQ mask: input has %d values, mask %d", len(x), len(m))
		}
		for i := range m {
			m[i] = 1
		}
		return nil
	}
	return reluMask(x, m)
}

// Levels returns the dense (inlier) grid, ascending; outliers are off-grid.
func (q *OLAQ) Levels() []float32 {
	m := q.m()
	delta := q.T / float32(m)
	lo := int32(0)
	if q.Signed {
		lo = -m
	}
	lv := make([]float32, 0, m-lo+1)
	for c := lo; c <= m; c++ {
		lv = append(lv, float32(c)*delta)
	}
	return lv
}

// OutlierBitsPerElement is the storage cost b + r·(outlierBits + index
// bits) of methods.md §4.5 for a tensor of n elements addressed by a
// coordinate list: index bits = ⌈log2 n⌉ (at least 1).
func OutlierBitsPerElement(bits int, r float64, outlierBits, n int) float64 {
	idx := 1
	if n > 2 {
		idx = int(math.Ceil(math.Log2(float64(n))))
	}
	return float64(bits) + r*float64(outlierBits+idx)
}

// BitsPerElement returns the storage cost with the measured outlier
// fraction; n is the number of elements one coordinate list addresses (the
// weight tensor, or one sample's activation tensor).
func (q *OLAQ) BitsPerElement(n int) float64 {
	return OutlierBitsPerElement(q.Bits, q.Stats.OutlierFraction(), q.Format.Bits(), n)
}

// Describe summarizes the quantizer for a report table.
func (q *OLAQ) Describe() string {
	kind := "unsigned"
	if q.Signed {
		kind = "signed"
	}
	return fmt.Sprintf("olaq %s %db r=%.3g%% T=%.4g %s outliers (measured %.3g%%)",
		kind, q.Bits, 100*q.Ratio, q.T, q.Format, 100*q.Stats.OutlierFraction())
}
