package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// Test helpers of the activation, element-wise, shape and loss tests.

// fwdOnce runs op forward once in a fresh context.
func fwdOnce(t *testing.T, op graph.Op, training bool, in ...*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := op.Forward(graph.NewContext(training, 1), in)
	if err != nil {
		t.Fatalf("%s forward: %v", op.Type(), err)
	}
	if len(out) != 1 {
		t.Fatalf("%s forward: %d outputs", op.Type(), len(out))
	}
	return out[0]
}

// checkGrad runs the finite-difference check and fails the test on a
// mismatch.
func checkGrad(t *testing.T, op graph.Op, o gradcheck.Options, in ...*tensor.Tensor) {
	t.Helper()
	if err := gradcheck.Check(op, in, o); err != nil {
		shapes := make([][]int, len(in))
		for i, x := range in {
			shapes[i] = x.Shape
		}
		t.Fatalf("%s %+v on %v: %v", op.Type(), op, shapes, err)
	}
}

// wantValues compares got with want element by element.
func wantValues(t *testing.T, what string, got *tensor.Tensor, want []float32, tol float64) {
	t.Helper()
	if got.Len() != len(want) {
		t.Fatalf("%s: %d values %v, want %d %v", what, got.Len(), got.Data, len(want), want)
	}
	for i, w := range want {
		if d := math.Abs(float64(got.Data[i]) - float64(w)); !(d <= tol*(1+math.Abs(float64(w)))) {
			t.Fatalf("%s: [%d] = %g, want %g (all: %v)", what, i, got.Data[i], w, got.Data)
		}
	}
}

// wantShape compares one inferred shape.
func wantShape(t *testing.T, op graph.Op, in [][]int, want []int) {
	t.Helper()
	out, err := op.InferShapes(in)
	if err != nil {
		t.Fatalf("%s%+v.InferShapes(%v): %v", op.Type(), op, in, err)
	}
	if len(out) != 1 || !tensor.SameShape(out[0], want) {
		t.Fatalf("%s%+v.InferShapes(%v) = %v, want [%v]", op.Type(), op, in, out, want)
	}
}

// randAway returns U(lo, hi) values at least gap away from every kink.
func randAway(rng *rand.Rand, lo, hi, gap float64, kinks []float64, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	for i := 0; i < len(x.Data); {
		v := lo + (hi-lo)*rng.Float64()
		ok := true
		for _, k := range kinks {
			ok = ok && math.Abs(v-k) >= gap
		}
		if ok {
			x.Data[i] = float32(v)
			i++
		}
	}
	return x
}
