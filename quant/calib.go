package quant

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// CalibMethod selects how an Observer turns the observed values into a range.
type CalibMethod int

const (
	// CalibMinMax uses the observed minimum and maximum.
	CalibMinMax CalibMethod = iota
	// CalibPercentile clips at a percentile of |x| (Symmetric), of
	// max(x, 0) (Unsigned) or at the two tails of x (Asymmetric).
	CalibPercentile
	// CalibMSE chooses the clip minimizing the quantization mean squared
	// error over the histogram.
	CalibMSE
	// CalibKL chooses the clip minimizing KL(P‖Q) between the reference
	// histogram and its quantized version (TensorRT / ONNX Runtime
	// entropy calibration).
	CalibKL
)

var calibNames = []string{"minmax", "percentile", "mse", "kl"}

func (m CalibMethod) String() string {
	if m >= 0 && int(m) < len(calibNames) {
		return calibNames[m]
	}
	return fmt.Sprintf("CalibMethod(%d)", int(m))
}

// ParseCalibMethod parses minmax, percentile, mse or kl (also "entropy").
func ParseCalibMethod(s string) (CalibMethod, error) {
	switch strings.ToLower(s) {
	case "minmax", "min-max", "max":
		return CalibMinMax, nil
	case "percentile", "pct":
		return CalibPercentile, nil
	case "mse":
		return CalibMSE, nil
	case "kl", "entropy":
		return CalibKL, nil
	}
	return 0, fmt.Errorf("quant: unknown calibrator %q (want minmax, percentile, mse or kl)", s)
}

// CalibConfig configures an Observer for a uniform quantizer.
type CalibConfig struct {
	Method CalibMethod
	// Scheme and Bits describe the target grid (used by MSE and KL and to
	// shape the returned range).
	Scheme Scheme
	Bits   int
	// Percentile in percent for CalibPercentile (default 99.99).
	Percentile float64
	// Bins of the histogram (default 2048, even, ≥ 16).
	Bins int
}

// DefaultBins is the histogram size of the histogram calibrators.
const DefaultBins = 2048

func (c *CalibConfig) normalize() error {
	if err := CheckBits(c.Bits, c.Scheme); err != nil {
		return err
	}
	if c.Method < CalibMinMax || c.Method > CalibKL {
		return fmt.Errorf("quant: unknown calibrator %d", int(c.Method))
	}
	if c.Percentile == 0 {
		c.Percentile = 99.99
	}
	if !(c.Percentile > 50 && c.Percentile <= 100) {
		return fmt.Errorf("quant: percentile %v outside (50, 100]", c.Percentile)
	}
	if c.Bins == 0 {
		c.Bins = DefaultBins
	}
	if c.Bins < 16 || c.Bins%2 != 0 || c.Bins > 1<<20 {
		return fmt.Errorf("quant: histogram bins %d must be even and in [16, 2^20]", c.Bins)
	}
	return nil
}

// Observer accumulates statistics over a stream of batches and returns the
// calibrated range. Observe skips non-finite values.
type Observer interface {
	// Observe adds a batch of values.
	Observe(x []float32)
	// Range returns the calibrated [lo, hi]: [−c, c] for Symmetric,
	// [0, c] for Unsigned, [lo, hi] for Asymmetric; (0, 0) before any
	// value was observed.
	Range() (lo, hi float32)
	// Clip returns max(|lo|, |hi|) of Range.
	Clip() float32
}

// NewObserver returns the observer for cfg: a min-max tracker or a
// histogram observer.
func NewObserver(cfg CalibConfig) (Observer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if cfg.Method == CalibMinMax {
		return &MinMaxObserver{Scheme: cfg.Scheme}, nil
	}
	return newHistObserver(cfg), nil
}

// Calibrate builds a Uniform quantizer from observers: one for a
// per-tensor quantizer, or one per output channel.
func (c CalibConfig) Calibrate(obs ...Observer) (*Uniform, error) {
	lo, hi := make([]float32, len(obs)), make([]float32, len(obs))
	for i, o := range obs {
		lo[i], hi[i] = o.Range()
	}
	return NewUniform(c.Bits, c.Scheme, lo, hi)
}

