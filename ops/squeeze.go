package ops

import (
	"fmt"
	"slices"

	"lowbit/graph"
	"lowbit/tensor"
)

// Squeeze is ONNX Squeeze with explicit Axes (negative counts from the
// end): it removes those axes, which must have size 1. Unlike ONNX, Axes
// may not be empty: "every axis of size 1" depends on the batch size, so
// importers resolve it against the static shape.
type Squeeze struct{ Axes []int }

// Unsqueeze is ONNX Unsqueeze: it inserts axes of size 1 at Axes, which
// index the output (negative counts from the end of the output).
type Unsqueeze struct{ Axes []int }

// Both are reshapes: they copy their input into a buffer of the new shape
// (see Reshape) and share its forward and backward.

// Type returns "Squeeze".
func (Squeeze) Type() string { return "Squeeze" }

// InferShapes drops the squeezed axes. A batch axis (-1) may be squeezed;
// the batch must then be 1 at run time.
func (o Squeeze) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, o.shape) }

func (o Squeeze) shape(dst, s []int) ([]int, error) {
	if len(o.Axes) == 0 {
		return nil, fmt.Errorf("squeeze of shape %v: no axes given", s)
	}
	drop := uint64(0)
	for _, a := range o.Axes {
		ax, err := resolveAxis(a, len(s), false)
		if err != nil || ax >= 64 {
			return nil, fmt.Errorf("squeeze of shape %v: axis %d out of range", s, a)
		}
		if drop&(1<<ax) != 0 {
			return nil, fmt.Errorf("squeeze of shape %v: axis %d given twice", s, a)
		}
		if s[ax] != 1 && s[ax] >= 0 {
			return nil, fmt.Errorf("squeeze of shape %v: axis %d has size %d, not 1", s, a, s[ax])
		}
		drop |= 1 << ax
	}
	dst = dst[:0]
	for i, d := range s {
		if drop&(1<<i) == 0 {
			dst = append(dst, d)
		}
	}
	return dst, nil
}

// Forward copies the input into the squeezed shape.
func (o Squeeze) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeForward(c, in, o.shape)
}

// Backward copies the output gradient back into the input shape.
func (Squeeze) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeBackward(c, in, dout)
}

// Type returns "Unsqueeze".
func (Unsqueeze) Type() string { return "Unsqueeze" }

// InferShapes inserts axes of size 1.
func (o Unsqueeze) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, o.shape) }

func (o Unsqueeze) shape(dst, s []int) ([]int, error) {
	r := len(s) + len(o.Axes)
	if len(o.Axes) == 0 {
		return nil, fmt.Errorf("unsqueeze of shape %v: no axes given", s)
	}
	ins := uint64(0)
	for _, a := range o.Axes {
		ax, err := resolveAxis(a, r, false)
		if err != nil || ax >= 64 {
			return nil, fmt.Errorf("unsqueeze of shape %v: axis %d out of range for output rank %d", s, a, r)
		}
		if ins&(1<<ax) != 0 {
			return nil, fmt.Errorf("unsqueeze of shape %v: axis %d given twice", s, a)
		}
		ins |= 1 << ax
	}
	dst = slices.Grow(dst[:0], r)
	j := 0
	for i := range r {
		if ins&(1<<i) != 0 {
			dst = append(dst, 1)
		} else {
			dst = append(dst, s[j])
			j++
		}
	}
	return dst, nil
}

// Forward copies the input into the unsqueezed shape.
func (o Unsqueeze) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeForward(c, in, o.shape)
}

// Backward copies the output gradient back into the input shape.
func (Unsqueeze) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeBackward(c, in, dout)
}
