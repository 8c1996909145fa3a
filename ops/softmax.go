package ops

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of Softmax.
const (
	slotSoftmaxOut = iota
	slotSoftmaxGrad
)

// Type returns "Softmax".
func (Softmax) Type() string { return "Softmax" }

// InferShapes returns the input shape after checking Axis.
func (o Softmax) InferShapes(in [][]int) ([][]int, error) {
	s, err := soleShape(in)
	if err != nil {
		return nil, err
	}
	if _, err := resolveAxis(o.Axis, len(s), false); err != nil {
		return nil, fmt.Errorf("input shape %v: %w", s, err)
	}
	return cloneShapes(s), nil
}

// geometry splits shape s into outer × length (along Axis) × inner.
func (o Softmax) geometry(s []int) (outer, length, inner int, err error) {
	a, err := resolveAxis(o.Axis, len(s), false)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("input shape %v: %w", s, err)
	}
	return tensor.Numel(s[:a]), s[a], tensor.Numel(s[a+1:]), nil
}

// Forward computes exp(x − max)/Σ exp(x − max) along Axis.
func (o Softmax) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	outer, length, inner, err := o.geometry(x.Shape)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(slotSoftmaxOut, x.Shape...)
	if length == 0 {
		return []*tensor.Tensor{y}, nil
	}
	splitLines(outer*inner, length, func(line int) {
		base := (line/inner)*length*inner + line%inner
		softmaxLine(x.Data[base:], y.Data[base:], length, inner)
	})
	return []*tensor.Tensor{y}, nil
}

// Backward computes dx = y·(dy − Σ dy·y) along Axis.
func (o Softmax) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	if len(out) == 0 || out[0] == nil || out[0].Len() != x.Len() || dy.Len() != x.Len() {
		return nil, fmt.Errorf("backward: output or its gradient missing or not of input shape %v", x.Shape)
	}
	outer, length, inner, err := o.geometry(x.Shape)
	if err != nil {
		return nil, err
	}
	y := out[0]
	dx := c.Buffer(slotSoftmaxGrad, x.Shape...)
	splitLines(outer*inner, length, func(line int) {
		base := (line/inner)*length*inner + line%inner
		yl, gl, dl := y.Data[base:], dy.Data[base:], dx.Data[base:]
		var dot float64
		for k := 0; k < length; k++ {
			dot += float64(gl[k*inner]) * float64(yl[k*inner])
		}
		for k := 0; k < length; k++ {
			dl[k*inner] = yl[k*inner] * (gl[k*inner] - float32(dot))
		}
	})
	return []*tensor.Tensor{dx}, nil
}

// splitLines runs fn for every line in [0, lines), in parallel when the
// total work lines·length is large.
func splitLines(lines, length int, fn func(line int)) {
	body := func(lo, hi int) {
		for l := lo; l < hi; l++ {
			fn(l)
		}
	}
	if lines < 2 || lines*length < 2*pointwiseGrain {
		body(0, lines)
		return
	}
	kernels.Parallel(lines, max(1, pointwiseGrain/max(length, 1)), body)
}

// softmaxLine normalizes length values of x spaced by stride into y.
func softmaxLine(x, y []float32, length, stride int) {
	m := float32(math.Inf(-1))
	for k := 0; k < length; k++ {
		m = max(m, x[k*stride])
	}
	var sum float64
	for k := 0; k < length; k++ {
		e := math.Exp(float64(x[k*stride] - m))
		y[k*stride] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for k := 0; k < length; k++ {
		y[k*stride] *= inv
	}
}
