package graph

import (
	"errors"
	"math"
	"strings"
	"testing"

	"lowbit/tensor"
)

// scaleOp is y = x * w with w of the same shape as one sample (broadcast over
// the batch); a minimal op to exercise the executor without package ops.
type scaleOp struct{}

func (scaleOp) Type() string { return "TestScale" }
func (scaleOp) InferShapes(in [][]int) ([][]int, error) {
	if len(in) != 2 || len(in[0]) != 2 || len(in[1]) != 1 || (in[0][1] >= 0 && in[0][1] != in[1][0]) {
		return nil, errors.New("bad shapes")
	}
	return [][]int{in[0]}, nil
}
func (scaleOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w := in[0], in[1]
	y := c.Buffer(0, x.Shape...)
	d := w.Len()
	for i := range x.Data {
		y.Data[i] = x.Data[i] * w.Data[i%d]
	}
	return []*tensor.Tensor{y}, nil
}
func (scaleOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, w, dy := in[0], in[1], dout[0]
	d := w.Len()
	var dx, dw *tensor.Tensor
	if c.Need(0) {
		dx = c.Buffer(1, x.Shape...)
		for i := range x.Data {
			dx.Data[i] = dy.Data[i] * w.Data[i%d]
		}
	}
	if c.Need(1) {
		dw = c.Zeros(2, w.Shape...)
		for i := range x.Data {
			dw.Data[i%d] += dy.Data[i] * x.Data[i]
		}
	}
	return []*tensor.Tensor{dx, dw}, nil
}

// y = (x*w1) * w2 + (x*w1) * w3 is built from two branches that share x*w1,
// so the executor must sum the gradients flowing into the shared value.
type addOp struct{}

func (addOp) Type() string                            { return "TestAdd" }
func (addOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (addOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	y := c.Buffer(0, in[0].Shape...)
	for i := range y.Data {
		y.Data[i] = in[0].Data[i] + in[1].Data[i]
	}
	return []*tensor.Tensor{y}, nil
}
func (addOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return []*tensor.Tensor{dout[0], dout[0]}, nil
}

func build(t *testing.T) *Graph {
	g := New("t")
	x := g.Input("input", -1, 3)
	w1 := g.AddParam("w1", Weight, tensor.MustFromData([]float32{1, 2, 3}, 3))
	w2 := g.AddParam("w2", Weight, tensor.MustFromData([]float32{-1, 0.5, 2}, 3))
	w3 := g.AddParam("w3", Weight, tensor.MustFromData([]float32{0.25, 1, -2}, 3))
	h := g.Apply("h", scaleOp{}, x, w1)
	a := g.Apply("a", scaleOp{}, h, w2)
	b := g.Apply("b", scaleOp{}, h, w3)
	y := g.Apply("y", addOp{}, a, b)
	g.SetOutputs(y)
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g
}

func TestExecutorGradientsMatchAnalytic(t *testing.T) {
	g := build(t)
	e, err := NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.MustFromData([]float32{1, -1, 2, 0.5, 3, -2}, 2, 3)
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	w1, w2, w3 := g.Param("w1").Data.Data, g.Param("w2").Data.Data, g.Param("w3").Data.Data
	for i, v := range out[0].Data {
		j := i % 3
		want := x.Data[i] * w1[j] * (w2[j] + w3[j])
		if math.Abs(float64(v-want)) > 1e-6 {
			t.Fatalf("y[%d] = %v, want %v", i, v, want)
		}
	}
	dy := tensor.New(2, 3)
	dy.Fill(1)
	g.ZeroGrad()
	dIn, err := e.BackwardInputs(dy)
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 3; j++ {
		sx := x.Data[j] + x.Data[j+3]
		if got, want := g.Param("w1").Grad.Data[j], sx*(w2[j]+w3[j]); math.Abs(float64(got-want)) > 1e-5 {
			t.Errorf("dw1[%d] = %v, want %v", j, got, want)
		}
		if got, want := g.Param("w2").Grad.Data[j], sx*w1[j]; math.Abs(float64(got-want)) > 1e-5 {
			t.Errorf("dw2[%d] = %v, want %v", j, got, want)
		}
		if got, want := dIn[0].Data[j], w1[j]*(w2[j]+w3[j]); math.Abs(float64(got-want)) > 1e-5 {
			t.Errorf("dx[%d] = %v, want %v", j, got, want)
		}
	}
	// A second backward accumulates parameter gradients.
	before := g.Param("w2").Grad.Data[0]
	if err := e.Backward(dy); err != nil {
		t.Fatal(err)
	}
	if got := g.Param("w2").Grad.Data[0]; math.Abs(float64(got-2*before)) > 1e-5 {
		t.Errorf("accumulated grad %v, want %v", got, 2*before)
	}
}

func TestFrozenParamGetsNoGradient(t *testing.T) {
	g := build(t)
	g.Param("w3").Frozen = true
	e, _ := NewExecutor(g)
	x := tensor.MustFromData([]float32{1, 2, 3}, 1, 3)
	if _, err := e.Forward(x); err != nil {
		t.Fatal(err)
	}
	dy := tensor.MustFromData([]float32{1, 1, 1}, 1, 3)
	if err := e.Backward(dy); err != nil {
		t.Fatal(err)
	}
	if g.Param("w3").Grad != nil {
		t.Fatal("frozen parameter received a gradient")
	}
	if g.Param("w2").Grad == nil {
		t.Fatal("trainable parameter received no gradient")
	}
}

func TestBuildErrors(t *testing.T) {
	g := New("bad")
	x := g.Input("input", -1, 3)
	w := g.AddParam("w", Weight, tensor.New(4))
	if g.Apply("n", scaleOp{}, x, w) != nil || g.Err() == nil || !strings.Contains(g.Err().Error(), "node n") {
		t.Fatalf("shape error not reported with node name: %v", g.Err())
	}
	g2 := New("dup")
	g2.Input("x", 1)
	g2.Input("x", 1)
	if g2.Err() == nil {
		t.Fatal("duplicate names accepted")
	}
	g3 := build(t)
	e, _ := NewExecutor(g3)
	if _, err := e.Forward(tensor.New(2, 4)); err == nil || !strings.Contains(err.Error(), "input") {
		t.Fatalf("wrong input shape accepted: %v", err)
	}
}

func TestTopoSortAndRewrite(t *testing.T) {
	g := build(t)
	// Insert an identity-like scale with ones after h and rewire a and b.
	h := g.Value("h")
	ones := g.AddParam("ones", Const, tensor.MustFromData([]float32{1, 1, 1}, 3))
	outs := g.InsertAfter(h.Producer, "h.q", scaleOp{}, h, ones)
	g.ReplaceUses(h, outs[0], outs[0].Producer)
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range order {
		pos[n.Name] = i
	}
	if !(pos["h"] < pos["h.q"] && pos["h.q"] < pos["a"] && pos["h.q"] < pos["b"]) {
		t.Fatalf("bad order %v", pos)
	}
	if len(g.Consumers(outs[0])) != 2 {
		t.Fatal("consumers not rewired")
	}
	// A dangling input is reported with names.
	g.RemoveNode(outs[0].Producer)
	if _, err := g.TopoSort(); err == nil || !strings.Contains(err.Error(), "h.q") {
		t.Fatalf("dangling value not reported: %v", err)
	}
}
