package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Buffer slots of Dropout.
const (
	slotDropOut = iota
	slotDropMask
	slotDropGrad
)

// dropState records what the last Forward did, for Backward.
type dropState struct {
	masked bool // training with Ratio > 0: the mask buffer holds the scales
}

// Type returns "Dropout".
func (Dropout) Type() string { return "Dropout" }

// InferShapes returns the input shape; Ratio must lie in [0, 1).
func (o Dropout) InferShapes(in [][]int) ([][]int, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	return unaryInfer(in)
}

func (o Dropout) check() error {
	if !(o.Ratio >= 0 && o.Ratio < 1) {
		return fmt.Errorf("ratio %g outside [0, 1)", o.Ratio)
	}
	return nil
}

// Forward zeroes each element with probability Ratio and scales the kept
// ones by 1/(1−Ratio) in training, drawing from c.Rand; in evaluation (or
// with Ratio 0) it copies the input. The mask is kept for Backward.
func (o Dropout) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	x, err := soleTensor(in)
	if err != nil {
		return nil, err
	}
	st, _ := c.Saved.(*dropState)
	if st == nil {
		st = &dropState{}
		c.Saved = st
	}
	st.masked = c.Training && o.Ratio > 0
	y := c.Buffer(slotDropOut, x.Shape...)
	if !st.masked {
		copy(y.Data, x.Data)
		return []*tensor.Tensor{y}, nil
	}
	if c.Rand == nil {
		return nil, fmt.Errorf("training needs the context's random source (Context.Rand is nil)")
	}
	mask := c.Buffer(slotDropMask, x.Shape...)
	keep := 1 / (1 - o.Ratio)
	for i, v := range x.Data {
		if c.Rand.Float32() < o.Ratio {
			mask.Data[i] = 0
		} else {
			mask.Data[i] = keep
		}
		y.Data[i] = v * mask.Data[i]
	}
	return []*tensor.Tensor{y}, nil
}

// Backward applies the forward mask to the output gradient (identity in
// evaluation).
func (o Dropout) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	if dy.Len() != x.Len() {
		return nil, fmt.Errorf("backward: output gradient shape %v, input shape %v", dy.Shape, x.Shape)
	}
	dx := c.Buffer(slotDropGrad, x.Shape...)
	st, _ := c.Saved.(*dropState)
	if st == nil || !st.masked {
		copy(dx.Data, dy.Data)
		return []*tensor.Tensor{dx}, nil
	}
	mask := c.Buffer(slotDropMask, x.Shape...)
	for i, m := range mask.Data {
		dx.Data[i] = dy.Data[i] * m
	}
	return []*tensor.Tensor{dx}, nil
}
