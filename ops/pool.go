package ops

import (
	"errors"
	"fmt"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of the pooling ops' contexts.
const (
	poolSlotY = iota
	poolSlotDX
)

// poolGeom is the geometry of a 2-D pooling window over NCHW planes.
type poolGeom struct {
	KH, KW, SH, SW         int
	PadT, PadL, PadB, PadR int
	Ceil                   bool
	N, C, H, W, OH, OW     int
}

// poolOut is the output length of one axis: floor or ceil of
// (in+p0+p1−k)/s + 1; in ceil mode a last window that would start in the end
// padding is dropped (ONNX and PyTorch).
func poolOut(in, k, s, p0, p1 int, ceil bool) int {
	span := in + p0 + p1 - k
	if !ceil {
		return span/s + 1
	}
	o := (span+s-1)/s + 1
	if (o-1)*s >= in+p0 {
		o--
	}
	return o
}

// init validates the attributes against the input shape x (N may be -1,
// H and W too during shape inference) and fills the output size.
func (g *poolGeom) init(x []int) error {
	if len(x) != 4 {
		return fmt.Errorf("input X must be 4-D NCHW, got shape %v", x)
	}
	if g.SH == 0 {
		g.SH = 1
	}
	if g.SW == 0 {
		g.SW = 1
	}
	if g.KH <= 0 || g.KW <= 0 || g.SH < 0 || g.SW < 0 {
		return fmt.Errorf("kernel %dx%d and strides %d,%d must be positive", g.KH, g.KW, g.SH, g.SW)
	}
	if g.PadT < 0 || g.PadL < 0 || g.PadB < 0 || g.PadR < 0 ||
		g.PadT >= g.KH || g.PadB >= g.KH || g.PadL >= g.KW || g.PadR >= g.KW {
		return fmt.Errorf("pads (t,l,b,r)=(%d,%d,%d,%d) must be ≥ 0 and smaller than the kernel %dx%d",
			g.PadT, g.PadL, g.PadB, g.PadR, g.KH, g.KW)
	}
	g.N, g.C, g.H, g.W = x[0], x[1], x[2], x[3]
	if g.C <= 0 {
		return fmt.Errorf("input X %v: channel dimension must be known and positive", x)
	}
	g.OH, g.OW = -1, -1
	if g.H >= 0 && g.W >= 0 {
		if g.H+g.PadT+g.PadB < g.KH || g.W+g.PadL+g.PadR < g.KW {
			return fmt.Errorf("kernel %dx%d larger than padded input %dx%d (X %v)", g.KH, g.KW,
				g.H+g.PadT+g.PadB, g.W+g.PadL+g.PadR, x)
		}
		g.OH = poolOut(g.H, g.KH, g.SH, g.PadT, g.PadB, g.Ceil)
		g.OW = poolOut(g.W, g.KW, g.SW, g.PadL, g.PadR, g.Ceil)
	}
	return nil
}

func (g *poolGeom) inferShapes(in [][]int) ([][]int, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("want one input X, got %d", len(in))
	}
	if err := g.init(in[0]); err != nil {
		return nil, err
	}
	return [][]int{{g.N, g.C, g.OH, g.OW}}, nil
}

// forward validates the runtime input and returns the output buffer.
func (g *poolGeom) forward(c *graph.Context, in []*tensor.Tensor) (*tensor.Tensor, error) {
	if len(in) != 1 || in[0] == nil {
		return nil, fmt.Errorf("want one input X, got %d", len(in))
	}
	if err := g.init(in[0].Shape); err != nil {
		return nil, err
	}
	if g.N < 0 || g.H < 0 || g.W < 0 {
		return nil, fmt.Errorf("input X has unknown dimensions %v", in[0].Shape)
	}
	return c.Buffer(poolSlotY, g.N, g.C, g.OH, g.OW), nil
}

// backward validates the inputs of Backward and returns the output
// gradient and the input-gradient buffer, or nil ones when no gradient is
// needed.
func (g *poolGeom) backward(c *graph.Context, in, dout []*tensor.Tensor) (dy []float32, dx *tensor.Tensor, err error) {
	if len(in) != 1 || in[0] == nil {
		return nil, nil, fmt.Errorf("want one input X, got %d", len(in))
	}
	if err := g.init(in[0].Shape); err != nil {
		return nil, nil, err
	}
	if len(dout) == 0 || dout[0] == nil || !c.Need(0) {
		return nil, nil, nil
	}
	if dout[0].Len() != g.N*g.C*g.OH*g.OW {
		return nil, nil, fmt.Errorf("output gradient has shape %v, want [%d %d %d %d]", dout[0].Shape, g.N, g.C, g.OH, g.OW)
	}
	return dout[0].Data, c.Buffer(poolSlotDX, in[0].Shape...), nil
}

// window returns output position (oy, ox)'s window clipped to the image,
// [y0, y1) × [x0, x1), and its size clipped to the padded extent instead
// (the count_include_pad divisor).
func (g *poolGeom) window(oy, ox int) (y0, y1, x0, x1, padded int) {
	y0, x0 = oy*g.SH-g.PadT, ox*g.SW-g.PadL
	y1, x1 = min(y0+g.KH, g.H+g.PadB), min(x0+g.KW, g.W+g.PadR)
	padded = (y1 - y0) * (x1 - x0)
	y0, x0 = max(y0, 0), max(x0, 0)
	return y0, max(min(y1, g.H), y0), x0, max(min(x1, g.W), x0), padded
}

// planes runs fn over the N·C planes in parallel.
func (g *poolGeom) planes(fn func(p int)) {
	kernels.Parallel(g.N*g.C, 4, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			fn(p)
		}
	})
}

