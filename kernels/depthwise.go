package kernels

import (
	"fmt"
	"math"
)

// Depthwise convolution of one image: channel c of x is convolved with its
// own KH×KW filter w[c] into channel c of y. g.C is the channel count; the
// stride, pad and dilation fields of g apply as for Im2col. Work is spread
// over channels with Parallel when it is large enough.
//
// Every channel is first copied into a scratch image that already holds
// the padding, with each row split into SW phases (columns c ≡ p mod SW
// stored contiguously). Every tap then reads a contiguous run of scratch
// at a fixed offset from the output row's base, for any kernel size,
// stride and dilation, and one row kernel (impl.dwRows: output row =
// Σ_taps w·run) or dot kernel (impl.dwDot: per-tap Σ dy·run) does the
// arithmetic. The input gradient is the same row kernel run, with flipped
// taps, over dy spread onto a zero image at stride SH×SW.

// dwGrain is the number of output values below which one goroutine does
// all channels.
const dwGrain = 1 << 14

// DepthwiseConv overwrites y [C,OH,OW] with the depthwise convolution of
// x [C,H,W] by w [C,KH,KW]. Positions outside the image read padValue.
func DepthwiseConv(g *ConvGeom, x, w, y []float32, padValue float32) {
	if g.empty() {
		return
	}
	khw, ohw := g.KH*g.KW, g.OH*g.OW
	_ = w[g.C*khw-1]
	_ = y[g.C*ohw-1]
	overPaddedX(g, x, padValue, func(im *impl, c int, buf []float32, offs []int, rowStep int) {
		im.dwRows(y[c*ohw:(c+1)*ohw], buf, offs, w[c*khw:(c+1)*khw], g.OW, g.OH, rowStep, g.OW)
	})
}

// DWEpilogue is the per-channel epilogue a depthwise kernel applies to
// each output before storing it: v = acc + Bias[c], then
// min(max(A[c]·v + B[c], Lo), Hi) — the rounding of a bias add followed by
// AffineClamp. Nil Bias means none, nil A and B mean A = 1, B = 0; Lo
// and Hi are ±Inf for no clamp.
type DWEpilogue struct {
	A, B, Bias []float32
	Lo, Hi     float32
}

// DepthwiseSame computes a stride-1 depthwise convolution whose output
// has the input's size (OH = H, OW = W: "same" padding, any kernel size,
// pads and dilation), with the padding read as zero, followed by ep (nil
// for none), on the calling goroutine. Channel c holds planes images, H×W
// each, one after another: input plane j at x[c·xcs + j·H·W], output
// plane j at y[c·ycs + j·H·W]. Taps that fall outside the image are
// skipped instead of read from a padded copy: each run of 16 outputs
// reads every tap's 16 inputs at a fixed offset of the flattened plane,
// with a lane mask that drops those outside it.
func DepthwiseSame(g *ConvGeom, planes int, x []float32, xcs int, w, y []float32, ycs int, ep *DWEpilogue) {
	if g.empty() || planes <= 0 {
		return
	}
	if g.SH != 1 || g.SW != 1 || g.OH != g.H || g.OW != g.W {
		panic(fmt.Sprintf("kernels: DepthwiseSame: stride %dx%d, output %dx%d for input %dx%d: want stride 1 and the input's size", g.SH, g.SW, g.OH, g.OW, g.H, g.W))
	}
	dwStrided(g, 1, planes, x, xcs, g.H*g.W, w, y, ycs, ep)
}

// coeffs returns channel c's epilogue coefficients.
func (e *DWEpilogue) coeffs(c int) (a, b, bias float32) {
	a = 1
	if e.A != nil {
		a, b = e.A[c], e.B[c]
	}
	if e.Bias != nil {
		bias = e.Bias[c]
	}
	return a, b, bias
}

