package graph

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"lowbit/tensor"
)

// Test ops for the executor's memory management. revOp reverses each row
// (so reading a buffer while it is being overwritten shows), viewOp returns
// a view of its input, readsOutOp is a GradReader whose backward reads only
// its output (y = 2x, dx = 2dy), and fuseA / fuseB (y = x+1, y = 3x) fuse
// into fusedAB.

type revOp struct{}

func (revOp) Type() string                            { return "TestRev" }
func (revOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (revOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0]
	y := c.Buffer(0, x.Shape...)
	n := x.Len()
	for i := range y.Data {
		y.Data[i] = x.Data[n-1-i] + 0.5
	}
	return []*tensor.Tensor{y}, nil
}
func (revOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	dy := dout[0]
	dx := c.Buffer(1, dy.Shape...)
	n := dy.Len()
	for i := range dx.Data {
		dx.Data[i] = dy.Data[n-1-i]
	}
	return []*tensor.Tensor{dx}, nil
}
func (revOp) BackwardReadsInput(int) bool  { return false }
func (revOp) BackwardReadsOutput(int) bool { return false }

type viewOp struct{}

func (viewOp) Type() string                            { return "TestView" }
func (viewOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (viewOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{{Shape: in[0].Shape, Data: in[0].Data}}, nil
}
func (viewOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{dout[0]}, nil
}

type readsOutOp struct{}

func (readsOutOp) Type() string                            { return "TestReadsOut" }
func (readsOutOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (readsOutOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	y := c.Buffer(0, in[0].Shape...)
	for i, v := range in[0].Data {
		y.Data[i] = 2 * v
	}
	return []*tensor.Tensor{y}, nil
}
func (readsOutOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if in[0].Len() != out[0].Len() {
		return nil, nil
	}
	dx := c.Buffer(1, in[0].Shape...)
	for i, g := range dout[0].Data {
		dx.Data[i] = 2 * g
	}
	return []*tensor.Tensor{dx}, nil
}
func (readsOutOp) BackwardReadsInput(int) bool  { return false }
func (readsOutOp) BackwardReadsOutput(int) bool { return true }

type fuseA struct{ calls *int }
type fuseB struct{ calls *int }
type fusedAB struct{ calls *int }

func (fuseA) Type() string                              { return "TestA" }
func (fuseB) Type() string                              { return "TestB" }
func (fusedAB) Type() string                            { return "TestA+TestB" }
func (fuseA) InferShapes(in [][]int) ([][]int, error)   { return [][]int{in[0]}, nil }
func (fuseB) InferShapes(in [][]int) ([][]int, error)   { return [][]int{in[0]}, nil }
func (fusedAB) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func pointwiseFwd(c *Context, x *tensor.Tensor, f func(float32) float32) []*tensor.Tensor {
	y := c.Buffer(0, x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = f(v)
	}
	return []*tensor.Tensor{y}
}
func (fuseA) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return v + 1 }), nil
}
func (fuseB) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return 3 * v }), nil
}
func (f fusedAB) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	*f.calls++
	return pointwiseFwd(c, in[0], func(v float32) float32 { return 3 * (v + 1) }), nil
}
func (fuseA) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{dout[0]}, nil
}
func (fuseB) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	dx := c.Buffer(1, dout[0].Shape...)
	for i, g := range dout[0].Data {
		dx.Data[i] = 3 * g
	}
	return []*tensor.Tensor{dx}, nil
}
func (fusedAB) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (a fuseA) Fuse(next Op) (Op, bool) {
	if _, ok := next.(fuseB); ok {
		return fusedAB(a), true
	}
	return nil, false
}

func dataPtr(t *tensor.Tensor) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(t.Data))) }

// chain builds input → ops... → output on [-1, 5] values.
func chain(t *testing.T, ops ...Op) *Graph {
	t.Helper()
	g := New("chain")
	v := g.Input("x", -1, 5)
	for i, op := range ops {
		v = g.Apply(string(rune('a'+i)), op, v)
	}
	g.SetOutputs(v)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g
}

func reversed(x []float32) []float32 {
	y := make([]float32, len(x))
	for i := range x {
		y[i] = x[len(x)-1-i] + 0.5
	}
	return y
}

func sameFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-6 {
			t.Fatalf("%s: [%d] = %v, want %v (all %v)", what, i, got[i], want[i], got)
		}
	}
}

