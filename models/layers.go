package models

import (
	"fmt"
	"math"
	"math/rand"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// Activation selects the nonlinearity that follows a convolution or linear
// layer in the helpers below.
type Activation int

const (
	// NoAct adds no activation node.
	NoAct Activation = iota
	// ReLU is ops.Relu (node suffix "relu").
	ReLU
	// ReLU6 is ops.Clip{0, 6} (node suffix "relu6").
	ReLU6
	// HardSwish is ops.HardSwish (node suffix "hswish").
	HardSwish
)

// suffix is the last component of the activation node's name.
func (a Activation) suffix() string {
	switch a {
	case ReLU:
		return "relu"
	case ReLU6:
		return "relu6"
	case HardSwish:
		return "hswish"
	}
	return ""
}

func (a Activation) op() graph.Op {
	switch a {
	case ReLU:
		return ops.Relu{}
	case ReLU6:
		return ops.Clip{Min: 0, Max: 6}
	case HardSwish:
		return ops.HardSwish{}
	}
	return nil
}

// LinearInit selects how Builder.Linear initializes a layer.
type LinearInit int

const (
	// TorchDefaultInit is PyTorch's nn.Linear default: weight and bias
	// uniform in ±1/sqrt(fan_in) (ResNets, LeNet).
	TorchDefaultInit LinearInit = iota
	// Normal001Init is torchvision's MobileNet init: weight N(0, 0.01²), bias 0.
	Normal001Init
)

// Builder adds initialized layers to a graph under stable dotted names: a
// layer called "layer1.0.conv1" is a node of that name with parameters
// "layer1.0.conv1.weight" (and ".bias"); a BatchNorm "x.bn" has
// "x.bn.weight", "x.bn.bias", "x.bn.running_mean" and "x.bn.running_var".
// Helpers return nil once the graph has recorded an error (see
// graph.Graph.Err), so a builder can chain calls and check once at the end.
type Builder struct {
	G   *graph.Graph
	Rng *rand.Rand
	// BNEpsilon and BNMomentum configure every BatchNorm (ONNX momentum
	// convention: 0.9 is PyTorch's 0.1).
	BNEpsilon, BNMomentum float32
	// LinearInit is the initialization of Linear layers.
	LinearInit LinearInit
}

// NewBuilder returns a Builder on g whose initialization is seeded by seed,
// with BatchNorm epsilon 1e-5 and momentum 0.9 and PyTorch's default
// Linear initialization.
func NewBuilder(g *graph.Graph, seed int64) *Builder {
	return &Builder{G: g, Rng: graph.RNG(seed), BNEpsilon: 1e-5, BNMomentum: 0.9}
}

// ok reports whether building can continue with the given values.
func (b *Builder) ok(vs ...*graph.Value) bool {
	if b.G.Err() != nil {
		return false
	}
	for _, v := range vs {
		if v == nil {
			b.G.SetErr(fmt.Errorf("graph %s: layer input missing", b.G.Name))
			return false
		}
	}
	return true
}

// channels returns dimension 1 of x (the channel or feature count).
func (b *Builder) channels(name string, x *graph.Value) (int, bool) {
	if len(x.Shape) < 2 || x.Shape[1] < 1 {
		b.G.SetErr(fmt.Errorf("layer %s: input %s has shape %v, need [N, C, ...]", name, x.Name, x.Shape))
		return 0, false
	}
	return x.Shape[1], true
}

// Conv adds a k×k convolution with out channels, the given stride and
// groups, "same" padding (k−1)/2, and an optional bias. The weight
// [out, C/groups, k, k] is Kaiming-normal (fan_out, ReLU gain) as in
// torchvision; the bias starts at zero.
func (b *Builder) Conv(name string, x *graph.Value, out, k, stride, groups int, bias bool) *graph.Value {
	return b.ConvPad(name, x, out, k, stride, (k-1)/2, groups, bias)
}

// ConvPad is Conv with an explicit symmetric padding p.
func (b *Builder) ConvPad(name string, x *graph.Value, out, k, stride, p, groups int, bias bool) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	c, okc := b.channels(name, x)
	if !okc {
		return nil
	}
	if out < 1 || k < 1 || stride < 1 || p < 0 || groups < 1 || c%groups != 0 || out%groups != 0 {
		b.G.SetErr(fmt.Errorf("layer %s: invalid conv: %d→%d channels, kernel %d, stride %d, padding %d, groups %d", name, c, out, k, stride, p, groups))
		return nil
	}
	w := tensor.New(out, c/groups, k, k)
	w.RandNormal(b.Rng, math.Sqrt(2/float64(out*k*k)))
	in := []*graph.Value{x, b.G.AddParam(name+".weight", graph.Weight, w), nil}
	if bias {
		in[2] = b.G.AddParam(name+".bias", graph.Bias, tensor.New(out))
	} else {
		in = in[:2]
	}
	op := ops.Conv{StrideH: stride, StrideW: stride, PadT: p, PadL: p, PadB: p, PadR: p, DilH: 1, DilW: 1, Groups: groups}
	return b.G.Apply(name, op, in...)
}

