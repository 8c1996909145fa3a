package ops

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// FusedAndPlain runs g in evaluation on x twice, with the executor's
// fused chains and op by op (KeepValues disables fusion), and returns
// both outputs (tests of package ops_test use it too).
func FusedAndPlain(t *testing.T, g *graph.Graph, x *tensor.Tensor) (fused, plain []float32) {
	t.Helper()
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	fused = append([]float32(nil), out[0].Data...)
	e.KeepValues = true
	out, err = e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if len(fused) != len(out[0].Data) {
		t.Fatalf("fused output has %d values, op by op %d", len(fused), len(out[0].Data))
	}
	return fused, out[0].Data
}

// chainSpec is one convolution of a test chain and the ops after it.
type chainSpec struct {
	conv   Conv
	m      int // output channels
	kh, kw int
	bias   bool
	bn     bool
	add    bool   // add a residual (same shape) before the activation
	from   int    // the residual: the graph input (0) or spec from−1's output
	act    string // "", "relu" or "clip"
}

// chainGraph builds input [-1, inC, h, w] followed by the specs.
func chainGraph(t *testing.T, rng *rand.Rand, inC, h, w int, specs []chainSpec) *graph.Graph {
	t.Helper()
	g := graph.New("chain")
	x := g.Input("x", -1, inC, h, w)
	cur, c := x, inC
	outs := []*graph.Value{x}
	for i, s := range specs {
		name := fmt.Sprintf("s%d", i)
		wt := tensor.New(s.m, c/s.conv.groups(), s.kh, s.kw)
		wt.RandNormal(rng, math.Sqrt(2/float64(c/s.conv.groups()*s.kh*s.kw)))
		in := []*graph.Value{cur, g.AddParam(name+".weight", graph.Weight, wt)}
		if s.bias {
			b := tensor.New(s.m)
			b.RandUniform(rng, -0.3, 0.3)
			in = append(in, g.AddParam(name+".bias", graph.Bias, b))
		}
		cur = g.Apply(name, s.conv, in...)
		if s.bn {
			p := func(suffix string, kind graph.Kind, lo, hi float64) *graph.Value {
				v := tensor.New(s.m)
				v.RandUniform(rng, lo, hi)
				return g.AddParam(name+".bn."+suffix, kind, v)
			}
			cur = g.Apply(name+".bn", BatchNorm{Epsilon: 1e-5, Momentum: 0.9}, cur,
				p("weight", graph.BNScale, 0.5, 1.5), p("bias", graph.BNBias, -0.5, 0.5),
				p("running_mean", graph.BNMean, -0.5, 0.5), p("running_var", graph.BNVar, 0.5, 1.5))
		}
		if s.add {
			cur = g.Apply(name+".add", Add{}, cur, outs[s.from])
		}
		switch s.act {
		case "relu":
			cur = g.Apply(name+".relu", Relu{}, cur)
		case "clip":
			cur = g.Apply(name+".clip", Clip{Min: 0, Max: 1.5}, cur)
		}
		outs = append(outs, cur)
		c = s.m
	}
	g.SetOutputs(cur)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

// checkChain compares g's fused and op-by-op outputs on x: Winograd's
// transforms round differently from the direct convolution (F(4×4, 3×3)
// by about 2e-5).
func checkChain(t *testing.T, g *graph.Graph, x *tensor.Tensor, wino bool) {
	t.Helper()
	got, want := FusedAndPlain(t, g, x)
	tol := 1e-5
	if wino {
		tol = 1e-4
	}
	for i, w := range want {
		if d := math.Abs(float64(got[i] - w)); !(d <= tol*(1+math.Abs(float64(w)))) {
			t.Fatalf("output %d: fused %v, op by op %v", i, got[i], w)
		}
	}
}

// TestConvChainMatchesOps runs chains of convolutions in evaluation fused
// (image groups of several sizes, the stage-by-stage path for small
// batches, with and without the Winograd stages) and op by op, on every
// kernel implementation.
func TestConvChainMatchesOps(t *testing.T) {
	relu := "relu"
	cases := []struct {
		name    string
		c, h, w int
		specs   []chainSpec
	}{
		{"inverted-residual", 6, 9, 7, []chainSpec{
			{conv: Conv{}, m: 20, kh: 1, kw: 1, bn: true, act: "clip"},
			{conv: Conv{Groups: 20, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 20, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{}, m: 6, kh: 1, kw: 1, bn: true, add: true},
		}},
		{"inverted-residual-stride2", 5, 11, 10, []chainSpec{
			{conv: Conv{}, m: 12, kh: 1, kw: 1, bn: true, act: "clip"},
			{conv: Conv{Groups: 12, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 12, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{}, m: 7, kh: 1, kw: 1, bn: true},
		}},
		{"basic-block", 8, 10, 9, []chainSpec{
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 11, kh: 3, kw: 3, bn: true, act: relu},
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 8, kh: 3, kw: 3, bn: true, add: true, act: relu},
		}},
		{"basic-block-f4", 8, 16, 20, []chainSpec{
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 9, kh: 3, kw: 3, bn: true, act: relu},
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 8, kh: 3, kw: 3, bn: true, add: true, act: relu},
		}},
		{"strided-first", 3, 13, 12, []chainSpec{
			{conv: Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 9, kh: 3, kw: 3, bn: true, act: relu},
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 10, kh: 3, kw: 3, bn: true},
		}},
		{"stem-dw-project", 3, 8, 8, []chainSpec{
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 8, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{Groups: 8, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 8, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{}, m: 4, kh: 1, kw: 1, bn: true},
		}},
		{"odd-geometry", 4, 9, 11, []chainSpec{
			// Bias, no BatchNorm, asymmetric pads, dilation, a pad value.
			{conv: Conv{PadT: 2, PadL: 1, PadB: 0, PadR: 2, DilH: 2, PadValue: 0.25}, m: 6, kh: 3, kw: 2, bias: true, act: relu},
			{conv: Conv{Groups: 6, StrideH: 2, StrideW: 3, PadT: 1, PadL: 2, PadB: 2, PadR: 1, PadValue: -0.5}, m: 6, kh: 5, kw: 3, bias: true, bn: true},
			{conv: Conv{Groups: 2, StrideH: 1, StrideW: 2}, m: 4, kh: 1, kw: 1, bias: true, act: "clip"},
		}},
		{"single-channel", 1, 9, 13, []chainSpec{
			{conv: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 6, kh: 3, kw: 3, bias: true, bn: true, act: relu},
			{conv: Conv{}, m: 5, kh: 1, kw: 1, bn: true},
		}},
		{"shortcut", 5, 9, 11, []chainSpec{
			{conv: Conv{StrideH: 2, StrideW: 2}, m: 7, kh: 1, kw: 1, bn: true},
		}},
		{"pw-then-stride2", 4, 10, 7, []chainSpec{
			{conv: Conv{}, m: 9, kh: 1, kw: 1, bn: true, act: relu},
			{conv: Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 10, kh: 3, kw: 3, bn: true, act: relu},
		}},
		{"grouped-shift", 6, 7, 8, []chainSpec{
			{conv: Conv{Groups: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 9, kh: 3, kw: 3},
			{conv: Conv{Groups: 9, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, m: 9, kh: 3, kw: 3, bn: true, act: relu},
			{conv: Conv{Groups: 3}, m: 6, kh: 1, kw: 1, bn: true, add: true},
		}},
	}
	defer func(v int, w bool) { chainForceGroups, chainWinograd = v, w }(chainForceGroups, chainWinograd)
	defer func(name string) { _ = kernels.SetImpl(name) }(kernels.Impl())
	for _, impl := range kernels.Impls() {
		for _, tc := range cases {
			for _, force := range []int{0, 1, 2, 3} {
				for _, batch := range []int{1, 5} {
					wino := force != 2
					t.Run(fmt.Sprintf("%s/%s/groups%d/batch%d/winograd%v", impl, tc.name, force, batch, wino), func(t *testing.T) {
						if err := kernels.SetImpl(impl); err != nil {
							t.Fatal(err)
						}
						chainForceGroups, chainWinograd = force, wino
						rng := rand.New(rand.NewSource(7))
						g := chainGraph(t, rng, tc.c, tc.h, tc.w, tc.specs)
						x := tensor.New(batch, tc.c, tc.h, tc.w)
						x.RandUniform(rng, -1, 1)
						checkChain(t, g, x, wino)
					})
				}
			}
		}
	}
}

