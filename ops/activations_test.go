package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// activationCases lists every activation with its kinks (where finite
// differences are not valid) and a reference f.
var activationCases = []struct {
	op    graph.Op
	kinks []float64
	f     func(x float64) float64
}{
	{Relu{}, []float64{0}, func(x float64) float64 { return math.Max(x, 0) }},
	{Clip{Min: -1, Max: 2}, []float64{-1, 2}, func(x float64) float64 { return math.Min(math.Max(x, -1), 2) }},
	{Clip{Min: 0, Max: 6}, []float64{0, 6}, func(x float64) float64 { return math.Min(math.Max(x, 0), 6) }},
	{LeakyRelu{Alpha: 0.1}, []float64{0}, func(x float64) float64 {
		if x < 0 {
			return 0.1 * x
		}
		return x
	}},
	{HardSwish{}, []float64{-3, 3}, func(x float64) float64 { return x * math.Min(math.Max(x+3, 0), 6) / 6 }},
	{HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}, []float64{-3, 3}, func(x float64) float64 { return math.Min(math.Max(x/6+0.5, 0), 1) }},
	{HardSigmoid{Alpha: 0.2, Beta: 0.5}, []float64{-2.5, 2.5}, func(x float64) float64 { return math.Min(math.Max(0.2*x+0.5, 0), 1) }},
	{Sigmoid{}, nil, func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }},
	{Tanh{}, nil, math.Tanh},
}

func TestActivationGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, tc := range activationCases {
		for _, shape := range [][]int{{2, 3, 7, 5}, {1}, {}} {
			x := randAway(rng, -7, 7, 0.05, tc.kinks, shape...)
			checkGrad(t, tc.op, gradcheck.Options{Eps: 1e-2}, x)
		}
	}
}

func TestActivationForwardMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	x := gradcheck.Rand(rng, 3, 5, 11)
	for i := range x.Data {
		x.Data[i] *= 8
	}
	for _, tc := range activationCases {
		y := fwdOnce(t, tc.op, false, x)
		want := make([]float32, x.Len())
		for i, v := range x.Data {
			want[i] = float32(tc.f(float64(v)))
		}
		wantValues(t, tc.op.Type(), y, want, 1e-6)
		wantShape(t, tc.op, [][]int{{-1, 3, 5}}, []int{-1, 3, 5})
	}
}

func TestHardActivationValues(t *testing.T) {
	x := tensor.MustFromData([]float32{-4, -3, -1.5, 0, 1, 3, 5}, 7)
	wantValues(t, "HardSwish", fwdOnce(t, HardSwish{}, false, x),
		[]float32{0, 0, -0.375, 0, 2.0 / 3, 3, 5}, 1e-7)
	wantValues(t, "HardSigmoid", fwdOnce(t, HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}, false, x),
		[]float32{0, 0, 0.25, 0.5, 2.0 / 3, 1, 1}, 1e-7)
	wantValues(t, "LeakyRelu", fwdOnce(t, LeakyRelu{Alpha: 0.25}, false, x),
		[]float32{-1, -0.75, -0.375, 0, 1, 3, 5}, 1e-7)
	wantValues(t, "Clip", fwdOnce(t, Clip{Min: 0, Max: 3}, false, x),
		[]float32{0, 0, 0, 0, 1, 3, 3}, 0)
	// Derivatives on each piece, with the flat side at the kinks.
	c := graph.NewContext(false, 1)
	out, err := HardSwish{}.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	ones := tensor.New(7)
	ones.Fill(1)
	d, err := HardSwish{}.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{ones})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "HardSwish'", d[0], []float32{0, -0.5, 0, 0.5, 5.0 / 6, 1.5, 1}, 1e-6)
	if y := fwdOnce(t, Sigmoid{}, false, tensor.MustFromData([]float32{-200, 200}, 2)); y.Data[0] != 0 || y.Data[1] != 1 || y.HasNaN() {
		t.Fatalf("sigmoid saturation: %v", y.Data)
	}
}

// TestActivationParallel checks the multi-goroutine path on a tensor large
// enough to be split, and that the output buffer is reused across calls.
func TestActivationParallel(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	n := 4*pointwiseGrain + 13
	x := gradcheck.Rand(rng, n)
	dy := gradcheck.Rand(rng, n)
	op := HardSwish{}
	c := graph.NewContext(true, 1)
	out, err := op.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	d, err := op.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range x.Data {
		want := v * min(max(v+3, 0), 6) / 6
		if out[0].Data[i] != want || d[0].Data[i] != dy.Data[i]*(2*v+3)/6 {
			t.Fatalf("element %d: y %g dx %g, want %g %g", i, out[0].Data[i], d[0].Data[i], want, dy.Data[i]*(2*v+3)/6)
		}
	}
	again, err := op.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if &again[0].Data[0] != &out[0].Data[0] {
		t.Fatal("second forward allocated a new output instead of reusing the buffer")
	}
}

func TestActivationErrors(t *testing.T) {
	if _, err := (Relu{}).InferShapes([][]int{{2}, {2}}); err == nil {
		t.Fatal("Relu with two inputs: no error")
	}
	if _, err := (Tanh{}).Forward(graph.NewContext(false, 1), nil); err == nil {
		t.Fatal("Tanh without input: no error")
	}
	c := graph.NewContext(false, 1)
	c.NeedGrad = []bool{false}
	x := tensor.New(3)
	d, err := Relu{}.Backward(c, []*tensor.Tensor{x}, []*tensor.Tensor{x}, []*tensor.Tensor{x})
	if err != nil || len(d) != 1 || d[0] != nil {
		t.Fatalf("no gradient needed: got %v, %v", d, err)
	}
}

// TestReluBackwardEdges checks which outputs pass the gradient: strictly
// positive finite ones (the smallest subnormal and the largest float
// included), not zeros of either sign, negatives or infinities.
func TestReluBackwardEdges(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	x := tensor.MustFromData([]float32{1, 1e-45, math.MaxFloat32, 0, negZero, -1e-45, -3, float32(math.Inf(-1)), float32(math.Inf(1))}, 9)
	want := []float32{1, 1, 1, 0, 0, 0, 0, 0, 0}
	c := graph.NewContext(true, 1)
	out, err := Relu{}.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	dy := tensor.New(9)
	dy.Fill(1)
	d, err := Relu{}.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "Relu gradient", d[0], want, 0)
}
