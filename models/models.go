package models

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"lowbit/graph"
	"lowbit/tensor"
)

// Config describes the data a model is built for.
type Config struct {
	InC, H, W int // input channels and spatial size
	Classes   int
	// Width multiplies every channel count (0 means 1). ResNets and LeNet
	// round to the nearest integer; MobileNets use torchvision's
	// make_divisible(·, 8).
	Width float64
	// Seed seeds the initialization.
	Seed int64
	// SmallInput selects the small-input form of resnet18 and the
	// MobileNets (no early down-sampling, see the builders). It is switched
	// on automatically when H ≤ 64 and W ≤ 64.
	SmallInput bool
}

// small reports whether the small-input form applies.
func (c Config) small() bool { return c.SmallInput || (c.H <= 64 && c.W <= 64) }

// check validates c and fills in defaults.
func (c Config) check() (Config, error) {
	switch {
	case c.InC < 1:
		return c, fmt.Errorf("input channels must be ≥ 1, got %d", c.InC)
	case c.H < 1 || c.W < 1:
		return c, fmt.Errorf("input size must be ≥ 1×1, got %d×%d", c.H, c.W)
	case c.Classes < 1:
		return c, fmt.Errorf("classes must be ≥ 1, got %d", c.Classes)
	case math.IsNaN(c.Width) || math.IsInf(c.Width, 0) || c.Width < 0:
		return c, fmt.Errorf("width multiplier must be a finite number ≥ 0, got %v", c.Width)
	}
	if c.Width == 0 {
		c.Width = 1
	}
	return c, nil
}

// scaled returns round(ch·w), at least 1 (ResNet and LeNet widths).
func scaled(ch int, w float64) int {
	return max(1, int(math.Round(float64(ch)*w)))
}

// makeDivisible is torchvision's _make_divisible(v, divisor): round to the
// nearest multiple of divisor (at least divisor) without dropping more
// than 10 %.
func makeDivisible(v float64, divisor int) int {
	n := max(divisor, int(v+float64(divisor)/2)/divisor*divisor)
	if float64(n) < 0.9*v {
		n += divisor
	}
	return n
}

type builderFunc func(b *Builder, x *graph.Value, cfg Config) *graph.Value

var registry = map[string]builderFunc{
	"lenet5":            buildLeNet5,
	"resnet20":          resNetCifar(20),
	"resnet32":          resNetCifar(32),
	"resnet56":          resNetCifar(56),
	"resnet18":          buildResNet18,
	"mobilenetv2":       buildMobileNetV2,
	"mobilenetv3-small": mobileNetV3(v3Small),
	"mobilenetv3-large": mobileNetV3(v3Large),
}

// Names returns the known model names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Build returns the named model for cfg: one input "input" [-1, InC, H, W]
// and one output "logits" [-1, Classes], with initialized parameters.
// Names are case-insensitive.
func Build(name string, cfg Config) (*graph.Graph, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	build, ok := registry[key]
	if !ok {
		return nil, fmt.Errorf("models: unknown model %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	cfg, err := cfg.check()
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", key, err)
	}
	g := graph.New(key)
	b := NewBuilder(g, cfg.Seed)
	out := build(b, g.Input("input", -1, cfg.InC, cfg.H, cfg.W), cfg)
	if out != nil {
		g.SetOutputs(out)
	}
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("models: build %s for %d×%d×%d input: %w", key, cfg.InC, cfg.H, cfg.W, err)
	}
	if out == nil || out.Name != "logits" || !tensor.SameShape(out.Shape, []int{-1, cfg.Classes}) {
		return nil, fmt.Errorf("models: build %s: output is not logits [-1, %d]", key, cfg.Classes)
	}
	g.Meta["lowbit.model"] = key
	g.Meta["lowbit.width"] = strconv.FormatFloat(cfg.Width, 'g', -1, 64)
	g.Meta["lowbit.small_input"] = strconv.FormatBool(cfg.small())
	g.Meta["lowbit.seed"] = strconv.FormatInt(cfg.Seed, 10)
	return g, nil
}
