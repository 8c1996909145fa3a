package ops

import (
	"fmt"
	"math"
	"runtime"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// Buffer slots of Conv's context.
const (
	convSlotY     = iota // output
	convSlotDX           // input gradient
	convSlotDW           // weight gradient (depthwise: worker 0 accumulates here)
	convSlotDWAux        // depthwise weight-gradient partials of workers 1..n-1
	convSlotDB           // bias gradient
	convSlotWT           // flipped, transposed weights of the input gradient
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

// convState is what Conv keeps in its context: the weights packed once per
// call for the products of every image.
type convState struct {
	fwd []kernels.PackedA // per group: W_g, Mg × Cg·KH·KW
	bwd []kernels.PackedA // per group: the input-gradient weights
}

func convStateOf(c *graph.Context, groups int) *convState {
	st, _ := c.Saved.(*convState)
	if st == nil {
		st = &convState{}
		c.Saved = st
	}
	if len(st.fwd) != groups {
		st.fwd = make([]kernels.PackedA, groups)
		st.bwd = make([]kernels.PackedA, groups)
	}
	return st
}

// convScratch is one goroutine's working memory for a group of images:
// column matrix, gathered output or output gradient.
type convScratch struct {
	col, out, dy []float32
}

// convScratches holds the scratch of all Conv nodes, and convPartials
// their weight-gradient partial sums: nodes run one after another, so
// sharing them keeps the memory at that of the largest layer rather than
// the sum over layers.
var (
	convScratches kernels.FreeList[convScratch]
	convPartials  kernels.FreeList[[]float32]
)

// grow returns *s resized to n, reallocating only when too small.
func grow(s *[]float32, n int) []float32 {
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	*s = (*s)[:n]
	return *s
}

// convTargetCols is the number of GEMM columns (output positions) worth
// gathering from several images when one image has fewer: below it the
// micro-kernel's 32-wide column panels run partly empty and the per-product
// overhead dominates.
const convTargetCols = 256

// convPanelCols is the widest column panel of the GEMM micro-kernels: a
// pointwise layer whose output planes are a multiple of it fills every
// panel with one image, so its images run one per product, read and
// written in place (no gathered copies).
const convPanelCols = 32

// convPartsMax is the number of weight-gradient partial sums: a fixed
// split of the batch, so that the result does not depend on which
// goroutine ran which images.
const convPartsMax = 16

// convPlan is one GEMM convolution over a batch: X [n, c, H, W] to
// Y [n, m, OH, OW] in groups, with geometry g of one image; stride-1
// layers run as implicit GEMM (shift), the others through im2col.
type convPlan struct {
	g               kernels.ConvGeom
	n, c, m, groups int
	mg, kg          int // output channels and GEMM depth per group
	pointwise       bool
	pad             float32
	ohw             int
	inSize, outSize int
	rows            int // rows of one image's column matrix (all groups)
	nb              int // images side by side in one product
	// wide runs one image at a time with each product split over the
	// workers (batches smaller than the worker count); otherwise images
	// are spread over the workers and each product runs on one goroutine.
	wide bool
	// shift computes a stride-1 convolution as an implicit GEMM: snb
	// images are copied once into padded hp×wp planes (channel c of image
	// j at (c·snb + j)·hp·wp), whose shifted windows are the rows of the
	// column matrix (offs). The product's columns are the images' padded
	// grids one after another; the wp−OW extra columns of each row and the
	// hp−OH extra rows between images are computed and discarded, which
	// costs less than im2col.
	shift  bool
	hp, wp int
	snb    int // images per implicit-GEMM product
	offs   []int
	offs32 []int32 // offs for SgemmRowsT (weight gradient)
}

func newConvPlan(g kernels.ConvGeom, n, c, m, groups int, pointwise bool, pad float32) *convPlan {
	p := &convPlan{g: g, n: n, c: c, m: m, groups: groups, mg: m / groups,
		kg: c / groups * g.KH * g.KW, pointwise: pointwise, pad: pad, ohw: g.OH * g.OW,
		inSize: c * g.H * g.W, rows: c * g.KH * g.KW, nb: 1}
	p.outSize = m * p.ohw
	workers := runtime.GOMAXPROCS(0)
	p.wide = n < workers
	if !p.wide && p.ohw < convTargetCols && !(pointwise && p.ohw%convPanelCols == 0) {
		p.nb = max(1, min((convTargetCols+p.ohw-1)/p.ohw, n/(2*workers)))
	}
	p.shift = !p.wide && !pointwise && g.SH == 1 && g.SW == 1
	if p.shift {
		p.hp, p.wp = g.H+g.PadT+g.PadB, g.W+g.PadL+g.PadR
		plane := p.hp * p.wp
		p.snb = 1
		if plane < convTargetCols {
			p.snb = max(1, min((convTargetCols+plane-1)/plane, n/(2*workers)))
		}
		p.offs = make([]int, 0, p.rows)
		for ch := 0; ch < c; ch++ {
			for ky := 0; ky < g.KH; ky++ {
				for kx := 0; kx < g.KW; kx++ {
					o := ch*p.snb*plane + ky*g.DH*p.wp + kx*g.DW
					p.offs = append(p.offs, o)
					p.offs32 = append(p.offs32, int32(o))
				}
			}
		}
	}
	return p
}

// shiftGroups is the number of implicit-GEMM products (groups of snb
// images); shiftImages returns group gi's first image and count, and
// shiftCols the product's columns for cnt images: the padded grids of all
// but the last, and OH rows of wp of the last.
func (p *convPlan) shiftGroups() int { return (p.n + p.snb - 1) / p.snb }

func (p *convPlan) shiftImages(gi int) (i0, cnt int) {
	i0 = gi * p.snb
	return i0, min(p.snb, p.n-i0)
}

func (p *convPlan) shiftCols(cnt int) int { return (cnt-1)*p.hp*p.wp + p.g.OH*p.wp }

// padded copies images [i0, i0+cnt) of x into s.col as the implicit GEMM's
// padded input.
func (p *convPlan) padded(s *convScratch, x []float32, i0, cnt int) []float32 {
	return p.paddedGroup(&s.col, x, i0, cnt, p.snb)
}

// paddedGroup copies images [i0, i0+cnt) of x into buf as padded hp×wp
// planes, channel c of image j at (c·nb + j)·hp·wp (cnt ≤ nb).
func (p *convPlan) paddedGroup(buf *[]float32, x []float32, i0, cnt, nb int) []float32 {
	g := &p.g
	plane := p.hp * p.wp
	tail := (g.KW - 1) * g.DW
	size := p.c * nb * plane
	xp := grow(buf, size+tail)
	for j := 0; j < cnt; j++ {
		padImage(xp[j*plane:], x[(i0+j)*p.inSize:(i0+j+1)*p.inSize], p.c, g.H, g.W, g.PadT, g.PadL, p.hp, p.wp, nb*plane, p.pad)
	}
	// The last image's discarded columns read up to tail elements past
	// its planes: keep them finite (a NaN there would reach the weight
	// gradient through 0·NaN).
	if cnt < nb {
		for c := 0; c < p.c; c++ {
			fillValue(xp[c*nb*plane+cnt*plane:][:tail], p.pad)
		}
	}
	fillValue(xp[size:], p.pad)
	return xp
}

// padImage copies the ch×h×w image src into dst as ch planes of hp×wp,
// stride elements apart, with the image at (padT, padL) and v around it.
func padImage(dst, src []float32, ch, h, w, padT, padL, hp, wp, stride int, v float32) {
	for c := 0; c < ch; c++ {
		d := dst[c*stride : c*stride+hp*wp]
		fillValue(d, v)
		kernels.CopyRows(d[padT*wp+padL:], src[c*h*w:(c+1)*h*w], w, h, wp, w)
	}
}

func fillValue(s []float32, v float32) {
	if v == 0 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = v
	}
}

// forwardShift is forward by implicit GEMM (see convPlan.shift).
func (p *convPlan) forwardShift(pa []kernels.PackedA, x, y []float32, epi *convEpilogue) {
	g := &p.g
	plane := p.hp * p.wp
	p.run(p.shiftGroups(), func(s *convScratch, lo, hi int) {
		for gi := lo; gi < hi; gi++ {
			i0, cnt := p.shiftImages(gi)
			cols := p.shiftCols(cnt)
			xp := p.padded(s, x, i0, cnt)
			out := grow(&s.out, p.m*cols)
			for gr := 0; gr < p.groups; gr++ {
				kernels.SgemmPackedOffsets(&pa[gr], cols, 1, xp, p.offs[gr*p.kg:(gr+1)*p.kg], 0, out[gr*p.mg*cols:], cols)
			}
			if p.emit(epi, y, out, i0, cnt, cols, plane, g.OW, g.OH, p.wp) {
				continue
			}
			for m := 0; m < p.m; m++ {
				src := out[m*cols : (m+1)*cols]
				epi.apply(m, src) // on the padded rows while they are in cache
				for j := 0; j < cnt; j++ {
					dst := y[(i0+j)*p.outSize+m*p.ohw : (i0+j)*p.outSize+(m+1)*p.ohw]
					kernels.CopyRows(dst, src[j*plane:], g.OW, g.OH, g.OW, p.wp)
				}
			}
			for j := i0; j < i0+cnt; j++ {
				epi.finish(y[j*p.outSize:(j+1)*p.outSize], j, p.ohw)
			}
		}
	})
}

// emit writes the epilogue (BatchNorm affine, residual, clamp) of images
// [i0, i0+cnt) into y in one pass from the product out, where channel m of
// image j is at out[m·cols + (j−i0)·block] as rows of n values srcStride
// apart (in place when out is y's own rows). It reports false, doing
// nothing, when there is no epilogue or it has a bias (then the caller
// applies it step by step).
func (p *convPlan) emit(epi *convEpilogue, y, out []float32, i0, cnt, cols, block, n, rows, srcStride int) bool {
	if epi == nil || epi.bias != nil {
		return false
	}
	for m := 0; m < p.m; m++ {
		a, b, lo, hi := epi.coeffs(m)
		for j := i0; j < i0+cnt; j++ {
			dst := y[j*p.outSize+m*p.ohw : j*p.outSize+(m+1)*p.ohw]
			var res []float32
			if epi.res != nil {
				res = epi.res[j*p.outSize+m*p.ohw : j*p.outSize+(m+1)*p.ohw]
			}
			kernels.EpilogueRows(dst, out[m*cols+(j-i0)*block:], res, n, rows, n, srcStride, a, b, lo, hi)
		}
	}
	return true
}

// imageGroups is the number of products (groups of nb images).
func (p *convPlan) imageGroups() int { return (p.n + p.nb - 1) / p.nb }

// run calls fn for image groups [lo, hi) with a scratch, in parallel
// unless wide.
func (p *convPlan) run(total int, fn func(s *convScratch, lo, hi int)) {
	body := func(lo, hi int) {
		s := convScratches.Get()
		fn(s, lo, hi)
		convScratches.Put(s)
	}
	if p.wide {
		body(0, total)
		return
	}
	// Fine chunks: an image or group takes tens of microseconds, and the
	// last chunk decides when the layer ends.
	kernels.ParallelChunks(total, max(1, total/(convChunksPerWorker*runtime.GOMAXPROCS(0))), body)
}

// convChunksPerWorker is how many chunks of images a convolution makes per
// goroutine.
const convChunksPerWorker = 16

// images returns the first image and the count of image group gi.
func (p *convPlan) images(gi int) (i0, cnt int) {
	i0 = gi * p.nb
	return i0, min(p.nb, p.n-i0)
}

// columns returns the column matrix of images [i0, i0+cnt) of x (rows ×
// cnt·OH·OW): the input itself for one image of a pointwise convolution,
// else im2col (or, pointwise, a gather) into s.col.
func (p *convPlan) columns(s *convScratch, x []float32, i0, cnt int) []float32 {
	cols := cnt * p.ohw
	xs := x[i0*p.inSize : (i0+cnt)*p.inSize]
	if p.pointwise {
		if cnt == 1 {
			return xs
		}
		b := grow(&s.col, p.c*cols)
		gatherImages(b, xs, p.c, p.ohw, cnt)
		return b
	}
	b := grow(&s.col, p.rows*cols)
	if p.wide {
		kernels.Im2col(&p.g, xs, b, p.pad) // cnt == 1
		return b
	}
	for j := 0; j < cnt; j++ {
		kernels.Im2colStrided(&p.g, xs[j*p.inSize:(j+1)*p.inSize], b[j*p.ohw:], cols, p.pad)
	}
	return b
}

// gatherImages copies cnt images of ch rows × size (consecutive in src)
// into dst as ch rows × cnt·size, image j at column j·size.
func gatherImages(dst, src []float32, ch, size, cnt int) {
	cols := cnt * size
	for j := 0; j < cnt; j++ {
		img := src[j*ch*size:]
		for r := 0; r < ch; r++ {
			copy(dst[r*cols+j*size:r*cols+(j+1)*size], img[r*size:(r+1)*size])
		}
	}
}

// scatterImages is the inverse of gatherImages.
func scatterImages(dst, src []float32, ch, size, cnt int) {
	cols := cnt * size
	for j := 0; j < cnt; j++ {
		img := dst[j*ch*size:]
		for r := 0; r < ch; r++ {
			copy(img[r*size:(r+1)*size], src[r*cols+j*size:r*cols+(j+1)*size])
		}
	}
}

// forward computes y = epi(conv(x)) with the per-group weights w (Mg × kg
// row-major each, packed in pa unless wide).
func (p *convPlan) forward(pa []kernels.PackedA, w, x, y []float32, epi *convEpilogue) {
	if p.shift {
		p.forwardShift(pa, x, y, epi)
		return
	}
	p.run(p.imageGroups(), func(s *convScratch, lo, hi int) {
		for gi := lo; gi < hi; gi++ {
			p.forwardGroup(s, pa, w, x, y, epi, gi)
		}
	})
}

// forwardGroup is forward (im2col or pointwise) of image group gi.
func (p *convPlan) forwardGroup(s *convScratch, pa []kernels.PackedA, w, x, y []float32, epi *convEpilogue, gi int) {
	i0, cnt := p.images(gi)
	cols := cnt * p.ohw
	b := p.columns(s, x, i0, cnt)
	out, ldc := y[i0*p.outSize:(i0+cnt)*p.outSize], p.ohw
	if cnt > 1 {
		out, ldc = grow(&s.out, p.m*cols), cols
	}
	for gr := 0; gr < p.groups; gr++ {
		p.groupProduct(pa, w, gr, false, b[gr*p.kg*cols:], cols, out[gr*p.mg*ldc:], ldc)
	}
	if p.emit(epi, y, out, i0, cnt, ldc, p.ohw, p.ohw, 1, p.ohw) {
		return
	}
	for m := 0; m < p.m; m++ {
		if cnt > 1 {
			epi.apply(m, out[m*cols:(m+1)*cols])
		} else {
			epi.apply(m, out[m*p.ohw:(m+1)*p.ohw])
		}
	}
	if cnt > 1 {
		scatterImages(y[i0*p.outSize:], out, p.m, p.ohw, cnt)
	}
	for j := i0; j < i0+cnt; j++ {
		epi.finish(y[j*p.outSize:(j+1)*p.outSize], j, p.ohw)
	}
}

// groupProduct sets c (row stride ldc) to op(W_g)·b for group gr, b having
// cols columns: op(W_g) is W_g (Mg × kg, row-major in w) or, with trans,
// its transpose; it comes packed from pa unless the plan is wide.
func (p *convPlan) groupProduct(pa []kernels.PackedA, w []float32, gr int, trans bool, b []float32, cols int, c []float32, ldc int) {
	if !p.wide {
		kernels.SgemmPacked(&pa[gr], false, cols, 1, b, cols, 0, c, ldc)
		return
	}
	m, k := p.mg, p.kg
	if trans {
		m, k = k, m
	}
	kernels.Sgemm(trans, false, m, cols, k, 1, w[gr*p.mg*p.kg:], p.kg, b, cols, 0, c, ldc)
}

// convEpilogue is what a convolution applies to each output row of channel
// m: the bias, then (fused BatchNorm at inference) a[m]·v + b[m], then (a
// fused residual Add) the residual, then a clamp (fused ReLU or Clip) —
// the same float32 operations, in the same order, as the separate ops.
type convEpilogue struct {
	bias   []float32
	a, b   []float32
	res    []float32 // residual, shaped like the output
	clamp  bool
	lo, hi float32
}

// apply does the per-channel part (bias, affine and, without residual,
// the clamp) on row (of output channel m) in place; the row may be in any
// layout.
func (e *convEpilogue) apply(m int, row []float32) {
	if e == nil {
		return
	}
	if e.bias != nil {
		bv := e.bias[m]
		for i := range row {
			row[i] += bv
		}
	}
	clamp := e.clamp && e.res == nil
	switch {
	case e.a != nil && clamp:
		kernels.AffineClamp(row, row, e.a[m], e.b[m], e.lo, e.hi)
	case e.a != nil:
		kernels.Affine(row, row, e.a[m], e.b[m])
	case clamp:
		kernels.Clamp(row, row, e.lo, e.hi)
	}
}

// coeffs returns channel m's affine coefficients and clamp bounds (the
// identity where the epilogue has none), for kernels.EpilogueRows.
func (e *convEpilogue) coeffs(m int) (a, b, lo, hi float32) {
	a, b = 1, 0
	if e.a != nil {
		a, b = e.a[m], e.b[m]
	}
	lo, hi = float32(math.Inf(-1)), float32(math.Inf(1))
	if e.clamp {
		lo, hi = e.lo, e.hi
	}
	return a, b, lo, hi
}

// finish adds the residual of image img to its output y (channels of
// size elements, in NCHW order) and clamps, when there is a residual.
func (e *convEpilogue) finish(y []float32, img, size int) {
	if e == nil || e.res == nil {
		return
	}
	r := e.res[img*len(y) : (img+1)*len(y)]
	kernels.Add(y, y, r)
	if e.clamp {
		kernels.Clamp(y, y, e.lo, e.hi)
	}
}

// gradOutput returns the output gradient of images [i0, i0+cnt) as m rows
// × cnt·OH·OW (gathered into s.dy for several images).
func (p *convPlan) gradOutput(s *convScratch, dy []float32, i0, cnt int) []float32 {
	src := dy[i0*p.outSize : (i0+cnt)*p.outSize]
	if cnt == 1 {
		return src
	}
	b := grow(&s.dy, p.m*cnt*p.ohw)
	gatherImages(b, src, p.m, p.ohw, cnt)
	return b
}

// gradWeight sets dw (groups × Mg × kg) to Σ over images of dY_g·col_gᵀ,
// with the columns read in place from the padded input in the implicit
// GEMM layout (dY spread onto its wp-wide rows, zero in the extra columns).
// then, when not nil (plans without shift only), is called with each image
// group (p.images) right after its contribution, on the same goroutine and
// scratch, so that work reading the same output gradient finds it in the
// cache.
func (p *convPlan) gradWeight(x, dy, dw []float32, then func(s *convScratch, gi int)) {
	if then != nil && p.shift {
		panic("ops: convPlan.gradWeight: per-group callback with an implicit-GEMM plan")
	}
	if !p.wide && (!p.shift || p.g.KH*p.g.KW <= 9) && kernels.HasWindowOuter(9, windowPanel(p.mg)) {
		p.gradWeightOuter(x, dy, dw, then)
		return
	}
	groups := p.imageGroups()
	if p.shift {
		groups = p.shiftGroups()
	}
	parts := min(groups, convPartsMax)
	wsize := len(dw)
	pp := convPartials.Get()
	partial := grow(pp, parts*wsize)
	p.run(parts, func(s *convScratch, lo, hi int) {
		for part := lo; part < hi; part++ {
			acc := partial[part*wsize : (part+1)*wsize]
			clear(acc)
			for gi := part * groups / parts; gi < (part+1)*groups/parts; gi++ {
				if p.shift {
					p.gradWeightShift(s, x, dy, gi, acc)
					continue
				}
				i0, cnt := p.images(gi)
				cols := cnt * p.ohw
				a := p.gradOutput(s, dy, i0, cnt)
				b := p.columns(s, x, i0, cnt)
				for gr := 0; gr < p.groups; gr++ {
					ag, bg, cg := a[gr*p.mg*cols:], b[gr*p.kg*cols:], acc[gr*p.mg*p.kg:]
					if p.wide {
						kernels.Sgemm(false, true, p.mg, p.kg, cols, 1, ag, cols, bg, cols, 1, cg, p.kg)
					} else {
						kernels.SgemmSerial(false, true, p.mg, p.kg, cols, 1, ag, cols, bg, cols, 1, cg, p.kg)
					}
				}
				if then != nil {
					then(s, gi)
				}
			}
		}
	})
	sumParts(partial, dw, parts, wsize)
	convPartials.Put(pp)
}

// gradWeightShift adds the weight gradient of image group gi to acc by
// the implicit GEMM: dY spread onto the padded grids (zero elsewhere)
// times the shifted windows of the padded input.
func (p *convPlan) gradWeightShift(s *convScratch, x, dy []float32, gi int, acc []float32) {
	i0, cnt := p.shiftImages(gi)
	cols := p.shiftCols(cnt)
	xp := p.padded(s, x, i0, cnt)
	dyp := p.spreadGrad(&s.dy, dy, i0, cnt, cols)
	for gr := 0; gr < p.groups; gr++ {
		kernels.SgemmRowsT(p.mg, p.kg, cols, 1, dyp[gr*p.mg*cols:], cols, xp, p.offs32[gr*p.kg:(gr+1)*p.kg], 1, acc[gr*p.mg*p.kg:], p.kg)
	}
}

// gradInputCol2im sets dx to the input gradient by dcol = W_gᵀ·dY_g
// (packed in pt unless wide) and col2im; used where the gradient is not
// itself a stride-1 convolution.
func (p *convPlan) gradInputCol2im(pt []kernels.PackedA, w, dy, dx []float32) {
	p.run(p.imageGroups(), func(s *convScratch, lo, hi int) {
		for gi := lo; gi < hi; gi++ {
			i0, cnt := p.images(gi)
			cols := cnt * p.ohw
			a := p.gradOutput(s, dy, i0, cnt)
			dcol := grow(&s.col, p.rows*cols)
			for gr := 0; gr < p.groups; gr++ {
				p.groupProduct(pt, w, gr, true, a[gr*p.mg*cols:], cols, dcol[gr*p.kg*cols:], cols)
			}
			for j := 0; j < cnt; j++ {
				dxn := dx[(i0+j)*p.inSize : (i0+j+1)*p.inSize]
				clear(dxn)
				if p.wide {
					kernels.Col2im(&p.g, dcol, dxn)
				} else {
					kernels.Col2imStrided(&p.g, dcol[j*p.ohw:], dxn, cols)
				}
			}
		}
	})
}

// plan returns the im2col-GEMM plan of a (non-depthwise) convolution.
func (op Conv) plan(d *convDims) *convPlan {
	return newConvPlan(d.geom, d.N, d.C, d.M, d.G, d.pointwise, op.PadValue)
}

// transposedPlan returns, for a convolution with unit strides, the plan of
// the stride-1 convolution of dY with the flipped, transposed weights that
// computes dX (padded positions of dY are zero), or nil when the padding
// makes that impossible.
func (op Conv) transposedPlan(d *convDims) *convPlan {
	g := d.geom
	if g.SH != 1 || g.SW != 1 {
		return nil
	}
	ekh, ekw := (g.KH-1)*g.DH+1, (g.KW-1)*g.DW+1
	t := kernels.ConvGeom{C: d.M, H: g.OH, W: g.OW, KH: g.KH, KW: g.KW, SH: 1, SW: 1,
		PadT: ekh - 1 - g.PadT, PadL: ekw - 1 - g.PadL, PadB: ekh - 1 - g.PadB, PadR: ekw - 1 - g.PadR, DH: g.DH, DW: g.DW}
	if t.PadT < 0 || t.PadL < 0 || t.PadB < 0 || t.PadR < 0 || !t.Init() || t.OH != d.H || t.OW != d.W {
		return nil
	}
	pointwise := g.KH == 1 && g.KW == 1 && t.PadT == 0 && t.PadL == 0 && t.PadB == 0 && t.PadR == 0
	return newConvPlan(t, d.N, d.M, d.C, d.G, pointwise, 0)
}

// flipWeights writes the weights of the transposed convolution: for group
// gr, wt[gr][c][m][ky][kx] = w[gr·Mg+m][c][KH−1−ky][KW−1−kx], i.e. C
// output channels over Mg·KH·KW taps each.
func flipWeights(d *convDims, w, wt []float32) {
	kk := d.KH * d.KW
	for gr := 0; gr < d.G; gr++ {
		for c := 0; c < d.Cg; c++ {
			dst := wt[(gr*d.Cg+c)*d.Mg*kk:]
			for m := 0; m < d.Mg; m++ {
				src := w[((gr*d.Mg+m)*d.Cg+c)*kk:]
				for t := 0; t < kk; t++ {
					dst[m*kk+t] = src[kk-1-t]
				}
			}
		}
	}
}

// packGroups packs each group's Mg×kg block of w (or its transpose) into
// pa unless the plan is wide.
func packGroups(p *convPlan, pa []kernels.PackedA, transA bool, rows, depth int, w []float32) {
	if p.wide {
		return
	}
	for gr := range pa {
		blk := w[gr*rows*depth : (gr+1)*rows*depth]
		if transA {
			pa[gr].Pack(true, rows, depth, blk, rows)
		} else {
			pa[gr].Pack(false, rows, depth, blk, depth)
		}
	}
}

// Forward computes Y = conv(X, W) + B: a GEMM with the weights packed once
// per call, images spread over the workers; stride-1 layers with wide
// enough rows read their padded input in place (implicit GEMM), the others
// go through im2col (several small images side by side in one product).
// Depthwise convolutions use direct kernels instead.
func (op Conv) Forward(c *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	d, b, err := op.convInputs(in)
	if err != nil {
		return nil, err
	}
	var epi *convEpilogue
	if b != nil {
		epi = &convEpilogue{bias: b.Data}
	}
	return op.forward(c, &d, in, epi), nil
}

// forward runs the checked convolution with an epilogue (nil for none).
func (op Conv) forward(c *graph.Context, d *convDims, in []*tensor.Tensor, epi *convEpilogue) []*tensor.Tensor {
	y := c.Buffer(convSlotY, d.N, d.M, d.geom.OH, d.geom.OW)
	var st *convState
	if !d.depthwise {
		st = convStateOf(c, d.G)
	}
	op.forwardData(st, d, in[0].Data, in[1].Data, y.Data, epi)
	return []*tensor.Tensor{y}
}

// forwardData sets y = epi(conv(x, w)) for the checked geometry d, packing
// the weights into st (unused by depthwise convolutions, which take the
// masked kernels of depthwiseMasked where they apply and otherwise the
// padded-copy kernel).
func (op Conv) forwardData(st *convState, d *convDims, x, w, y []float32, epi *convEpilogue) {
	g := d.geom
	ohw := g.OH * g.OW
	if !d.depthwise {
		p := op.plan(d)
		packGroups(p, st.fwd, false, d.Mg, p.kg, w)
		p.forward(st.fwd, w, x, y, epi)
		return
	}
	if op.depthwiseMasked(d, x, w, y, epi) {
		return
	}
	forEachWorker(convWorkers(d.N), d.N, func(_, lo, hi int) {
		for n := lo; n < hi; n++ {
			yn := y[n*d.M*ohw : (n+1)*d.M*ohw]
			kernels.DepthwiseConv(&g, x[n*d.C*d.H*d.W:(n+1)*d.C*d.H*d.W], w, yn, op.PadValue)
			for m := 0; m < d.M; m++ {
				epi.apply(m, yn[m*ohw:(m+1)*ohw])
			}
			epi.finish(yn, n, ohw)
		}
	})
}

// Backward computes the gradients with respect to X (skipped when
// !c.Need(0)), W and B. The weight gradient is one GEMM per group of
// images; the input gradient of a stride-1 convolution is itself a
// stride-1 convolution of dY with the flipped weights (so it runs on the
// forward path), otherwise a GEMM and col2im. Padded positions are
// constants: PadValue gets no gradient.
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
	x, w := in[0].Data, in[1].Data
	if d.depthwise {
		op.depthwiseBackward(c, &d, in, dy.Data, needX, needW, grads)
		return grads, nil
	}
	var dx *tensor.Tensor
	if needX {
		dx = c.Buffer(convSlotDX, in[0].Shape...)
		grads[0] = dx
	}
	if needW {
		dw := c.Buffer(convSlotDW, in[1].Shape...)
		p := op.plan(&d)
		// A pointwise layer's input gradient is a product of the output
		// gradient too: computed image group by image group right after the
		// weight gradient's, it reads that gradient from the cache.
		var then func(s *convScratch, gi int)
		if needX && d.pointwise {
			if tp := op.transposedPlan(&d); tp != nil && tp.pointwise && tp.nb == p.nb && tp.wide == p.wide {
				pt := op.packTransposed(c, &d, tp, w)
				wt := c.Buffer(convSlotWT, len(w)).Data
				then = func(s *convScratch, gi int) {
					tp.forwardGroup(s, pt, wt, dy.Data, dx.Data, nil, gi)
				}
				needX = false // done by then
			}
		}
		p.gradWeight(x, dy.Data, dw.Data, then)
		grads[1] = dw
	}
	if needX {
		st := convStateOf(c, d.G)
		if tp := op.transposedPlan(&d); tp != nil {
			tp.forward(op.packTransposed(c, &d, tp, w), c.Buffer(convSlotWT, len(w)).Data, dy.Data, dx.Data, nil)
		} else {
			p := op.plan(&d)
			packGroups(p, st.bwd, true, p.kg, d.Mg, w)
			p.gradInputCol2im(st.bwd, w, dy.Data, dx.Data)
		}
	}
	return grads, nil
}