// TestConvChainFuse checks which ops a chain absorbs: a Conv after any
// stage, ops into the last stage's epilogue, and (FuseInternal) an Add of
// the input of an earlier stage, but not of a value inside a stage's
// epilogue.
func TestConvChainFuse(t *testing.T) {
	pw, dw := Conv{}, Conv{Groups: 4}
	step := func(op graph.Op, next graph.Op) graph.Op {
		t.Helper()
		f, ok := op.(graph.Fuser).Fuse(next)
		if !ok {
			t.Fatalf("%s did not absorb %s", op.Type(), next.Type())
		}
		return f
	}
	op := step(step(step(pw, BatchNorm{}), Clip{Max: 6}), dw)
	op = step(step(step(op, BatchNorm{}), Clip{Max: 6}), pw)
	op = step(step(op, BatchNorm{}), Add{})
	if want := "Conv+BatchNormalization+Clip+Conv+BatchNormalization+Clip+Conv+BatchNormalization+Add"; op.Type() != want {
		t.Fatalf("fused type %q, want %q", op.Type(), want)
	}
	if _, ok := op.(graph.Fuser).Fuse(Relu{}); !ok {
		t.Fatal("the last stage did not absorb a Relu after its Add")
	}
	// A basic block after a stem: stem Conv+BN+Relu (values 0..2), conv1
	// +BN+Relu (3..5), conv2+BN (6, 7), then Add of value 2 (conv1's
	// input) and Relu.
	block := step(step(step(step(step(step(step(pw, BatchNorm{}), Relu{}), pw), BatchNorm{}), Relu{}), pw), BatchNorm{})
	for _, ref := range []int{0, 1, 3, 4, 7} {
		if _, ok := block.(graph.ChainFuser).FuseInternal(Add{}, []int{ref}); ok {
			t.Fatalf("Add of value %d (not a stage input) absorbed", ref)
		}
	}
	if _, ok := block.(graph.ChainFuser).FuseInternal(Relu{}, []int{2}); ok {
		t.Fatal("FuseInternal absorbed a Relu")
	}
	f, ok := block.(graph.ChainFuser).FuseInternal(Add{}, []int{2})
	if !ok {
		t.Fatal("Add of conv1's input not absorbed")
	}
	f = step(step(f, Relu{}), pw)
	if r := f.(convChain).res; len(r) != 4 || r[0] != -1 || r[1] != -1 || r[2] != 1 || r[3] != -1 {
		t.Fatalf("residual stages %v, want [-1 -1 1 -1]", r)
	}
	// The internal residual is not an input: X, W of each stage.
	out, err := f.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}, {4, 4, 1, 1}, {4, 4, 1, 1}, {6, 4, 1, 1}})
	if err == nil {
		t.Fatal("stages without their BatchNorm parameters accepted")
	}
	bnp := [][]int{{4}, {4}, {4}, {4}}
	in := [][]int{{2, 3, 5, 5}, {4, 3, 1, 1}}
	in = append(in, bnp...)
	in = append(in, []int{4, 4, 1, 1})
	in = append(in, bnp...)
	in = append(in, []int{4, 4, 1, 1})
	in = append(in, bnp...)
	in = append(in, []int{6, 4, 1, 1})
	if out, err = f.InferShapes(in); err != nil || !tensor.SameShape(out[0], []int{2, 6, 5, 5}) {
		t.Fatalf("shapes: %v, %v", out, err)
	}
	two := step(step(pw, Relu{}), pw)
	if _, err := two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}, {6, 4, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	out, err = two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}, {6, 4, 1, 1}, {6}})
	if err != nil || !tensor.SameShape(out[0], []int{2, 6, 5, 5}) {
		t.Fatalf("shapes with a bias: %v, %v", out, err)
	}
	if _, err := two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}}); err == nil {
		t.Fatal("missing second weight accepted")
	}
}

