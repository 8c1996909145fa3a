package graph

import (
	"testing"

	"lowbit/tensor"
)

// trainA (x+1) fuses in training with a following trainB (3x) into
// trainAB, which counts its forward and backward calls.
type trainA struct{ calls *[2]int }
type trainB struct{}
type trainAB struct{ calls *[2]int }

func (trainA) Type() string                             { return "TestTA" }
func (trainB) Type() string                             { return "TestTB" }
func (trainAB) Type() string                            { return "TestTA+TestTB" }
func (trainA) InferShapes(in [][]int) ([][]int, error)  { return [][]int{in[0]}, nil }
func (trainB) InferShapes(in [][]int) ([][]int, error)  { return [][]int{in[0]}, nil }
func (trainAB) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (trainA) BackwardReadsInput(int) bool              { return false }
func (trainA) BackwardReadsOutput(int) bool             { return false }
func (trainAB) BackwardReadsInput(int) bool             { return false }
func (trainAB) BackwardReadsOutput(int) bool            { return false }
func (trainA) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return v + 1 }), nil
}
func (trainB) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return 3 * v }), nil
}
func (f trainAB) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	f.calls[0]++
	return pointwiseFwd(c, in[0], func(v float32) float32 { return 3 * (v + 1) }), nil
}
func (trainA) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return scaled(c, dout[0], 1), nil
}
func (trainB) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return scaled(c, dout[0], 3), nil
}
func (f trainAB) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	f.calls[1]++
	return scaled(c, dout[0], 3), nil
}
func (a trainA) FuseTraining(next Op) (Op, bool) {
	if _, ok := next.(trainB); ok {
		return trainAB(a), true
	}
	return nil, false
}

// scaled returns s·d in a context buffer.
func scaled(c *Context, d *tensor.Tensor, s float32) []*tensor.Tensor {
	dx := c.Buffer(1, d.Shape...)
	for i, g := range d.Data {
		dx.Data[i] = s * g
	}
	return []*tensor.Tensor{dx}
}

// TestTrainingFusion checks that a training step runs TrainFuser chains
// as one node forward and backward, with the results of the separate ops,
// and that evaluation, KeepValues and OnForward do not fuse.
func TestTrainingFusion(t *testing.T) {
	var calls [2]int
	g := chain(t, revOp{}, trainA{&calls}, trainB{}, revOp{})
	e, err := NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5}, 1, 5)
	dy := tensor.MustFromData([]float32{1, -2, 0.5, 4, 3}, 1, 5)
	want := reversed([]float32{3 * 6.5, 3 * 5.5, 3 * 4.5, 3 * 3.5, 3 * 2.5})
	wantDX := []float32{3, -6, 1.5, 12, 9}
	for _, mode := range []string{"training", "keep", "hook", "eval", "training"} {
		e.Training, e.KeepValues, e.OnForward = mode != "eval", mode == "keep", nil
		if mode == "hook" {
			e.OnForward = func(*Node, []*tensor.Tensor, []*tensor.Tensor) {}
		}
		before := calls
		out, err := e.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		sameFloats(t, mode+" output", out[0].Data, want)
		dx, err := e.BackwardInputs(dy)
		if err != nil {
			t.Fatal(err)
		}
		sameFloats(t, mode+" input gradient", dx[0].Data, wantDX)
		fused := mode == "training"
		if ran := calls != before; ran != fused || (fused && calls != [2]int{before[0] + 1, before[1] + 1}) {
			t.Fatalf("%s: fused op calls went from %v to %v", mode, before, calls)
		}
		if between := e.Get(g.Nodes[1].Outputs[0]); fused && between != nil {
			t.Fatalf("%s: the value between the fused ops was stored", mode)
		}
	}
}