// BN adds a BatchNorm over dimension 1 of x with weight 1, bias 0, running
// mean 0 and running variance 1.
func (b *Builder) BN(name string, x *graph.Value) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	c, okc := b.channels(name, x)
	if !okc {
		return nil
	}
	scale, rvar := tensor.New(c), tensor.New(c)
	scale.Fill(1)
	rvar.Fill(1)
	g := b.G
	return g.Apply(name, ops.BatchNorm{Epsilon: b.BNEpsilon, Momentum: b.BNMomentum}, x,
		g.AddParam(name+".weight", graph.BNScale, scale),
		g.AddParam(name+".bias", graph.BNBias, tensor.New(c)),
		g.AddParam(name+".running_mean", graph.BNMean, tensor.New(c)),
		g.AddParam(name+".running_var", graph.BNVar, rvar))
}

// Act adds the activation a as node name (x itself for NoAct).
func (b *Builder) Act(name string, x *graph.Value, a Activation) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	if a == NoAct {
		return x
	}
	return b.G.Apply(name, a.op(), x)
}

// ConvBN adds prefix.conv (bias-free), prefix.bn and, unless act is NoAct,
// the activation node prefix.relu / prefix.relu6 / prefix.hswish.
func (b *Builder) ConvBN(prefix string, x *graph.Value, out, k, stride, groups int, act Activation) *graph.Value {
	y := b.BN(prefix+".bn", b.Conv(prefix+".conv", x, out, k, stride, groups, false))
	return b.Act(prefix+"."+act.suffix(), y, act)
}

// Linear adds a fully connected layer as ops.Gemm{TransB: true} with
// weight [out, in] and bias [out] on a 2-D input, initialized according to
// b.LinearInit.
func (b *Builder) Linear(name string, x *graph.Value, out int) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	if len(x.Shape) != 2 || x.Shape[1] < 1 || out < 1 {
		b.G.SetErr(fmt.Errorf("layer %s: linear to %d features needs a [N, features] input, %s has shape %v", name, out, x.Name, x.Shape))
		return nil
	}
	in := x.Shape[1]
	w, bias := tensor.New(out, in), tensor.New(out)
	switch b.LinearInit {
	case Normal001Init:
		w.RandNormal(b.Rng, 0.01)
	default:
		bound := 1 / math.Sqrt(float64(in))
		w.RandUniform(b.Rng, -bound, bound)
		bias.RandUniform(b.Rng, -bound, bound)
	}
	g := b.G
	return g.Apply(name, ops.Gemm{TransB: true, Alpha: 1, Beta: 1}, x,
		g.AddParam(name+".weight", graph.Weight, w), g.AddParam(name+".bias", graph.Bias, bias))
}

// SE adds torchvision's squeeze-and-excitation block on x [N,C,H,W]:
// prefix.pool (GlobalAveragePool) → prefix.fc1 (1×1 conv with bias to
// squeeze channels) → prefix.relu → prefix.fc2 (1×1 conv with bias back to
// C) → prefix.hsigmoid (HardSigmoid 1/6, 0.5) → prefix.mul (x · scale).
func (b *Builder) SE(prefix string, x *graph.Value, squeeze int) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	c, okc := b.channels(prefix, x)
	if !okc {
		return nil
	}
	s := b.G.Apply(prefix+".pool", ops.GlobalAveragePool{}, x)
	s = b.Act(prefix+".relu", b.Conv(prefix+".fc1", s, squeeze, 1, 1, 1, true), ReLU)
	s = b.Conv(prefix+".fc2", s, c, 1, 1, 1, true)
	if !b.ok(s) {
		return nil
	}
	s = b.G.Apply(prefix+".hsigmoid", ops.HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}, s)
	if !b.ok(s) {
		return nil
	}
	return b.G.Apply(prefix+".mul", ops.Mul{}, x, s)
}

// Add adds the element-wise sum a + b as node name.
func (b *Builder) Add(name string, x, y *graph.Value) *graph.Value {
	if !b.ok(x, y) {
		return nil
	}
	return b.G.Apply(name, ops.Add{}, x, y)
}

// PoolFlatten adds the usual head on a feature map [N,C,H,W]: "pool"
// (GlobalAveragePool) and "flatten" (Flatten axis 1), returning [N, C].
func (b *Builder) PoolFlatten(x *graph.Value) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	x = b.G.Apply("pool", ops.GlobalAveragePool{}, x)
	if !b.ok(x) {
		return nil
	}
	return b.G.Apply("flatten", ops.Flatten{Axis: 1}, x)
}

// Dropout adds a Dropout node with the given ratio.
func (b *Builder) Dropout(name string, x *graph.Value, ratio float32) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	return b.G.Apply(name, ops.Dropout{Ratio: ratio}, x)
}

// MaxPool adds a k×k max pooling with the given stride and symmetric padding.
func (b *Builder) MaxPool(name string, x *graph.Value, k, stride, pad int) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	return b.G.Apply(name, ops.MaxPool{KH: k, KW: k, StrideH: stride, StrideW: stride, PadT: pad, PadL: pad, PadB: pad, PadR: pad}, x)
}
