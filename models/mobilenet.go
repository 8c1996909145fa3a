package models

import (
	"fmt"

	"lowbit/graph"
)

// invertedResidual adds a MobileNet block named prefix: prefix.expand
// (1×1 ConvBN + act, absent when hidden equals the input width),
// prefix.dw (k×k depthwise ConvBN + act with the stride), optionally
// prefix.se (squeeze-excite to se channels, 0 for none), prefix.project
// (1×1 ConvBN, linear) and, when stride is 1 and the width is unchanged,
// the residual node prefix.add with inputs (branch, shortcut).
func (b *Builder) invertedResidual(prefix string, x *graph.Value, hidden, out, k, stride, se int, act Activation) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	in := x.Shape[1]
	y := x
	if hidden != in {
		y = b.ConvBN(prefix+".expand", y, hidden, 1, 1, 1, act)
	}
	y = b.ConvBN(prefix+".dw", y, hidden, k, stride, hidden, act)
	if se > 0 {
		y = b.SE(prefix+".se", y, se)
	}
	y = b.ConvBN(prefix+".project", y, out, 1, 1, 1, NoAct)
	if stride == 1 && in == out {
		y = b.Add(prefix+".add", y, x)
	}
	return y
}

// buildMobileNetV2 is MobileNetV2 with ReLU6, blocks named blocks.0 …
// blocks.16, a 1×1 ConvBN "head" to 1280 channels (more for width > 1),
// global average pool, flatten and the linear "logits". Channel counts are
// make_divisible(c·width, 8) as in torchvision; the expansion width is
// input·t. For large inputs the strides are torchvision's (stem 2; stages
// 1, 2, 2, 2, 1, 2, 1) and a Dropout(0.2) "dropout" precedes the classifier;
// the small-input form is MobileNetV2Small of the PyTorch reference: stem
// stride 1, the 24-channel stage stride 1 (total down-sampling 8) and no
// dropout.
func buildMobileNetV2(b *Builder, x *graph.Value, cfg Config) *graph.Value {
	b.LinearInit = Normal001Init
	w, small := cfg.Width, cfg.small()
	setting := [][4]int{{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2}, {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}}
	stemStride := 2
	if small {
		stemStride = 1
		setting[1][3] = 1
	}
	c := makeDivisible(32*w, 8)
	x = b.ConvBN("stem", x, c, 3, stemStride, 1, ReLU6)
	idx := 0
	for _, s := range setting {
		t, out := s[0], makeDivisible(float64(s[1])*w, 8)
		for j := range s[2] {
			stride := 1
			if j == 0 {
				stride = s[3]
			}
			x = b.invertedResidual(fmt.Sprintf("blocks.%d", idx), x, c*t, out, 3, stride, 0, ReLU6)
			c = out
			idx++
		}
	}
	x = b.PoolFlatten(b.ConvBN("head", x, makeDivisible(1280*max(1, w), 8), 1, 1, 1, ReLU6))
	if !small {
		x = b.Dropout("dropout", x, 0.2)
	}
	return b.Linear("logits", x, cfg.Classes)
}

// v3Block is one row of torchvision's MobileNetV3 table (before the
// width multiplier).
type v3Block struct {
	k, exp, out int
	se, hs      bool
	stride      int
}

// v3Arch is a MobileNetV3 variant: its block table and classifier width.
type v3Arch struct {
	blocks []v3Block
	last   int
}

var v3Large = v3Arch{last: 1280, blocks: []v3Block{
	{3, 16, 16, false, false, 1},
	{3, 64, 24, false, false, 2},
	{3, 72, 24, false, false, 1},
	{5, 72, 40, true, false, 2},
	{5, 120, 40, true, false, 1},
	{5, 120, 40, true, false, 1},
	{3, 240, 80, false, true, 2},
	{3, 200, 80, false, true, 1},
	{3, 184, 80, false, true, 1},
	{3, 184, 80, false, true, 1},
	{3, 480, 112, true, true, 1},
	{3, 672, 112, true, true, 1},
	{5, 672, 160, true, true, 2},
	{5, 960, 160, true, true, 1},
	{5, 960, 160, true, true, 1},
}}

var v3Small = v3Arch{last: 1024, blocks: []v3Block{
	{3, 16, 16, true, false, 2},
	{3, 72, 24, false, false, 2},
	{3, 88, 24, false, false, 1},
	{5, 96, 40, true, true, 2},
	{5, 240, 40, true, true, 1},
	{5, 240, 40, true, true, 1},
	{5, 120, 48, true, true, 1},
	{5, 144, 48, true, true, 1},
	{5, 288, 96, true, true, 2},
	{5, 576, 96, true, true, 1},
	{5, 576, 96, true, true, 1},
}}

// mobileNetV3 is torchvision's MobileNetV3 (BatchNorm epsilon 1e-3 as
// there; momentum 0.9 in ONNX terms, i.e. PyTorch's default 0.1 rather than
// torchvision's 0.01, which suits short runs): stem conv3×3/2 to 16
// channels with h-swish, the block table (ReLU or h-swish, squeeze-excite
// blocks.i.se with make_divisible(expanded/4, 8) channels), a 1×1 ConvBN
// "head" to 6× the last block width with h-swish, pool, flatten,
// classifier.fc (1024 or 1280 features) → classifier.hswish →
// classifier.dropout (0.2) → "logits". Channels are make_divisible(c·width,
// 8). The small-input form changes exactly two strides from 2 to 1: the
// stem's and the first stride-2 block's (blocks.0 in the small variant,
// blocks.1 in the large one), so the total down-sampling is 8 instead of 32.
func mobileNetV3(arch v3Arch) builderFunc {
	return func(b *Builder, x *graph.Value, cfg Config) *graph.Value {
		b.LinearInit = Normal001Init
		b.BNEpsilon = 1e-3
		w, small := cfg.Width, cfg.small()
		adj := func(c int) int { return makeDivisible(float64(c)*w, 8) }
		stemStride := 2
		if small {
			stemStride = 1
		}
		x = b.ConvBN("stem", x, adj(16), 3, stemStride, 1, HardSwish)
		firstDown := true
		for i, bl := range arch.blocks {
			stride := bl.stride
			if small && stride == 2 && firstDown {
				stride, firstDown = 1, false
			}
			act := ReLU
			if bl.hs {
				act = HardSwish
			}
			exp, se := adj(bl.exp), 0
			if bl.se {
				se = makeDivisible(float64(exp/4), 8)
			}
			x = b.invertedResidual(fmt.Sprintf("blocks.%d", i), x, exp, adj(bl.out), bl.k, stride, se, act)
		}
		x = b.ConvBN("head", x, 6*adj(arch.blocks[len(arch.blocks)-1].out), 1, 1, 1, HardSwish)
		x = b.Act("classifier.hswish", b.Linear("classifier.fc", b.PoolFlatten(x), adj(arch.last)), HardSwish)
		return b.Linear("logits", b.Dropout("classifier.dropout", x, 0.2), cfg.Classes)
	}
}
