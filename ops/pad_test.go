package ops

import (
	"math/rand"
	"testing"

	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestPadValues(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 1, 1, 2, 3)
	// One row on top, crop the first column, one column on the right.
	y := fwdOnce(t, Pad{Pads: []int{0, 0, 1, -1, 0, 0, 0, 1}, Value: 9}, false, x)
	if !tensor.SameShape(y.Shape, []int{1, 1, 3, 3}) {
		t.Fatalf("shape %v", y.Shape)
	}
	wantValues(t, "pad/crop", y, []float32{9, 9, 9, 2, 3, 9, 5, 6, 9}, 0)
	// Crop on every side.
	y = fwdOnce(t, Pad{Pads: []int{-1, -1, -1, -1}}, false, tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3))
	wantValues(t, "crop", y, []float32{5}, 0)
	y = fwdOnce(t, Pad{Pads: []int{-1, -1, 0, -1}}, false, tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3))
	wantValues(t, "asymmetric crop", y, []float32{5, 8}, 0)
	// Negative padding value (quantized h-swish), 1-D.
	y = fwdOnce(t, Pad{Pads: []int{2, 1}, Value: -0.375}, false, tensor.MustFromData([]float32{1}, 1))
	wantValues(t, "1-D", y, []float32{-0.375, -0.375, 1, -0.375}, 0)
	// A scalar has no pads.
	y = fwdOnce(t, Pad{}, false, tensor.MustFromData([]float32{4}))
	wantValues(t, "scalar", y, []float32{4}, 0)
}

func TestPadGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	x := gradcheck.Rand(rng, 2, 3, 7, 5)
	checkGrad(t, Pad{Pads: []int{0, 1, 2, -1, 0, -1, 1, 2}, Value: 0.5}, gradcheck.Options{}, x)
	checkGrad(t, Pad{Pads: []int{0, 0, -3, -2, 0, 0, -3, -2}}, gradcheck.Options{}, x)
	checkGrad(t, Pad{Pads: []int{1, 1, 1, 1, 1, 1, 1, 1}}, gradcheck.Options{}, x)
}

func TestPadShapes(t *testing.T) {
	wantShape(t, Pad{Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}}, [][]int{{-1, 3, 4, 4}}, []int{-1, 3, 6, 6})
	wantShape(t, Pad{Pads: []int{0, -2, 0, -2}}, [][]int{{2, 4}}, []int{2, 0})
	for _, o := range []Pad{{Pads: []int{1, 1}}, {Pads: []int{0, -3, 0, -2}}} {
		if s, err := o.InferShapes([][]int{{2, 4}}); err == nil {
			t.Fatalf("Pad%v of [2 4] = %v, want an error", o.Pads, s)
		}
	}
}