// dwSameTable sets sc.sameOffs to the tap offsets and sc.masks to the
// lane masks of the runs of 16 outputs of DepthwiseSame (stride 1) or
// DepthwiseStride2 (stride 2): output p of a plane reads tap t at input
// p + offs[t] (in the flattened plane, or in the stride-2 parity plane);
// masks[t·period + m] for tap t < taps and run m < period, the row t =
// taps holding the store masks. Runs go over planes·chunks consecutive
// runs when sweep (stride 1, plane size a multiple of 16: period a
// multiple of 4, mask row m for run m mod period), else plane by plane
// (period = chunks). It returns the runs per plane and the period.
func (sc *dwScratch) dwSameTable(g *ConvGeom, stride int) (chunks, period int, sweep bool) {
	ohw, taps := g.OH*g.OW, g.KH*g.KW
	chunks = (ohw + 15) / 16
	period = chunks
	sweep = stride == 1 && ohw%16 == 0
	if sweep {
		for period%4 != 0 {
			period += chunks
		}
	}
	key := [11]int{g.H, g.W, g.KH, g.KW, g.PadT, g.PadL, g.DH, g.DW, period, stride, g.OW}
	if sc.sameKey == key && len(sc.masks) == (taps+1)*period {
		return chunks, period, sweep
	}
	sc.sameKey = key
	sc.sameOffs = sc.sameOffs[:0]
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			if stride == 1 {
				sc.sameOffs = append(sc.sameOffs, (ky*g.DH-g.PadT)*g.W+kx*g.DW-g.PadL)
				continue
			}
			sc.sameOffs = append(sc.sameOffs, parityOffset(g, ky, kx))
		}
	}
	if cap(sc.masks) < (taps+1)*period {
		sc.masks = make([]uint16, (taps+1)*period)
	}
	sc.masks = sc.masks[:(taps+1)*period]
	clear(sc.masks)
	for m := 0; m < period; m++ {
		q := m % chunks
		for i := 0; i < 16; i++ {
			p := q*16 + i
			if p >= ohw {
				break
			}
			oy, ox := p/g.OW, p%g.OW
			sc.masks[taps*period+m] |= 1 << i
			for ky := 0; ky < g.KH; ky++ {
				iy := oy*stride - g.PadT + ky*g.DH
				for kx := 0; kx < g.KW; kx++ {
					ix := ox*stride - g.PadL + kx*g.DW
					if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
						sc.masks[(ky*g.KW+kx)*period+m] |= 1 << i
					}
				}
			}
		}
	}
	return chunks, period, sweep
}

// parityOffset is the offset of tap (ky, kx) of a stride-2 depthwise
// convolution (output ⌈H/2⌉×⌈W/2⌉, no dilation) in the parity layout of
// its input: input row 2·oy + ry is row oy + (ry>>1) of the sub-planes of
// row parity ry&1 (likewise columns), sub-planes OH·OW apart.
func parityOffset(g *ConvGeom, ky, kx int) int {
	ry, rx := ky-g.PadT, kx-g.PadL
	return (2*(ry&1)+(rx&1))*g.OH*g.OW + (ry>>1)*g.OW + (rx >> 1)
}

// checkStride2 panics unless g is the geometry of DepthwiseStride2.
func checkStride2(what string, g *ConvGeom) {
	if g.SH != 2 || g.SW != 2 || g.DH != 1 || g.DW != 1 || g.OH != (g.H+1)/2 || g.OW != (g.W+1)/2 {
		panic(fmt.Sprintf("kernels: %s: stride %dx%d, dilation %dx%d, output %dx%d for input %dx%d: want stride 2, no dilation and output ⌈H/2⌉×⌈W/2⌉",
			what, g.SH, g.SW, g.DH, g.DW, g.OH, g.OW, g.H, g.W))
	}
}

// DepthwiseStride2 is DepthwiseSame for stride 2 (output ⌈H/2⌉×⌈W/2⌉,
// no dilation) on input planes in the parity layout of WinogradSplit
// with tile size 2: input plane j of channel c at x[c·xcs +
// j·WinogradPlane(H, W, 2)], output plane j at y[c·ycs + j·OH·OW]. Every
// tap then reads, for a run of 16 outputs, 16 consecutive inputs of one
// sub-plane.
func DepthwiseStride2(g *ConvGeom, planes int, x []float32, xcs int, w, y []float32, ycs int, ep *DWEpilogue) {
	if g.empty() || planes <= 0 {
		return
	}
	checkStride2("DepthwiseStride2", g)
	dwStrided(g, 2, planes, x, xcs, WinogradPlane(g.H, g.W, 2), w, y, ycs, ep)
}