// TestEvalRecyclesBuffers runs a chain of six reversals in evaluation:
// results are right on repeated calls, intermediate values are released
// (Get returns nil), and the whole chain lives in a few pooled buffers.
func TestEvalRecyclesBuffers(t *testing.T) {
	g := chain(t, revOp{}, revOp{}, revOp{}, revOp{}, revOp{}, revOp{})
	e, err := NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	want := x.Data
	for range 6 {
		want = reversed(want)
	}
	seen := map[uintptr]bool{}
	e.OnForward = func(n *Node, in, out []*tensor.Tensor) { seen[dataPtr(out[0])] = true }
	for run := 0; run < 3; run++ {
		out, err := e.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		sameFloats(t, "output", out[0].Data, want)
	}
	if e.Get(g.Value("c")) != nil {
		t.Error("intermediate value kept after an evaluation forward")
	}
	if len(seen) > 3 {
		t.Errorf("six same-sized outputs over three passes used %d buffers, want at most 3", len(seen))
	}
	// KeepValues keeps every value.
	e.KeepValues = true
	if _, err := e.Forward(x); err != nil {
		t.Fatal(err)
	}
	if e.Get(g.Value("c")) == nil {
		t.Error("KeepValues: intermediate value not kept")
	}
}

// TestViewKeepsStorage checks that a view's storage is not reused while
// the view is alive: rev → view → rev → rev.
func TestViewKeepsStorage(t *testing.T) {
	g := chain(t, revOp{}, viewOp{}, revOp{}, revOp{})
	e, _ := NewExecutor(g)
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5}, 1, 5)
	want := reversed(reversed(reversed(x.Data)))
	for run := 0; run < 2; run++ {
		out, err := e.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		sameFloats(t, "output", out[0].Data, want)
	}
}

// TestTrainingMatchesKeepValues compares gradients with recycling (grads
// adopted, outputs of GradReader inputs released early) against
// KeepValues over two steps, on the diamond graph plus GradReader ops.
func TestTrainingMatchesKeepValues(t *testing.T) {
	run := func(keep bool) (grads [][]float32, dx []float32) {
		g := New("t")
		x := g.Input("input", -1, 3)
		w1 := g.AddParam("w1", Weight, tensor.MustFromData([]float32{1, 2, 3}, 3))
		w2 := g.AddParam("w2", Weight, tensor.MustFromData([]float32{-1, 0.5, 2}, 3))
		h := g.Apply("h", scaleOp{}, x, w1)
		r := g.Apply("r", revOp{}, h)
		d := g.Apply("d", readsOutOp{}, r)
		a := g.Apply("a", scaleOp{}, d, w2)
		b := g.Apply("b", readsOutOp{}, d)
		y := g.Apply("y", addOp{}, a, b)
		g.SetOutputs(g.Apply("out", readsOutOp{}, y))
		if g.Err() != nil {
			t.Fatal(g.Err())
		}
		e, _ := NewExecutor(g)
		e.Training, e.KeepValues = true, keep
		in := tensor.MustFromData([]float32{1, -1, 2, 0.5, 3, -2}, 2, 3)
		dy := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
		for step := 0; step < 2; step++ {
			g.ZeroGrad()
			if _, err := e.Forward(in); err != nil {
				t.Fatal(err)
			}
			d, err := e.BackwardInputs(dy)
			if err != nil {
				t.Fatal(err)
			}
			dx = append(dx[:0], d[0].Data...)
		}
		return [][]float32{append([]float32(nil), w1.Param.Grad.Data...), append([]float32(nil), w2.Param.Grad.Data...)}, dx
	}
	g1, x1 := run(false)
	g2, x2 := run(true)
	sameFloats(t, "dw1", g1[0], g2[0])
	sameFloats(t, "dw2", g1[1], g2[1])
	sameFloats(t, "dx", x1, x2)
}

// TestSecondBackwardAfterTraining: the first Backward released the
// activations, so a second one is refused unless KeepValues is set.
func TestSecondBackwardAfterTraining(t *testing.T) {
	for _, keep := range []bool{false, true} {
		g := build(t)
		e, _ := NewExecutor(g)
		e.Training, e.KeepValues = true, keep
		x := tensor.MustFromData([]float32{1, 2, 3}, 1, 3)
		dy := tensor.MustFromData([]float32{1, 1, 1}, 1, 3)
		if _, err := e.Forward(x); err != nil {
			t.Fatal(err)
		}
		if err := e.Backward(dy); err != nil {
			t.Fatal(err)
		}
		err := e.Backward(dy)
		if keep && err != nil {
			t.Fatalf("KeepValues: second backward failed: %v", err)
		}
		if !keep && (err == nil || !strings.Contains(err.Error(), "KeepValues")) {
			t.Fatalf("second backward after a training forward: %v, want an error naming KeepValues", err)
		}
	}
}

