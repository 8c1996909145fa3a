package quant

import (
	"fmt"
	"math"
	"sort"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// DuQMode selects the form of a DuQ quantizer (methods.md §6).
type DuQMode int

const (
	// DuQWeight is ŵ = c·R_{n/2}(clip(w/a, −1, 1)): symmetric, 2^b − 1 levels.
	DuQWeight DuQMode = iota
	// DuQReLU is ŷ = c·R_n(clip(relu(x)/a, 0, 1)) for ReLU/ReLU6 outputs.
	DuQReLU
	// DuQHSwish is ŷ = c·R_n(clip((h + 3/8)/a, 0, 1)) − 3/8 for h-swish
	// outputs, whose minimum −3/8 becomes code 0.
	DuQHSwish
	// DuQSigned is ŷ = c·R_{n/2}(clip(x/a, −1, 1)) for signed activations.
	DuQSigned
)

var duqModeNames = []string{"weight", "relu", "hswish", "signed"}

func (m DuQMode) String() string {
	if m >= 0 && int(m) < len(duqModeNames) {
		return duqModeNames[m]
	}
	return fmt.Sprintf("DuQMode(%d)", int(m))
}

// ParseDuQMode parses weight, relu, hswish or signed.
func ParseDuQMode(s string) (DuQMode, error) {
	for i, n := range duqModeNames {
		if n == s {
			return DuQMode(i), nil
		}
	}
	return 0, fmt.Errorf("quant: unknown DuQ mode %q (want weight, relu, hswish or signed)", s)
}

// HSwishOffset is the magnitude of h-swish's minimum, −3/8.
const HSwishOffset = 0.375

// DuQ is the differentiable unified quantizer: inputs X, α and γ (scalars,
// a = softplus(α) the input range, c = softplus(γ) the output scale). The
// rounding uses the straight-through estimator; gradients are
// ∂ŷ/∂x = c/a inside the clip range and 0 outside, ∂ŷ/∂α = −c·u/a·σ(α)
// inside (u = x/a, or (h+3/8)/a) and 0 outside, ∂ŷ/∂γ = R(u)·σ(γ).
type DuQ struct {
	Mode DuQMode
	Bits int
	// noRound replaces R by the identity (tests check the STE gradients
	// against finite differences of this smooth surrogate).
	noRound bool
}

// Type implements graph.Op.
func (DuQ) Type() string { return "LowbitDuQ" }

// Levels returns the number of grid steps (n−1 or n/2−1) of R.
func (q DuQ) steps() float32 {
	n := 1 << q.Bits
	if q.Mode == DuQWeight || q.Mode == DuQSigned {
		return float32(n/2 - 1)
	}
	return float32(n - 1)
}

func (q DuQ) signed() bool { return q.Mode == DuQWeight || q.Mode == DuQSigned }

func (q DuQ) offset() float32 {
	if q.Mode == DuQHSwish {
		return HSwishOffset
	}
	return 0
}

// InferShapes implements graph.Op.
func (q DuQ) InferShapes(in [][]int) ([][]int, error) {
	if len(in) != 3 || in[0] == nil || in[1] == nil || in[2] == nil {
		return nil, fmt.Errorf("DuQ needs inputs X, alpha and gamma")
	}
	if q.Bits < 2 || q.Bits > 16 {
		return nil, fmt.Errorf("DuQ: %d bits outside 2..16", q.Bits)
	}
	if tensor.Numel(in[1]) != 1 || tensor.Numel(in[2]) != 1 {
		return nil, fmt.Errorf("DuQ: alpha %v and gamma %v must be scalars", in[1], in[2])
	}
	return [][]int{in[0]}, nil
}

// Softplus is log(1 + e^x), computed stably.
func Softplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// InvSoftplus is the inverse of Softplus (v > 0).
func InvSoftplus(v float64) float64 {
	if v > 20 {
		return v
	}
	return math.Log(math.Expm1(v))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// Scales returns a = softplus(α) and c = softplus(γ).
func (q DuQ) Scales(alpha, gamma float32) (a, c float32) {
	return float32(Softplus(float64(alpha))), float32(Softplus(float64(gamma)))
}

// u maps x into the clip domain and reports whether it was clipped.
func (q DuQ) u(x, a float32) (float32, bool) {
	u := (x + q.offset()) / a
	lo := float32(0)
	if q.signed() {
		lo = -1
	}
	switch {
	case u < lo:
		return lo, true
	case u > 1:
		return 1, true
	}
	return u, false
}

func (q DuQ) round(u, s float32) float32 {
	if q.noRound {
		return u
	}
	return float32(math.RoundToEven(float64(u*s))) / s
}

// Forward implements graph.Op.
func (q DuQ) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	a, cs := q.Scales(in[1].Data[0], in[2].Data[0])
	if !(a > 0) || !(cs > 0) {
		return nil, fmt.Errorf("DuQ: range a=%v and scale c=%v must be positive (if training: the quantizer collapsed; lower the learning rate or check that the float model trains)", a, cs)
	}
	y := c.Buffer(0, x.Shape...)
	s, off := q.steps(), q.offset()
	if q.noRound {
		kernels.ParallelChunks(len(x.Data), duqBlock, func(lo, hi int) {
			for i, v := range x.Data[lo:hi] {
				u, _ := q.u(v, a)
				y.Data[lo+i] = cs*u - off
			}
		})
		return []*tensor.Tensor{y}, nil
	}
	// The grid form of the ONNX export (duq_onnx.go), in the same float32
	// operations: code = clamp(round((x + off) / (a/s))), ŷ = code·(c/s) − off.
	stepIn, stepOut, lo := q.Steps(a, cs)
	kernels.ParallelChunks(len(x.Data), duqBlock, func(b, e int) {
		yd := y.Data[b:e]
		for i, v := range x.Data[b:e] {
			k := float32(math.RoundToEven(float64((v + off) / stepIn)))
			switch {
			case k < lo:
				k = lo
			case k > s:
				k = s
			case k != k: // NaN
				k = 0
			}
			yd[i] = float32(k*stepOut) - off
		}
	})
	return []*tensor.Tensor{y}, nil
}

// duqBlock is the number of elements per parallel chunk of DuQ's forward
// and backward passes. The backward pass sums its range and scale
// gradients per block and then over blocks in order, so the result does
// not depend on the number of goroutines.
const duqBlock = 16384

// Steps returns the input step a/s, the output step c/s and the lowest
// code (0, or −s for the symmetric modes) of the grid, s being the number
// of steps of R (n−1, or n/2−1 for the symmetric modes).
func (q DuQ) Steps(a, c float32) (stepIn, stepOut, lo float32) {
	s := q.steps()
	if q.signed() {
		lo = -s
	}
	return a / s, c / s, lo
}

// Backward implements graph.Op.
func (q DuQ) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy := in[0], dout[0]
	alpha, gamma := float64(in[1].Data[0]), float64(in[2].Data[0])
	a, cs := q.Scales(in[1].Data[0], in[2].Data[0])
	s := q.steps()
	var dx *tensor.Tensor
	if c.Need(0) {
		dx = c.Buffer(1, x.Shape...)
	}
	nb := (len(x.Data) + duqBlock - 1) / duqBlock
	// (da, dc) per block, kept in the context so steps do not allocate.
	sums, _ := c.Saved.([]float64)
	if cap(sums) < 2*nb {
		sums = make([]float64, 2*nb)
		c.Saved = sums
	}
	sums = sums[:2*nb]
	kernels.ParallelChunks(len(x.Data), duqBlock, func(b, e int) {
		var da, dc float64
		for i := b; i < e; i++ {
			u, clipped := q.u(x.Data[i], a)
			g := dy.Data[i]
			dc += float64(g * q.round(u, s))
			if clipped {
				if dx != nil {
					dx.Data[i] = 0
				}
				continue
			}
			da -= float64(g * cs * u / a)
			if dx != nil {
				dx.Data[i] = g * cs / a
			}
		}
		sums[2*(b/duqBlock)], sums[2*(b/duqBlock)+1] = da, dc
	})
	var da, dc float64
	for j := range nb {
		da += sums[2*j]
		dc += sums[2*j+1]
	}
	var dAlpha, dGamma *tensor.Tensor
	if c.Need(1) {
		dAlpha = c.Buffer(2, in[1].Shape...)
		dAlpha.Data[0] = float32(da * sigmoid(alpha))
	}
	if c.Need(2) {
		dGamma = c.Buffer(3, in[2].Shape...)
		dGamma.Data[0] = float32(dc * sigmoid(gamma))
	}
	return []*tensor.Tensor{dx, dAlpha, dGamma}, nil
}

// DuQInit returns the initial (α, γ) for a quantizer of the given mode:
// a = c = 0.9·max|w| for weights, and the 95th percentile of the positive
// inputs (of h + 3/8 for h-swish, of |x| for signed) for activations.
func DuQInit(mode DuQMode, x []float32) (alpha, gamma float32, err error) {
	var v float64
	if mode == DuQWeight {
		var m float32
		for _, w := range x {
			m = max(m, float32(math.Abs(float64(w))))
		}
		v = 0.9 * float64(m)
	} else {
		var pos []float64
		for _, e := range x {
			switch mode {
			case DuQHSwish:
				e += HSwishOffset
			case DuQSigned:
				e = float32(math.Abs(float64(e)))
			}
			if e > 0 {
				pos = append(pos, float64(e))
			}
		}
		if len(pos) > 0 {
			sort.Float64s(pos)
			v = pos[min(len(pos)-1, int(0.95*float64(len(pos))))]
		}
	}
	if !(v > 0) || math.IsInf(v, 0) {
		return 0, 0, fmt.Errorf("DuQ init: no positive range in %d values (max %v)", len(x), v)
	}
	p := float32(InvSoftplus(v))
	return p, p, nil
}