// dwStrided runs DepthwiseSame (stride 1, input planes xps apart) or
// DepthwiseStride2 (stride 2).
func dwStrided(g *ConvGeom, stride, planes int, x []float32, xcs, xps int, w, y []float32, ycs int, ep *DWEpilogue) {
	ohw, taps := g.OH*g.OW, g.KH*g.KW
	_ = x[(g.C-1)*xcs+planes*xps-1]
	_ = y[(g.C-1)*ycs+planes*ohw-1]
	_ = w[g.C*taps-1]
	e := DWEpilogue{Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
	if ep != nil {
		e = *ep
		if e.A != nil || e.B != nil {
			_, _ = e.A[g.C-1], e.B[g.C-1]
		}
		if e.Bias != nil {
			_ = e.Bias[g.C-1]
		}
	}
	im := current.Load()
	sc := dwScratches.Get()
	defer dwScratches.Put(sc)
	chunks, period, sweep := sc.dwSameTable(g, stride)
	if dwSameArch(im, sc, g, chunks, period, sweep, planes, x, xcs, xps, w, y, ycs, &e) {
		return
	}
	for c := 0; c < g.C; c++ {
		a, b, bias := e.coeffs(c)
		wc := w[c*taps : (c+1)*taps]
		for j := 0; j < planes; j++ {
			xp := x[c*xcs+j*xps : c*xcs+(j+1)*xps]
			yp := y[c*ycs+j*ohw : c*ycs+(j+1)*ohw]
			for p := range yp {
				q, l := p/16, uint(p%16)
				var acc float32
				for t, o := range sc.sameOffs {
					if sc.masks[t*period+q]&(1<<l) != 0 {
						acc += wc[t] * xp[p+o]
					}
				}
				v := acc + bias
				yp[p] = min(max(a*v+b, e.Lo), e.Hi)
			}
		}
	}
}

// DepthwiseConvChannels is DepthwiseConv on the calling goroutine for
// channel planes ycs and xcs apart: channel c of x (H×W) at x[c·xcs],
// channel c of y (OH×OW) at y[c·ycs].
func DepthwiseConvChannels(g *ConvGeom, x []float32, xcs int, w, y []float32, ycs int, padValue float32) {
	if g.empty() {
		return
	}
	hw, khw, ohw := g.H*g.W, g.KH*g.KW, g.OH*g.OW
	_ = x[(g.C-1)*xcs+hw-1]
	_ = w[g.C*khw-1]
	_ = y[(g.C-1)*ycs+ohw-1]
	im := current.Load()
	sc := dwScratches.Get()
	defer dwScratches.Put(sc)
	lay := sc.layoutX(g)
	lay.fillPad(sc.buf, g, padValue)
	for c := 0; c < g.C; c++ {
		lay.fill(im, sc.buf, x[c*xcs:c*xcs+hw], g)
		im.dwRows(y[c*ycs:c*ycs+ohw], sc.buf, sc.offs, w[c*khw:(c+1)*khw], g.OW, g.OH, lay.rowStep, g.OW)
	}
}

// DepthwiseConvGradInput overwrites dx [C,H,W] with the gradient of the
// depthwise convolution with respect to its input, given dy [C,OH,OW] and
// the filters w [C,KH,KW].
func DepthwiseConvGradInput(g *ConvGeom, dy, w, dx []float32) {
	if g.empty() {
		return
	}
	hw, khw, ohw := g.H*g.W, g.KH*g.KW, g.OH*g.OW
	_ = dx[g.C*hw-1]
	_ = w[g.C*khw-1]
	_ = dy[g.C*ohw-1]
	im := current.Load()
	parallelChannels(g.C, ohw*khw, dwGrain, func(lo, hi int) {
		sc := dwScratches.Get()
		defer dwScratches.Put(sc)
		wp := sc.layoutDY(g)
		for c := lo; c < hi; c++ {
			spreadDY(im, sc.buf, dy[c*ohw:(c+1)*ohw], g, wp)
			im.dwRows(dx[c*hw:(c+1)*hw], sc.buf, sc.offs, w[c*khw:(c+1)*khw], g.W, g.H, wp, g.W)
		}
	})
}

// DepthwiseConvGradWeight adds to dw [C,KH,KW] the gradient of the
// depthwise convolution with respect to its filters, given the input
// x [C,H,W] (padded with padValue) and dy [C,OH,OW]. It accumulates, so
// callers clear dw first when they want the gradient alone.
func DepthwiseConvGradWeight(g *ConvGeom, x, dy, dw []float32, padValue float32) {
	if g.empty() {
		return
	}
	khw, ohw := g.KH*g.KW, g.OH*g.OW
	_ = dw[g.C*khw-1]
	_ = dy[g.C*ohw-1]
	overPaddedX(g, x, padValue, func(im *impl, c int, buf []float32, offs []int, rowStep int) {
		im.dwDot(buf, dy[c*ohw:(c+1)*ohw], offs, g.OW, g.OH, rowStep, g.OW, dw[c*khw:(c+1)*khw])
	})
}

// overPaddedX calls fn for every channel c of x with the padded,
// phase-split copy of that channel in buf, the tap offsets and the scratch
// distance between output rows, spreading channels over the pool.
func overPaddedX(g *ConvGeom, x []float32, pad float32, fn func(im *impl, c int, buf []float32, offs []int, rowStep int)) {
	hw := g.H * g.W
	_ = x[g.C*hw-1]
	im := current.Load()
	parallelChannels(g.C, g.OH*g.OW*g.KH*g.KW, dwGrain, func(lo, hi int) {
		sc := dwScratches.Get()
		defer dwScratches.Put(sc)
		lay := sc.layoutX(g)
		lay.fillPad(sc.buf, g, pad)
		for c := lo; c < hi; c++ {
			lay.fill(im, sc.buf, x[c*hw:(c+1)*hw], g)
			fn(im, c, sc.buf, sc.offs, lay.rowStep)
		}
	})
}

// parallelChannels runs fn over channel ranges, in parallel when the work
// (channels × perChannel) reaches minWork.
func parallelChannels(channels, perChannel, minWork int, fn func(lo, hi int)) {
	if channels*perChannel < minWork || channels < 2 {
		fn(0, channels)
		return
	}
	grain := max(1, minWork/max(perChannel, 1))
	Parallel(channels, grain, fn)
}

// validRange returns the output index range [lo, hi) of one axis for which
// the input index o*stride - pad + off lies inside [0, size).
func validRange(out, stride, pad, off, size int) (lo, hi int) {
	// o*stride >= pad-off  and  o*stride <= size-1+pad-off
	lo = ceilDiv(pad-off, stride)
	hi = floorDiv(size-1+pad-off, stride) + 1
	lo = max(lo, 0)
	hi = min(hi, out)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

func ceilDiv(a, b int) int {
	if a >= 0 {
		return (a + b - 1) / b
	}
	return -((-a) / b)
}

func floorDiv(a, b int) int {
	if a >= 0 {
		return a / b
	}
	return -((-a + b - 1) / b)
}

// dwScratch is one goroutine's padded channel image and tap offsets.
type dwScratch struct {
	buf  []float32
	offs []int
	span []int
	// DepthwiseSame's mask table and the geometry it was built for.
	masks    []uint16
	sameOffs []int
	sameKey  [11]int
}

var dwScratches FreeList[dwScratch]

func (sc *dwScratch) grow(size, taps int) {
	growFloats(&sc.buf, size)
	if cap(sc.offs) < taps {
		sc.offs = make([]int, taps)
	}
	sc.offs = sc.offs[:taps]
}

// xLayout describes the padded, phase-split copy of one input channel:
// padded row r, column q = p + sw·j is stored at (r·sw + p)·wph + j.
type xLayout struct {
	rows, cols int // padded rows and columns the taps read
	sw, wph    int // phases and phase-row length
	rowStep    int // scratch distance between consecutive output rows
	// Input columns [ixlo, ixhi) land on padded columns from q0 on; span
	// holds, per phase, the range of phase columns they fill.
	ixlo, ixhi, q0 int
	span           []int
}

// layoutX sizes the scratch for g's input and sets the tap offsets.
func (sc *dwScratch) layoutX(g *ConvGeom) xLayout {
	l := xLayout{
		rows: (g.OH-1)*g.SH + (g.KH-1)*g.DH + 1,
		cols: (g.OW-1)*g.SW + (g.KW-1)*g.DW + 1,
		sw:   g.SW,
	}
	l.wph = (l.cols + l.sw - 1) / l.sw
	l.rowStep = g.SH * l.sw * l.wph
	l.ixlo = max(0, -g.PadL)
	l.ixhi = min(g.W, l.cols-g.PadL)
	l.q0 = l.ixlo + g.PadL
	sc.grow(l.rows*l.sw*l.wph, g.KH*g.KW)
	if cap(sc.span) < 2*l.sw {
		sc.span = make([]int, 2*l.sw)
	}
	l.span = sc.span[:2*l.sw]
	for p := 0; p < l.sw; p++ {
		l.span[2*p] = max(0, ceilDiv(l.q0-p, l.sw))
		l.span[2*p+1] = max(l.span[2*p], ceilDiv(l.q0+l.ixhi-l.ixlo-p, l.sw))
	}
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			q := kx * g.DW
			sc.offs[ky*g.KW+kx] = (ky*g.DH*l.sw+q%l.sw)*l.wph + q/l.sw
		}
	}
	return l
}

