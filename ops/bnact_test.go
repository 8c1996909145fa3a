package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/kernels"
	"lowbit/tensor"
)

// forEachImpl runs fn once per kernel implementation (generic and the
// assembly ones this CPU has).
func forEachImpl(t *testing.T, fn func(t *testing.T)) {
	prev := kernels.Impl()
	defer func() {
		if err := kernels.SetImpl(prev); err != nil {
			t.Fatal(err)
		}
	}()
	for _, name := range kernels.Impls() {
		if err := kernels.SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, fn)
	}
}

// bnActInputs returns BatchNorm inputs [n, ch, sp...] whose training
// output plus res (when not nil) is close to z drawn away from the kinks:
// per channel, the mean and deviation of z − res become B and the scale,
// and X is z − res standardized.
func bnActInputs(rng *rand.Rand, lo, hi float64, kinks []float64, res *tensor.Tensor, shape ...int) []*tensor.Tensor {
	z := randAway(rng, lo, hi, 0.1, kinks, shape...)
	if res != nil {
		for i, r := range res.Data {
			z.Data[i] -= r
		}
	}
	n, ch := shape[0], shape[1]
	sp := z.Len() / (n * ch)
	x := tensor.New(shape...)
	scale, bias := tensor.New(ch), tensor.New(ch)
	for k := 0; k < ch; k++ {
		m, sd := channelStats(z, k)
		scale.Data[k], bias.Data[k] = float32(sd), float32(m)
		for i := 0; i < n; i++ {
			for j := (i*ch + k) * sp; j < (i*ch+k+1)*sp; j++ {
				x.Data[j] = float32(2*(float64(z.Data[j])-m)/sd + 0.5)
			}
		}
	}
	rvar := tensor.New(ch)
	rvar.RandUniform(rng, 0.5, 2)
	return []*tensor.Tensor{x, scale, bias, gradcheck.Rand(rng, ch), rvar}
}

// channelStats returns the mean and (biased) standard deviation of
// channel k of t [n, ch, ...].
func channelStats(t *tensor.Tensor, k int) (mean, std float64) {
	n, ch := t.Shape[0], t.Shape[1]
	sp := t.Len() / (n * ch)
	var s, q float64
	for i := 0; i < n; i++ {
		for _, v := range t.Data[(i*ch+k)*sp : (i*ch+k+1)*sp] {
			s += float64(v)
			q += float64(v) * float64(v)
		}
	}
	mean = s / float64(n*sp)
	return mean, math.Sqrt(q/float64(n*sp) - mean*mean)
}

// TestBNActGradients checks the fused BatchNorm+Relu/Clip against finite
// differences, in training (batch statistics) and evaluation, on every
// kernel implementation.
func TestBNActGradients(t *testing.T) {
	cases := []struct {
		act    graph.Op
		lo, hi float64
		kinks  []float64
		res    bool
	}{
		{Relu{}, -3, 3, []float64{0}, false},
		{Clip{Min: 0, Max: 6}, -2, 8, []float64{0, 6}, false},
		{Clip{Min: -1, Max: 0.5}, -2, 1.5, []float64{-1, 0.5}, false},
		{Relu{}, -3, 3, []float64{0}, true},
		{Clip{Min: 0, Max: 6}, -2, 8, []float64{0, 6}, true},
	}
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(5))
		for i, tc := range cases {
			var op graph.Op = BatchNorm{Momentum: 0.9}
			chain := []graph.Op{tc.act}
			if tc.res {
				chain = []graph.Op{Add{}, tc.act}
			}
			for _, next := range chain {
				f, ok := op.(graph.TrainFuser).FuseTraining(next)
				if !ok {
					t.Fatalf("%s does not fuse with %s", op.Type(), next.Type())
				}
				op = f
			}
			for _, shape := range [][]int{{3, 4, 5, 6}, {6, 4}, {2, 3, 17}} {
				for _, training := range []bool{true, false} {
					if tc.res && !training {
						continue // the outputs would not avoid the kinks
					}
					var res *tensor.Tensor
					if tc.res {
						res = gradcheck.Rand(rng, shape...)
					}
					in := bnActInputs(rng, tc.lo, tc.hi, tc.kinks, res, shape...)
					if res != nil {
						in = append(in, res)
					}
					if !training {
						// Running statistics near the batch's keep the
						// outputs mostly unsaturated.
						in[3].Fill(0.5)
						in[4].Fill(4)
					}
					checkGrad(t, op, gradcheck.Options{Training: training, Skip: []int{3, 4}, Eps: 2e-3, Seed: int64(i), MaxProbe: 60}, in...)
				}
			}
		}
	})
}