func (op MaxPool) geom() poolGeom {
	return poolGeom{KH: op.KH, KW: op.KW, SH: op.StrideH, SW: op.StrideW,
		PadT: op.PadT, PadL: op.PadL, PadB: op.PadB, PadR: op.PadR, Ceil: op.CeilMode}
}

// maxPoolState holds the forward argmax (index within the input plane, −1
// for an empty window) of every output element.
type maxPoolState struct {
	arg []int32
}

// Type returns "MaxPool".
func (MaxPool) Type() string { return "MaxPool" }

// InferShapes maps X [N,C,H,W] to [N,C,OH,OW]. Zero strides mean 1; pads
// must be smaller than the kernel.
func (op MaxPool) InferShapes(in [][]int) ([][]int, error) {
	g := op.geom()
	return g.inferShapes(in)
}

// Forward takes the maximum over each window's in-image positions (the
// first one on ties) and records where it was for Backward.
func (op MaxPool) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := op.geom()
	y, err := g.forward(c, in)
	if err != nil {
		return nil, err
	}
	x := in[0].Data
	st, _ := c.Saved.(*maxPoolState)
	if st == nil {
		st = &maxPoolState{}
		c.Saved = st
	}
	if cap(st.arg) < y.Len() {
		st.arg = make([]int32, y.Len())
	}
	st.arg = st.arg[:y.Len()]
	hw, ohw := g.H*g.W, g.OH*g.OW
	g.planes(func(p int) {
		xp := x[p*hw : (p+1)*hw]
		yp, ap := y.Data[p*ohw:(p+1)*ohw], st.arg[p*ohw:(p+1)*ohw]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				y0, y1, x0, x1, _ := g.window(oy, ox)
				best, arg := float32(0), int32(-1)
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						if v := xp[iy*g.W+ix]; arg < 0 || v > best {
							best, arg = v, int32(iy*g.W+ix)
						}
					}
				}
				yp[oy*g.OW+ox], ap[oy*g.OW+ox] = best, arg
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}

// Backward routes each output gradient to its window's argmax.
func (op MaxPool) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := op.geom()
	dy, dx, err := g.backward(c, in, dout)
	if err != nil || dx == nil {
		return []*tensor.Tensor{nil}, err
	}
	st, _ := c.Saved.(*maxPoolState)
	if st == nil || len(st.arg) != len(dy) {
		return nil, errors.New("backward called without a matching forward")
	}
	hw, ohw := g.H*g.W, g.OH*g.OW
	g.planes(func(p int) {
		dxp := dx.Data[p*hw : (p+1)*hw]
		clear(dxp)
		for i, a := range st.arg[p*ohw : (p+1)*ohw] {
			if a >= 0 {
				dxp[a] += dy[p*ohw+i]
			}
		}
	})
	return []*tensor.Tensor{dx}, nil
}

func (op AveragePool) geom() poolGeom {
	return poolGeom{KH: op.KH, KW: op.KW, SH: op.StrideH, SW: op.StrideW,
		PadT: op.PadT, PadL: op.PadL, PadB: op.PadB, PadR: op.PadR, Ceil: op.CeilMode}
}

// divisor is the averaging divisor of a window: the in-image count, or with
// CountIncludePad the count within the padded extent (the part of a
// ceil-mode window beyond the end padding is never counted, as in PyTorch).
func (op AveragePool) divisor(y0, y1, x0, x1, padded int) float32 {
	if op.CountIncludePad {
		return float32(padded)
	}
	return float32((y1 - y0) * (x1 - x0))
}

// Type returns "AveragePool".
func (AveragePool) Type() string { return "AveragePool" }

// InferShapes maps X [N,C,H,W] to [N,C,OH,OW]. Zero strides mean 1; pads
// must be smaller than the kernel.
func (op AveragePool) InferShapes(in [][]int) ([][]int, error) {
	g := op.geom()
	return g.inferShapes(in)
}

// Forward averages each window.
func (op AveragePool) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := op.geom()
	y, err := g.forward(c, in)
	if err != nil {
		return nil, err
	}
	x := in[0].Data
	hw, ohw := g.H*g.W, g.OH*g.OW
	g.planes(func(p int) {
		xp, yp := x[p*hw:(p+1)*hw], y.Data[p*ohw:(p+1)*ohw]
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				y0, y1, x0, x1, padded := g.window(oy, ox)
				var s float32
				for iy := y0; iy < y1; iy++ {
					for _, v := range xp[iy*g.W+x0 : iy*g.W+x1] {
						s += v
					}
				}
				if d := op.divisor(y0, y1, x0, x1, padded); d > 0 {
					s /= d
				}
				yp[oy*g.OW+ox] = s
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}

// Backward spreads each output gradient evenly (by the divisor) over its
// window's in-image positions.
func (op AveragePool) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := op.geom()
	dy, dx, err := g.backward(c, in, dout)
	if err != nil || dx == nil {
		return []*tensor.Tensor{nil}, err
	}
	hw, ohw := g.H*g.W, g.OH*g.OW
	g.planes(func(p int) {
		dxp, dyp := dx.Data[p*hw:(p+1)*hw], dy[p*ohw:(p+1)*ohw]
		clear(dxp)
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				y0, y1, x0, x1, padded := g.window(oy, ox)
				d := op.divisor(y0, y1, x0, x1, padded)
				if d == 0 {
					continue
				}
				v := dyp[oy*g.OW+ox] / d
				for iy := y0; iy < y1; iy++ {
					row := dxp[iy*g.W+x0 : iy*g.W+x1]
					for i := range row {
						row[i] += v
					}
				}
			}
		}
	})
	return []*tensor.Tensor{dx}, nil
}
