package quant

import (
	"fmt"
	"math"
	"strings"
)

// Scheme selects the integer grid of a uniform quantizer (methods.md §1).
type Scheme int

const (
	// Symmetric is signed with zero point 0: codes [−m, m], m = 2^(b−1)−1,
	// values code·Δ. It needs b ≥ 2 (b = 1 would leave only the code 0).
	Symmetric Scheme = iota
	// Unsigned has zero point 0 and codes [0, 2^b−1]; negative inputs
	// quantize to 0.
	Unsigned
	// Asymmetric has codes [0, 2^b−1] and a zero point: value =
	// (code − zp)·Δ, exactly ONNX QuantizeLinear/DequantizeLinear with a
	// uint8 (b ≤ 8) or uint16 (b = 16) zero point.
	Asymmetric
)

var schemeNames = []string{"symmetric", "unsigned", "asymmetric"}

func (s Scheme) String() string {
	if s >= 0 && int(s) < len(schemeNames) {
		return schemeNames[s]
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// ParseScheme parses "symmetric" (or "sym"), "unsigned" and "asymmetric"
// (or "asym").
func ParseScheme(s string) (Scheme, error) {
	switch strings.ToLower(s) {
	case "symmetric", "sym":
		return Symmetric, nil
	case "unsigned", "uint":
		return Unsigned, nil
	case "asymmetric", "asym":
		return Asymmetric, nil
	}
	return 0, fmt.Errorf("quant: unknown scheme %q (want symmetric, unsigned or asymmetric)", s)
}

// CheckBits validates a bit width for scheme: 1–8 or 16 (Symmetric needs
// at least 2).
func CheckBits(bits int, scheme Scheme) error {
	if !(bits >= 1 && bits <= 8 || bits == 16) {
		return fmt.Errorf("quant: %d bits unsupported (want 1–8 or 16)", bits)
	}
	if scheme < Symmetric || scheme > Asymmetric {
		return fmt.Errorf("quant: unknown scheme %d", int(scheme))
	}
	if scheme == Symmetric && bits < 2 {
		return fmt.Errorf("quant: symmetric 1-bit has only the level 0; use unsigned, asymmetric or WEQ (L=2)")
	}
	return nil
}

// QRange returns the integer code range [qmin, qmax] of scheme at bits.
func QRange(bits int, scheme Scheme) (qmin, qmax int32) {
	if scheme == Symmetric {
		m := int32(1)<<(bits-1) - 1
		return -m, m
	}
	return 0, int32(1)<<bits - 1
}

// Uniform is a uniform quantizer with one (scale, zero point) per tensor or
// one per output channel (axis 0: the data is viewed as [C, len/C]).
//
// Quantization follows ONNX QuantizeLinear: q = clamp(RoundHalfEven(x/Δ) +
// zp, qmin, qmax) with x/Δ computed in float32; dequantization is
// (q − zp)·Δ in float32, as DequantizeLinear. Exporting a grid narrower
// than its ONNX storage type (b < 8, or the symmetric range [−m, m] inside
// int8) needs a Clip to [(qmin−zp)Δ, (qmax−zp)Δ] before QuantizeLinear,
// which gives the same codes. Storage types: Symmetric → int8 / int16;
// Unsigned and Asymmetric → uint8 / uint16.
type Uniform struct {
	Bits   int
	Scheme Scheme
	// Scale and ZeroPoint have one entry per tensor, or one per channel.
	Scale     []float32
	ZeroPoint []int32
}

// minScale replaces a degenerate (zero, denormal or non-finite) scale, as
// ONNX Runtime uses 1 for an empty range.
const minScale = 1.1754944e-38 // smallest normal float32

// NewUniform builds a quantizer from ranges: lo and hi have one entry for
// a per-tensor quantizer or one per output channel. Symmetric uses
// max(|lo|, |hi|); Unsigned uses [0, max(hi, 0)]; Asymmetric widens the
// range to contain 0 (so 0 is exact) and sets zp = RoundHalfEven(qmin −
// lo/Δ).
func NewUniform(bits int, scheme Scheme, lo, hi []float32) (*Uniform, error) {
	if err := CheckBits(bits, scheme); err != nil {
		return nil, err
	}
	if len(lo) != len(hi) || len(lo) == 0 {
		return nil, fmt.Errorf("quant: uniform range needs equal, non-empty lo/hi lists (got %d and %d)", len(lo), len(hi))
	}
	u := &Uniform{Bits: bits, Scheme: scheme, Scale: make([]float32, len(lo)), ZeroPoint: make([]int32, len(lo))}
	qmin, qmax := QRange(bits, scheme)
	for c := range lo {
		l, h := float64(lo[c]), float64(hi[c])
		if math.IsNaN(l) || math.IsNaN(h) || math.IsInf(l, 0) || math.IsInf(h, 0) || l > h {
			return nil, fmt.Errorf("quant: invalid range [%v, %v] for channel %d", lo[c], hi[c], c)
		}
		var scale float32
		var zp int32
		switch scheme {
		case Symmetric:
			scale = float32(math.Max(math.Abs(l), math.Abs(h)) / float64(qmax))
		case Unsigned:
			scale = float32(math.Max(h, 0) / float64(qmax))
		case Asymmetric:
			l, h = math.Min(l, 0), math.Max(h, 0)
			scale = float32((h - l) / float64(qmax-qmin))
			if scale >= minScale {
				z := math.RoundToEven(float64(qmin) - l/float64(scale))
				zp = int32(math.Max(float64(qmin), math.Min(float64(qmax), z)))
			}
		}
		if !(scale >= minScale) || math.IsInf(float64(scale), 0) {
			scale, zp = 1, 0
		}
		u.Scale[c], u.ZeroPoint[c] = scale, zp
	}
	return u, nil
}

// UniformFromRange is NewUniform for one per-tensor range.
func UniformFromRange(bits int, scheme Scheme, lo, hi float32) (*Uniform, error) {
	return NewUniform(bits, scheme, []float32{lo}, []float32{hi})
}

// QRange returns the quantizer's code range.
func (u *Uniform) QRange() (qmin, qmax int32) { return QRange(u.Bits, u.Scheme) }

// Channels returns the number of (scale, zero point) pairs: 1 per tensor.
func (u *Uniform) Channels() int { return len(u.Scale) }

// RoundHalfEven rounds to the nearest integer, ties to even (ONNX Round and
// QuantizeLinear rounding).
func RoundHalfEven(x float32) float32 { return float32(math.RoundToEven(float64(x))) }

// code quantizes one value with (scale, zp); NaN maps to zp.
func code(x, scale float32, zp, qmin, qmax int32) int32 {
	v := float64(x / scale)
	if math.IsNaN(v) {
		return zp
	}
	v = math.RoundToEven(v) + float64(zp)
	return int32(math.Max(float64(qmin), math.Min(float64(qmax), v)))
}

// split checks that n values split into the quantizer's channels and
// returns the per-channel length.
func (u *Uniform) split(n int) (int, error) {
	c := len(u.Scale)
	if c == 0 || len(u.ZeroPoint) != c {
		return 0, fmt.Errorf("quant: uniform quantizer has %d scales and %d zero points", c, len(u.ZeroPoint))
	}
	if n%c != 0 {
		return 0, fmt.Errorf("quant: %d values do not split into %d channels", n, c)
	}
	return n / c, nil
}

// Quantize writes the integer codes of x into q (for QDQ export).
func (u *Uniform) Quantize(x []float32, q []int32) error {
	if len(x) != len(q) {
		return fmt.Errorf("quant: quantize: %d values into %d codes", len(x), len(q))
	}
	inner, err := u.split(len(x))
	if err != nil {
		return err
	}
	qmin, qmax := u.QRange()
	for c, s := range u.Scale {
		zp := u.ZeroPoint[c]
		for i := c * inner; i < (c+1)*inner; i++ {
			q[i] = code(x[i], s, zp, qmin, qmax)
		}
	}
	return nil
}

// Dequantize writes (q − zp)·Δ into y.
func (u *Uniform) Dequantize(q []int32, y []float32) error {
	if len(y) != len(q) {
		return fmt.Errorf("quant: dequantize: %d codes into %d values", len(q), len(y))
	}
	inner, err := u.split(len(q))
	if err != nil {
		return err
	}
	for c, s := range u.Scale {
		zp := u.ZeroPoint[c]
		for i := c * inner; i < (c+1)*inner; i++ {
			y[i] = float32(q[i]-zp) * s
		}
	}
	return nil
}

// Forward fake-quantizes x into y (quantize then dequantize in float32,
// bit-identical to QuantizeLinear→DequantizeLinear); x and y may alias.
func (u *Uniform) Forward(x, y []float32) error {
	if len(x) != len(y) {
		return fmt.Errorf("quant: uniform forward: input has %d values, output %d", len(x), len(y))
	}
	inner, err := u.split(len(x))
	if err != nil {
		return err
	}
	qmin, qmax := u.QRange()
	for c, s := range u.Scale {
		zp := u.ZeroPoint[c]
		for i := c * inner; i < (c+1)*inner; i++ {
			y[i] = float32(code(x[i], s, zp, qmin, qmax)-zp) * s
		}
	}
	return nil
}

// Mask writes the straight-through gradient mask: 1 where x falls inside
// the grid (its unclamped code is within [qmin, qmax]), 0 where it is
// clipped, as PyTorch's fake_quantize.
func (u *Uniform) Mask(x, m []float32) error {
	if len(x) != len(m) {
		return fmt.Errorf("quant: uniform mask: input has %d values, mask %d", len(x), len(m))
	}
	inner, err := u.split(len(x))
	if err != nil {
		return err
	}
	qmin, qmax := u.QRange()
	for c, s := range u.Scale {
		zp := float64(u.ZeroPoint[c])
		for i := c * inner; i < (c+1)*inner; i++ {
			v := math.RoundToEven(float64(x[i]/s)) + zp
			m[i] = 0
			if v >= float64(qmin) && v <= float64(qmax) {
				m[i] = 1
			}
		}
	}
	return nil
}

// Levels returns the representable values of channel 0 (all of them for a
// per-tensor quantizer), ascending.
func (u *Uniform) Levels() []float32 { return u.ChannelLevels(0) }

// ChannelLevels returns the representable values of channel c, ascending
// (nil for an invalid channel).
func (u *Uniform) ChannelLevels(c int) []float32 {
	if c < 0 || c >= len(u.Scale) || c >= len(u.ZeroPoint) {
		return nil
	}
	qmin, qmax := u.QRange()
	lv := make([]float32, 0, qmax-qmin+1)
	for q := qmin; q <= qmax; q++ {
		lv = append(lv, float32(q-u.ZeroPoint[c])*u.Scale[c])
	}
	return lv
}

// Describe summarizes the quantizer for a report table.
func (u *Uniform) Describe() string {
	if len(u.Scale) == 0 {
		return fmt.Sprintf("uniform %s %db (unset)", u.Scheme, u.Bits)
	}
	qmin, qmax := u.QRange()
	if len(u.Scale) == 1 {
		lo := float32(qmin-u.ZeroPoint[0]) * u.Scale[0]
		hi := float32(qmax-u.ZeroPoint[0]) * u.Scale[0]
		return fmt.Sprintf("uniform %s %db Δ=%.4g [%.4g, %.4g]", u.Scheme, u.Bits, u.Scale[0], lo, hi)
	}
	smin, smax := u.Scale[0], u.Scale[0]
	for _, s := range u.Scale {
		smin, smax = min(smin, s), max(smax, s)
	}
	return fmt.Sprintf("uniform %s %db per-channel(%d) Δ∈[%.4g, %.4g]", u.Scheme, u.Bits, len(u.Scale), smin, smax)
}
