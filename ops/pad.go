package ops

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// Buffer slots of Pad.
const (
	slotPadOut = iota
	slotPadGrad
)

// Type returns "Pad".
func (Pad) Type() string { return "Pad" }

// InferShapes adds the begin and end pads to every axis (a -1 batch axis
// stays -1).
func (o Pad) InferShapes(in [][]int) ([][]int, error) { return inferOne(in, o.shape) }

func (o Pad) shape(dst, s []int) ([]int, error) {
	r := len(s)
	if len(o.Pads) != 2*r {
		return nil, fmt.Errorf("pads %v has %d values, input shape %v needs %d", o.Pads, len(o.Pads), s, 2*r)
	}
	dst = dst[:0]
	for i, d := range s {
		if d < 0 {
			dst = append(dst, -1)
			continue
		}
		v := d + o.Pads[i] + o.Pads[r+i]
		if v < 0 {
			return nil, fmt.Errorf("pads %v crop axis %d of shape %v below zero", o.Pads, i, s)
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// Forward fills the output with Value and copies the input (cropped where
// pads are negative) into place.
func (o Pad) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, shape, err := forwardOne(c, in, o.shape)
	if err != nil {
		return nil, err
	}
	y := c.Buffer(slotPadOut, shape...)
	y.Fill(o.Value)
	o.copyRegion(x.Shape, x.Data, y.Shape, y.Data, true)
	return []*tensor.Tensor{y}, nil
}

// Backward copies the gradient of the kept region back; padded positions
// contribute nothing and cropped inputs get zero.
func (o Pad) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x, dy, err := soleGrad(c, in, dout)
	if x == nil || err != nil {
		return []*tensor.Tensor{nil}, err
	}
	shape, err := o.shape(scratchShape(c, nil), x.Shape)
	if err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	if !tensor.SameShape(shape, dy.Shape) {
		return nil, fmt.Errorf("backward: output gradient shape %v, output shape %v", dy.Shape, shape)
	}
	dx := c.Zeros(slotPadGrad, x.Shape...)
	o.copyRegion(x.Shape, dx.Data, dy.Shape, dy.Data, false)
	return []*tensor.Tensor{dx}, nil
}

// copyRegion copies the elements that the input (shape is, data xd) and
// the padded output (shape os, data yd) share: input to output when toOut
// is set, output to input otherwise.
func (o Pad) copyRegion(is []int, xd []float32, os []int, yd []float32, toOut bool) {
	r := len(is)
	if r == 0 {
		if toOut {
			yd[0] = xd[0]
		} else {
			xd[0] = yd[0]
		}
		return
	}
	if len(xd) == 0 || len(yd) == 0 {
		return
	}
	iw, ow, b := is[r-1], os[r-1], o.Pads[r-1]
	lo, hi := max(0, -b), min(iw, ow-b) // input columns that land in the output
	if lo >= hi {
		return
	}
	rows := len(xd) / iw
	for row := range rows {
		rem, off, stride, inside := row, 0, ow, true
		for d := r - 2; d >= 0; d-- {
			j := rem%is[d] + o.Pads[d]
			rem /= is[d]
			if j < 0 || j >= os[d] {
				inside = false
				break
			}
			off += j * stride
			stride *= os[d]
		}
		if !inside {
			continue
		}
		src, dst := xd[row*iw+lo:row*iw+hi], yd[off+lo+b:off+hi+b]
		if toOut {
			copy(dst, src)
		} else {
			copy(src, dst)
		}
	}
}
