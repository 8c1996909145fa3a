package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestDropoutTraining(t *testing.T) {
	const n = 200000
	x := tensor.New(n)
	x.Fill(2)
	for _, ratio := range []float32{0.1, 0.3, 0.5} {
		op := Dropout{Ratio: ratio}
		c := graph.NewContext(true, 42)
		out, err := op.Forward(c, []*tensor.Tensor{x})
		if err != nil {
			t.Fatal(err)
		}
		y := out[0]
		zeros := 0
		for _, v := range y.Data {
			switch {
			case v == 0:
				zeros++
			case math.Abs(float64(v)-2/(1-float64(ratio))) > 1e-5:
				t.Fatalf("ratio %g: kept value %g, want %g", ratio, v, 2/(1-ratio))
			}
		}
		// 200k Bernoulli draws: the standard deviation of the fraction is
		// below 0.0012, so 0.006 is five sigma.
		if frac := float64(zeros) / n; math.Abs(frac-float64(ratio)) > 0.006 {
			t.Fatalf("ratio %g: fraction zeroed %g", ratio, frac)
		}
		if mean := y.Sum() / n; math.Abs(mean-2) > 0.03 {
			t.Fatalf("ratio %g: mean %g, want 2", ratio, mean)
		}
		dy := tensor.New(n)
		dy.Fill(1)
		d, err := op.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range d[0].Data {
			if v != y.Data[i]/2 {
				t.Fatalf("ratio %g: gradient %g at %d, output %g: mask not reused", ratio, v, i, y.Data[i])
			}
		}
	}
}

func TestDropoutEvalAndDeterminism(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	x := gradcheck.Rand(rng, 2, 3, 7, 5)
	op := Dropout{Ratio: 0.5}
	y := fwdOnce(t, op, false, x)
	wantValues(t, "eval identity", y, x.Data, 0)
	wantValues(t, "ratio 0", fwdOnce(t, Dropout{}, true, x), x.Data, 0)
	a, b := fwdOnce(t, op, true, x), fwdOnce(t, op, true, x)
	wantValues(t, "same seed, same mask", a, b.Data, 0)
	checkGrad(t, op, gradcheck.Options{Training: true}, x)
	checkGrad(t, op, gradcheck.Options{}, x)
	for _, r := range []float32{1, -0.1, float32(math.NaN())} {
		if _, err := (Dropout{Ratio: r}).InferShapes([][]int{{2}}); err == nil {
			t.Fatalf("ratio %g: no error", r)
		}
	}
}
