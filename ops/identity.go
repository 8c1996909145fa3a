package ops

import (
	"lowbit/graph"
	"lowbit/tensor"
)

// Identity is ONNX Identity: the output is a copy of the input. Importers
// usually alias Identity away; the op exists for graphs that need a
// distinct value, such as a graph output that is also a graph input.
type Identity struct{}

// Type returns "Identity".
func (Identity) Type() string { return "Identity" }

// InferShapes returns the input shape.
func (Identity) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, copyShape) }

func copyShape(dst, s []int) ([]int, error) { return append(dst[:0], s...), nil }

// Forward copies the input (shared with Reshape).
func (Identity) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeForward(c, in, copyShape)
}

// Backward copies the output gradient.
func (Identity) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return reshapeBackward(c, in, dout)
}
