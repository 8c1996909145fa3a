package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Buffer slots of Concat: the output, then one gradient per input.
const slotConcatOut = 0

// Type returns "Concat".
func (Concat) Type() string { return "Concat" }

// InferShapes checks that the inputs agree except along Axis and sums
// that axis. A -1 (batch) dimension matches any size.
func (o Concat) InferShapes(in [][]int) ([][]int, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("needs at least one input")
	}
	for i, s := range in {
		if s == nil {
			return nil, fmt.Errorf("input %d is missing", i)
		}
	}
	axis, err := o.axisFor(in[0])
	if err != nil {
		return nil, err
	}
	out := append([]int{}, in[0]...)
	for i, s := range in[1:] {
		if err := concatCompatible(in[0], s, axis, i+1); err != nil {
			return nil, err
		}
		for d, v := range s {
			switch {
			case d == axis && (out[d] < 0 || v < 0):
				out[d] = -1
			case d == axis:
				out[d] += v
			case out[d] < 0:
				out[d] = v
			}
		}
	}
	return [][]int{out}, nil
}

func (o Concat) axisFor(s []int) (int, error) {
	axis, err := resolveAxis(o.Axis, len(s), false)
	if err != nil {
		return 0, fmt.Errorf("input shape %v: %w", s, err)
	}
	return axis, nil
}

// concatCompatible checks that shape s of input i matches first off axis.
func concatCompatible(first, s []int, axis, i int) error {
	if len(s) != len(first) {
		return fmt.Errorf("input %d has rank %d (shape %v), input 0 has rank %d (shape %v)", i, len(s), s, len(first), first)
	}
	for d := range s {
		if d != axis && s[d] != first[d] && s[d] >= 0 && first[d] >= 0 {
			return fmt.Errorf("input %d shape %v does not match input 0 shape %v off axis %d", i, s, first, axis)
		}
	}
	return nil
}

// concatGeometry returns the axis, the number of outer blocks and the
// size of every input's block.
func (o Concat) concatGeometry(in []*tensor.Tensor) (axis, outer int, err error) {
	if len(in) == 0 || in[0] == nil {
		return 0, 0, fmt.Errorf("needs at least one input")
	}
	if axis, err = o.axisFor(in[0].Shape); err != nil {
		return 0, 0, err
	}
	for i, t := range in {
		if t == nil {
			return 0, 0, fmt.Errorf("input %d is missing", i)
		}
		if err := concatCompatible(in[0].Shape, t.Shape, axis, i); err != nil {
			return 0, 0, err
		}
	}
	return axis, tensor.Numel(in[0].Shape[:axis]), nil
}

// Forward copies each input's blocks into place.
func (o Concat) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	axis, outer, err := o.concatGeometry(in)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, t := range in {
		total += t.Shape[axis]
	}
	shape := scratchShape(c, in[0].Shape)
	shape[axis] = total
	y := c.Buffer(slotConcatOut, shape...)
	concatCopy(in, in, y.Data, outer, true)
	return []*tensor.Tensor{y}, nil
}

// Backward slices the output gradient back into one gradient per input.
func (o Concat) Backward(c *graph.Context, in, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	_, outer, err := o.concatGeometry(in)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	grads := make([]*tensor.Tensor, len(in))
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	total := 0
	for i, t := range in {
		total += t.Len()
		if c.Need(i) {
			grads[i] = c.Buffer(slotConcatOut+1+i, t.Shape...)
		}
	}
	if dout[0].Len() != total {
		return nil, fmt.Errorf("backward: output gradient has %d elements, inputs %d", dout[0].Len(), total)
	}
	concatCopy(in, grads, dout[0].Data, outer, false)
	return grads, nil
}

// concatCopy moves data between parts (shaped as the inputs in) and the
// joined tensor whole: into whole when join is set, out of it otherwise
// (nil parts are skipped). Input i contributes a block of len/outer values
// per outer index.
func concatCopy(in, parts []*tensor.Tensor, whole []float32, outer int, join bool) {
	if outer == 0 {
		return
	}
	pos := 0
	for o := range outer {
		for i, t := range parts {
			blk := in[i].Len() / outer
			seg := whole[pos : pos+blk]
			pos += blk
			if t == nil {
				continue
			}
			if join {
				copy(seg, t.Data[o*blk:(o+1)*blk])
			} else {
				copy(t.Data[o*blk:(o+1)*blk], seg)
			}
		}
	}
}
