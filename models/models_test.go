package models

import (
	"math"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

func mustBuild(t *testing.T, name string, cfg Config) *graph.Graph {
	t.Helper()
	g, err := Build(name, cfg)
	if err != nil {
		t.Fatalf("Build(%s, %+v): %v", name, cfg, err)
	}
	return g
}

func TestBuildAllModels(t *testing.T) {
	for _, name := range Names() {
		for _, cfg := range []Config{{InC: 1, H: 28, W: 28, Classes: 10}, {InC: 3, H: 32, W: 32, Classes: 7}} {
			g := mustBuild(t, name, cfg)
			if len(g.Inputs) != 1 || g.Inputs[0].Name != "input" || !tensor.SameShape(g.Inputs[0].Shape, []int{-1, cfg.InC, cfg.H, cfg.W}) {
				t.Errorf("%s: inputs %v", name, g.Inputs)
			}
			if len(g.Outputs) != 1 || g.Outputs[0].Name != "logits" || !tensor.SameShape(g.Outputs[0].Shape, []int{-1, cfg.Classes}) {
				t.Errorf("%s: output %s %v, want logits [-1 %d]", name, g.Outputs[0].Name, g.Outputs[0].Shape, cfg.Classes)
			}
			if _, err := g.TopoSort(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if g.Meta["lowbit.model"] != name {
				t.Errorf("%s: meta %v", name, g.Meta)
			}
		}
	}
}

// The reference counts are the trainable parameters of the PyTorch models
// (BatchNorm running statistics excluded), printed by
//
//	/usr/bin/python3 -c "import sys; sys.path.insert(0, '/work/shared/peers')
//	import torch.nn as nn, torchvision.models as tv; from torch_models import *
//	n = lambda m: sum(p.numel() for p in m.parameters())
//	print(n(ResNetCifar(20, 1, 10)), n(ResNetCifar(20, 3, 10)), n(ResNetCifar(32, 1, 10)),
//	      n(ResNetCifar(56, 3, 10)), n(ResNetCifar(20, 3, 10, width=32)),
//	      n(MobileNetV2Small(3, 10)), n(MobileNetV2Small(1, 10)),
//	      n(tv.mobilenet_v2()), n(tv.mobilenet_v2(width_mult=0.5)), n(tv.mobilenet_v2(width_mult=1.4)),
//	      n(tv.mobilenet_v3_small()), n(tv.mobilenet_v3_large()),
//	      n(tv.mobilenet_v3_small(width_mult=0.75, num_classes=10)), n(tv.mobilenet_v3_large(num_classes=10)),
//	      n(tv.resnet18()), n(tv.resnet18(num_classes=10)))
//	print(n(nn.Sequential(nn.Conv2d(1,6,5,padding=2,bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
//	      nn.Conv2d(6,16,5,bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
//	      nn.Linear(400,120), nn.ReLU(), nn.Linear(120,84), nn.ReLU(), nn.Linear(84,10))))
//	r = tv.resnet18(num_classes=10); r.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False); r.maxpool = nn.Identity()
//	print(n(r))"
//
// with torch 1.13 / torchvision 0.14.
func TestParamCountsMatchPyTorch(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want int
	}{
		{"resnet20", Config{InC: 1, H: 28, W: 28, Classes: 10}, 272186},
		{"resnet20", Config{InC: 3, H: 32, W: 32, Classes: 10}, 272474},
		{"resnet32", Config{InC: 1, H: 28, W: 28, Classes: 10}, 466618},
		{"resnet56", Config{InC: 3, H: 32, W: 32, Classes: 10}, 855770},
		{"resnet20", Config{InC: 3, H: 32, W: 32, Classes: 10, Width: 2}, 1084586},
		{"mobilenetv2", Config{InC: 3, H: 32, W: 32, Classes: 10}, 2236682},
		{"mobilenetv2", Config{InC: 1, H: 28, W: 28, Classes: 10}, 2236106},
		{"mobilenetv2", Config{InC: 3, H: 224, W: 224, Classes: 1000}, 3504872},
		{"mobilenetv2", Config{InC: 3, H: 224, W: 224, Classes: 1000, Width: 0.5}, 1968680},
		{"mobilenetv2", Config{InC: 3, H: 224, W: 224, Classes: 1000, Width: 1.4}, 6108776},
		{"mobilenetv3-small", Config{InC: 3, H: 224, W: 224, Classes: 1000}, 2542856},
		{"mobilenetv3-large", Config{InC: 3, H: 224, W: 224, Classes: 1000}, 5483032},
		{"mobilenetv3-small", Config{InC: 3, H: 32, W: 32, Classes: 10, Width: 0.75}, 892610},
		{"mobilenetv3-large", Config{InC: 3, H: 32, W: 32, Classes: 10}, 4214842},
		{"resnet18", Config{InC: 3, H: 224, W: 224, Classes: 1000}, 11689512},
		{"resnet18", Config{InC: 3, H: 32, W: 32, Classes: 10}, 11173962}, // conv1 → 3×3/1 conv, maxpool → Identity
		{"lenet5", Config{InC: 1, H: 28, W: 28, Classes: 10}, 61728},
	}
	for _, c := range cases {
		g := mustBuild(t, c.name, c.cfg)
		if got, _ := g.NumParams(); got != c.want {
			t.Errorf("%s %+v: %d trainable parameters, PyTorch has %d", c.name, c.cfg, got, c.want)
		}
	}
}

// spatial returns the H×W of the named value.
func spatial(t *testing.T, g *graph.Graph, name string) [2]int {
	t.Helper()
	v := g.Value(name)
	if v == nil || len(v.Shape) != 4 {
		t.Fatalf("%s: no 4-D value %q", g.Name, name)
	}
	return [2]int{v.Shape[2], v.Shape[3]}
}

func TestSmallInputStrides(t *testing.T) {
	cases := []struct {
		name, last string
		h          int
		small      bool
		want       int
	}{
		{"resnet18", "layer4.1.relu", 224, false, 7},
		{"resnet18", "layer4.1.relu", 32, false, 4}, // automatic: 32 ≤ 64
		{"resnet18", "layer4.1.relu", 96, true, 12},
		{"resnet18", "layer4.1.relu", 96, false, 3},
		{"mobilenetv2", "head.relu6", 224, false, 7},
		{"mobilenetv2", "head.relu6", 32, false, 4},
		{"mobilenetv3-small", "head.hswish", 224, false, 7},
		{"mobilenetv3-small", "head.hswish", 32, false, 4},
		{"mobilenetv3-large", "head.hswish", 224, false, 7},
		{"mobilenetv3-large", "head.hswish", 32, false, 4},
		{"resnet20", "layer3.2.relu", 32, false, 8},
	}
	for _, c := range cases {
		g := mustBuild(t, c.name, Config{InC: 3, H: c.h, W: c.h, Classes: 10, SmallInput: c.small})
		if got := spatial(t, g, c.last); got != [2]int{c.want, c.want} {
			t.Errorf("%s at %d (small %v): %s is %v, want %d×%d", c.name, c.h, c.small, c.last, got, c.want, c.want)
		}
	}
	// Exactly the documented strides change in the small-input MobileNetV3.
	small := mustBuild(t, "mobilenetv3-small", Config{InC: 3, H: 32, W: 32, Classes: 10})
	if got := spatial(t, small, "blocks.0.dw.conv"); got != [2]int{32, 32} {
		t.Errorf("mobilenetv3-small blocks.0 output %v, want 32×32", got)
	}
	large := mustBuild(t, "mobilenetv3-large", Config{InC: 3, H: 32, W: 32, Classes: 10})
	if got := spatial(t, large, "blocks.1.dw.conv"); got != [2]int{32, 32} {
		t.Errorf("mobilenetv3-large blocks.1 output %v, want 32×32", got)
	}
	if got := spatial(t, large, "blocks.3.dw.conv"); got != [2]int{16, 16} {
		t.Errorf("mobilenetv3-large blocks.3 output %v, want 16×16", got)
	}
	if g := mustBuild(t, "resnet18", Config{InC: 3, H: 224, W: 224, Classes: 10}); g.NodeByName("stem.maxpool") == nil {
		t.Error("resnet18 at 224: no stem.maxpool")
	}
	if g := mustBuild(t, "resnet18", Config{InC: 3, H: 32, W: 32, Classes: 10}); g.NodeByName("stem.maxpool") != nil {
		t.Error("resnet18 at 32: small-input stem has a maxpool")
	}
}

func TestNamingConventions(t *testing.T) {
	for _, name := range Names() {
		g := mustBuild(t, name, Config{InC: 3, H: 32, W: 32, Classes: 10})
		for _, n := range g.Nodes {
			switch n.Op.(type) {
			case ops.Add:
				if !strings.HasSuffix(n.Name, ".add") {
					t.Errorf("%s: Add node %q not named <block>.add", name, n.Name)
				}
				if len(n.Inputs) != 2 || n.Inputs[1].Producer == n.Inputs[0].Producer {
					t.Errorf("%s: %s inputs %v", name, n.Name, n.Inputs)
				}
			case ops.Conv, ops.Gemm:
				if w := n.Inputs[1]; w.Param == nil || w.Name != n.Name+".weight" || w.Param.Kind != graph.Weight {
					t.Errorf("%s: %s weight is %q", name, n.Name, w.Name)
				}
				if len(n.Inputs) > 2 && n.Inputs[2] != nil && n.Inputs[2].Name != n.Name+".bias" {
					t.Errorf("%s: %s bias is %q", name, n.Name, n.Inputs[2].Name)
				}
			case ops.BatchNorm:
				for i, suf := range []string{"weight", "bias", "running_mean", "running_var"} {
					kind := []graph.Kind{graph.BNScale, graph.BNBias, graph.BNMean, graph.BNVar}[i]
					if in := n.Inputs[i+1]; in.Name != n.Name+"."+suf || in.Param.Kind != kind {
						t.Errorf("%s: %s input %d is %q", name, n.Name, i+1, in.Name)
					}
				}
			}
		}
	}
	g := mustBuild(t, "resnet20", Config{InC: 1, H: 28, W: 28, Classes: 10})
	for _, want := range []string{"stem.conv", "stem.bn", "stem.relu", "layer1.0.conv1", "layer1.0.add", "layer1.0.relu",
		"layer2.0.shortcut.conv", "layer2.0.shortcut.bn", "layer3.2.add", "pool", "flatten", "logits"} {
		if g.NodeByName(want) == nil {
			t.Errorf("resnet20: no node %q", want)
		}
	}
	if g.NodeByName("layer1.0.shortcut.conv") != nil || g.NodeByName("layer2.1.shortcut.conv") != nil {
		t.Error("resnet20: projection shortcut where the shape does not change")
	}
	if add := g.NodeByName("layer2.0.add"); add.Inputs[1].Name != "layer2.0.shortcut.bn" || add.Inputs[0].Name != "layer2.0.bn2" {
		t.Errorf("resnet20: layer2.0.add reads %s, %s", add.Inputs[0].Name, add.Inputs[1].Name)
	}
	v3 := mustBuild(t, "mobilenetv3-small", Config{InC: 3, H: 32, W: 32, Classes: 10})
	hs, ok := v3.NodeByName("blocks.0.se.hsigmoid").Op.(ops.HardSigmoid)
	if !ok || hs.Alpha != float32(1.0/6) || hs.Beta != 0.5 {
		t.Errorf("mobilenetv3-small: SE gate is %#v", v3.NodeByName("blocks.0.se.hsigmoid").Op)
	}
	if mul := v3.NodeByName("blocks.0.se.mul"); mul == nil || mul.Inputs[1].Name != "blocks.0.se.hsigmoid" {
		t.Error("mobilenetv3-small: blocks.0.se.mul missing or not gated")
	}
	for _, want := range []string{"blocks.2.add", "classifier.fc", "classifier.hswish", "classifier.dropout"} {
		if v3.NodeByName(want) == nil {
			t.Errorf("mobilenetv3-small: no node %q", want)
		}
	}
	if bn := v3.NodeByName("stem.bn").Op.(ops.BatchNorm); bn.Epsilon != 1e-3 || bn.Momentum != 0.9 {
		t.Errorf("mobilenetv3 BatchNorm %+v", bn)
	}
	v2 := mustBuild(t, "mobilenetv2", Config{InC: 3, H: 32, W: 32, Classes: 10})
	if v2.NodeByName("blocks.0.expand.conv") != nil || v2.NodeByName("blocks.1.expand.conv") == nil || v2.NodeByName("blocks.2.add") == nil {
		t.Error("mobilenetv2: expansion/residual layout differs from the reference")
	}
	if v2.NodeByName("dropout") != nil {
		t.Error("mobilenetv2 small input: MobileNetV2Small has no dropout")
	}
	if c, ok := v2.NodeByName("head.relu6").Op.(ops.Clip); !ok || c.Min != 0 || c.Max != 6 {
		t.Error("mobilenetv2: head activation is not ReLU6")
	}
}

func TestBuildErrors(t *testing.T) {
	_, err := Build("vgg16", Config{InC: 3, H: 32, W: 32, Classes: 10})
	if err == nil || !strings.Contains(err.Error(), "vgg16") || !strings.Contains(err.Error(), "resnet20") {
		t.Errorf("unknown model: %v", err)
	}
	for _, cfg := range []Config{
		{InC: 0, H: 32, W: 32, Classes: 10},
		{InC: 3, H: 0, W: 32, Classes: 10},
		{InC: 3, H: 32, W: 32, Classes: 0},
		{InC: 3, H: 32, W: 32, Classes: 10, Width: -1},
		{InC: 3, H: 32, W: 32, Classes: 10, Width: math.NaN()},
	} {
		if _, err := Build("resnet20", cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	// Too small for five 2× down-samplings: shape inference must fail
	// cleanly, naming the model.
	if _, err := Build("resnet18", Config{InC: 3, H: 8, W: 8, Classes: 10}); err != nil {
		t.Errorf("resnet18 8×8 (small-input stem): %v", err)
	}
	if _, err := Build("lenet5", Config{InC: 1, H: 8, W: 8, Classes: 10}); err == nil || !strings.Contains(err.Error(), "lenet5") {
		t.Errorf("lenet5 on 8×8: %v", err)
	}
	if _, err := Build(" ResNet20 ", Config{InC: 1, H: 28, W: 28, Classes: 10}); err != nil {
		t.Errorf("case-insensitive name: %v", err)
	}
}

func TestInitialization(t *testing.T) {
	cfg := Config{InC: 3, H: 32, W: 32, Classes: 10, Seed: 7}
	a, b := mustBuild(t, "mobilenetv2", cfg), mustBuild(t, "mobilenetv2", cfg)
	cfg.Seed = 8
	c := mustBuild(t, "mobilenetv2", cfg)
	same, differ := true, false
	for i, p := range a.Params() {
		q, r := b.Params()[i], c.Params()[i]
		for j := range p.Data.Data {
			same = same && p.Data.Data[j] == q.Data.Data[j]
			differ = differ || p.Data.Data[j] != r.Data.Data[j]
		}
	}
	if !same || !differ {
		t.Errorf("same seed gives the same init: %v; other seed differs: %v", same, differ)
	}
	stats := func(x []float32) (mean, std float64) {
		for _, v := range x {
			mean += float64(v)
		}
		mean /= float64(len(x))
		for _, v := range x {
			std += (float64(v) - mean) * (float64(v) - mean)
		}
		return mean, math.Sqrt(std / float64(len(x)))
	}
	check := func(g *graph.Graph, name string, wantStd float64) {
		t.Helper()
		m, s := stats(g.Param(name).Data.Data)
		if math.Abs(m) > 0.1*wantStd || math.Abs(s-wantStd) > 0.05*wantStd {
			t.Errorf("%s %s: mean %.4g std %.4g, want 0 and %.4g", g.Name, name, m, s, wantStd)
		}
	}
	// Kaiming normal, fan_out = 1280·1·1; depthwise fan_out = 960·3·3.
	check(a, "head.conv.weight", math.Sqrt(2.0/1280))
	check(a, "blocks.16.dw.conv.weight", math.Sqrt(2.0/(960*9)))
	check(a, "logits.weight", 0.01)
	for _, p := range a.Params() {
		want := map[graph.Kind]float32{graph.BNScale: 1, graph.BNBias: 0, graph.BNMean: 0, graph.BNVar: 1, graph.Bias: 0}
		if w, ok := want[p.Kind]; ok {
			for _, v := range p.Data.Data {
				if v != w {
					t.Fatalf("%s: %s starts at %v, want %v", a.Name, p.Name, v, w)
				}
			}
		}
	}
	// PyTorch default Linear init: U(±1/sqrt(fan_in)) for weight and bias.
	r := mustBuild(t, "resnet20", Config{InC: 3, H: 32, W: 32, Classes: 10})
	bound := float32(1 / math.Sqrt(64))
	for _, name := range []string{"logits.weight", "logits.bias"} {
		p := r.Param(name).Data
		if p.MaxAbs() > bound || p.MaxAbs() < bound/2 {
			t.Errorf("resnet20 %s: max |w| %v, want within ±%v", name, p.MaxAbs(), bound)
		}
	}
	check(r, "layer3.2.conv2.weight", math.Sqrt(2.0/(64*9)))
}

func TestMakeDivisible(t *testing.T) {
	// Values of torchvision.models._utils._make_divisible(v, 8).
	for _, c := range []struct {
		v    float64
		want int
	}{{32, 32}, {16, 16}, {12, 16}, {3.2, 8}, {36, 40}, {35.9, 40}, {1280, 1280}, {1792, 1792}, {44.8, 48}, {18, 24}, {17.6, 16}} {
		if got := makeDivisible(c.v, 8); got != c.want {
			t.Errorf("makeDivisible(%v, 8) = %d, want %d", c.v, got, c.want)
		}
	}
}