// packTransposed writes the flipped, transposed weights of the input
// gradient's convolution tp into the context (slot convSlotWT) and packs
// them; it returns the packed groups.
func (op Conv) packTransposed(c *graph.Context, d *convDims, tp *convPlan, w []float32) []kernels.PackedA {
	st := convStateOf(c, d.G)
	wt := c.Buffer(convSlotWT, len(w)).Data
	flipWeights(d, w, wt)
	packGroups(tp, st.bwd, false, d.Cg, tp.kg, wt)
	return st.bwd
}

// depthwiseBackward computes the input and weight gradients of a depthwise
// convolution with the direct kernels, images split over the workers.
func (op Conv) depthwiseBackward(c *graph.Context, d *convDims, in []*tensor.Tensor, dy []float32, needX, needW bool, grads []*tensor.Tensor) {
	g := d.geom
	if g.SH == 1 && g.SW == 1 && g.OH == g.H && g.OW == g.W && op.PadValue == 0 {
		depthwiseSameBackward(c, d, in, dy, needX, needW, grads)
		return
	}
	if op.depthwiseStride2Backward(c, d, in, dy, needX, needW, grads) {
		return
	}
	ohw := g.OH * g.OW
	x, w := in[0].Data, in[1].Data
	imgSize := d.C * d.H * d.W
	nw := convWorkers(d.N)
	wsize := in[1].Len()
	var dx, dw *tensor.Tensor
	var dwAux []float32
	if needX {
		dx = c.Buffer(convSlotDX, in[0].Shape...)
	}
	if needW {
		dw = c.Buffer(convSlotDW, in[1].Shape...)
		if nw > 1 {
			dwAux = c.Buffer(convSlotDWAux, (nw-1)*wsize).Data
		}
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
		for n := lo; n < hi; n++ {
			dyn := dy[n*d.M*ohw : (n+1)*d.M*ohw]
			if needW {
				kernels.DepthwiseConvGradWeight(&g, x[n*imgSize:(n+1)*imgSize], dyn, dwk, op.PadValue)
			}
			if needX {
				kernels.DepthwiseConvGradInput(&g, dyn, w, dx.Data[n*imgSize:(n+1)*imgSize])
			}
		}
	})
	if needX {
		grads[0] = dx
	}
	if needW {
		for k := 0; k < nw-1; k++ {
			kernels.Add(dw.Data, dw.Data, dwAux[k*wsize:(k+1)*wsize])
		}
		grads[1] = dw
	}
}