// CalibrateWeights calibrates a uniform quantizer on a weight tensor: per
// tensor when channels ≤ 1, else per output channel (w viewed as
// [channels, len/channels]).
func CalibrateWeights(w []float32, channels int, cfg CalibConfig) (*Uniform, error) {
	channels = max(channels, 1)
	if len(w) == 0 || len(w)%channels != 0 {
		return nil, fmt.Errorf("quant: %d weights do not split into %d channels", len(w), channels)
	}
	inner := len(w) / channels
	obs := make([]Observer, channels)
	for c := range obs {
		o, err := NewObserver(cfg)
		if err != nil {
			return nil, err
		}
		o.Observe(w[c*inner : (c+1)*inner])
		obs[c] = o
	}
	return cfg.Calibrate(obs...)
}

// MinMaxObserver tracks the minimum and maximum.
type MinMaxObserver struct {
	Scheme   Scheme
	Min, Max float32
	N        int64
}

// Observe implements Observer.
func (o *MinMaxObserver) Observe(x []float32) {
	for _, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if o.N == 0 {
			o.Min, o.Max = v, v
		}
		o.Min, o.Max = min(o.Min, v), max(o.Max, v)
		o.N++
	}
}

// Range implements Observer.
func (o *MinMaxObserver) Range() (lo, hi float32) { return shapeRange(o.Scheme, o.Min, o.Max) }

// Clip implements Observer.
func (o *MinMaxObserver) Clip() float32 { return clipOf(o.Range()) }

// shapeRange turns an observed [lo, hi] into the range of scheme.
func shapeRange(s Scheme, lo, hi float32) (float32, float32) {
	switch s {
	case Symmetric:
		a := max(abs32(lo), abs32(hi))
		return -a, a
	case Unsigned:
		return 0, max(hi, 0)
	}
	return lo, hi
}

func clipOf(lo, hi float32) float32 { return max(abs32(lo), abs32(hi)) }

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

// HistObserver accumulates a histogram for the percentile, MSE and KL
// calibrators.
//
// Symmetric observes |x| in Bins bins over [0, Top); Unsigned observes
// max(x, 0) in 2·Bins bins over [0, Top) (its grid has twice the levels
// over the range); Asymmetric observes x in 2·Bins bins over [−Top, Top)
// (Bins per side). So the histogram is 16× finer than an 8-bit grid, as in
// TensorRT's 2048-bin histogram for 128 quantized bins.
// Top is the smallest power of two above the largest magnitude seen: when a
// batch exceeds it, it doubles as often as needed and the old counts are
// merged in groups of 2^k, which is exact because the bin edges align (no
// value ever sits on the top edge). The resolution therefore stays within a
// factor 2 of a histogram over exactly the observed range.
// The exact minimum and maximum are tracked separately and bound every
// returned range.
type HistObserver struct {
	cfg      CalibConfig
	signed   bool
	Counts   []float64
	Top      float64
	Min, Max float32
	N        int64
	pending  float64 // zeros seen before Top was set
	// Zeros counts the inputs that map exactly to 0 (ReLU's zeros, and
	// every negative input of an Unsigned observer).
	Zeros  float64
	cached bool
	lo, hi float32
}

func newHistObserver(cfg CalibConfig) *HistObserver {
	signed := cfg.Scheme == Asymmetric
	nb := cfg.Bins
	if cfg.Scheme != Symmetric {
		nb *= 2
	}
	return &HistObserver{cfg: cfg, signed: signed, Counts: make([]float64, nb)}
}

// width returns the bin width.
func (o *HistObserver) width() float64 {
	if o.signed {
		return 2 * o.Top / float64(len(o.Counts))
	}
	return o.Top / float64(len(o.Counts))
}

// value maps an input to the histogram's domain.
func (o *HistObserver) value(v float32) float64 {
	switch o.cfg.Scheme {
	case Symmetric:
		return math.Abs(float64(v))
	case Unsigned:
		return math.Max(float64(v), 0)
	}
	return float64(v)
}

