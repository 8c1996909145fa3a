package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

var binaryOps = []struct {
	op graph.Op
	f  func(a, b float64) float64
}{
	{Add{}, func(a, b float64) float64 { return a + b }},
	{Sub{}, func(a, b float64) float64 { return a - b }},
	{Mul{}, func(a, b float64) float64 { return a * b }},
	{Div{}, func(a, b float64) float64 { return a / b }},
}

// broadcastPairs are operand shapes that exercise every plan: equal
// shapes, channel broadcasting, both operands broadcast, scalars.
var broadcastPairs = [][2][]int{
	{{2, 3, 7, 5}, {2, 3, 7, 5}},
	{{2, 3, 7, 5}, {3, 1, 1}},
	{{2, 3, 7, 5}, {2, 3, 1, 1}},
	{{2, 3, 7, 5}, {1, 3, 1, 1}},
	{{1, 3, 1, 1}, {2, 3, 7, 5}},
	{{2, 1, 5}, {4, 1}},
	{{4, 1}, {2, 1, 5}},
	{{2, 3}, {}},
	{{}, {2, 3}},
	{{}, {}},
	{{1}, {3, 1, 2}},
	{{3, 1, 2}, {3, 4, 1}},
	{{5, 1, 7}, {5, 6, 7}},
}

// naiveBroadcast evaluates f over the broadcast of a and b by index
// arithmetic, as a reference.
func naiveBroadcast(a, b *tensor.Tensor, f func(a, b float64) float64) ([]int, []float32) {
	r := max(len(a.Shape), len(b.Shape))
	out := make([]int, r)
	for i := range out {
		out[i] = max(alignedDim(a.Shape, i, r), alignedDim(b.Shape, i, r))
	}
	res := make([]float32, tensor.Numel(out))
	for lin := range res {
		ia, ib, sa, sb, rem := 0, 0, 1, 1, lin
		for d := r - 1; d >= 0; d-- {
			i := rem % out[d]
			rem /= out[d]
			if ad := alignedDim(a.Shape, d, r); ad != 1 {
				ia += i * sa
				sa *= ad
			}
			if bd := alignedDim(b.Shape, d, r); bd != 1 {
				ib += i * sb
				sb *= bd
			}
		}
		res[lin] = float32(f(float64(a.Data[ia]), float64(b.Data[ib])))
	}
	return out, res
}

// divisorSafe moves values away from zero (for Div's divisor).
func divisorSafe(x *tensor.Tensor) {
	for i, v := range x.Data {
		x.Data[i] = float32(math.Copysign(0.5+math.Abs(float64(v)), float64(v)))
	}
}

func TestBinaryForwardAndGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, bo := range binaryOps {
		for _, pair := range broadcastPairs {
			a, b := gradcheck.Rand(rng, pair[0]...), gradcheck.Rand(rng, pair[1]...)
			divisorSafe(b)
			shape, want := naiveBroadcast(a, b, bo.f)
			y := fwdOnce(t, bo.op, false, a, b)
			if !tensor.SameShape(y.Shape, shape) {
				t.Fatalf("%s %v,%v: shape %v, want %v", bo.op.Type(), pair[0], pair[1], y.Shape, shape)
			}
			wantValues(t, bo.op.Type(), y, want, 1e-6)
			wantShape(t, bo.op, [][]int{pair[0], pair[1]}, shape)
			checkGrad(t, bo.op, gradcheck.Options{}, a, b)
		}
	}
}

