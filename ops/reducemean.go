package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// ReduceMean is ONNX ReduceMean: the mean over Axes (all axes when nil;
// negative counts from the end). KeepDims keeps the reduced axes with size
// 1; ONNX's default keepdims=1 is KeepDims true (the zero value drops
// them).
type ReduceMean struct {
	Axes     []int
	KeepDims bool
}

// Buffer slots of ReduceMean.
const (
	slotReduceOut = iota
	slotReduceGrad
)

// Type returns "ReduceMean".
func (ReduceMean) Type() string { return "ReduceMean" }

// reduced returns the bit set of reduced axes for rank r.
func (o ReduceMean) reduced(r int) (uint64, error) {
	if r > 64 {
		return 0, fmt.Errorf("rank %d is not supported", r)
	}
	if o.Axes == nil {
		return 1<<r - 1, nil
	}
	var set uint64
	for _, a := range o.Axes {
		ax, err := resolveAxis(a, r, false)
		if err != nil {
			return 0, err
		}
		if set&(1<<ax) != 0 {
			return 0, fmt.Errorf("axis %d given twice (axes %v)", a, o.Axes)
		}
		set |= 1 << ax
	}
	return set, nil
}

// InferShapes sets the reduced axes to 1 (or drops them without KeepDims).
// Reducing the batch axis is allowed.
func (o ReduceMean) InferShapes(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	set, err := o.reduced(len(s))
	if err != nil {
		return nil, fmt.Errorf("input shape %v: %w", s, err)
	}
	out := []int{}
	for i, d := range s {
		switch {
		case set&(1<<i) == 0:
			out = append(out, d)
		case o.KeepDims:
			out = append(out, 1)
		}
	}
	return [][]int{out}, nil
}

// geometry returns the output shape, the output stride of every input axis
// (0 on reduced axes), scratch for the walk and the number of elements
// averaged per output.
func (o ReduceMean) geometry(sc *stridedScratch, xs []int) (out, strides, idx []int, count int, err error) {
	r := len(xs)
	kept, strides, idx, aux := sc.ints(r)
	set, err := o.reduced(r)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	count = 1
	for i, d := range xs {
		kept[i] = d
		if set&(1<<i) != 0 {
			kept[i] = 1
			count *= d
		}
	}
	denseStrides(strides, kept)
	out = aux[:0]
	for i, d := range kept {
		if set&(1<<i) != 0 {
			strides[i] = 0
			if !o.KeepDims {
				continue
			}
		}
		out = append(out, d)
	}
	return out, strides, idx, count, nil
}

// Forward sums every input element into its output position and divides
// by the number of elements reduced.
func (o ReduceMean) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	out, strides, idx, count, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("input shape %v: %w", x.Shape, err)
	}
	y := c.Zeros(slotReduceOut, out...)
	walkStrided(x.Shape, strides, idx, 0, func(k, pos, n, step int) {
		for j, v := range x.Data[k : k+n] {
			y.Data[pos+j*step] += v
		}
	})
	if count > 0 {
		inv := 1 / float32(count)
		for i := range y.Data {
			y.Data[i] *= inv
		}
	}
	return []*tensor.Tensor{y}, nil
}

// Backward spreads each output gradient evenly over its reduced elements.
func (o ReduceMean) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	out, strides, idx, count, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("backward: input shape %v: %w", x.Shape, err)
	}
	if !tensor.SameShape(out, dy.Shape) {
		return nil, fmt.Errorf("backward: output gradient shape %v, output shape %v", dy.Shape, out)
	}
	dx := c.Buffer(slotReduceGrad, x.Shape...)
	gatherStrided(dx.Data, dy.Data, x.Shape, strides, idx, 0)
	if count > 0 {
		inv := 1 / float32(count)
		for i := range dx.Data {
			dx.Data[i] *= inv
		}
	}
	return []*tensor.Tensor{dx}, nil
}
