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
// a = softplus(α) the input range, c = softplus(γ) the output scale; for
// weights also of shape [C], one range and scale per output channel, C
// being axis 0 of X). The
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
	na, ng := tensor.Numel(in[1]), tensor.Numel(in[2])
	switch {
	case na == 1 && ng == 1:
	case q.Mode == DuQWeight && len(in[1]) == 1 && len(in[2]) == 1 && na == ng && len(in[0]) > 0 && in[0][0] == na:
		// Per output channel (axis 0 of the weight).
	default:
		return nil, fmt.Errorf("DuQ %s: alpha %v and gamma %v must be scalars, or (weights only) both of shape [%s] (one per output channel of weight %v)",
			q.Mode, in[1], in[2], dimName(in[0]), in[0])
	}
	return [][]int{in[0]}, nil
}

// dimName names axis 0 of shape s in messages.
func dimName(s []int) string {
	if len(s) == 0 {
		return "C"
	}
	return fmt.Sprint(s[0])
}

// duqChannels returns the number of channels of a DuQ whose range input is
// alpha (1 = per tensor) and the number of elements of x per channel.
func duqChannels(x, alpha *tensor.Tensor) (channels, inner int, err error) {
	channels = len(alpha.Data)
	if channels <= 1 {
		return 1, len(x.Data), nil
	}
	if len(x.Shape) == 0 || x.Shape[0] != channels {
		return 0, 0, fmt.Errorf("DuQ: %d per-channel ranges for input of shape %v", channels, x.Shape)
	}
	return channels, len(x.Data) / channels, nil
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

// Forward implements graph.Op. With α, γ of shape [C] (weights per
// output channel) channel k of x (axis 0) uses a_k, c_k.
func (q DuQ) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	channels, inner, err := duqChannels(x, in[1])
	if err != nil {
		return nil, err
	}
	y := c.Buffer(0, x.Shape...)
	if channels > 1 {
		for k := range channels {
			if _, _, err := q.checkedScales(in[1].Data[k], in[2].Data[k]); err != nil {
				return nil, fmt.Errorf("channel %d: %w", k, err)
			}
		}
		kernels.Parallel(channels, max(1, duqBlock/max(inner, 1)), func(lo, hi int) {
			for k := lo; k < hi; k++ {
				a, cs := q.Scales(in[1].Data[k], in[2].Data[k])
				q.forward(x.Data[k*inner:(k+1)*inner], y.Data[k*inner:(k+1)*inner], a, cs)
			}
		})
		return []*tensor.Tensor{y}, nil
	}
	a, cs, err := q.checkedScales(in[1].Data[0], in[2].Data[0])
	if err != nil {
		return nil, err
	}
	kernels.ParallelChunks(len(x.Data), duqBlock, func(b, e int) { q.forward(x.Data[b:e], y.Data[b:e], a, cs) })
	return []*tensor.Tensor{y}, nil
}

// checkedScales returns the range and scale, which must be positive.
func (q DuQ) checkedScales(alpha, gamma float32) (a, cs float32, err error) {
	a, cs = q.Scales(alpha, gamma)
	if !(a > 0) || !(cs > 0) {
		return 0, 0, fmt.Errorf("DuQ: range a=%v and scale c=%v must be positive (if training: the quantizer collapsed; lower the learning rate or check that the float model trains)", a, cs)
	}
	return a, cs, nil
}

