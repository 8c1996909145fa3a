package models

import (
	"fmt"

	"lowbit/graph"
)

// basicBlock adds a ResNet basic block named prefix: conv1-bn1-relu1,
// conv2-bn2, a shortcut (identity, or shortcut.conv 1×1 + shortcut.bn when
// the stride or width changes), the explicit add node prefix.add and the
// final prefix.relu.
func (b *Builder) basicBlock(prefix string, x *graph.Value, out, stride int) *graph.Value {
	if !b.ok(x) {
		return nil
	}
	y := b.Conv(prefix+".conv1", x, out, 3, stride, 1, false)
	y = b.Act(prefix+".relu1", b.BN(prefix+".bn1", y), ReLU)
	y = b.BN(prefix+".bn2", b.Conv(prefix+".conv2", y, out, 3, 1, 1, false))
	sc := x
	if stride != 1 || x.Shape[1] != out {
		sc = b.ConvBN(prefix+".shortcut", x, out, 1, stride, 1, NoAct)
	}
	return b.Act(prefix+".relu", b.Add(prefix+".add", y, sc), ReLU)
}

// resNetCifar is ResNetCifar(depth) of the PyTorch reference: stem
// conv3×3-BN-ReLU with 16·w channels, three stages layer1..3 of
// (depth−2)/6 basic blocks with 16·w, 32·w, 64·w channels (the first
// block of stages 2 and 3 has stride 2), global average pool, flatten and
// the linear "logits".
func resNetCifar(depth int) builderFunc {
	return func(b *Builder, x *graph.Value, cfg Config) *graph.Value {
		n := (depth - 2) / 6
		w := scaled(16, cfg.Width)
		x = b.ConvBN("stem", x, w, 3, 1, 1, ReLU)
		for i, c := range []int{w, 2 * w, 4 * w} {
			for j := range n {
				stride := 1
				if j == 0 && i > 0 {
					stride = 2
				}
				x = b.basicBlock(fmt.Sprintf("layer%d.%d", i+1, j), x, c, stride)
			}
		}
		return b.Linear("logits", b.PoolFlatten(x), cfg.Classes)
	}
}

// buildResNet18 is torchvision's resnet18: stem conv7×7/2 (pad 3)-BN-ReLU
// and maxpool 3×3/2 (pad 1) named stem.maxpool — or, for small inputs, a
// conv3×3/1 stem without max pooling — then layer1..4 of two basic blocks
// with 64, 128, 256, 512 channels (times the width), strides 1, 2, 2, 2,
// global average pool, flatten and the linear "logits".
func buildResNet18(b *Builder, x *graph.Value, cfg Config) *graph.Value {
	w := scaled(64, cfg.Width)
	if cfg.small() {
		x = b.ConvBN("stem", x, w, 3, 1, 1, ReLU)
	} else {
		x = b.MaxPool("stem.maxpool", b.ConvBN("stem", x, w, 7, 2, 1, ReLU), 3, 2, 1)
	}
	for i, c := range []int{w, 2 * w, 4 * w, 8 * w} {
		for j := range 2 {
			stride := 1
			if j == 0 && i > 0 {
				stride = 2
			}
			x = b.basicBlock(fmt.Sprintf("layer%d.%d", i+1, j), x, c, stride)
		}
	}
	return b.Linear("logits", b.PoolFlatten(x), cfg.Classes)
}