// Observe implements Observer.
func (o *HistObserver) Observe(x []float32) {
	o.cached = false
	var peak float64
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if o.N == 0 {
			o.Min, o.Max = v, v
		}
		o.Min, o.Max = min(o.Min, v), max(o.Max, v)
		o.N++
		peak = math.Max(peak, math.Abs(o.value(v)))
	}
	if peak > 0 {
		o.grow(peak)
	}
	nb := len(o.Counts)
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if o.Top == 0 {
			o.pending++ // all zeros so far
			o.Zeros++
			continue
		}
		d := o.value(v)
		if d == 0 {
			o.Zeros++
		}
		var i int
		if o.signed {
			i = int(math.Floor((d + o.Top) / o.width()))
		} else {
			i = int(d / o.width())
		}
		o.Counts[min(max(i, 0), nb-1)]++
	}
}

// grow makes the histogram cover peak.
func (o *HistObserver) grow(peak float64) {
	nb := len(o.Counts)
	if o.Top == 0 {
		_, e := math.Frexp(peak)
		o.Top = math.Ldexp(1, e) // smallest power of two > peak
		zero := 0
		if o.signed {
			zero = nb / 2
		}
		o.Counts[zero] += o.pending
		o.pending = 0
		return
	}
	k := 0
	for top := o.Top; top <= peak; top *= 2 {
		k++
	}
	if k == 0 {
		return
	}
	merged := make([]float64, nb)
	if k > 30 {
		// Everything seen so far is narrower than one new bin: collapse
		// it onto the bin holding 0 and restart the range at peak.
		var sum float64
		for _, c := range o.Counts {
			sum += c
		}
		zero := 0
		if o.signed {
			zero = nb / 2
		}
		merged[zero] = sum
		_, e := math.Frexp(peak)
		o.Counts, o.Top = merged, math.Ldexp(1, e)
		return
	}
	f := 1 << k
	off := 0
	if o.signed {
		off = nb / 2 * (f - 1) // old bin 0 sits this many old widths above the new origin
	}
	for i, c := range o.Counts {
		if c != 0 {
			merged[(off+i)/f] += c
		}
	}
	o.Counts = merged
	o.Top *= float64(f)
}

// Range implements Observer.
func (o *HistObserver) Range() (lo, hi float32) {
	if o.cached {
		return o.lo, o.hi
	}
	o.lo, o.hi = o.compute()
	o.cached = true
	return o.lo, o.hi
}

// Clip implements Observer.
func (o *HistObserver) Clip() float32 { return clipOf(o.Range()) }

func (o *HistObserver) compute() (float32, float32) {
	if o.N == 0 {
		return 0, 0
	}
	mlo, mhi := shapeRange(o.cfg.Scheme, o.Min, o.Max)
	if o.Top == 0 {
		return mlo, mhi
	}
	switch o.cfg.Method {
	case CalibPercentile:
		p := o.cfg.Percentile / 100
		if o.signed {
			return max(float32(o.quantile(1-p)), o.Min), min(float32(o.quantile(p)), o.Max)
		}
		return shapeRange(o.cfg.Scheme, 0, min(float32(o.quantile(p)), mhi))
	case CalibMSE:
		if o.signed {
			return o.mseAsymmetric()
		}
		return shapeRange(o.cfg.Scheme, 0, min(o.mseClip(), mhi))
	case CalibKL:
		c := o.klClip()
		if o.signed {
			return max(-c, min(o.Min, 0)), min(c, max(o.Max, 0))
		}
		return shapeRange(o.cfg.Scheme, 0, min(c, mhi))
	}
	return mlo, mhi
}

// quantile returns the value below which a fraction p of the histogram
// mass falls, interpolating linearly inside the bin.
func (o *HistObserver) quantile(p float64) float64 {
	var total float64
	for _, c := range o.Counts {
		total += c
	}
	w := o.width()
	origin := 0.0
	if o.signed {
		origin = -o.Top
	}
	target := p * total
	var cum float64
	for i, c := range o.Counts {
		if c > 0 && cum+c >= target {
			return origin + w*(float64(i)+(target-cum)/c)
		}
		cum += c
	}
	return origin + w*float64(len(o.Counts))
}