// TestBNActMatchesSeparateOps checks that the fused ops (BatchNorm with an
// activation, a residual Add, or both) compute exactly the output and
// running statistics of the separate ops, and their gradients to within
// 1e-5.
func TestBNActMatchesSeparateOps(t *testing.T) {
	chains := [][]graph.Op{{Relu{}}, {Clip{Min: 0, Max: 6}}, {Add{}}, {Add{}, Relu{}}, {Add{}, Clip{Min: -0.5, Max: 0.5}}}
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(6))
		for _, chain := range chains {
			bn := BatchNorm{Momentum: 0.8}
			var fused graph.Op = bn
			for _, op := range chain {
				f, ok := fused.(graph.TrainFuser).FuseTraining(op)
				if !ok {
					t.Fatalf("%s does not fuse with %s", fused.Type(), op.Type())
				}
				fused = f
			}
			for _, shape := range [][]int{{4, 5, 4, 4}, {3, 2, 33}, {8, 3}} {
				for _, training := range []bool{true, false} {
					name := fmt.Sprintf("%s %v training=%v", fused.Type(), shape, training)
					inF := bnTestInputs(rng.Int63(), shape...)
					inF[0].Data[1], inF[0].Data[2] = 0, 0 // repeated values
					if _, ok := chain[0].(Add); ok {
						inF = append(inF, gradcheck.Rand(rng, shape...))
					}
					inS := make([]*tensor.Tensor, len(inF))
					for i, v := range inF {
						inS[i] = v.Clone()
					}
					cf := graph.NewContext(training, 1)
					yf, err := fused.Forward(cf, inF)
					if err != nil {
						t.Fatal(err)
					}
					// The separate ops, forward and backward.
					ctxs := []*graph.Context{graph.NewContext(training, 1)}
					ins := [][]*tensor.Tensor{inS[:5]}
					outs := [][]*tensor.Tensor{}
					for k, op := range append([]graph.Op{bn}, chain...) {
						if k > 0 {
							in := []*tensor.Tensor{outs[k-1][0]}
							if _, ok := op.(Add); ok {
								in = append(in, inS[5])
							}
							ins = append(ins, in)
							ctxs = append(ctxs, graph.NewContext(training, 1))
						}
						out, err := op.Forward(ctxs[k], ins[k])
						if err != nil {
							t.Fatal(err)
						}
						outs = append(outs, out)
					}
					ys := outs[len(outs)-1]
					cgAssertClose(t, name+" output", yf[0].Data, ys[0].Data, 0)
					cgAssertClose(t, name+" running mean", inF[3].Data, inS[3].Data, 0)
					cgAssertClose(t, name+" running var", inF[4].Data, inS[4].Data, 0)

					dy := gradcheck.Rand(rng, shape...)
					gf, err := fused.Backward(cf, inF, yf, []*tensor.Tensor{dy})
					if err != nil {
						t.Fatal(err)
					}
					d := []*tensor.Tensor{dy}
					var dres *tensor.Tensor
					for k := len(outs) - 1; k >= 0; k-- {
						op := append([]graph.Op{bn}, chain...)[k]
						g, err := op.Backward(ctxs[k], ins[k], outs[k], d)
						if err != nil {
							t.Fatal(err)
						}
						if _, ok := op.(Add); ok {
							dres = g[1]
						}
						if k > 0 {
							d = g[:1]
							continue
						}
						for i, what := range []string{"X", "scale", "B"} {
							cgAssertClose(t, name+" gradient of "+what, gf[i].Data, g[i].Data, 1e-5)
						}
					}
					if dres != nil {
						cgAssertClose(t, name+" gradient of the residual", gf[5].Data, dres.Data, 1e-5)
					}
				}
			}
		}
	})
}

