package quant

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/ops"
	"lowbit/tensor"
)

// randomizeBN gives every BatchNorm random running statistics and affine
// parameters (as a trained network has), so folding is tested on more
// than the identity initialization.
func randomizeBN(g *graph.Graph, rng *rand.Rand) {
	for _, p := range g.Params() {
		d := p.Data.Data
		for i := range d {
			switch p.Kind {
			case graph.BNScale:
				d[i] = float32(0.5 + rng.Float64())
			case graph.BNBias:
				d[i] = float32(rng.NormFloat64() * 0.5)
			case graph.BNMean:
				d[i] = float32(rng.NormFloat64())
			case graph.BNVar:
				d[i] = float32(0.1 + 2*rng.Float64())
			}
		}
	}
}

func countBN(g *graph.Graph) int {
	n := 0
	for _, node := range g.Nodes {
		if node.Op.Type() == "BatchNormalization" {
			n++
		}
	}
	return n
}

// maxRelDiff returns max|a−b| / max|a|.
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = math.Max(m, math.Abs(float64(a[i])))
	}
	return d / m
}

func checkFoldPreserves(t *testing.T, name string, g *graph.Graph, x *tensor.Tensor, wantFolded int) {
	t.Helper()
	before := forward(t, g, x)
	nbn := countBN(g)
	n, err := FoldBatchNorm(g)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if n != wantFolded || countBN(g) != nbn-n {
		t.Fatalf("%s: folded %d (BatchNorms %d → %d), want %d", name, n, nbn, countBN(g), wantFolded)
	}
	for _, p := range g.Params() {
		if p.Kind == graph.BNMean && wantFolded == nbn {
			t.Errorf("%s: BatchNorm parameter %s left behind", name, p.Name)
		}
	}
	after := forward(t, g, x)
	if d := maxRelDiff(before, after); !(d < 1e-5) {
		t.Errorf("%s: folding changed the outputs by %.3g (relative to the largest)", name, d)
	}
}

// TestFoldBatchNormPreservesOutputs folds Conv/Gemm + BatchNorm with random
// statistics in small graphs (with and without bias, Gemm weights in both
// layouts) and in the LeNet-5 and ResNet-20 of the zoo.
func TestFoldBatchNormPreservesOutputs(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	param := func(g *graph.Graph, name string, kind graph.Kind, shape ...int) *graph.Value {
		w := tensor.New(shape...)
		w.RandNormal(rng, 0.5)
		return g.AddParam(name, kind, w)
	}
	bn := func(g *graph.Graph, name string, x *graph.Value, c int) *graph.Value {
		return g.Apply(name, ops.BatchNorm{Epsilon: 1e-3}, x, param(g, name+".g", graph.BNScale, c), param(g, name+".b", graph.BNBias, c),
			param(g, name+".m", graph.BNMean, c), param(g, name+".v", graph.BNVar, c))
	}
	for _, bias := range []bool{false, true} {
		g := graph.New("conv")
		x := g.Input("x", -1, 3, 7, 7)
		in := []*graph.Value{x, param(g, "c.w", graph.Weight, 5, 3, 3, 3)}
		if bias {
			in = append(in, param(g, "c.b", graph.Bias, 5))
		}
		y := g.Apply("c", ops.Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DilH: 1, DilW: 1, Groups: 1}, in...)
		g.SetOutputs(g.Apply("r", ops.Relu{}, bn(g, "bn", y, 5)))
		randomizeBN(g, rng)
		xt := tensor.New(4, 3, 7, 7)
		xt.RandNormal(rng, 1)
		checkFoldPreserves(t, "conv", g, xt, 1)
	}
	for _, transB := range []bool{false, true} {
		for _, bias := range []bool{false, true} {
			g := graph.New("gemm")
			x := g.Input("x", -1, 6)
			w := param(g, "fc.w", graph.Weight, 6, 4)
			if transB {
				w = param(g, "fc.wt", graph.Weight, 4, 6)
			}
			in := []*graph.Value{x, w}
			if bias {
				in = append(in, param(g, "fc.b", graph.Bias, 4))
			}
			y := g.Apply("fc", ops.Gemm{TransB: transB, Alpha: 0.5, Beta: 2}, in...)
			g.SetOutputs(bn(g, "bn", y, 4))
			randomizeBN(g, rng)
			xt := tensor.New(5, 6)
			xt.RandNormal(rng, 1)
			checkFoldPreserves(t, "gemm", g, xt, 1)
		}
	}
	for _, m := range []struct {
		name    string
		c, h, n int
	}{{"lenet5", 1, 28, 2}, {"resnet20", 3, 32, 21}} {
		g, err := models.Build(m.name, models.Config{InC: m.c, H: m.h, W: m.h, Classes: 10, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		randomizeBN(g, rng)
		xt := tensor.New(2, m.c, m.h, m.h)
		xt.RandNormal(rng, 1)
		checkFoldPreserves(t, m.name, g, xt, m.n)
	}
}

// TestFoldBatchNormLeavesSharedOutputs checks that a BatchNorm is not
// folded when the layer's output has another consumer.
func TestFoldBatchNormLeavesSharedOutputs(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	g := graph.New("shared")
	x := g.Input("x", -1, 4)
	w := tensor.New(3, 4)
	w.RandNormal(rng, 1)
	y := g.Apply("fc", ops.Gemm{TransB: true, Alpha: 1, Beta: 1}, x, g.AddParam("fc.w", graph.Weight, w))
	ps := make([]*graph.Value, 4)
	for i, k := range []graph.Kind{graph.BNScale, graph.BNBias, graph.BNMean, graph.BNVar} {
		p := tensor.New(3)
		p.Fill(1)
		ps[i] = g.AddParam("bn."+k.String(), k, p)
	}
	b := g.Apply("bn", ops.BatchNorm{}, append([]*graph.Value{y}, ps...)...)
	g.SetOutputs(g.Apply("sum", ops.Add{}, b, y))
	xt := tensor.New(2, 4)
	xt.RandNormal(rng, 1)
	checkFoldPreserves(t, "shared", g, xt, 0)
}