// occupied returns the index one past the last non-empty bin.
func occupied(counts []float64) int {
	n := len(counts)
	for n > 0 && counts[n-1] == 0 {
		n--
	}
	return n
}

// binMass is one non-empty bin: its centre and count.
type binMass struct{ v, n float64 }

// masses lists the non-empty bins with their centres.
func (o *HistObserver) masses() []binMass {
	w := o.width()
	origin := 0.0
	if o.signed {
		origin = -o.Top
	}
	var out []binMass
	for i, c := range o.Counts {
		if c > 0 {
			out = append(out, binMass{origin + w*(float64(i)+0.5), c})
		}
	}
	return out
}

// sqErr is the squared quantization error of the histogram (bin centres)
// under u.
func sqErr(u *Uniform, bins []binMass) float64 {
	qmin, qmax := u.QRange()
	s, zp := u.Scale[0], u.ZeroPoint[0]
	var e float64
	for _, b := range bins {
		x := float32(b.v)
		d := float64(x - float32(code(x, s, zp, qmin, qmax)-zp)*s)
		e += b.n * d * d
	}
	return e
}

// mseClip searches the clip c of a Symmetric / Unsigned grid among the
// upper bin edges up to the maximum (and the maximum itself), minimizing
// the squared error of the magnitude histogram; ties keep the smaller clip.
func (o *HistObserver) mseClip() float32 {
	bins := o.masses()
	w := o.width()
	_, top := shapeRange(o.cfg.Scheme, o.Min, o.Max)
	best, bestErr := top, math.Inf(1)
	try := func(c float32) {
		u, err := UniformFromRange(o.cfg.Bits, o.cfg.Scheme, -c, c)
		if err != nil {
			return
		}
		if e := sqErr(u, bins); e < bestErr {
			best, bestErr = c, e
		}
	}
	for i := 1; float64(i)*w < float64(top); i++ {
		try(float32(float64(i) * w))
	}
	try(top)
	return best
}

// mseAsymmetric searches [lo, hi] for the Asymmetric grid by coordinate
// descent from [min, max]: alternately the best hi for the current lo and
// the best lo for the current hi, each over the bin edges on its side of 0
// (plus the observed extreme), until neither moves (at most 8 rounds).
func (o *HistObserver) mseAsymmetric() (float32, float32) {
	bins := o.masses()
	w := o.width()
	lo, hi := min(o.Min, 0), max(o.Max, 0)
	cost := func(lo, hi float32) float64 {
		u, err := UniformFromRange(o.cfg.Bits, Asymmetric, lo, hi)
		if err != nil {
			return math.Inf(1)
		}
		return sqErr(u, bins)
	}
	// best1D scans candidates c (positive side: edges in (0, limit) and
	// limit itself; negative side mirrored) for the free end.
	best1D := func(limit float32, eval func(float32) float64) float32 {
		best, bestErr := limit, eval(limit)
		for i := 1; float64(i)*w < math.Abs(float64(limit)); i++ {
			c := float32(float64(i) * w)
			if limit < 0 {
				c = -c
			}
			if e := eval(c); e < bestErr {
				best, bestErr = c, e
			}
		}
		return best
	}
	for range 8 {
		nhi := best1D(max(o.Max, 0), func(c float32) float64 { return cost(lo, c) })
		nlo := best1D(min(o.Min, 0), func(c float32) float64 { return cost(c, nhi) })
		if nhi == hi && nlo == lo {
			break
		}
		lo, hi = nlo, nhi
	}
	return lo, hi
}

// klLevels is the number of quantized bins of the KL search: 2^(b−1) for
// the signed grids (TensorRT's 128 at 8 bits), 2^b for Unsigned.
func (o *HistObserver) klLevels() int {
	if o.cfg.Scheme == Unsigned {
		return 1 << o.cfg.Bits
	}
	return 1 << (o.cfg.Bits - 1)
}