// bnActNet builds Conv → BN → Clip(0,6) → depthwise Conv → BN → Relu →
// 1×1 Conv → BN → Add(input) → Relu → global average pool, with
// parameters from seed, and returns it with the output of the first
// BatchNorm.
func bnActNet(t *testing.T, seed int64) (*graph.Graph, *graph.Value) {
	t.Helper()
	rng := graph.RNG(seed)
	g := graph.New("bnact")
	x := g.Input("x", -1, 3, 6, 6)
	conv := func(name string, in *graph.Value, out, cin, k int, op Conv) *graph.Value {
		w := gradcheck.Rand(rng, out, cin, k, k)
		return g.Apply(name, op, in, g.AddParam(name+".w", graph.Weight, w))
	}
	bn := func(name string, in *graph.Value, ch int) *graph.Value {
		p := bnTestInputs(rng.Int63(), 2, ch)
		return g.Apply(name, BatchNorm{Momentum: 0.9}, in,
			g.AddParam(name+".scale", graph.BNScale, p[1]), g.AddParam(name+".b", graph.BNBias, p[2]),
			g.AddParam(name+".mean", graph.BNMean, p[3]), g.AddParam(name+".var", graph.BNVar, p[4]))
	}
	pad1 := Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	dw := pad1
	dw.Groups = 8
	b1 := bn("bn1", conv("conv1", x, 8, 3, 3, pad1), 8)
	y := g.Apply("act1", Clip{Min: 0, Max: 6}, b1)
	y = g.Apply("act2", Relu{}, bn("bn2", conv("dw", y, 8, 1, 3, dw), 8))
	y = bn("bn3", conv("pw", y, 3, 8, 1, Conv{}), 3)
	y = g.Apply("pool", GlobalAveragePool{}, g.Apply("relu", Relu{}, g.Apply("add", Add{}, y, x)))
	g.SetOutputs(y)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g, b1
}

// TestTrainingFusionMatchesUnfused runs training steps of the same network
// with the executor's BatchNorm+activation fusion and without it (an
// OnForward hook disables it): outputs, parameter gradients and running
// statistics agree to within 1e-5, on every kernel implementation.
func TestTrainingFusionMatchesUnfused(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		gf, bnOut := bnActNet(t, 3)
		gs, _ := bnActNet(t, 3)
		ef, err := graph.NewExecutor(gf)
		if err != nil {
			t.Fatal(err)
		}
		es, err := graph.NewExecutor(gs)
		if err != nil {
			t.Fatal(err)
		}
		ef.Training, es.Training = true, true
		es.OnForward = func(*graph.Node, []*tensor.Tensor, []*tensor.Tensor) {}
		rng := graph.RNG(4)
		for step := 0; step < 2; step++ {
			x := gradcheck.Rand(rng, 5, 3, 6, 6)
			gf.ZeroGrad()
			gs.ZeroGrad()
			of, err := ef.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			os, err := es.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			if ef.Get(bnOut) != nil {
				t.Fatal("the fused BatchNorm's output was computed")
			}
			cgAssertClose(t, "output", of[0].Data, os[0].Data, 1e-5)
			dy := gradcheck.Rand(rng, of[0].Shape...)
			if err := ef.Backward(dy); err != nil {
				t.Fatal(err)
			}
			if err := es.Backward(dy); err != nil {
				t.Fatal(err)
			}
			ps := gs.Params()
			for i, p := range gf.Params() {
				if p.Grad != nil || ps[i].Grad != nil {
					cgAssertClose(t, p.Name+" gradient", p.Grad.Data, ps[i].Grad.Data, 1e-5)
				}
				cgAssertClose(t, p.Name, p.Data.Data, ps[i].Data.Data, 1e-6)
			}
		}
	})
}
