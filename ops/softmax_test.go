package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestSoftmaxValues(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 1000, 1000, 1000}, 2, 3)
	e := []float64{math.Exp(-2), math.Exp(-1), 1}
	s := e[0] + e[1] + e[2]
	wantValues(t, "axis -1", fwdOnce(t, Softmax{Axis: -1}, false, x),
		[]float32{float32(e[0] / s), float32(e[1] / s), float32(e[2] / s), 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-6)
	// Along axis 0 of [2,3], columns are normalized.
	y := fwdOnce(t, Softmax{Axis: 0}, false, tensor.MustFromData([]float32{0, 0, 5, 0, 1, 5}, 2, 3))
	wantValues(t, "axis 0", y, []float32{0.5, float32(1 / (1 + math.E)), 0.5, 0.5, float32(math.E / (1 + math.E)), 0.5}, 1e-6)
}

func TestSoftmaxGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	x := gradcheck.Rand(rng, 2, 3, 7, 5)
	for _, axis := range []int{0, 1, 2, -1} {
		checkGrad(t, Softmax{Axis: axis}, gradcheck.Options{}, x)
		y := fwdOnce(t, Softmax{Axis: axis}, false, x)
		outer, length, inner, err := Softmax{Axis: axis}.geometry(x.Shape)
		if err != nil {
			t.Fatal(err)
		}
		for o := range outer {
			for i := range inner {
				var s float64
				for k := range length {
					s += float64(y.Data[(o*length+k)*inner+i])
				}
				if math.Abs(s-1) > 1e-5 {
					t.Fatalf("axis %d: line sums to %g", axis, s)
				}
			}
		}
	}
	if _, err := (Softmax{Axis: 2}).InferShapes([][]int{{-1, 10}}); err == nil {
		t.Fatal("axis 2 of rank 2: no error")
	}
	wantShape(t, Softmax{Axis: 1}, [][]int{{-1, 10}}, []int{-1, 10})
}

// TestSoftmaxParallel compares the parallel path with per-line reference.
func TestSoftmaxParallel(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	x := gradcheck.Rand(rng, 64, 1000, 2)
	op := Softmax{Axis: 1}
	c := graph.NewContext(false, 1)
	out, err := op.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	dy := gradcheck.Rand(rng, x.Shape...)
	d, err := op.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []int{0, 1, 77, 127} {
		o, i := line/2, line%2
		var s, dot float64
		for k := range 1000 {
			s += math.Exp(float64(x.Data[(o*1000+k)*2+i]))
		}
		for k := range 1000 {
			j := (o*1000+k)*2 + i
			dot += float64(dy.Data[j]) * math.Exp(float64(x.Data[j])) / s
		}
		for k := range 1000 {
			j := (o*1000+k)*2 + i
			p := math.Exp(float64(x.Data[j])) / s
			if math.Abs(float64(out[0].Data[j])-p) > 1e-6 || math.Abs(float64(d[0].Data[j])-p*(float64(dy.Data[j])-dot)) > 1e-6 {
				t.Fatalf("line %d element %d: y %g dx %g, want %g %g", line, k, out[0].Data[j], d[0].Data[j], p, p*(float64(dy.Data[j])-dot))
			}
		}
	}
}