// magnitudeHist returns the magnitude histogram and its bin width; an
// Asymmetric histogram is folded around 0 (Bins bins of the same width).
func (o *HistObserver) magnitudeHist() ([]float64, float64) {
	if !o.signed {
		return o.Counts, o.width()
	}
	nb := len(o.Counts)
	h := make([]float64, nb/2)
	for j := range h {
		h[j] = o.Counts[nb/2+j] + o.Counts[nb/2-1-j]
	}
	return h, o.width()
}

// klClip is the entropy calibration of TensorRT (Migacz, 2017) as ONNX
// Runtime implements it, on the magnitude histogram truncated after its
// last non-empty bin. For each candidate i = n..nb bins (n = klLevels):
// the reference P is bins [0, i) with the mass of the bins ≥ i added to
// bin i−1; Q merges bins [0, i) (without the folded outliers) into n groups
// of ⌊i/n⌋ bins (the last group takes the remainder) and spreads each
// group's mass evenly over its bins where P is non-zero. Both are smoothed
// as ONNX Runtime does (ε = 1e-4 moved onto empty bins) and the threshold
// i·width with the smallest KL(P‖Q) wins (ties: the smaller). With nb ≤ n
// the grid is already finer than the histogram and the maximum is returned.
//
// Exact zeros are left out of the histogram: every grid represents them
// without error, and after a ReLU they hold half the mass, which in bin 0
// would dominate the divergence (Q spreads a merged group's mass evenly)
// and drive the threshold to the smallest candidate (an 8-bit ReLU'd
// N(0,1) was clipped at 1.5σ; it is now clipped at a few σ).
func (o *HistObserver) klClip() float32 {
	mh, w := o.magnitudeHist()
	hist := slices.Clone(mh)
	hist[0] = max(hist[0]-o.Zeros, 0)
	nb := occupied(hist)
	top := float32(float64(nb) * w)
	n := o.klLevels()
	if nb <= n {
		return top
	}
	p := make([]float64, nb)
	q := make([]float64, nb)
	suffix := make([]float64, nb+1)
	for i := nb - 1; i >= 0; i-- {
		suffix[i] = suffix[i+1] + hist[i]
	}
	bestI, bestKL := nb, math.Inf(1)
	for i := n; i <= nb; i++ {
		copy(p[:i], hist[:i])
		p[i-1] += suffix[i]
		merged := i / n
		for j := range n {
			start, stop := j*merged, (j+1)*merged
			if j == n-1 {
				stop = i
			}
			var sum float64
			nz := 0
			for t := start; t < stop; t++ {
				sum += hist[t]
				if p[t] != 0 {
					nz++
				}
			}
			for t := start; t < stop; t++ {
				q[t] = 0
				if p[t] != 0 && nz > 0 {
					q[t] = sum / float64(nz)
				}
			}
		}
		if kl := klDivergence(p[:i], q[:i]); kl < bestKL {
			bestI, bestKL = i, kl
		}
	}
	return float32(float64(bestI) * w)
}

// klEps is ONNX Runtime's smoothing constant.
const klEps = 1e-4

// smooth moves ε of mass onto every empty bin, taking it evenly from the
// non-empty ones (ONNX Runtime's smooth_distribution); false if all bins
// are empty.
func smooth(d []float64) bool {
	zeros := 0
	for _, v := range d {
		if v == 0 {
			zeros++
		}
	}
	nonzeros := len(d) - zeros
	if nonzeros == 0 {
		return false
	}
	eps1 := klEps * float64(zeros) / float64(nonzeros)
	for i, v := range d {
		if v == 0 {
			d[i] = klEps
		} else {
			d[i] = math.Max(v-eps1, 1e-300)
		}
	}
	return true
}

// klDivergence returns KL(P‖Q) of the smoothed, normalized counts (p and q
// are modified); +Inf when either is empty.
func klDivergence(p, q []float64) float64 {
	if !smooth(p) || !smooth(q) {
		return math.Inf(1)
	}
	var sp, sq float64
	for i := range p {
		sp += p[i]
		sq += q[i]
	}
	var kl float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		kl += pi * math.Log(pi/qi)
	}
	return kl
}