// depthwiseSameBackward is depthwiseBackward for same-size stride-1
// layers with zero padding: the weight gradient with channels spread over
// the workers (each sums its channels over all images, so there are no
// partial sums to add), the input gradient with images spread over them,
// both in one parallel region.
func depthwiseSameBackward(c *graph.Context, d *convDims, in []*tensor.Tensor, dy []float32, needX, needW bool, grads []*tensor.Tensor) {
	g := d.geom
	hw, taps := g.H*g.W, g.KH*g.KW
	ps := d.C * hw
	x, w := in[0].Data, in[1].Data
	dw, dx := dwGradBuffers(c, in, needW, needX, grads)
	gradBothParallel(d, needW, needX, func(lo, hi int) {
		gl := g
		gl.C = hi - lo
		kernels.DepthwiseSameGradWeight(&gl, d.N, x[lo*hw:], dy[lo*hw:], ps, dw[lo*taps:])
	}, func(lo, hi int) {
		kernels.DepthwiseSameGradInput(&g, hi-lo, dy[lo*ps:], ps, w, dx[lo*ps:])
	})
}

// dwGradBuffers returns the context's weight-gradient buffer (cleared)
// when needW and input-gradient buffer when needX, nil otherwise, and
// sets them as grads[1] and grads[0].
func dwGradBuffers(c *graph.Context, in []*tensor.Tensor, needW, needX bool, grads []*tensor.Tensor) (dw, dx []float32) {
	if needW {
		t := c.Buffer(convSlotDW, in[1].Shape...)
		dw = t.Data
		clear(dw)
		grads[1] = t
	}
	if needX {
		t := c.Buffer(convSlotDX, in[0].Shape...)
		dx = t.Data
		grads[0] = t
	}
	return dw, dx
}

// gradBothParallel runs, in one parallel region, weight(lo, hi) over
// chunks of the channels (when needW) and input(lo, hi) over chunks of the
// images (when needX) of a depthwise backward.
func gradBothParallel(d *convDims, needW, needX bool, weight, input func(lo, hi int)) {
	var wn, xn int // channel and image units
	if needW {
		wn = d.C
	}
	if needX {
		xn = d.N
	}
	if wn+xn == 0 {
		return
	}
	units := wn // the smaller nonzero side sets the chunk size
	if units == 0 || xn > 0 && xn < units {
		units = xn
	}
	grain := max(1, units/(4*runtime.GOMAXPROCS(0)))
	kernels.ParallelChunks(wn+xn, grain, func(lo, hi int) {
		if lo < wn {
			weight(lo, min(hi, wn))
		}
		if hi > wn {
			input(max(lo, wn)-wn, hi-wn)
		}
	})
}

// BackwardReadsInput is true for X and W (B's gradient needs only dY).
func (Conv) BackwardReadsInput(i int) bool { return i <= 1 }

// BackwardReadsOutput is false.
func (Conv) BackwardReadsOutput(int) bool { return false }
