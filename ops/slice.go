package ops

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/tensor"
)

// Slice is ONNX Slice (opset 13 semantics) with constant arguments: along
// Axes[i] (all axes in order when nil; negative counts from the end) it
// keeps Starts[i], Starts[i]+Steps[i], ... up to but excluding Ends[i].
// Negative starts and ends count from the end of the axis, out-of-range
// values are clamped, Steps (all 1 when nil) may be negative but not zero.
// Use math.MaxInt / math.MinInt for "to the end".
type Slice struct {
	Starts, Ends, Axes, Steps []int
}

// Buffer slots of Slice.
const (
	slotSliceOut = iota
	slotSliceGrad
)

// Type returns "Slice".
func (Slice) Type() string { return "Slice" }

// check validates the argument lengths for rank r and resolves the axes
// into dst (dst[j] = axis of argument j).
func (o Slice) check(dst []int, r int) ([]int, error) {
	n := len(o.Starts)
	if len(o.Ends) != n || (o.Axes != nil && len(o.Axes) != n) || (o.Steps != nil && len(o.Steps) != n) {
		return nil, fmt.Errorf("slice: starts %v, ends %v, axes %v and steps %v differ in length", o.Starts, o.Ends, o.Axes, o.Steps)
	}
	if n > r {
		return nil, fmt.Errorf("slice: %d axes for rank %d", n, r)
	}
	dst = dst[:n]
	seen := uint64(0)
	for j := range n {
		a := j
		if o.Axes != nil {
			var err error
			if a, err = resolveAxis(o.Axes[j], r, false); err != nil {
				return nil, fmt.Errorf("slice: %w", err)
			}
		}
		if a >= 64 || seen&(1<<a) != 0 {
			return nil, fmt.Errorf("slice: axis %d given twice (axes %v)", a, o.Axes)
		}
		seen |= 1 << a
		if o.Steps != nil && o.Steps[j] == 0 {
			return nil, fmt.Errorf("slice: step 0 on axis %d", a)
		}
		dst[j] = a
	}
	return dst, nil
}

// bounds resolves argument j on an axis of length dim into the first index,
// the step and the number of elements kept.
func (o Slice) bounds(j, dim int) (start, step, count int) {
	step = 1
	if o.Steps != nil {
		step = o.Steps[j]
	}
	start, end := o.Starts[j], o.Ends[j]
	if start < 0 {
		start = max(start, math.MinInt+dim) + dim
	}
	if end < 0 {
		end = max(end, math.MinInt+dim) + dim
	}
	if step > 0 {
		start = min(max(start, 0), dim)
		end = min(max(end, 0), dim)
		if end > start {
			count = (end-start-1)/step + 1
		}
	} else {
		start = min(max(start, 0), dim-1)
		end = min(max(end, -1), dim-1)
		back := math.MaxInt // -step without overflow
		if step != math.MinInt {
			back = -step
		}
		if start > end {
			count = (start-end-1)/back + 1
		}
	}
	return start, step, count
}

// InferShapes returns the sliced shape; slicing the batch axis (-1) leaves
// it unknown.
func (o Slice) InferShapes(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	axes, err := o.check(make([]int, len(s)), len(s))
	if err != nil {
		return nil, fmt.Errorf("input shape %v: %w", s, err)
	}
	out := append([]int{}, s...)
	for j, a := range axes {
		if s[a] >= 0 {
			_, _, out[a] = o.bounds(j, s[a])
		}
	}
	return [][]int{out}, nil
}

// geometry fills the output shape, the input stride of every output axis
// and the input offset of the first element.
func (o Slice) geometry(sc *stridedScratch, xs []int) (shape, strides, idx []int, base int, err error) {
	r := len(xs)
	shape, strides, idx, aux := sc.ints(r)
	axes, err := o.check(aux, r)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	denseStrides(strides, xs)
	copy(shape, xs)
	for j, a := range axes {
		start, step, count := o.bounds(j, xs[a])
		base += start * strides[a]
		strides[a] *= step
		shape[a] = count
	}
	return shape, strides, idx, base, nil
}

// Forward gathers the kept elements.
func (o Slice) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	shape, strides, idx, base, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("input shape %v: %w", x.Shape, err)
	}
	y := c.Buffer(slotSliceOut, shape...)
	gatherStrided(y.Data, x.Data, shape, strides, idx, base)
	return []*tensor.Tensor{y}, nil
}

// Backward scatters the output gradient into a zero input gradient (every
// input element is kept at most once).
func (o Slice) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	shape, strides, idx, base, err := o.geometry(stridedState(&c.Saved), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("backward: input shape %v: %w", x.Shape, err)
	}
	if !tensor.SameShape(shape, dy.Shape) {
		return nil, fmt.Errorf("backward: output gradient shape %v, output shape %v", dy.Shape, shape)
	}
	dx := c.Zeros(slotSliceGrad, x.Shape...)
	scatterStrided(dx.Data, dy.Data, shape, strides, idx, base)
	return []*tensor.Tensor{dx}, nil
}