// forward quantizes x into y with range a and scale cs.
func (q DuQ) forward(x, y []float32, a, cs float32) {
	s, off := q.steps(), q.offset()
	if q.noRound {
		for i, v := range x {
			u, _ := q.u(v, a)
			y[i] = cs*u - off
		}
		return
	}
	// The grid form of the ONNX export (duq_onnx.go), in the same float32
	// operations: code = clamp(round((x + off) / (a/s))), ŷ = code·(c/s) − off.
	stepIn, stepOut, lo := q.Steps(a, cs)
	for i, v := range x {
		k := float32(math.RoundToEven(float64((v + off) / stepIn)))
		switch {
		case k < lo:
			k = lo
		case k > s:
			k = s
		case k != k: // NaN
			k = 0
		}
		y[i] = float32(k*stepOut) - off
	}
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
	channels, inner, err := duqChannels(x, in[1])
	if err != nil {
		return nil, err
	}
	var dx *tensor.Tensor
	if c.Need(0) {
		dx = c.Buffer(1, x.Shape...)
	}
	var dAlpha, dGamma *tensor.Tensor
	if c.Need(1) {
		dAlpha = c.Buffer(2, in[1].Shape...)
	}
	if c.Need(2) {
		dGamma = c.Buffer(3, in[2].Shape...)
	}
	// put stores the range and scale gradients of channel k.
	put := func(k int, da, dc float64) {
		if dAlpha != nil {
			dAlpha.Data[k] = float32(da * sigmoid(float64(in[1].Data[k])))
		}
		if dGamma != nil {
			dGamma.Data[k] = float32(dc * sigmoid(float64(in[2].Data[k])))
		}
	}
	if channels > 1 {
		// One goroutine sums each channel in order: the result does not
		// depend on the number of goroutines.
		kernels.Parallel(channels, max(1, duqBlock/max(inner, 1)), func(lo, hi int) {
			for k := lo; k < hi; k++ {
				var dxk []float32
				if dx != nil {
					dxk = dx.Data[k*inner : (k+1)*inner]
				}
				a, cs := q.Scales(in[1].Data[k], in[2].Data[k])
				da, dc := q.backward(x.Data[k*inner:(k+1)*inner], dy.Data[k*inner:(k+1)*inner], dxk, a, cs)
				put(k, da, dc)
			}
		})
		return []*tensor.Tensor{dx, dAlpha, dGamma}, nil
	}
	a, cs := q.Scales(in[1].Data[0], in[2].Data[0])
	nb := (len(x.Data) + duqBlock - 1) / duqBlock
	// (da, dc) per block, kept in the context so steps do not allocate.
	sums, _ := c.Saved.([]float64)
	if cap(sums) < 2*nb {
		sums = make([]float64, 2*nb)
		c.Saved = sums
	}
	sums = sums[:2*nb]
	kernels.ParallelChunks(len(x.Data), duqBlock, func(b, e int) {
		var dxb []float32
		if dx != nil {
			dxb = dx.Data[b:e]
		}
		sums[2*(b/duqBlock)], sums[2*(b/duqBlock)+1] = q.backward(x.Data[b:e], dy.Data[b:e], dxb, a, cs)
	})
	var da, dc float64
	for j := range nb {
		da += sums[2*j]
		dc += sums[2*j+1]
	}
	put(0, da, dc)
	return []*tensor.Tensor{dx, dAlpha, dGamma}, nil
}