// TestBackwardAfterEvalKeepsOutputs: a Backward after an evaluation
// forward recomputes the released values, leaving the outputs the caller
// holds intact.
func TestBackwardAfterEvalKeepsOutputs(t *testing.T) {
	g := build(t)
	e, _ := NewExecutor(g)
	x := tensor.MustFromData([]float32{1, -1, 2, 0.5, 3, -2}, 2, 3)
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	before := append([]float32(nil), out[0].Data...)
	dy := tensor.New(2, 3)
	dy.Fill(1)
	for i := 0; i < 2; i++ { // twice: the second recomputes again
		if _, err := e.BackwardInputs(dy); err != nil {
			t.Fatal(err)
		}
	}
	sameFloats(t, "output after backward", out[0].Data, before)
}

// TestInferenceFusion checks that evaluation runs fused chains (and
// training, KeepValues and OnForward do not), with equal results.
func TestInferenceFusion(t *testing.T) {
	calls := 0
	g := chain(t, fuseA{&calls}, fuseB{&calls}, revOp{})
	e, _ := NewExecutor(g)
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5}, 1, 5)
	want := reversed([]float32{6, 9, 12, 15, 18})
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "fused", out[0].Data, want)
	if calls != 1 {
		t.Fatalf("fused op ran %d times in evaluation, want 1", calls)
	}
	for _, mode := range []string{"training", "keep", "hook"} {
		e.Training, e.KeepValues, e.OnForward = mode == "training", mode == "keep", nil
		if mode == "hook" {
			e.OnForward = func(*Node, []*tensor.Tensor, []*tensor.Tensor) {}
		}
		out, err := e.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		sameFloats(t, mode, out[0].Data, want)
		if calls != 1 {
			t.Fatalf("%s: fused op ran", mode)
		}
	}
}

// A head op that fuses with a residual add whose second input is built
// after the head in node order (the shortcut of a downsampling ResNet
// block): at inference the merged node must run after that input.
type resHead struct{}
type resAdd struct{}
type resFused struct{ calls *int }

func (resHead) Type() string                             { return "TestHead" }
func (resAdd) Type() string                              { return "TestAdd" }
func (resFused) Type() string                            { return "TestHead+TestAdd" }
func (resHead) InferShapes(in [][]int) ([][]int, error)  { return [][]int{in[0]}, nil }
func (resAdd) InferShapes(in [][]int) ([][]int, error)   { return [][]int{in[0]}, nil }
func (resFused) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (resHead) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return v + 1 }), nil
}
func (resAdd) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	y := c.Buffer(0, in[0].Shape...)
	for i := range y.Data {
		y.Data[i] = in[0].Data[i] + in[1].Data[i]
	}
	return []*tensor.Tensor{y}, nil
}
func (f resFused) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	*f.calls++
	y := c.Buffer(0, in[0].Shape...)
	for i := range y.Data {
		y.Data[i] = in[0].Data[i] + 1 + in[1].Data[i]
	}
	return []*tensor.Tensor{y}, nil
}
func (resHead) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{dout[0]}, nil
}
func (resAdd) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{dout[0], dout[0]}, nil
}
func (resFused) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (f resHead) Fuse(next Op) (Op, bool) { return resFused{calls: fuseCalls}, next == Op(resAdd{}) }

var fuseCalls = new(int)

func TestInferenceFusionMovesAfterLateResidual(t *testing.T) {
	g := New("late-residual")
	x := g.Input("x", -1, 5)
	h := g.Apply("head", resHead{}, x)
	r := g.Apply("shortcut", revOp{}, x) // after head in node order
	g.SetOutputs(g.Apply("add", resAdd{}, h, r))
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	e, err := NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	in := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 2, 5)
	rev := reversed(in.Data)
	want := make([]float32, len(rev))
	for i := range want {
		want[i] = in.Data[i] + 1 + rev[i]
	}
	*fuseCalls = 0
	out, err := e.Forward(in)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "fused output", out[0].Data, want)
	if *fuseCalls != 1 {
		t.Fatalf("fused op ran %d times, want 1 (head and add not fused)", *fuseCalls)
	}
}