// TestBinaryLarge covers the parallel paths (split single run, parallel
// rows, parallel and serial reductions) against the reference.
func TestBinaryLarge(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, pair := range [][2][]int{
		{{4, 32, 24, 24}, {4, 32, 24, 24}},
		{{4, 32, 24, 24}, {4, 32, 1, 1}},
		{{4, 32, 24, 24}, {1, 32, 1, 1}},
		{{4, 32, 24, 24}, {}},
	} {
		for _, bo := range binaryOps {
			a, b := gradcheck.Rand(rng, pair[0]...), gradcheck.Rand(rng, pair[1]...)
			divisorSafe(b)
			_, want := naiveBroadcast(a, b, bo.f)
			c := graph.NewContext(true, 1)
			out, err := bo.op.Forward(c, []*tensor.Tensor{a, b})
			if err != nil {
				t.Fatal(err)
			}
			wantValues(t, bo.op.Type(), out[0], want, 1e-6)
			dy := gradcheck.Rand(rng, out[0].Shape...)
			d, err := bo.op.Backward(c, []*tensor.Tensor{a, b}, out, []*tensor.Tensor{dy})
			if err != nil {
				t.Fatal(err)
			}
			// Reference gradient of B: Σ over broadcast dims of dy·∂f/∂b.
			dbWant := make([]float64, b.Len())
			bi := func(lin int) int {
				if b.Len() == 1 {
					return 0
				}
				if b.Len() == a.Len() {
					return lin
				}
				return (lin / (24 * 24)) % b.Len()
			}
			for lin, g := range dy.Data {
				av, bv := float64(a.Data[lin]), float64(b.Data[bi(lin)])
				var dfdb float64
				switch bo.op.(type) {
				case Add:
					dfdb = 1
				case Sub:
					dfdb = -1
				case Mul:
					dfdb = av
				case Div:
					dfdb = -av / (bv * bv)
				}
				dbWant[bi(lin)] += float64(g) * dfdb
			}
			want32 := make([]float32, len(dbWant))
			for i, v := range dbWant {
				want32[i] = float32(v)
			}
			wantValues(t, bo.op.Type()+" dB", d[1], want32, 2e-3)
		}
	}
}

func TestBinaryShapes(t *testing.T) {
	wantShape(t, Add{}, [][]int{{-1, 16, 5, 5}, {16, 1, 1}}, []int{-1, 16, 5, 5})
	wantShape(t, Mul{}, [][]int{{-1, 1, 5}, {4, 1}}, []int{-1, 4, 5})
	wantShape(t, Mul{}, [][]int{{-1, 8, 7, 7}, {-1, 8, 1, 1}}, []int{-1, 8, 7, 7})
	wantShape(t, Sub{}, [][]int{{1, 3}, {-1, 1}}, []int{-1, 3})
	for _, in := range [][][]int{{{2, 3}, {4}}, {{2}}, {{2}, nil}} {
		if s, err := (Add{}).InferShapes(in); err == nil {
			t.Fatalf("Add.InferShapes(%v) = %v, want an error", in, s)
		}
	}
	if _, err := (Div{}).Forward(graph.NewContext(false, 1), []*tensor.Tensor{tensor.New(2, 3), tensor.New(2)}); err == nil {
		t.Fatal("Div of [2,3] by [2]: no error")
	}
}

// TestBinaryInGraph runs a bias add and a squeeze-excite style product in
// an executor and checks the parameter gradients.
func TestBinaryInGraph(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	g := graph.New("t")
	x := g.Input("x", -1, 3, 4, 4)
	bias := g.AddParam("bias", graph.Bias, gradcheck.Rand(rng, 1, 3, 1, 1))
	scale := g.AddParam("scale", graph.Weight, gradcheck.Rand(rng, 3, 1, 1))
	y := g.Apply("mul", Mul{}, g.Apply("add", Add{}, x, bias), scale)
	g.SetOutputs(y)
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	xv := gradcheck.Rand(rng, 2, 3, 4, 4)
	if _, err := e.Forward(xv); err != nil {
		t.Fatal(err)
	}
	dy := tensor.New(2, 3, 4, 4)
	dy.Fill(1)
	if err := e.Backward(dy); err != nil {
		t.Fatal(err)
	}
	for ch := range 3 {
		var sumX float64
		for n := range 2 {
			for _, v := range xv.Data[(n*3+ch)*16 : (n*3+ch+1)*16] {
				sumX += float64(v)
			}
		}
		wantBias := 32 * float64(scale.Param.Data.Data[ch])
		wantScale := sumX + 32*float64(bias.Param.Data.Data[ch])
		if gb, gs := bias.Param.Grad.Data[ch], scale.Param.Grad.Data[ch]; math.Abs(float64(gb)-wantBias) > 1e-4 || math.Abs(float64(gs)-wantScale) > 1e-4 {
			t.Fatalf("channel %d: bias grad %g scale grad %g, want %g %g", ch, gb, gs, wantBias, wantScale)
		}
	}
}