// backward writes the input gradient of one span of x into dx (nil: not
// needed) and returns the span's sums of ∂L/∂a and ∂L/∂c.
func (q DuQ) backward(x, dy, dx []float32, a, cs float32) (da, dc float64) {
	s := q.steps()
	for i, v := range x {
		u, clipped := q.u(v, a)
		g := dy[i]
		dc += float64(g * q.round(u, s))
		if clipped {
			if dx != nil {
				dx[i] = 0
			}
			continue
		}
		da -= float64(g * cs * u / a)
		if dx != nil {
			dx[i] = g * cs / a
		}
	}
	return da, dc
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

// DuQInitMethod selects how DuQ ranges start.
type DuQInitMethod string

const (
	// InitP95 is methods.md §6: a = c = 0.9·max|w| for weights and the
	// 95th percentile of the positive inputs for activations, whatever
	// the bit width.
	InitP95 DuQInitMethod = "p95"
	// InitMSE starts activation quantizers at a = c = the clipping point
	// that minimizes the mean squared quantization error at the
	// quantizer's bit width (DuQInitMSE): near the maximum at 8 bits,
	// tighter at 2–4 bits. Weights keep 0.9·max|w| (fitting their clip
	// by MSE lowered the accuracy before fine-tuning in a first try).
	InitMSE DuQInitMethod = "mse"
)

// ParseDuQInit parses "p95" (or "") and "mse".
func ParseDuQInit(s string) (DuQInitMethod, error) {
	switch s {
	case "", string(InitP95):
		return InitP95, nil
	case string(InitMSE):
		return InitMSE, nil
	}
	return "", fmt.Errorf("quant: unknown DuQ initialization %q (want p95 or mse)", s)
}

// duqMSESample bounds the values DuQInitMSE evaluates per candidate.
const duqMSESample = 1 << 16

// DuQInitMSE returns (α, γ) with a = c at the MSE-optimal clipping point of
// a bits-bit DuQ of the given mode on x: the candidates are k/100 of the
// largest value of the quantizer's domain (|w|, |x|, relu(x) or h + 3/8),
// k = 1…100; ties keep the larger range. More than 65,536 values are
// subsampled with a fixed stride.
func DuQInitMSE(mode DuQMode, bits int, x []float32) (alpha, gamma float32, err error) {
	if bits < 2 || bits > 16 {
		return 0, 0, fmt.Errorf("DuQ init: %d bits outside 2..16", bits)
	}
	if len(x) > duqMSESample {
		stride := (len(x) + duqMSESample - 1) / duqMSESample
		s := make([]float32, 0, len(x)/stride+1)
		for i := 0; i < len(x); i += stride {
			s = append(s, x[i])
		}
		x = s
	}
	m, err := duqDomainMax(mode, x)
	if err != nil {
		return 0, 0, err
	}
	q := DuQ{Mode: mode, Bits: bits}
	y := make([]float32, len(x))
	best, bestErr := m, math.Inf(1)
	for k := 100; k >= 1; k-- {
		a := float32(m * float64(k) / 100)
		if !(a > 0) {
			continue
		}
		q.forward(x, y, a, a)
		var se float64
		for i, v := range x {
			d := float64(y[i] - v)
			se += d * d
		}
		if se < bestErr {
			best, bestErr = float64(a), se
		}
	}
	p := float32(InvSoftplus(best))
	return p, p, nil
}

// DuQInitPerChannel returns the initial α, γ of a per-output-channel
// quantizer of x (channels along axis 0, len(x) a multiple of channels):
// for weights a = c = max|w| of each channel — not methods.md's per-tensor
// 0.9·max|w|, which applied to every channel clips each channel's largest
// weight by 10 % (a depthwise channel's centre tap among its 9) and cost
// MobileNetV3-small 15 points at 5-bit weights before fine-tuning (79.25
// against 94.35 %, docs/RESULTS.md) — and DuQInit on each channel's values
// otherwise. A channel without a positive range (all zeros) gets the
// per-tensor initialization of x.
func DuQInitPerChannel(mode DuQMode, x []float32, channels int) (alpha, gamma []float32, err error) {
	init := DuQInit
	if mode == DuQWeight {
		init = duqMaxInit
	}
	return duqInitChannels(init, mode, x, channels)
}

// duqInitChannels applies init to each channel of x, falling back to the
// whole tensor for channels init rejects.
func duqInitChannels(init func(DuQMode, []float32) (float32, float32, error), mode DuQMode, x []float32, channels int) (alpha, gamma []float32, err error) {
	if channels <= 0 || len(x)%channels != 0 {
		return nil, nil, fmt.Errorf("DuQ init: %d values do not split into %d channels", len(x), channels)
	}
	inner := len(x) / channels
	alpha, gamma = make([]float32, channels), make([]float32, channels)
	var fa, fg float32
	fallback := false
	for k := range channels {
		a, g, err := init(mode, x[k*inner:(k+1)*inner])
		if err != nil {
			if !fallback {
				if fa, fg, err = init(mode, x); err != nil {
					return nil, nil, err
				}
				fallback = true
			}
			a, g = fa, fg
		}
		alpha[k], gamma[k] = a, g
	}
	return alpha, gamma, nil
}
