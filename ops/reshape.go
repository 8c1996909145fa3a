package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Flatten and Reshape copy their input into a context buffer of the new
// shape (rather than returning a view of the input) so that outputs and
// gradients never alias tensors the caller owns. At build time a -1 (batch)
// input dimension propagates: Flatten of [-1,16,5,5] is [-1,400], Reshape
// to [-1,400] or [0,-1] likewise.

// Buffer slots of Flatten and Reshape.
const (
	slotReshapeOut = iota
	slotReshapeGrad
)

// Type returns "Flatten".
func (Flatten) Type() string { return "Flatten" }

// InferShapes returns [prod(dims[:Axis]), prod(dims[Axis:])].
func (o Flatten) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, o.shape) }

func (o Flatten) shape(dst, s []int) ([]int, error) {
	a, err := resolveAxis(o.Axis, len(s), true)
	if err != nil {
		return nil, fmt.Errorf("input shape %v: %w", s, err)
	}
	return append(dst[:0], dimProduct(s[:a]), dimProduct(s[a:])), nil
}

// Forward copies the input into the 2-D output.
func (o Flatten) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeForward(c, in, o.shape)
}

// Backward copies the output gradient back into the input shape.
func (Flatten) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeBackward(c, in, dout)
}

// Type returns "Reshape".
func (Reshape) Type() string { return "Reshape" }

// InferShapes resolves Shape against the input shape (0 copies, -1 is
// inferred; see reshapeTarget for the batch dimension).
func (o Reshape) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, o.shape) }

func (o Reshape) shape(dst, s []int) ([]int, error) { return reshapeTarget(dst, s, o.Shape) }

// Forward copies the input into the reshaped output.
func (o Reshape) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeForward(c, in, o.shape)
}

// Backward copies the output gradient back into the input shape.
func (Reshape) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeBackward(c, in, dout)
}

// reshapeTarget resolves an ONNX Reshape target for input shape s into
// dst[:0]: 0 copies the input dimension at the same index, one -1 is
// inferred. When s holds the unknown batch dimension (-1) and the target
// copies it with a 0, the inferred dimension is exact; otherwise the
// inferred dimension contains the batch and is -1 itself.
func reshapeTarget(dst, s, target []int) ([]int, error) {
	out := dst[:0]
	infer := -1
	for i, d := range target {
		switch {
		case d == 0:
			if i >= len(s) {
				return nil, fmt.Errorf("reshape %v to %v: 0 at index %d copies a dimension the input lacks", s, target, i)
			}
			d = s[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("reshape %v to %v: more than one -1", s, target)
			}
			infer = i
		case d < -1:
			return nil, fmt.Errorf("reshape %v to %v: negative dimension %d", s, target, d)
		}
		out = append(out, d)
	}
	inKnown, inUnknown := knownProduct(s, -1)
	outKnown, outUnknown := knownProduct(out, infer)
	switch {
	case infer >= 0 && inUnknown != outUnknown:
		out[infer] = -1
	case infer >= 0:
		if outKnown == 0 || inKnown%outKnown != 0 {
			return nil, fmt.Errorf("reshape %v to %v: %d elements do not divide into blocks of %d", s, target, inKnown, outKnown)
		}
		out[infer] = inKnown / outKnown
	case inUnknown == outUnknown && inKnown != outKnown:
		return nil, fmt.Errorf("reshape %v to %v: element counts differ (%d vs %d)", s, target, inKnown, outKnown)
	}
	return out, nil
}

// knownProduct multiplies the dimensions of s other than index skip that
// are known, and counts the unknown (-1) ones.
func knownProduct(s []int, skip int) (prod, unknown int) {
	prod = 1
	for i, d := range s {
		switch {
		case i == skip:
		case d < 0:
			unknown++
		default:
			prod *= d
		}
	}
	return prod, unknown
}

func reshapeForward(c *graph.Context, in []*tensor.Tensor, f shapeFunc) ([]*tensor.Tensor, error) {
	x, shape, err := forwardOne(c, in, f)
	if err != nil {
		return nil, err
	}
	if tensor.Numel(shape) != x.Len() {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", x.Shape, x.Len(), shape)
	}
	y := c.Buffer(slotReshapeOut, shape...)
	copy(y.Data, x.Data)
	return []*tensor.Tensor{y}, nil
}

func reshapeBackward(c *graph.Context, in, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	if dy.Len() != x.Len() {
		return nil, fmt.Errorf("backward: output gradient has %d elements, input %v", dy.Len(), x.Shape)
	}
	dx := c.Buffer(slotReshapeGrad, x.Shape...)
	copy(dx.Data, dy.Data)
	return []*tensor.Tensor{dx}, nil
}
