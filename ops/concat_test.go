package ops

import (
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestConcatValues(t *testing.T) {
	a := tensor.MustFromData([]float32{1, 2, 3, 4}, 2, 2)
	b := tensor.MustFromData([]float32{5, 6}, 2, 1)
	wantValues(t, "axis 1", fwdOnce(t, Concat{Axis: 1}, false, a, b), []float32{1, 2, 5, 3, 4, 6}, 0)
	wantValues(t, "axis -1", fwdOnce(t, Concat{Axis: -1}, false, b, a), []float32{5, 1, 2, 6, 3, 4}, 0)
	c := tensor.MustFromData([]float32{7, 8}, 1, 2)
	y := fwdOnce(t, Concat{Axis: 0}, false, a, c)
	wantValues(t, "axis 0", y, []float32{1, 2, 3, 4, 7, 8}, 0)
	if !tensor.SameShape(y.Shape, []int{3, 2}) {
		t.Fatalf("axis 0 shape %v", y.Shape)
	}
}

func TestConcatGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	checkGrad(t, Concat{Axis: 1}, gradcheck.Options{},
		gradcheck.Rand(rng, 2, 3, 7, 5), gradcheck.Rand(rng, 2, 1, 7, 5), gradcheck.Rand(rng, 2, 4, 7, 5))
	checkGrad(t, Concat{Axis: -1}, gradcheck.Options{},
		gradcheck.Rand(rng, 2, 3, 2), gradcheck.Rand(rng, 2, 3, 5))
	checkGrad(t, Concat{Axis: 0}, gradcheck.Options{}, gradcheck.Rand(rng, 1, 3), gradcheck.Rand(rng, 2, 3))
	// Only the second input needs a gradient.
	c := graph.NewContext(false, 1)
	in := []*tensor.Tensor{gradcheck.Rand(rng, 2, 2), gradcheck.Rand(rng, 2, 3)}
	out, err := Concat{Axis: 1}.Forward(c, in)
	if err != nil {
		t.Fatal(err)
	}
	c.NeedGrad = []bool{false, true}
	d, err := Concat{Axis: 1}.Backward(c, in, out, []*tensor.Tensor{out[0]})
	if err != nil {
		t.Fatal(err)
	}
	if d[0] != nil {
		t.Fatal("gradient returned for an input that needs none")
	}
	wantValues(t, "second input grad", d[1], in[1].Data, 0)
}

func TestConcatShapes(t *testing.T) {
	wantShape(t, Concat{Axis: 1}, [][]int{{-1, 16, 5, 5}, {-1, 8, 5, 5}}, []int{-1, 24, 5, 5})
	wantShape(t, Concat{Axis: 0}, [][]int{{-1, 4}, {2, 4}}, []int{-1, 4})
	for _, in := range [][][]int{
		{{2, 3}, {3, 3}},
		{{2, 3}, {2, 3, 1}},
		{},
		{{2, 3}, nil},
	} {
		if s, err := (Concat{Axis: 1}).InferShapes(in); err == nil {
			t.Fatalf("Concat.InferShapes(%v) = %v, want an error", in, s)
		}
	}
	if _, err := (Concat{Axis: 2}).InferShapes([][]int{{2, 3}}); err == nil {
		t.Fatal("axis 2 of rank 2: no error")
	}
}
