package ops

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// Tests of the layout ops added for ONNX import: Transpose, Squeeze,
// Unsqueeze, Split, Slice, ReduceMean and Identity.

// at returns x[i...] of a dense row-major tensor.
func at(x *tensor.Tensor, idx ...int) float32 {
	off := 0
	for d, i := range idx {
		off = off*x.Shape[d] + i
	}
	return x.Data[off]
}

func TestTransposeValues(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	y := fwdOnce(t, Transpose{Perm: []int{1, 0}}, false, x)
	if !tensor.SameShape(y.Shape, []int{3, 2}) {
		t.Fatalf("shape %v", y.Shape)
	}
	wantValues(t, "2-D", y, []float32{1, 4, 2, 5, 3, 6}, 0)
	wantValues(t, "nil perm reverses", fwdOnce(t, Transpose{}, false, x), []float32{1, 4, 2, 5, 3, 6}, 0)

	rng := rand.New(rand.NewSource(1))
	x4 := gradcheck.Rand(rng, 2, 3, 4, 5)
	perm := []int{2, 0, 3, 1}
	y4 := fwdOnce(t, Transpose{Perm: perm}, false, x4)
	if !tensor.SameShape(y4.Shape, []int{4, 2, 5, 3}) {
		t.Fatalf("4-D shape %v", y4.Shape)
	}
	for a := range 2 {
		for b := range 3 {
			for c := range 4 {
				for d := range 5 {
					if got, want := at(y4, c, a, d, b), at(x4, a, b, c, d); got != want {
						t.Fatalf("y[%d,%d,%d,%d] = %v, want x[%d,%d,%d,%d] = %v", c, a, d, b, got, a, b, c, d, want)
					}
				}
			}
		}
	}
	checkGrad(t, Transpose{Perm: perm}, gradcheck.Options{}, x4)
	checkGrad(t, Transpose{Perm: []int{0, 2, 1}}, gradcheck.Options{}, gradcheck.Rand(rng, 2, 3, 4))

	wantShape(t, Transpose{Perm: []int{0, 2, 1}}, [][]int{{-1, 8, 16}}, []int{-1, 16, 8})
	for _, p := range [][]int{{0, 0, 1}, {0, 1}, {0, 1, 3}, {-1, 0, 1}} {
		if s, err := (Transpose{Perm: p}).InferShapes([][]int{{2, 3, 4}}); err == nil {
			t.Errorf("Transpose perm %v of rank 3 = %v, want an error", p, s)
		}
	}
}

func TestSqueezeUnsqueeze(t *testing.T) {
	wantShape(t, Squeeze{Axes: []int{1, -1}}, [][]int{{-1, 1, 8, 1}}, []int{-1, 8})
	wantShape(t, Squeeze{Axes: []int{0}}, [][]int{{-1, 8}}, []int{8})
	wantShape(t, Unsqueeze{Axes: []int{0}}, [][]int{{3}}, []int{1, 3})
	wantShape(t, Unsqueeze{Axes: []int{1, -1}}, [][]int{{-1, 8}}, []int{-1, 1, 8, 1})
	wantShape(t, Unsqueeze{Axes: []int{3, 1}}, [][]int{{2, 5}}, []int{2, 1, 5, 1})
	for _, c := range []struct {
		op graph.Op
		in []int
	}{
		{Squeeze{Axes: []int{1}}, []int{2, 3}},
		{Squeeze{}, []int{2, 1}},
		{Squeeze{Axes: []int{1, 1}}, []int{2, 1}},
		{Squeeze{Axes: []int{5}}, []int{2, 1}},
		{Unsqueeze{}, []int{2}},
		{Unsqueeze{Axes: []int{3}}, []int{2}},
		{Unsqueeze{Axes: []int{0, 0}}, []int{2}},
	} {
		if s, err := c.op.InferShapes([][]int{c.in}); err == nil {
			t.Errorf("%T%+v of %v = %v, want an error", c.op, c.op, c.in, s)
		}
	}
	rng := rand.New(rand.NewSource(2))
	x := gradcheck.Rand(rng, 2, 1, 3)
	y := fwdOnce(t, Squeeze{Axes: []int{1}}, false, x)
	if !tensor.SameShape(y.Shape, []int{2, 3}) {
		t.Fatalf("squeeze shape %v", y.Shape)
	}
	wantValues(t, "squeeze keeps order", y, x.Data, 0)
	z := fwdOnce(t, Unsqueeze{Axes: []int{0, 3}}, false, y)
	if !tensor.SameShape(z.Shape, []int{1, 2, 3, 1}) {
		t.Fatalf("unsqueeze shape %v", z.Shape)
	}
	checkGrad(t, Squeeze{Axes: []int{1}}, gradcheck.Options{}, x)
	checkGrad(t, Unsqueeze{Axes: []int{-1}}, gradcheck.Options{}, x)
	// A squeezed batch axis must be 1 at run time.
	if _, err := (Squeeze{Axes: []int{0}}).Forward(graph.NewContext(false, 1), []*tensor.Tensor{gradcheck.Rand(rng, 2, 3)}); err == nil {
		t.Error("squeeze of an axis of size 2 at run time: no error")
	}
}

