package ops

import (
	"fmt"
	"runtime"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of Conv's context.
const (
	convSlotY     = iota // output
	convSlotCol          // forward per-worker column matrices
	convSlotDX           // input gradient
	convSlotDW           // weight gradient (worker 0 accumulates here)
	convSlotDWAux        // weight-gradient partials of workers 1..n-1
	convSlotDB           // bias gradient
	convSlotBCol         // backward per-worker column + column-gradient matrices
)

// convDims is the resolved geometry of one Conv application.
type convDims struct {
	N, C, H, W int // input; N (and H, W in shape inference) may be -1
	M          int // output channels
	G, Cg, Mg  int // groups, input and output channels per group
	KH, KW     int
	geom       kernels.ConvGeom // per image over all C channels
	pointwise  bool             // 1x1, stride 1, no pads: the input is the column matrix
	depthwise  bool             // one input and one output channel per group: direct kernels
}

// colRows is the number of rows of one image's column matrix (all groups).
func (d *convDims) colRows() int { return d.C * d.KH * d.KW }

// Type returns "Conv".
func (Conv) Type() string { return "Conv" }

// attrs returns the strides and dilations with zero values replaced by their
// default 1, or an error for negative attributes.
func (op Conv) attrs() (sh, sw, dh, dw, groups int, err error) {
	def := func(v int) int {
		if v == 0 {
			return 1
		}
		return v
	}
	sh, sw, dh, dw, groups = def(op.StrideH), def(op.StrideW), def(op.DilH), def(op.DilW), def(op.Groups)
	if sh < 0 || sw < 0 || dh < 0 || dw < 0 || groups < 0 {
		return 0, 0, 0, 0, 0, fmt.Errorf("negative stride, dilation or groups in %+v", op)
	}
	if op.PadT < 0 || op.PadL < 0 || op.PadB < 0 || op.PadR < 0 {
		return 0, 0, 0, 0, 0, fmt.Errorf("negative pads (t,l,b,r)=(%d,%d,%d,%d)", op.PadT, op.PadL, op.PadB, op.PadR)
	}
	return sh, sw, dh, dw, groups, nil
}

// dims validates the shapes of X, W and the optional B (nil when omitted)
// and computes the geometry. Unknown (-1) N, H or W are allowed in shape
// inference; the output size is then unknown too.
func (op Conv) dims(x, w, b []int) (convDims, error) {
	var d convDims
	sh, sw, dh, dw, groups, err := op.attrs()
	if err != nil {
		return d, err
	}
	if len(x) != 4 {
		return d, fmt.Errorf("input X must be 4-D NCHW, got shape %v", x)
	}
	if len(w) != 4 {
		return d, fmt.Errorf("weight W must be 4-D [M, C/groups, KH, KW], got shape %v", w)
	}
	d.N, d.C, d.H, d.W = x[0], x[1], x[2], x[3]
	d.M, d.KH, d.KW, d.G = w[0], w[2], w[3], groups
	if d.C <= 0 {
		return d, fmt.Errorf("input X %v: channel dimension must be known and positive", x)
	}
	for _, v := range w {
		if v <= 0 {
			return d, fmt.Errorf("weight W has non-positive dimension in shape %v", w)
		}
	}
	if d.C%d.G != 0 {
		return d, fmt.Errorf("input channels %d (X %v) not divisible by groups %d", d.C, x, d.G)
	}
	if d.M%d.G != 0 {
		return d, fmt.Errorf("output channels %d (W %v) not divisible by groups %d", d.M, w, d.G)
	}
	d.Cg, d.Mg = d.C/d.G, d.M/d.G
	if w[1] != d.Cg {
		return d, fmt.Errorf("weight W %v has %d input channels per group, X %v with groups %d needs %d", w, w[1], x, d.G, d.Cg)
	}
	if b != nil && (len(b) != 1 || b[0] != d.M) {
		return d, fmt.Errorf("bias B must be [%d], got shape %v", d.M, b)
	}
	d.geom = kernels.ConvGeom{C: d.C, H: d.H, W: d.W, KH: d.KH, KW: d.KW, SH: sh, SW: sw,
		PadT: op.PadT, PadL: op.PadL, PadB: op.PadB, PadR: op.PadR, DH: dh, DW: dw}
	if d.H >= 0 && d.W >= 0 {
		if !d.geom.Init() {
			return d, fmt.Errorf("kernel %dx%d (dilation %d,%d) larger than padded input %dx%d (X %v, pads t,l,b,r=%d,%d,%d,%d)",
				d.KH, d.KW, dh, dw, d.H+op.PadT+op.PadB, d.W+op.PadL+op.PadR, x, op.PadT, op.PadL, op.PadB, op.PadR)
		}
	} else {
		d.geom.OH, d.geom.OW = -1, -1
	}
	d.depthwise = d.Cg == 1 && d.Mg == 1
	d.pointwise = !d.depthwise && d.KH == 1 && d.KW == 1 && sh == 1 && sw == 1 &&
		op.PadT == 0 && op.PadL == 0 && op.PadB == 0 && op.PadR == 0
	return d, nil
}

// twoPlusOptional checks for two required inputs and an optional third
// (Conv's B, Gemm's C), described by names in errors, and returns their
// shapes, the third nil when omitted.
func twoPlusOptional(in [][]int, names string) (a, b, c []int, err error) {
	if len(in) < 2 || len(in) > 3 || in[0] == nil || in[1] == nil {
		return nil, nil, nil, fmt.Errorf("want inputs %s, got %d", names, len(in))
	}
	if len(in) == 3 {
		c = in[2]
	}
	return in[0], in[1], c, nil
}

// twoPlusOptionalTensors is twoPlusOptional for runtime inputs; it also
// returns the optional third tensor.
func twoPlusOptionalTensors(in []*tensor.Tensor, names string) (a, b, c []int, third *tensor.Tensor, err error) {
	shapes := make([][]int, len(in))
	for i, t := range in {
		switch {
		case t == nil:
		case t.Shape == nil:
			shapes[i] = []int{} // a scalar, not an omitted input
		default:
			shapes[i] = t.Shape
		}
	}
	a, b, c, err = twoPlusOptional(shapes, names)
	if c != nil {
		third = in[2]
	}
	return a, b, c, third, err
}

const convInputNames = "X, W and optional B"

// InferShapes maps X [N,C,H,W], W [M,C/groups,KH,KW] and optional B [M] to
// Y [N,M,OH,OW].
func (op Conv) InferShapes(in [][]int) ([][]int, error) {
	x, w, b, err := twoPlusOptional(in, convInputNames)
	if err != nil {
		return nil, err
	}
	d, err := op.dims(x, w, b)
	if err != nil {
		return nil, err
	}
	return [][]int{{d.N, d.M, d.geom.OH, d.geom.OW}}, nil
}

// convInputs checks the runtime inputs and returns the geometry and the
// optional bias.
func (op Conv) convInputs(in []*tensor.Tensor) (convDims, *tensor.Tensor, error) {
	xs, ws, bs, b, err := twoPlusOptionalTensors(in, convInputNames)
	if err != nil {
		return convDims{}, nil, err
	}
	d, err := op.dims(xs, ws, bs)
	if err != nil {
		return d, nil, err
	}
	if d.N < 0 || d.H < 0 || d.W < 0 {
		return d, nil, fmt.Errorf("input X has unknown dimensions %v", in[0].Shape)
	}
	return d, b, nil
}

// convWorkers splits n images over at most GOMAXPROCS workers.
func convWorkers(n int) int {
	return max(1, min(n, runtime.GOMAXPROCS(0)))
}

// forEachWorker runs fn(w, lo, hi) for nw workers, worker w handling items
// [lo, hi) of n, each worker on its own goroutine.
func forEachWorker(nw, n int, fn func(w, lo, hi int)) {
	kernels.Parallel(nw, 1, func(wlo, whi int) {
		for w := wlo; w < whi; w++ {
			fn(w, w*n/nw, (w+1)*n/nw)
		}
	})
}

// Forward computes Y = conv(X, W) + B with im2col and one GEMM per image and
// group (depthwise convolutions use direct kernels instead), images spread
// over the workers.
func (op Conv) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, b, err := op.convInputs(in)
	if err != nil {
		return nil, err
	}
	x, w := in[0].Data, in[1].Data
	g := d.geom
	ohw := g.OH * g.OW
	y := c.Buffer(convSlotY, d.N, d.M, g.OH, g.OW)
	nw := convWorkers(d.N)
	rows := d.colRows()
	var cols []float32
	if !d.pointwise && !d.depthwise {
		cols = c.Buffer(convSlotCol, nw*rows*ohw).Data
	}
	kg := d.Cg * d.KH * d.KW // GEMM depth per group
	forEachWorker(nw, d.N, func(wk, lo, hi int) {
		for n := lo; n < hi; n++ {
			xn := x[n*d.C*d.H*d.W : (n+1)*d.C*d.H*d.W]
			yn := y.Data[n*d.M*ohw : (n+1)*d.M*ohw]
			switch {
			case d.depthwise:
				kernels.DepthwiseConv(&g, xn, w, yn, op.PadValue)
			default:
				col := xn
				if !d.pointwise {
					col = cols[wk*rows*ohw : (wk+1)*rows*ohw]
					kernels.Im2col(&g, xn, col, op.PadValue)
				}
				for gr := 0; gr < d.G; gr++ {
					kernels.Sgemm(false, false, d.Mg, ohw, kg, 1,
						w[gr*d.Mg*kg:], kg, col[gr*kg*ohw:], ohw, 0, yn[gr*d.Mg*ohw:], ohw)
				}
			}
			if b != nil {
				for m := 0; m < d.M; m++ {
					bv := b.Data[m]
					row := yn[m*ohw : (m+1)*ohw]
					for i := range row {
						row[i] += bv
					}
				}
			}
		}
	})
	return []*tensor.Tensor{y}, nil
}

