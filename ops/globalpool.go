package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of GlobalAveragePool's context.
const (
	gapSlotY = iota
	gapSlotDX
)

// Type returns "GlobalAveragePool".
func (GlobalAveragePool) Type() string { return "GlobalAveragePool" }

// InferShapes maps X [N,C,d1,...] (rank ≥ 3) to [N,C,1,...].
func (GlobalAveragePool) InferShapes(in [][]int) ([][]int, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("want one input X, got %d", len(in))
	}
	x := in[0]
	if len(x) < 3 {
		return nil, fmt.Errorf("input X must be [N,C,spatial...] of rank ≥ 3, got shape %v", x)
	}
	out := append([]int(nil), x...)
	for i := 2; i < len(out); i++ {
		out[i] = 1
	}
	return [][]int{out}, nil
}

// gapInputs validates X and returns the number of planes and their size.
func (op GlobalAveragePool) gapInputs(in []*tensor.Tensor) (outShape []int, planes, size int, err error) {
	if len(in) != 1 || in[0] == nil {
		return nil, 0, 0, fmt.Errorf("want one input X, got %d", len(in))
	}
	s, err := op.InferShapes([][]int{in[0].Shape})
	if err != nil {
		return nil, 0, 0, err
	}
	x := in[0].Shape
	planes, size = x[0]*x[1], tensor.Numel(x[2:])
	if planes < 0 || size <= 0 {
		return nil, 0, 0, fmt.Errorf("input X has unknown or empty dimensions %v", x)
	}
	return s[0], planes, size, nil
}

// Forward averages each plane.
func (op GlobalAveragePool) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	shape, planes, size, err := op.gapInputs(in)
	if err != nil {
		return nil, err
	}
	x := in[0].Data
	y := c.Buffer(gapSlotY, shape...)
	inv := 1 / float32(size)
	kernels.Parallel(planes, 16, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			var s float32
			for _, v := range x[p*size : (p+1)*size] {
				s += v
			}
			y.Data[p] = s * inv
		}
	})
	return []*tensor.Tensor{y}, nil
}

// Backward spreads each gradient evenly over its plane.
func (op GlobalAveragePool) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	_, planes, size, err := op.gapInputs(in)
	if err != nil {
		return nil, err
	}
	if len(dout) == 0 || dout[0] == nil || !c.Need(0) {
		return []*tensor.Tensor{nil}, nil
	}
	dy := dout[0].Data
	if len(dy) != planes {
		return nil, fmt.Errorf("output gradient has shape %v, want %d elements", dout[0].Shape, planes)
	}
	dx := c.Buffer(gapSlotDX, in[0].Shape...)
	inv := 1 / float32(size)
	kernels.Parallel(planes, 16, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			v := dy[p] * inv
			row := dx.Data[p*size : (p+1)*size]
			for i := range row {
				row[i] = v
			}
		}
	})
	return []*tensor.Tensor{dx}, nil
}
