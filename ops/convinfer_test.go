package ops

import (
	"fmt"
	"math"
	"math/rand"
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
	add    bool   // add the chain's input (same shape) before the activation
	act    string // "", "relu" or "clip"
}

// chainGraph builds input [-1, inC, h, w] followed by the specs.
func chainGraph(t *testing.T, rng *rand.Rand, inC, h, w int, specs []chainSpec) *graph.Graph {
	t.Helper()
	g := graph.New("chain")
	x := g.Input("x", -1, inC, h, w)
	cur, c := x, inC
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
			cur = g.Apply(name+".add", Add{}, cur, x)
		}
		switch s.act {
		case "relu":
			cur = g.Apply(name+".relu", Relu{}, cur)
		case "clip":
			cur = g.Apply(name+".clip", Clip{Min: 0, Max: 1.5}, cur)
		}
		c = s.m
	}
	g.SetOutputs(cur)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return g
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
						got, want := FusedAndPlain(t, g, x)
						// Winograd's transforms round differently from the
						// direct convolution (F(4×4, 3×3) by about 2e-5).
						tol := 1e-5
						if wino {
							tol = 1e-4
						}
						for i, w := range want {
							if d := math.Abs(float64(got[i] - w)); !(d <= tol*(1+math.Abs(float64(w)))) {
								t.Fatalf("output %d: fused %v, op by op %v", i, got[i], w)
							}
						}
					})
				}
			}
		}
	}
}

// TestConvChainFuse checks which ops a chain absorbs: a Conv after a
// 1×1 or a grouped stage, up to three stages, and never past a later
// ungrouped convolution (the end of a block).
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
	if _, ok := op.(graph.Fuser).Fuse(pw); ok {
		t.Fatal("a full chain absorbed another Conv")
	}
	if _, ok := op.(graph.Fuser).Fuse(Relu{}); !ok {
		t.Fatal("the last stage did not absorb a Relu after its Add")
	}
	two := step(step(pw, Relu{}), pw)
	if _, ok := two.(graph.Fuser).Fuse(pw); ok {
		t.Fatal("a chain ending in an ungrouped later stage absorbed a Conv")
	}
	if _, err := two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}, {6, 4, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	out, err := two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}, {6, 4, 1, 1}, {6}})
	if err != nil || !tensor.SameShape(out[0], []int{2, 6, 5, 5}) {
		t.Fatalf("shapes with a bias: %v, %v", out, err)
	}
	if _, err := two.InferShapes([][]int{{2, 3, 5, 5}, {4, 3, 1, 1}}); err == nil {
		t.Fatal("missing second weight accepted")
	}
}