// Backward computes the gradients with respect to X (skipped when
// !c.Need(0)), W and B. Padded positions are constants: PadValue gets no
// gradient.
func (op Conv) Backward(c *graph.Context, in, out, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, b, err := op.convInputs(in)
	if err != nil {
		return nil, err
	}
	grads := make([]*tensor.Tensor, len(in))
	if len(dout) == 0 || dout[0] == nil {
		return grads, nil
	}
	g := d.geom
	ohw := g.OH * g.OW
	dy := dout[0]
	if dy.Len() != d.N*d.M*ohw {
		return nil, fmt.Errorf("output gradient has shape %v, want [%d %d %d %d]", dy.Shape, d.N, d.M, g.OH, g.OW)
	}
	needX, needW, needB := c.Need(0), c.Need(1), b != nil && c.Need(2)
	if needB {
		db := c.Buffer(convSlotDB, d.M)
		for m := 0; m < d.M; m++ {
			var s float64
			for n := 0; n < d.N; n++ {
				for _, v := range dy.Data[(n*d.M+m)*ohw : (n*d.M+m+1)*ohw] {
					s += float64(v)
				}
			}
			db.Data[m] = float32(s)
		}
		grads[2] = db
	}
	if !needX && !needW {
		return grads, nil
	}
	x, w := in[0].Data, in[1].Data
	imgSize := d.C * d.H * d.W
	nw := convWorkers(d.N)
	rows := d.colRows()
	kg := d.Cg * d.KH * d.KW
	wsize := in[1].Len()
	var dx, dw *tensor.Tensor
	var dwAux, bufs []float32
	if needX {
		dx = c.Buffer(convSlotDX, in[0].Shape...)
	}
	if needW {
		dw = c.Buffer(convSlotDW, in[1].Shape...)
		if nw > 1 {
			dwAux = c.Buffer(convSlotDWAux, (nw-1)*wsize).Data
		}
	}
	// Per worker: a column matrix (for dW) and a column-gradient matrix (for dX).
	per := 0
	if !d.pointwise && !d.depthwise {
		if needW {
			per += rows * ohw
		}
		if needX {
			per += rows * ohw
		}
		bufs = c.Buffer(convSlotBCol, nw*per).Data
	}
	forEachWorker(nw, d.N, func(wk, lo, hi int) {
		var dwk []float32
		if needW {
			dwk = dw.Data
			if wk > 0 {
				dwk = dwAux[(wk-1)*wsize : wk*wsize]
			}
			clear(dwk)
		}
		var col, dcol []float32
		if !d.pointwise && !d.depthwise {
			buf := bufs[wk*per : (wk+1)*per]
			if needW {
				col, buf = buf[:rows*ohw], buf[rows*ohw:]
			}
			if needX {
				dcol = buf[:rows*ohw]
			}
		}
		for n := lo; n < hi; n++ {
			dyn := dy.Data[n*d.M*ohw : (n+1)*d.M*ohw]
			xn := x[n*imgSize : (n+1)*imgSize]
			if d.depthwise {
				if needW {
					kernels.DepthwiseConvGradWeight(&g, xn, dyn, dwk, op.PadValue)
				}
				if needX {
					kernels.DepthwiseConvGradInput(&g, dyn, w, dx.Data[n*imgSize:(n+1)*imgSize])
				}
				continue
			}
			if needW {
				src := xn
				if !d.pointwise {
					src = col
					kernels.Im2col(&g, xn, col, op.PadValue)
				}
				for gr := 0; gr < d.G; gr++ {
					kernels.Sgemm(false, true, d.Mg, kg, ohw, 1,
						dyn[gr*d.Mg*ohw:], ohw, src[gr*kg*ohw:], ohw, 1, dwk[gr*d.Mg*kg:], kg)
				}
			}
			if needX {
				dxn := dx.Data[n*imgSize : (n+1)*imgSize]
				target := dxn
				if !d.pointwise {
					target = dcol
				}
				for gr := 0; gr < d.G; gr++ {
					kernels.Sgemm(true, false, kg, ohw, d.Mg, 1,
						w[gr*d.Mg*kg:], kg, dyn[gr*d.Mg*ohw:], ohw, 0, target[gr*kg*ohw:], ohw)
				}
				if !d.pointwise {
					clear(dxn)
					kernels.Col2im(&g, dcol, dxn)
				}
			}
		}
	})
	if needX {
		grads[0] = dx
	}
	if needW {
		for k := 0; k < nw-1; k++ {
			part := dwAux[k*wsize : (k+1)*wsize]
			for i, v := range part {
				dw.Data[i] += v
			}
		}
		grads[1] = dw
	}
	return grads, nil
}