// TestConvChainAcrossBlocks runs chains that span several residual
// blocks, whose Adds read values computed inside the chain, fused and op
// by op: ResNet stages (Winograd or not, a strided first block, odd
// sizes), inverted-residual blocks, and residuals whose layout the
// reading stage must convert (rows into parity planes and back) or cannot
// read (every stage then its own segment). It also checks that each graph
// runs as the expected number of chains and segments.
func TestConvChainAcrossBlocks(t *testing.T) {
	p1 := Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	s2 := Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	dw := func(g int) Conv { return Conv{Groups: g, PadT: 1, PadL: 1, PadB: 1, PadR: 1} }
	padded := Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, PadValue: 0.25}
	block := func(m, from int) []chainSpec {
		return []chainSpec{
			{conv: p1, m: m, kh: 3, kw: 3, bn: true, act: "relu"},
			{conv: p1, m: m, kh: 3, kw: 3, bn: true, add: true, from: from, act: "relu"},
		}
	}
	cat := func(parts ...[]chainSpec) []chainSpec {
		var out []chainSpec
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cases := []struct {
		name    string
		c, h, w int
		specs   []chainSpec
		chains  int // image-group plans per Forward (batch 5, groups forced)
	}{
		// Stem, then three blocks: one chain, Winograd F(4×4) at 15×17.
		{"resnet-stage", 1, 15, 17, cat([]chainSpec{{conv: p1, m: 9, kh: 3, kw: 3, bn: true, act: "relu"}},
			block(9, 1), block(9, 3), block(9, 5)), 1},
		// F(2×2) at 7×9, the first block strided without shortcut conv
		// (its Add reads nothing of the chain's) and one more block.
		{"resnet-strided", 8, 13, 17, cat([]chainSpec{
			{conv: s2, m: 10, kh: 3, kw: 3, bn: true, act: "relu"},
			{conv: p1, m: 10, kh: 3, kw: 3, bn: true, act: "relu"}},
			block(10, 2)), 1},
		// Inverted-residual blocks with residuals, on 9×7.
		{"inverted-residuals", 6, 9, 7, []chainSpec{
			{conv: Conv{}, m: 18, kh: 1, kw: 1, bn: true, act: "clip"},
			{conv: dw(18), m: 18, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{}, m: 6, kh: 1, kw: 1, bn: true, add: true},
			{conv: Conv{}, m: 12, kh: 1, kw: 1, bn: true, act: "clip"},
			{conv: dw(12), m: 12, kh: 3, kw: 3, bn: true, act: "clip"},
			{conv: Conv{}, m: 6, kh: 1, kw: 1, bn: true, add: true, from: 3},
		}, 1},
		// A 1×1 stage's rows feed a Winograd stage's residual (split into
		// parity planes), a Winograd input feeds a padded stage's
		// residual (merged back into rows).
		{"converted-residuals", 4, 11, 10, []chainSpec{
			{conv: Conv{}, m: 8, kh: 1, kw: 1, bn: true, act: "relu"},
			{conv: Conv{}, m: 8, kh: 1, kw: 1, bn: true, act: "relu"},
			{conv: p1, m: 8, kh: 3, kw: 3, bn: true, add: true, from: 1, act: "relu"},
			{conv: p1, m: 8, kh: 3, kw: 3, bn: true, act: "relu"},
			{conv: padded, m: 8, kh: 3, kw: 3, bn: true, add: true, from: 3},
		}, 1},
		// Stages adding their own input.
		{"own-input-residuals", 4, 11, 10, []chainSpec{
			{conv: Conv{}, m: 8, kh: 1, kw: 1, bn: true, act: "relu"},
			{conv: Conv{}, m: 8, kh: 1, kw: 1, bn: true, add: true, from: 1, act: "relu"},
			{conv: p1, m: 8, kh: 3, kw: 3, bn: true, add: true, from: 2, act: "relu"},
			{conv: padded, m: 8, kh: 3, kw: 3, bn: true, add: true, from: 3},
		}, 1},
		// A padded stage's input feeds a Winograd stage's residual: no
		// group layout fits, every stage runs as its own segment.
		{"whole-tensor-residuals", 5, 10, 9, []chainSpec{
			{conv: Conv{}, m: 8, kh: 1, kw: 1, bn: true, act: "relu"},
			{conv: padded, m: 8, kh: 3, kw: 3, bn: true, act: "relu"},
			{conv: p1, m: 8, kh: 3, kw: 3, bn: true, add: true, from: 1, act: "relu"},
		}, 1},
	}
	defer func(v int, w, m bool) { chainForceGroups, chainWinograd, chainMerge = v, w, m }(chainForceGroups, chainWinograd, chainMerge)
	defer func(name string) { _ = kernels.SetImpl(name) }(kernels.Impl())
	defer func() { chainTrace = nil }()
	for _, impl := range kernels.Impls() {
		for _, tc := range cases {
			for _, force := range []int{0, 1, 2, 3} {
				for _, batch := range []int{1, 5} {
					wino, merge := force != 2, force != 3
					t.Run(fmt.Sprintf("%s/%s/groups%d/batch%d/winograd%v/merge%v", impl, tc.name, force, batch, wino, merge), func(t *testing.T) {
						if err := kernels.SetImpl(impl); err != nil {
							t.Fatal(err)
						}
						chainForceGroups, chainWinograd, chainMerge = force, wino, merge
						plans, segs := 0, 0
						chainTrace = func(pl *chainPlan) {
							plans++
							segs = len(pl.segs)
							if tc.name == "whole-tensor-residuals" && wino && segs != len(pl.stages) {
								t.Errorf("%d segments for %d stages with an unreadable residual", segs, len(pl.stages))
							}
						}
						rng := rand.New(rand.NewSource(11))
						g := chainGraph(t, rng, tc.c, tc.h, tc.w, tc.specs)
						x := tensor.New(batch, tc.c, tc.h, tc.w)
						x.RandUniform(rng, -1, 1)
						checkChain(t, g, x, wino)
						if grouped := force > 0 || batch >= runtime.GOMAXPROCS(0); grouped && plans != tc.chains {
							t.Fatalf("%d chains ran, want %d", plans, tc.chains)
						}
					})
				}
			}
		}
	}
}
