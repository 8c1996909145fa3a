package ops

import (
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestReshapeShapes(t *testing.T) {
	wantShape(t, Flatten{Axis: 1}, [][]int{{-1, 16, 5, 5}}, []int{-1, 400})
	wantShape(t, Flatten{Axis: 0}, [][]int{{2, 3, 4}}, []int{1, 24})
	wantShape(t, Flatten{Axis: -1}, [][]int{{2, 3, 4}}, []int{6, 4})
	wantShape(t, Flatten{Axis: 3}, [][]int{{2, 3, 4}}, []int{24, 1})
	wantShape(t, Reshape{Shape: []int{-1, 400}}, [][]int{{-1, 16, 5, 5}}, []int{-1, 400})
	wantShape(t, Reshape{Shape: []int{0, -1}}, [][]int{{-1, 16, 5, 5}}, []int{-1, 400})
	wantShape(t, Reshape{Shape: []int{0, 4, -1}}, [][]int{{-1, 16, 5, 5}}, []int{-1, 4, 100})
	wantShape(t, Reshape{Shape: []int{-1, 16, 5, 5}}, [][]int{{-1, 400}}, []int{-1, 16, 5, 5})
	wantShape(t, Reshape{Shape: []int{0, 0, -1}}, [][]int{{2, 3, 4, 5}}, []int{2, 3, 20})
	wantShape(t, Reshape{Shape: []int{3, -1, 2}}, [][]int{{2, 3, 4}}, []int{3, 4, 2})
	wantShape(t, Reshape{Shape: []int{24}}, [][]int{{2, 3, 4}}, []int{24})
	for _, o := range []Reshape{
		{Shape: []int{-1, -1}},
		{Shape: []int{5, -1}},
		{Shape: []int{25}},
		{Shape: []int{0, 0, 0, 0}},
		{Shape: []int{-2, 12}},
	} {
		if s, err := o.InferShapes([][]int{{2, 3, 4}}); err == nil {
			t.Fatalf("Reshape%v of [2 3 4] = %v, want an error", o.Shape, s)
		}
	}
	if _, err := (Flatten{Axis: 4}).InferShapes([][]int{{2, 3, 4}}); err == nil {
		t.Fatal("Flatten axis 4 of rank 3: no error")
	}
}

func TestReshapeForwardAndGradients(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	x := gradcheck.Rand(rng, 2, 3, 7, 5)
	y := fwdOnce(t, Reshape{Shape: []int{0, -1, 5}}, false, x)
	if !tensor.SameShape(y.Shape, []int{2, 21, 5}) {
		t.Fatalf("Reshape [0 -1 5] of %v: %v", x.Shape, y.Shape)
	}
	wantValues(t, "reshape keeps order", y, x.Data, 0)
	if &y.Data[0] == &x.Data[0] {
		t.Fatal("reshape output aliases its input")
	}
	y = fwdOnce(t, Flatten{Axis: 2}, false, x)
	if !tensor.SameShape(y.Shape, []int{6, 35}) {
		t.Fatalf("Flatten axis 2 of %v: %v", x.Shape, y.Shape)
	}
	checkGrad(t, Reshape{Shape: []int{0, -1, 5}}, gradcheck.Options{}, x)
	checkGrad(t, Flatten{Axis: 1}, gradcheck.Options{}, x)
	if _, err := (Reshape{Shape: []int{4, -1}}).Forward(graph.NewContext(false, 1), []*tensor.Tensor{gradcheck.Rand(rng, 3, 3)}); err == nil {
		t.Fatal("Reshape of 9 elements to [4,-1]: no error")
	}
}

// TestFlattenInGraph builds Flatten of a batch-free input and runs it.
func TestFlattenInGraph(t *testing.T) {
	g := graph.New("t")
	x := g.Input("x", -1, 16, 5, 5)
	f := g.Apply("flat", Flatten{Axis: 1}, x)
	r := g.Apply("back", Reshape{Shape: []int{0, 16, 25}}, f)
	g.SetOutputs(r)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	if !tensor.SameShape(f.Shape, []int{-1, 400}) || !tensor.SameShape(r.Shape, []int{-1, 16, 25}) {
		t.Fatalf("inferred %v and %v", f.Shape, r.Shape)
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	in := gradcheck.Rand(rand.New(rand.NewSource(9)), 3, 16, 5, 5)
	out, err := e.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(out[0].Shape, []int{3, 16, 25}) {
		t.Fatalf("output shape %v", out[0].Shape)
	}
	wantValues(t, "round trip", out[0], in.Data, 0)
}