// fillPad sets the padding part of buf to pad.
func (l xLayout) fillPad(buf []float32, g *ConvGeom, pad float32) {
	for r := 0; r < l.rows; r++ {
		row := buf[r*l.sw*l.wph : (r+1)*l.sw*l.wph]
		iy := r - g.PadT
		if iy < 0 || iy >= g.H || l.ixlo >= l.ixhi {
			fill(row, pad)
			continue
		}
		// Phase p holds data in [span[2p], span[2p+1]) and pad elsewhere.
		for p := 0; p < l.sw; p++ {
			ph := row[p*l.wph : (p+1)*l.wph]
			fill(ph[:l.span[2*p]], pad)
			fill(ph[l.span[2*p+1]:], pad)
		}
	}
}

// fill copies channel x (H×W) into the data part of buf, whose padding
// fillPad has set.
func (l xLayout) fill(im *impl, buf, x []float32, g *ConvGeom) {
	if l.ixlo >= l.ixhi {
		return
	}
	r0 := max(0, g.PadT)
	r1 := min(l.rows, g.H+g.PadT)
	stride := l.sw * l.wph
	if l.sw == 1 && r1 > r0 {
		// One call for the whole channel: per-row copies of a few dozen
		// floats cost more in call overhead than in moving data.
		iy0 := r0 - g.PadT
		im.copyRows(buf[r0*stride+l.q0:], x[iy0*g.W+l.ixlo:], l.ixhi-l.ixlo, r1-r0, stride, g.W)
		return
	}
	for r := r0; r < r1; r++ {
		row := buf[r*stride : (r+1)*stride]
		iy := r - g.PadT
		src := x[iy*g.W+l.ixlo : iy*g.W+l.ixhi]
		switch {
		case l.sw == 1:
			copy(row[l.q0:], src)
		case l.sw == 2 && l.q0%2 == 0:
			// src[0] lands in phase q0%2 at column q0/2.
			im.deint2(row[l.q0/2:], row[l.wph+l.q0/2:], src)
		case l.sw == 2:
			im.deint2(row[l.wph+l.q0/2:], row[l.q0/2+1:], src)
		default:
			for p := 0; p < l.sw; p++ {
				ph := row[p*l.wph : (p+1)*l.wph]
				jlo := l.span[2*p]
				gather(ph[jlo:l.span[2*p+1]], src[jlo*l.sw+p-l.q0:], l.sw)
			}
		}
	}
}

