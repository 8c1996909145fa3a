package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Transpose is ONNX Transpose: output axis i is input axis Perm[i]. A nil
// Perm reverses the axes (the ONNX default).
type Transpose struct{ Perm []int }

// Buffer slots of Transpose.
const (
	slotTransposeOut = iota
	slotTransposeGrad
)

// Type returns "Transpose".
func (Transpose) Type() string { return "Transpose" }

// perm returns the effective permutation for rank r into dst.
func (o Transpose) perm(dst []int, r int) ([]int, error) {
	dst = dst[:r]
	if o.Perm == nil {
		for i := range dst {
			dst[i] = r - 1 - i
		}
		return dst, nil
	}
	if len(o.Perm) != r {
		return nil, fmt.Errorf("perm %v has %d entries, input has rank %d", o.Perm, len(o.Perm), r)
	}
	seen := uint64(0)
	for i, p := range o.Perm {
		if p < 0 || p >= r || r > 64 || seen&(1<<p) != 0 {
			return nil, fmt.Errorf("perm %v is not a permutation of 0..%d", o.Perm, r-1)
		}
		seen |= 1 << p
		dst[i] = p
	}
	return dst, nil
}

// InferShapes permutes the input shape.
func (o Transpose) InferShapes(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	p, err := o.perm(make([]int, len(s)), len(s))
	if err != nil {
		return nil, err
	}
	out := make([]int, len(s))
	for i, a := range p {
		out[i] = s[a]
	}
	return [][]int{out}, nil
}

// geometry fills the output shape and, for every output axis, the input
// stride it walks.
func (o Transpose) geometry(sc *stridedScratch, xs []int) (shape, strides, idx []int, err error) {
	r := len(xs)
	shape, strides, idx, aux := sc.ints(r)
	p, err := o.perm(aux, r)
	if err != nil {
		return nil, nil, nil, err
	}
	in := denseStrides(idx, xs) // idx is free until the walk
	for i, a := range p {
		shape[i] = xs[a]
		strides[i] = in[a]
	}
	// p and in alias scratch; strides and shape are complete now.
	return shape, strides, idx, nil
}

// Forward gathers the input in permuted order.
func (o Transpose) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	shape, strides, idx, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(slotTransposeOut, shape...)
	gatherStrided(y.Data, x.Data, shape, strides, idx, 0)
	return []*tensor.Tensor{y}, nil
}

// Backward scatters the output gradient back through the permutation.
func (o Transpose) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	shape, strides, idx, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	if !tensor.SameShape(shape, dy.Shape) {
		return nil, fmt.Errorf("backward: output gradient shape %v, output shape %v", dy.Shape, shape)
	}
	dx := c.Buffer(slotTransposeGrad, x.Shape...)
	scatterStrided(dx.Data, dy.Data, shape, strides, idx, 0)
	return []*tensor.Tensor{dx}, nil
}
