package graph

import (
	"testing"

	"lowbit/tensor"
)

// Test ops for ChainFuser: affOp computes 2x+1, sumOp adds its two
// inputs, and progOp is a fused run of them whose sums read either an
// input of the fused op or one of its earlier outputs.
type affOp struct{}
type sumOp struct{}
type progStep struct {
	sum bool
	ref int // for a sum: the fused op's output after ref fusions, or −1 for its next input
}
type progOp struct {
	steps []progStep
	runs  *[]int // the number of steps of every fused run
}

func (affOp) Type() string                             { return "TestAff" }
func (sumOp) Type() string                             { return "TestSum" }
func (progOp) Type() string                            { return "TestProg" }
func (affOp) InferShapes(in [][]int) ([][]int, error)  { return [][]int{in[0]}, nil }
func (sumOp) InferShapes(in [][]int) ([][]int, error)  { return [][]int{in[0]}, nil }
func (progOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (affOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return pointwiseFwd(c, in[0], func(v float32) float32 { return 2*v + 1 }), nil
}
func (sumOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	y := c.Buffer(0, in[0].Shape...)
	for i := range y.Data {
		y.Data[i] = in[0].Data[i] + in[1].Data[i]
	}
	return []*tensor.Tensor{y}, nil
}
func (p progOp) Forward(c *Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	*p.runs = append(*p.runs, len(p.steps))
	cur := append([]float32(nil), in[0].Data...)
	var vals [][]float32
	next := 1
	for _, s := range p.steps {
		if !s.sum {
			for i, v := range cur {
				cur[i] = 2*v + 1
			}
		} else {
			var other []float32
			if s.ref >= 0 {
				other = vals[s.ref]
			} else {
				other = in[next].Data
				next++
			}
			for i := range cur {
				cur[i] += other[i]
			}
		}
		vals = append(vals, append([]float32(nil), cur...))
	}
	y := c.Buffer(0, in[0].Shape...)
	copy(y.Data, cur)
	return []*tensor.Tensor{y}, nil
}
func (affOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (sumOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}
func (progOp) Backward(c *Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, nil
}

var progRuns = new([]int)

func (affOp) Fuse(next Op) (Op, bool) {
	return progOp{steps: []progStep{{}}, runs: progRuns}.Fuse(next)
}

func (p progOp) Fuse(next Op) (Op, bool) {
	switch next.(type) {
	case affOp:
		return progOp{steps: append(p.steps[:len(p.steps):len(p.steps)], progStep{}), runs: p.runs}, true
	case sumOp:
		return progOp{steps: append(p.steps[:len(p.steps):len(p.steps)], progStep{sum: true, ref: -1}), runs: p.runs}, true
	}
	return nil, false
}

func (p progOp) FuseInternal(next Op, refs []int) (Op, bool) {
	if _, ok := next.(sumOp); !ok || len(refs) != 1 || refs[0] < 0 || refs[0] >= len(p.steps)-1 {
		return nil, false
	}
	return progOp{steps: append(p.steps[:len(p.steps):len(p.steps)], progStep{sum: true, ref: refs[0]}), runs: p.runs}, true
}

// runFusedAndPlain runs g on x fused (evaluation) and op by op
// (KeepValues) and checks that they agree; it returns the step counts of
// the fused runs.
func runFusedAndPlain(t *testing.T, g *Graph, x *tensor.Tensor) []int {
	t.Helper()
	e, err := NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	*progRuns = nil
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	fused := append([]float32(nil), out[0].Data...)
	runs := *progRuns
	e.KeepValues = true
	out, err = e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	sameFloats(t, "fused output", fused, out[0].Data)
	return runs
}

// TestInferenceFusionKeepsInternalValues fuses two residual blocks into
// one op whose sums read values computed inside it.
func TestInferenceFusionKeepsInternalValues(t *testing.T) {
	g := New("blocks")
	x := g.Input("x", -1, 3)
	a := g.Apply("a", affOp{}, x)
	b := g.Apply("b", affOp{}, a)
	c := g.Apply("c", sumOp{}, b, a) // reads a, the output after 0 fusions
	d := g.Apply("d", affOp{}, c)
	e := g.Apply("e", sumOp{}, d, c) // reads c, after 2 fusions
	g.SetOutputs(g.Apply("f", affOp{}, e))
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	runs := runFusedAndPlain(t, g, tensor.MustFromData([]float32{1, -2, 0.5, 3, 4, -1}, 2, 3))
	if len(runs) != 1 || runs[0] != 6 {
		t.Fatalf("fused runs of %v steps, want one of 6", runs)
	}
}

// TestInferenceFusionEndsBeforeSharedValue checks that a chain whose
// internal value is also read by an op outside it ends at that value,
// and the next chain reads it as an input.
func TestInferenceFusionEndsBeforeSharedValue(t *testing.T) {
	g := New("shared")
	x := g.Input("x", -1, 3)
	a := g.Apply("a", affOp{}, x)
	b := g.Apply("b", affOp{}, a)
	c := g.Apply("c", sumOp{}, b, a)
	side := g.Apply("side", sumOp{}, x, a) // reads a, not first: never fused
	g.SetOutputs(g.Apply("out", sumOp{}, c, side))
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	runs := runFusedAndPlain(t, g, tensor.MustFromData([]float32{1, -2, 0.5}, 1, 3))
	// a alone (not a fused op), then b+c+out.
	if len(runs) != 1 || runs[0] != 3 {
		t.Fatalf("fused runs of %v steps, want one of 3", runs)
	}
}
