package sim

import (
	"context"
	"iter"
	"math"
	"testing"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// tinyResNet is conv1 → relu → conv2 → add(relu1) → relu → GAP → flatten → fc.
func tinyResNet(t *testing.T) *graph.Graph {
	t.Helper()
	g := graph.New("resnet18") // named like a built-in: must still get no paper figures
	rng := graph.RNG(1)
	x := g.Input("x", -1, 2, 4, 4)
	param := func(name string, shape ...int) *graph.Value {
		p := tensor.New(shape...)
		p.RandNormal(rng, 1)
		return g.AddParam(name, graph.Weight, p)
	}
	conv := ops.Conv{StrideH: 1, StrideW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 1}
	c1 := g.Apply("conv1", conv, x, param("w1", 4, 2, 3, 3))
	r1 := g.Apply("relu1", ops.Relu{}, c1)
	c2 := g.Apply("conv2", conv, r1, param("w2", 4, 4, 3, 3))
	s := g.Apply("add", ops.Add{}, c2, r1)
	r2 := g.Apply("relu2", ops.Relu{}, s)
	p := g.Apply("gap", ops.GlobalAveragePool{}, r2)
	f := g.Apply("flat", ops.Flatten{Axis: 1}, p)
	y := g.Apply("fc", ops.Gemm{TransB: true, Alpha: 1, Beta: 1}, f, param("wfc", 3, 4))
	g.SetOutputs(y)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestFromGraphShapes(t *testing.T) {
	g := tinyResNet(t)
	w, err := FromGraph(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Layers) != 3 {
		t.Fatalf("%d layers, want conv1, conv2, fc", len(w.Layers))
	}
	c1, c2, fc := w.Layers[0], w.Layers[1], w.Layers[2]
	if c1.Name != "conv1" || c1.Kind != "conv" || c1.C != 2 || c1.H != 4 || c1.M != 4 || c1.KH != 3 || c1.OH != 4 ||
		c1.Groups != 1 || c1.SH != 1 || !c1.First || c1.Outs() != 64 {
		t.Errorf("conv1 = %+v", c1)
	}
	if c2.First || c2.C != 4 || c2.K() != 36 || c2.MACs() != 16*4*36 {
		t.Errorf("conv2 = %+v", c2)
	}
	if fc.Kind != "fc" || fc.C != 4 || fc.M != 3 || fc.MACs() != 12 || fc.First {
		t.Errorf("fc = %+v", fc)
	}
	if len(w.Adds) != 1 || w.Adds[0].After != "conv2" || w.Adds[0].Elems != 64 {
		t.Errorf("adds = %+v", w.Adds)
	}
	if c1.Stats.ActOutlier != DefaultOutlierRatio {
		t.Errorf("unmeasured layer outlier ratio %g, want the default", c1.Stats.ActOutlier)
	}
}

func zeroFrac(x []float32) float64 {
	z := 0
	for _, v := range x {
		if v == 0 {
			z++
		}
	}
	return float64(z) / float64(len(x))
}

func TestCollectStats(t *testing.T) {
	g := tinyResNet(t)
	rng := graph.RNG(2)
	var inputs []*tensor.Tensor
	for range 3 {
		x := tensor.New(4, 2, 4, 4)
		x.RandNormal(rng, 1)
		for i := 0; i < len(x.Data); i += 4 {
			x.Data[i] = 0 // exactly a quarter zeros
		}
		inputs = append(inputs, x)
	}
	// Reference zero fractions from a plain run.
	ex, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	var relu1Zeros, relu2Zeros float64
	ex.OnForward = func(n *graph.Node, in, out []*tensor.Tensor) {
		switch n.Name {
		case "relu1":
			relu1Zeros += zeroFrac(out[0].Data) / 3
		case "relu2":
			relu2Zeros += zeroFrac(out[0].Data) / 3
		}
	}
	for _, x := range inputs {
		if _, err := ex.Forward(x); err != nil {
			t.Fatal(err)
		}
	}
	batches := iter.Seq2[*tensor.Tensor, error](func(yield func(*tensor.Tensor, error) bool) {
		for _, x := range inputs {
			if !yield(x, nil) {
				return
			}
		}
	})
	const r = 0.1
	stats, err := CollectStats(context.Background(), g, batches, CollectOptions{OutlierRatio: r})
	if err != nil {
		t.Fatal(err)
	}
	s1, s2, sa := stats["conv1"], stats["conv2"], stats["add"]
	if s1.ActZero != 0.25 || s1.WeightZero != 0 {
		t.Errorf("conv1 zeros: act %g weight %g, want 0.25 and 0", s1.ActZero, s1.WeightZero)
	}
	// 36 distinct weights at r = 0.1: T is the 33rd smallest magnitude
	// (index floor(0.9·36) = 32), so 4 of 36 are outliers.
	if want := 4.0 / 36; math.Abs(s1.WeightOutlier-want) > 1e-12 {
		t.Errorf("conv1 weight outliers %g, want %g", s1.WeightOutlier, want)
	}
	if s1.ActOutlier < 0.05 || s1.ActOutlier > 0.2 {
		t.Errorf("conv1 activation outliers %g, want about %g", s1.ActOutlier, r)
	}
	if math.Abs(s1.OutZero-relu1Zeros) > 1e-12 || math.Abs(s2.ActZero-relu1Zeros) > 1e-12 {
		t.Errorf("conv1 out zeros %g / conv2 input zeros %g, want %g (relu1)", s1.OutZero, s2.ActZero, relu1Zeros)
	}
	if s2.OutZero > 0.01 { // conv2 writes its raw output to the add
		t.Errorf("conv2 out zeros %g, want ~0", s2.OutZero)
	}
	if math.Abs(sa.ActZero-relu1Zeros) > 1e-12 || math.Abs(sa.OutZero-relu2Zeros) > 1e-12 {
		t.Errorf("add skip zeros %g out zeros %g, want %g and %g", sa.ActZero, sa.OutZero, relu1Zeros, relu2Zeros)
	}
	w, err := FromGraph(g, stats)
	if err != nil {
		t.Fatal(err)
	}
	if w.Adds[0].SkipZero != sa.ActZero || w.Layers[1].Stats != s2 {
		t.Errorf("FromGraph did not carry the statistics: %+v", w)
	}
	rep, err := Run(DefaultConfig(), w, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Comparisons {
		if c.Paper != nil {
			t.Errorf("a user graph got a paper figure: %+v", c)
		}
	}
	if len(rep.Results) != 6 || len(rep.HighwayRows) != 6 || rep.Results[0].Energy.Total() <= 0 {
		t.Errorf("report on the tiny graph: %d results, %d highway rows", len(rep.Results), len(rep.HighwayRows))
	}
	// Errors: no batches, bad ratio.
	empty := iter.Seq2[*tensor.Tensor, error](func(func(*tensor.Tensor, error) bool) {})
	if _, err := CollectStats(context.Background(), g, empty, CollectOptions{OutlierRatio: r}); err == nil {
		t.Error("no batches: no error")
	}
	if _, err := CollectStats(context.Background(), g, batches, CollectOptions{OutlierRatio: 2}); err == nil {
		t.Error("ratio 2: no error")
	}
}