// deint2Generic sets even[i] = src[2i] and odd[i] = src[2i+1].
func deint2Generic(even, odd, src []float32) {
	even = even[:(len(src)+1)/2]
	odd = odd[:len(src)/2]
	for i := range odd {
		even[i] = src[2*i]
		odd[i] = src[2*i+1]
	}
	if len(src)%2 == 1 {
		even[len(even)-1] = src[len(src)-1]
	}
}

// layoutDY sizes the scratch for the spread gradient image (H+(KH-1)·DH
// rows of W+(KW-1)·DW) and sets flipped tap offsets; it returns the row
// length.
func (sc *dwScratch) layoutDY(g *ConvGeom) int {
	hp := g.H + (g.KH-1)*g.DH
	wp := g.W + (g.KW-1)*g.DW
	sc.grow(hp*wp, g.KH*g.KW)
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			sc.offs[ky*g.KW+kx] = (g.KH-1-ky)*g.DH*wp + (g.KW-1-kx)*g.DW
		}
	}
	return wp
}

// spreadDY writes dy (OH×OW) into the zeroed scratch at row
// oy·SH + (KH-1)·DH - PadT and column ox·SW + (KW-1)·DW - PadL, dropping
// positions that fall outside it.
func spreadDY(im *impl, buf, dy []float32, g *ConvGeom, wp int) {
	clear(buf)
	hp := len(buf) / wp
	r0 := (g.KH-1)*g.DH - g.PadT
	c0 := (g.KW-1)*g.DW - g.PadL
	oxlo := max(0, ceilDiv(-c0, g.SW))
	oxhi := min(g.OW, floorDiv(wp-1-c0, g.SW)+1)
	if oxlo >= oxhi {
		return
	}
	for oy := 0; oy < g.OH; oy++ {
		r := oy*g.SH + r0
		if r < 0 || r >= hp {
			continue
		}
		src := dy[oy*g.OW+oxlo : oy*g.OW+oxhi]
		dst := buf[r*wp+oxlo*g.SW+c0:]
		if g.SW == 1 {
			copy(dst, src)
			continue
		}
		im.spread(dst, src, g.SW)
	}
}

