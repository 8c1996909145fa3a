package ops

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Training-time fusion of a BatchNorm with what consumes its output: a
// ReLU or Clip, or a residual Add optionally followed by a ReLU or Clip.
// The executor runs the chain as one bnAct node when nothing else needs
// the intermediate values (see graph.TrainFuser). The forward pass is one
// statistics pass and one pass writing min(max(a·x+b (+ res), lo), hi);
// the backward pass applies the activation mask inside the two BatchNorm
// passes: recomputed from X and the saved a, b (exactly the mask Relu and
// Clip read from their output) without a residual, read from the output
// with one (the first pass then also writes the residual's gradient).
// Compared with the separate ops this skips writing and re-reading the
// intermediate tensors and gradients.

// noAct is a plain BatchNorm (no clamp, every gradient passes).
var noAct = kernels.BNAct{Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}

// bnFusion is what a fused BatchNorm node computes after the
// normalization: with res, the residual input 5 is added; then the clamp
// and gradient mask of act.
type bnFusion struct {
	act kernels.BNAct
	res bool
}

// split separates the BatchNorm inputs from the residual (nil without).
func (f bnFusion) split(in []*tensor.Tensor) ([]*tensor.Tensor, []float32, error) {
	if !f.res {
		return in, nil, nil
	}
	if len(in) != 6 || in[0] == nil || in[5] == nil {
		return nil, nil, fmt.Errorf("want inputs X, scale, B, mean, var and the residual, got %d", len(in))
	}
	if !tensor.SameShape(in[0].Shape, in[5].Shape) {
		return nil, nil, fmt.Errorf("residual has shape %v, X %v", in[5].Shape, in[0].Shape)
	}
	return in[:5], in[5].Data, nil
}

// bnAct is BatchNorm followed by the ops in ops (Add, Relu, Clip) as
// described by f; its inputs are the BatchNorm's and, with a residual,
// the Add's second input.
type bnAct struct {
	bn  BatchNorm
	ops []graph.Op
	f   bnFusion
}

// actMask returns the clamp and gradient mask of Relu or Clip.
func actMask(op graph.Op) (kernels.BNAct, bool) {
	switch a := op.(type) {
	case Relu:
		return kernels.BNAct{Mask: true, Lo: 0, Hi: float32(math.Inf(1))}, true
	case Clip:
		return kernels.BNAct{Mask: true, Lo: a.Min, Hi: a.Max}, true
	}
	return kernels.BNAct{}, false
}

// FuseTraining returns the fused op of this BatchNorm and a following
// Relu, Clip or Add (graph.TrainFuser); ok is false for other ops.
func (op BatchNorm) FuseTraining(next graph.Op) (graph.Op, bool) {
	if _, ok := next.(Add); ok {
		return bnAct{bn: op, ops: []graph.Op{next}, f: bnFusion{act: noAct, res: true}}, true
	}
	if act, ok := actMask(next); ok {
		return bnAct{bn: op, ops: []graph.Op{next}, f: bnFusion{act: act}}, true
	}
	return nil, false
}

// FuseTraining appends a Relu or Clip to a BatchNorm with a residual.
func (o bnAct) FuseTraining(next graph.Op) (graph.Op, bool) {
	act, ok := actMask(next)
	if !ok || !o.f.res || o.f.act.Mask {
		return nil, false
	}
	return bnAct{bn: o.bn, ops: append(o.ops[:len(o.ops):len(o.ops)], next), f: bnFusion{act: act, res: true}}, true
}

// Type names all ops, e.g. "BatchNormalization+Add+Relu".
func (o bnAct) Type() string {
	t := o.bn.Type()
	for _, op := range o.ops {
		t += "+" + op.Type()
	}
	return t
}

// InferShapes is BatchNorm's (the residual must have X's shape).
func (o bnAct) InferShapes(in [][]int) ([][]int, error) {
	if o.f.res {
		if len(in) != 6 || !tensor.SameShape(in[0], in[5]) {
			return nil, fmt.Errorf("want inputs X, scale, B, mean, var and a residual of X's shape, got %v", in)
		}
		in = in[:5]
	}
	return o.bn.InferShapes(in)
}

// Forward computes the chain (updating the running statistics in
// training, like BatchNorm).
func (o bnAct) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return o.bn.forward(c, in, o.f)
}

// Backward returns the gradients with respect to X, scale, B and the
// residual.
func (o bnAct) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return o.bn.backward(c, in, out, dout, o.f)
}

// BackwardReadsInput is true for X only.
func (bnAct) BackwardReadsInput(i int) bool { return i == 0 }

// BackwardReadsOutput is true when the mask is read from the output
// (residual and activation).
func (o bnAct) BackwardReadsOutput(int) bool { return o.f.res && o.f.act.Mask }
