package ops

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"lowbit/graph"
	"lowbit/tensor"
)

// convFused is a Conv followed at inference by a BatchNorm (evaluation
// statistics), a residual Add and/or a ReLU or Clip, run as one op: the
// convolution's epilogue applies the bias, the BatchNorm's per-channel
// a·x + b, the residual and the clamp while each output row is in cache,
// with exactly the float32 operations of the separate ops. The executor
// builds it through graph.Fuser and runs it only in evaluation. Its inputs
// are the Conv's (X, W, optional B), then the BatchNorm's parameters
// (scale, B, mean, var) when bn is set, then the residual when add is set.
type convFused struct {
	conv   Conv
	bn     *BatchNorm
	add    bool
	clamp  bool
	lo, hi float32
	// names the fused ops, for errors ("Conv+BatchNormalization+Relu").
	names string
}

// Buffer slots of convFused beyond Conv's.
const (
	fusedSlotA = iota + 100
	fusedSlotB
)

// Fuse merges a following BatchNorm, Relu or Clip into the convolution
// (see graph.Fuser).
func (op Conv) Fuse(next graph.Op) (graph.Op, bool) {
	return convFused{conv: op, names: op.Type()}.Fuse(next)
}

// Fuse adds a following BatchNorm (if nothing came after the convolution
// yet), Add of a residual (the convolution's output being the first
// operand; not after another Add) or Relu or Clip (if none yet). The
// executor passes an Add's second operand only when it has the output's
// shape. A following Conv starts a convChain.
func (f convFused) Fuse(next graph.Op) (graph.Op, bool) {
	if o, ok := next.(Conv); ok {
		return convChain{stages: []convFused{f}}.Fuse(o)
	}
	if f.clamp {
		return nil, false
	}
	switch o := next.(type) {
	case BatchNorm:
		if f.bn != nil || f.add {
			return nil, false
		}
		f.bn = &o
	case Add:
		if f.add {
			return nil, false
		}
		f.add = true
	case Relu:
		f.clamp, f.lo, f.hi = true, 0, float32(math.Inf(1))
	case Clip:
		f.clamp, f.lo, f.hi = true, o.Min, o.Max
	default:
		return nil, false
	}
	f.names += "+" + next.Type()
	return f, true
}

// Type names the fused chain.
func (f convFused) Type() string { return f.names }

// split returns the number of the convolution's inputs and the index of
// the residual (−1 without).
func (f convFused) split(n int) (conv, res int, err error) {
	conv, res = n, -1
	if f.add {
		conv--
		res = n - 1
	}
	if f.bn != nil {
		conv -= 4
	}
	if conv < 2 || conv > 3 {
		return 0, 0, fmt.Errorf("%s: %d inputs do not fit X, W, optional B, the BatchNorm parameters and the residual", f.names, n)
	}
	return conv, res, nil
}

// InferShapes is Conv's (the fused ops keep the shape; a residual must
// have it).
func (f convFused) InferShapes(in [][]int) ([][]int, error) {
	nc, res, err := f.split(len(in))
	if err != nil {
		return nil, err
	}
	out, err := f.conv.InferShapes(in[:nc])
	if err != nil {
		return nil, err
	}
	if f.bn != nil {
		if out, err = f.bn.InferShapes(append([][]int{out[0]}, in[nc:nc+4]...)); err != nil {
			return nil, err
		}
	}
	if res >= 0 && !tensor.SameShape(in[res], out[0]) {
		return nil, fmt.Errorf("%s: residual has shape %v, output %v", f.names, in[res], out[0])
	}
	return out, nil
}

// Forward runs the convolution with the fused epilogue: batches of at
// least one image per goroutine go group by group like a chain
// (convChain), smaller ones layer-wide.
func (f convFused) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if len(in) > 0 && in[0] != nil && len(in[0].Shape) == 4 && in[0].Shape[0] >= runtime.GOMAXPROCS(0) {
		// Batches with work for every goroutine: image groups, as a
		// one-stage chain.
		return convChain{stages: []convFused{f}}.Forward(c, in)
	}
	nc, _, err := f.split(len(in))
	if err != nil {
		return nil, err
	}
	d, b, err := f.conv.convInputs(in[:nc])
	if err != nil {
		return nil, err
	}
	epi, err := f.epilogue(c, fusedSlotA, fusedSlotB, &d, b, in[nc:])
	if err != nil {
		return nil, err
	}
	return f.conv.forward(c, &d, in[:nc], epi), nil
}

// epilogue checks the fused ops' inputs and returns the epilogue of the
// convolution d with bias b (nil without): rest holds the BatchNorm's
// parameters (scale, B, mean, var) when bn is set, then the residual when
// add is set. The BatchNorm's coefficients go to c's buffers slotA, slotB.
func (f convFused) epilogue(c *graph.Context, slotA, slotB int, d *convDims, b *tensor.Tensor, rest []*tensor.Tensor) (*convEpilogue, error) {
	epi := &convEpilogue{clamp: f.clamp, lo: f.lo, hi: f.hi}
	if b != nil {
		epi.bias = b.Data
	}
	want := 0
	if f.bn != nil {
		want = 4
	}
	if f.add {
		want++
	}
	if len(rest) != want {
		return nil, fmt.Errorf("%s: %d inputs after the convolution's, want %d", f.names, len(rest), want)
	}
	if f.add {
		r := rest[len(rest)-1]
		if r == nil || !tensor.SameShape(r.Shape, []int{d.N, d.M, d.geom.OH, d.geom.OW}) {
			return nil, fmt.Errorf("%s: residual missing or not of the output's shape [%d %d %d %d]", f.names, d.N, d.M, d.geom.OH, d.geom.OW)
		}
		epi.res = r.Data
	}
	if f.bn != nil {
		shapes := [][]int{{d.N, d.M, d.geom.OH, d.geom.OW}}
		for _, t := range rest[:4] {
			if t == nil {
				return nil, fmt.Errorf("%s: BatchNorm parameter missing", f.names)
			}
			shapes = append(shapes, t.Shape)
		}
		if err := f.bn.checkShapes(shapes); err != nil {
			return nil, err
		}
		epi.a, epi.b = c.Buffer(slotA, d.M).Data, c.Buffer(slotB, d.M).Data
		f.bn.evalAffine(rest[:4], epi.a, epi.b)
	}
	return epi, nil
}

// Backward is not available: the executor fuses only for inference.
func (f convFused) Backward(*graph.Context, []*tensor.Tensor, []*tensor.Tensor, []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return nil, errors.New(f.names + ": fused inference op has no backward")
}