func TestSplit(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	outs, err := Split{Axis: 1, Sizes: []int{2, 0, 3}}.Forward(graph.NewContext(false, 1), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 3 || !tensor.SameShape(outs[1].Shape, []int{2, 0}) {
		t.Fatalf("outputs %v", outs)
	}
	wantValues(t, "part 0", outs[0], []float32{1, 2, 6, 7}, 0)
	wantValues(t, "part 2", outs[2], []float32{3, 4, 5, 8, 9, 10}, 0)

	out, err := Split{Axis: -1, Sizes: []int{3, 5}}.InferShapes([][]int{{-1, 4, 8}})
	if err != nil || len(out) != 2 || !tensor.SameShape(out[0], []int{-1, 4, 3}) || !tensor.SameShape(out[1], []int{-1, 4, 5}) {
		t.Fatalf("InferShapes: %v %v", out, err)
	}
	for _, o := range []Split{{Axis: 0, Sizes: []int{1}}, {Axis: 1, Sizes: []int{3, 4}}, {Axis: 1}, {Axis: 1, Sizes: []int{9, -1}}, {Axis: 3, Sizes: []int{8}}} {
		if s, err := o.InferShapes([][]int{{-1, 8}}); err == nil {
			t.Errorf("Split%+v of [-1 8] = %v, want an error", o, s)
		}
	}

	rng := rand.New(rand.NewSource(3))
	checkGrad(t, Split{Axis: 1, Sizes: []int{1, 3, 2}}, gradcheck.Options{}, gradcheck.Rand(rng, 2, 6, 3))
	// Parts without a gradient contribute zero.
	in := []*tensor.Tensor{gradcheck.Rand(rng, 2, 4)}
	op := Split{Axis: 1, Sizes: []int{1, 3}}
	c := graph.NewContext(false, 1)
	outs, err = op.Forward(c, in)
	if err != nil {
		t.Fatal(err)
	}
	d, err := op.Backward(c, in, outs, []*tensor.Tensor{nil, tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	wantValues(t, "partial gradient", d[0], []float32{0, 1, 2, 3, 0, 4, 5, 6}, 0)
}

// sliceRef is a direct implementation of ONNX Slice on one axis.
func sliceRef(dim, start, end, step int) []int {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	var idx []int
	if step > 0 {
		start, end = min(max(start, 0), dim), min(max(end, 0), dim)
		for i := start; i < end; i += step {
			idx = append(idx, i)
		}
	} else {
		start, end = min(max(start, 0), dim-1), min(max(end, -1), dim-1)
		for i := start; i > end; i += step {
			idx = append(idx, i)
		}
	}
	return idx
}

func TestSliceValues(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	x := gradcheck.Rand(rng, 3, 7, 6)
	cases := []Slice{
		{Starts: []int{1}, Ends: []int{-1}, Axes: []int{1}},
		{Starts: []int{0}, Ends: []int{math.MaxInt}, Axes: []int{-1}, Steps: []int{2}},
		{Starts: []int{-1}, Ends: []int{math.MinInt}, Axes: []int{1}, Steps: []int{-1}},
		{Starts: []int{5, 1}, Ends: []int{0, 3}, Axes: []int{2, 0}, Steps: []int{-2, 1}},
		{Starts: []int{0, 2, 1}, Ends: []int{3, 100, 5}, Steps: []int{2, 3, 3}},
		{Starts: []int{4}, Ends: []int{2}, Axes: []int{1}},
		{Starts: []int{-100}, Ends: []int{100}, Axes: []int{2}, Steps: []int{math.MaxInt}},
		{Starts: []int{100}, Ends: []int{-100}, Axes: []int{2}, Steps: []int{math.MinInt}},
	}
	for _, o := range cases {
		// Reference: per-axis index lists, then a full gather.
		lists := [3][]int{sliceRef(3, 0, 3, 1), sliceRef(7, 0, 7, 1), sliceRef(6, 0, 6, 1)}
		for j := range o.Starts {
			a := j
			if o.Axes != nil {
				a = (o.Axes[j] + 3) % 3
			}
			step := 1
			if o.Steps != nil {
				step = o.Steps[j]
			}
			lists[a] = sliceRef(x.Shape[a], o.Starts[j], o.Ends[j], step)
		}
		var want []float32
		for _, i := range lists[0] {
			for _, j := range lists[1] {
				for _, k := range lists[2] {
					want = append(want, at(x, i, j, k))
				}
			}
		}
		y := fwdOnce(t, o, false, x)
		wantShapeAll := []int{len(lists[0]), len(lists[1]), len(lists[2])}
		if !tensor.SameShape(y.Shape, wantShapeAll) {
			t.Fatalf("Slice%+v: shape %v, want %v", o, y.Shape, wantShapeAll)
		}
		wantValues(t, "slice", y, want, 0)
		shapes, err := o.InferShapes([][]int{x.Shape})
		if err != nil || !tensor.SameShape(shapes[0], wantShapeAll) {
			t.Fatalf("Slice%+v InferShapes: %v %v, want %v", o, shapes, err, wantShapeAll)
		}
		if y.Len() > 0 {
			checkGrad(t, o, gradcheck.Options{}, x)
		}
	}
	wantShape(t, Slice{Starts: []int{0, 1}, Ends: []int{1, 3}}, [][]int{{-1, 8}}, []int{-1, 2})
	for _, o := range []Slice{
		{Starts: []int{0}, Ends: []int{1}, Steps: []int{0}},
		{Starts: []int{0}, Ends: []int{1, 2}},
		{Starts: []int{0, 0}, Ends: []int{1, 1}, Axes: []int{1, -1}},
		{Starts: []int{0}, Ends: []int{1}, Axes: []int{2}},
		{Starts: []int{0, 0, 0}, Ends: []int{1, 1, 1}},
	} {
		if s, err := o.InferShapes([][]int{{4, 8}}); err == nil {
			t.Errorf("Slice%+v of [4 8] = %v, want an error", o, s)
		}
	}
}

func TestReduceMean(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	wantValues(t, "axis 1", fwdOnce(t, ReduceMean{Axes: []int{1}}, false, x), []float32{2, 5}, 1e-6)
	wantValues(t, "axis 0", fwdOnce(t, ReduceMean{Axes: []int{0}, KeepDims: true}, false, x), []float32{2.5, 3.5, 4.5}, 1e-6)
	all := fwdOnce(t, ReduceMean{KeepDims: true}, false, x)
	if !tensor.SameShape(all.Shape, []int{1, 1}) {
		t.Fatalf("all axes keepdims shape %v", all.Shape)
	}
	wantValues(t, "all", all, []float32{3.5}, 1e-6)

	rng := rand.New(rand.NewSource(5))
	x4 := gradcheck.Rand(rng, 2, 3, 4, 5)
	y := fwdOnce(t, ReduceMean{Axes: []int{1, 3}, KeepDims: true}, false, x4)
	if !tensor.SameShape(y.Shape, []int{2, 1, 4, 1}) {
		t.Fatalf("shape %v", y.Shape)
	}
	for a := range 2 {
		for c := range 4 {
			var s float64
			for b := range 3 {
				for d := range 5 {
					s += float64(at(x4, a, b, c, d))
				}
			}
			if got := at(y, a, 0, c, 0); math.Abs(float64(got)-s/15) > 1e-5 {
				t.Fatalf("mean[%d,%d] = %v, want %v", a, c, got, s/15)
			}
		}
	}
	checkGrad(t, ReduceMean{Axes: []int{1, 3}, KeepDims: true}, gradcheck.Options{}, x4)
	checkGrad(t, ReduceMean{Axes: []int{-2}}, gradcheck.Options{}, x4)
	checkGrad(t, ReduceMean{}, gradcheck.Options{}, gradcheck.Rand(rng, 3, 4))

	wantShape(t, ReduceMean{Axes: []int{2, 3}, KeepDims: true}, [][]int{{-1, 8, 4, 4}}, []int{-1, 8, 1, 1})
	wantShape(t, ReduceMean{Axes: []int{2, 3}}, [][]int{{-1, 8, 4, 4}}, []int{-1, 8})
	for _, o := range []ReduceMean{{Axes: []int{2}}, {Axes: []int{1, -1}}} {
		if s, err := o.InferShapes([][]int{{-1, 8}}); err == nil {
			t.Errorf("ReduceMean%+v of [-1 8] = %v, want an error", o, s)
		}
	}
}

func TestIdentity(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	x := gradcheck.Rand(rng, 2, 3)
	y := fwdOnce(t, Identity{}, false, x)
	wantValues(t, "identity", y, x.Data, 0)
	if &y.Data[0] == &x.Data[0] {
		t.Fatal("identity output aliases its input")
	}
	wantShape(t, Identity{}, [][]int{{-1, 3}}, []int{-1, 3})
	checkGrad(t, Identity{}, gradcheck.Options{}, x)
}

// TestLayoutOpsInGraph runs the new ops inside a graph with a batch
// dimension and backpropagates through them.
func TestLayoutOpsInGraph(t *testing.T) {
	g := graph.New("layout")
	x := g.Input("x", -1, 4, 6)
	tr := g.Apply("t", Transpose{Perm: []int{0, 2, 1}}, x)                                    // [-1 6 4]
	parts := g.Node("split", Split{Axis: 1, Sizes: []int{2, 4}}, tr)                          // [-1 2 4], [-1 4 4]
	sl := g.Apply("slice", Slice{Starts: []int{1}, Ends: []int{3}, Axes: []int{1}}, parts[1]) // [-1 2 4]
	cat := g.Apply("cat", Concat{Axis: 2}, parts[0], sl)                                      // [-1 2 8]
	u := g.Apply("u", Unsqueeze{Axes: []int{1}}, cat)                                         // [-1 1 2 8]
	m := g.Apply("m", ReduceMean{Axes: []int{-1}, KeepDims: true}, u)                         // [-1 1 2 1]
	s := g.Apply("s", Squeeze{Axes: []int{1, 3}}, m)                                          // [-1 2]
	y := g.Apply("y", Identity{}, s)
	g.SetOutputs(y)
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	if !tensor.SameShape(y.Shape, []int{-1, 2}) {
		t.Fatalf("output shape %v", y.Shape)
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	e.Training = true
	in := gradcheck.Rand(rand.New(rand.NewSource(7)), 3, 4, 6)
	out, err := e.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	// y[b, i] = mean over k of concat(xᵀ[b, i, :], xᵀ[b, 3+i, :]) where
	// xᵀ[b, r, c] = x[b, c, r].
	for b := range 3 {
		for i := range 2 {
			var sum float64
			for c := range 4 {
				sum += float64(at(in, b, c, i)) + float64(at(in, b, c, 3+i))
			}
			if got := at(out[0], b, i); math.Abs(float64(got)-sum/8) > 1e-5 {
				t.Fatalf("y[%d,%d] = %v, want %v", b, i, got, sum/8)
			}
		}
	}
	dx, err := e.BackwardInputs(tensor.MustFromData([]float32{1, 1, 1, 1, 1, 1}, 3, 2))
	if err != nil {
		t.Fatal(err)
	}
	// Rows 0, 1, 3 and 4 of xᵀ feed the output with weight 1/8; rows 2 and
	// 5 do not.
	for c := range 4 {
		for r := range 6 {
			want := float32(0.125)
			if r == 2 || r == 5 {
				want = 0
			}
			if got := at(dx[0], 0, c, r); got != want {
				t.Fatalf("dx[0,%d,%d] = %v, want %v", c, r, got, want)
			}
		}
	}
}
