package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Split is ONNX Split with explicit part sizes: output i takes Sizes[i]
// consecutive entries along Axis (negative counts from the end). The sizes
// must add up to the axis length, which must be known at build time (the
// batch axis cannot be split).
type Split struct {
	Axis  int
	Sizes []int
}

// Buffer slots of Split: outputs 0..len(Sizes)-1, then the input gradient.
const slotSplitOut = 0

// Type returns "Split".
func (Split) Type() string { return "Split" }

// geometry resolves the axis for shape s and checks the sizes; it returns
// the axis, the number of outer blocks and the inner block length.
func (o Split) geometry(s []int) (axis, outer, inner int, err error) {
	if axis, err = resolveAxis(o.Axis, len(s), false); err != nil {
		return 0, 0, 0, fmt.Errorf("split of shape %v: %w", s, err)
	}
	if len(o.Sizes) == 0 {
		return 0, 0, 0, fmt.Errorf("split of shape %v: no part sizes", s)
	}
	if s[axis] < 0 {
		return 0, 0, 0, fmt.Errorf("split of shape %v: axis %d is the batch axis, whose size is unknown", s, o.Axis)
	}
	total := 0
	for _, n := range o.Sizes {
		if n < 0 {
			return 0, 0, 0, fmt.Errorf("split of shape %v: negative part size in %v", s, o.Sizes)
		}
		total += n
	}
	if total != s[axis] {
		return 0, 0, 0, fmt.Errorf("split of shape %v: sizes %v add up to %d, axis %d has %d", s, o.Sizes, total, o.Axis, s[axis])
	}
	return axis, dimProduct(s[:axis]), dimProduct(s[axis+1:]), nil
}

// InferShapes returns one shape per part.
func (o Split) InferShapes(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	axis, _, _, err := o.geometry(s)
	if err != nil {
		return nil, err
	}
	out := make([][]int, len(o.Sizes))
	for i, n := range o.Sizes {
		out[i] = append([]int{}, s...)
		out[i][axis] = n
	}
	return out, nil
}

// Forward copies each part out of the input.
func (o Split) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	axis, outer, _, err := o.geometry(x.Shape)
	if err != nil {
		return nil, err
	}
	shape := scratchShape(c, x.Shape)
	outs := make([]*tensor.Tensor, len(o.Sizes))
	for i, n := range o.Sizes {
		shape[axis] = n
		outs[i] = c.Buffer(slotSplitOut+i, shape...)
	}
	concatCopy(outs, outs, x.Data, outer, false)
	return outs, nil
}

// Backward joins the part gradients (zero for parts that received none).
func (o Split) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if !c.Need(0) {
		return []*tensor.Tensor{nil}, nil
	}
	x, err := soleTensor(in)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	axis, outer, inner, err := o.geometry(x.Shape)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	if len(dout) != len(o.Sizes) || len(out) != len(o.Sizes) {
		return nil, fmt.Errorf("backward: %d outputs and %d output gradients, want %d", len(out), len(dout), len(o.Sizes))
	}
	for i, d := range dout {
		if d != nil && d.Len() != outer*o.Sizes[i]*inner {
			return nil, fmt.Errorf("backward: gradient of output %d has shape %v, part %d of axis %d has %d", i, d.Shape, i, axis, o.Sizes[i])
		}
	}
	dx := c.Zeros(slotSplitOut+len(o.Sizes), x.Shape...)
	// The forward outputs give the part sizes; parts without a gradient
	// are skipped and stay zero.
	concatCopy(out, dout, dx.Data, outer, true)
	return []*tensor.Tensor{dx}, nil
}
