package quant

import "math"

// Quantizer is the common face of the quantizer types (Uniform, WEQ,
// LogQuant, OLAQ): what a graph quantizer op wraps and the per-layer report
// prints.
type Quantizer interface {
	// Forward writes the fake-quantized x into y (they may alias).
	Forward(x, y []float32) error
	// Mask writes the straight-through gradient mask for x: the backward
	// pass multiplies the output gradient by it.
	Mask(x, m []float32) error
	// Levels returns the representable values, ascending (for plots).
	Levels() []float32
	// Describe is a one-line summary of the levels or range.
	Describe() string
}

var (
	_ Quantizer = (*Uniform)(nil)
	_ Quantizer = (*WEQ)(nil)
	_ Quantizer = (*LogQuant)(nil)
	_ Quantizer = (*OLAQ)(nil)
)

// SQNR returns the signal-to-quantization-noise ratio 10·log10(Σ ref² /
// Σ (ref − q)²) in dB over the common prefix of ref and q. It is +Inf when
// the noise is zero (JSON writers must map it) and −Inf when the signal is
// zero but the noise is not.
func SQNR(ref, q []float32) float64 {
	var sig, noise float64
	for i := range min(len(ref), len(q)) {
		r := float64(ref[i])
		d := r - float64(q[i])
		sig += r * r
		noise += d * d
	}
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}
