package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Shape helpers shared by the element-wise, concat, reshape, pad and
// softmax ops. A -1 in a build-time shape is the unknown batch dimension.

// resolveAxis maps an ONNX axis (negative counts from the end) into
// [0, rank), or [0, rank] when inclusive (Flatten accepts axis = rank).
func resolveAxis(axis, rank int, inclusive bool) (int, error) {
	hi := rank
	if inclusive {
		hi = rank + 1
	}
	a := axis
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= hi {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	return a, nil
}

// soleShape returns the shape of the only input of a one-input op; further
// inputs must be omitted (nil).
func soleShape(in [][]int) ([]int, error) {
	if len(in) == 0 || in[0] == nil {
		return nil, fmt.Errorf("missing input")
	}
	for i := 1; i < len(in); i++ {
		if in[i] != nil {
			return nil, fmt.Errorf("takes one input, got input %d with shape %v", i, in[i])
		}
	}
	return in[0], nil
}

// soleTensor is soleShape for Forward.
func soleTensor(in []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(in) == 0 || in[0] == nil {
		return nil, fmt.Errorf("missing input")
	}
	for i := 1; i < len(in); i++ {
		if in[i] != nil {
			return nil, fmt.Errorf("takes one input, got input %d with shape %v", i, in[i].Shape)
		}
	}
	return in[0], nil
}

// soleGrad returns the gradient of the only output and the matching input,
// or nil when no gradient reached the output or the input needs none.
func soleGrad(c *graph.Context, in, dout []*tensor.Tensor) (x, dy *tensor.Tensor, err error) {
	if len(dout) == 0 || dout[0] == nil || !c.Need(0) {
		return nil, nil, nil
	}
	if len(in) == 0 || in[0] == nil {
		return nil, nil, fmt.Errorf("backward: missing input")
	}
	return in[0], dout[0], nil
}

// dimProduct multiplies dims; it returns -1 if any of them is the unknown
// batch dimension.
func dimProduct(dims []int) int {
	p := 1
	for _, d := range dims {
		if d < 0 {
			return -1
		}
		p *= d
	}
	return p
}

// cloneShapes wraps one output shape (copied) into InferShapes' result.
func cloneShapes(s []int) [][]int {
	return [][]int{append([]int{}, s...)}
}

// sameDims reports whether two shapes match; with batch set, -1 matches
// any size.
func sameDims(a, b []int, batch bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(batch && (a[i] < 0 || b[i] < 0)) {
			return false
		}
	}
	return true
}

// shapeScratch is the Context.Saved state of ops that only need a
// reusable shape slice.
type shapeScratch struct{ s []int }

// scratchShape returns a copy of src in a slice kept in c.Saved (with room
// for 8 dimensions), so that computing an output shape does not allocate
// in steady state.
func scratchShape(c *graph.Context, src []int) []int {
	p, _ := c.Saved.(*shapeScratch)
	if p == nil {
		p = &shapeScratch{s: make([]int, 0, 8)}
		c.Saved = p
	}
	p.s = append(p.s[:0], src...)
	return p.s
}

// shapeFunc maps an input shape to an output shape, appending to dst[:0].
type shapeFunc func(dst, s []int) ([]int, error)

// inferOne is InferShapes for one-input ops whose output shape is f of the
// input shape.
func inferOne(in [][]int, f shapeFunc) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	out, err := f(nil, s)
	if err != nil {
		return nil, err
	}
	return [][]int{out}, nil
}

// forwardOne returns the input of a one-input op and its output shape
// under f, computed in the context's scratch slice.
func forwardOne(c *graph.Context, in []*tensor.Tensor, f shapeFunc) (*tensor.Tensor, []int, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, nil, err
	}
	shape, err := f(scratchShape(c, nil), x.Shape)
	if err != nil {
		return nil, nil, err
	}
	return x, shape, nil
}