// dwRowsGeneric sets dst[r·dstStep+i] = Σ_t w[t]·src[r·srcStep+offs[t]+i]
// for i < n and r < rows.
func dwRowsGeneric(dst, src []float32, offs []int, w []float32, n, rows, srcStep, dstStep int) {
	w = w[:len(offs)]
	for r := 0; r < rows; r++ {
		d := dst[r*dstStep : r*dstStep+n]
		clear(d)
		for t, o := range offs {
			wv := w[t]
			s := src[r*srcStep+o : r*srcStep+o+n]
			for i := range d {
				d[i] += wv * s[i]
			}
		}
	}
}

// dwDotGeneric adds Σ_r Σ_i dy[r·dyStep+i]·src[r·srcStep+offs[t]+i] to
// out[t] for every tap t.
func dwDotGeneric(src, dy []float32, offs []int, n, rows, srcStep, dyStep int, out []float32) {
	out = out[:len(offs)]
	for t, o := range offs {
		var acc float32
		for r := 0; r < rows; r++ {
			s := src[r*srcStep+o : r*srcStep+o+n]
			d := dy[r*dyStep : r*dyStep+n]
			for i, v := range d {
				acc += v * s[i]
			}
		}
		out[t] += acc
	}
}

// copyRowsGeneric copies rows runs of n floats from stride srcStride to
// stride dstStride.
func copyRowsGeneric(dst, src []float32, n, rows, dstStride, srcStride int) {
	for r := 0; r < rows; r++ {
		copy(dst[r*dstStride:r*dstStride+n], src[r*srcStride:r*srcStride+n])
	}
}
