package models

import (
	"lowbit/graph"
	"lowbit/ops"
)

// buildLeNet5 is LeNet-5 with BatchNorm after both (bias-free)
// convolutions: conv1 5×5→6 -bn1-relu1-pool1 (max 2×2), conv2 5×5→16
// -bn2-relu2-pool2, flatten, fc1 120-relu3, fc2 84-relu4 and the linear
// "logits". conv1 pads by 2 when the input is smaller than 32×32 (so
// 28×28 MNIST keeps the classic 32×32 geometry and a 16·5·5 feature
// vector) and not at all otherwise. The width multiplier scales 6, 16,
// 120 and 84.
func buildLeNet5(b *Builder, x *graph.Value, cfg Config) *graph.Value {
	w := cfg.Width
	pad := 0
	if cfg.H < 32 || cfg.W < 32 {
		pad = 2
	}
	y := b.ConvPad("conv1", x, scaled(6, w), 5, 1, pad, 1, false)
	y = b.MaxPool("pool1", b.Act("relu1", b.BN("bn1", y), ReLU), 2, 2, 0)
	y = b.ConvPad("conv2", y, scaled(16, w), 5, 1, 0, 1, false)
	y = b.MaxPool("pool2", b.Act("relu2", b.BN("bn2", y), ReLU), 2, 2, 0)
	if !b.ok(y) {
		return nil
	}
	y = b.G.Apply("flatten", ops.Flatten{Axis: 1}, y)
	y = b.Act("relu3", b.Linear("fc1", y, scaled(120, w)), ReLU)
	y = b.Act("relu4", b.Linear("fc2", y, scaled(84, w)), ReLU)
	return b.Linear("logits", y, cfg.Classes)
}
