package kernels

import (
	"fmt"
	"math"
)

// Backward of the "same" depthwise convolution (stride 1, output of the
// input's size, zero padding) and of DepthwiseStride2 without padded
// copies: like the forward kernels, each run of 16 outputs of a flattened
// plane reads every tap's 16 inputs at a fixed offset (for stride 2 in the
// parity layout of the input), with a lane mask that drops those outside
// the image. The weight gradient accumulates dy·x over all runs of all
// planes of a channel in one vector per tap. The same-size input gradient
// is DepthwiseSame of dy with the flipped filters (the transposed
// convolution of a same-size stride-1 convolution is one too, with the
// pads mirrored); the stride-2 one is, per parity sub-plane of the input,
// a small stride-1 convolution of dy with the taps of that parity.

// dwGradTable is the per-run mask table of a geometry: run r (16 outputs
// of the flattened output plane) has its tap masks at masks[r·width + t]
// and its output-lane mask at masks[r·width + taps]; offs are the taps'
// offsets in the input plane (elements; for stride 2 in the parity
// layout) and offBytes the same in bytes.
type dwGradTable struct {
	key      [9]int
	runs     int
	width    int
	masks    []uint16
	offs     []int
	offBytes []int
	wflip    []float32
}

var dwGradTables FreeList[dwGradTable]

// build fills the table for g with stride 1 (same size) or 2 (parity
// layout), kept when g is unchanged.
func (tb *dwGradTable) build(g *ConvGeom, stride int) {
	key := [9]int{g.H, g.W, g.KH, g.KW, g.PadT, g.PadL, g.DH, g.DW, stride}
	if tb.key == key && tb.masks != nil {
		return
	}
	tb.key = key
	ohw, taps := g.OH*g.OW, g.KH*g.KW
	tb.runs = (ohw + 15) / 16
	tb.width = (taps + 16) / 16 * 16
	tb.masks = make([]uint16, tb.runs*tb.width)
	tb.offs, tb.offBytes = tb.offs[:0], tb.offBytes[:0]
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			o := (ky*g.DH-g.PadT)*g.W + kx*g.DW - g.PadL
			if stride == 2 {
				o = parityOffset(g, ky, kx)
			}
			tb.offs = append(tb.offs, o)
			tb.offBytes = append(tb.offBytes, 4*o)
		}
	}
	for p := 0; p < ohw; p++ {
		row := tb.masks[p/16*tb.width:]
		bit := uint16(1) << (p % 16)
		row[taps] |= bit
		oy, ox := p/g.OW, p%g.OW
		for ky := 0; ky < g.KH; ky++ {
			iy := oy*stride - g.PadT + ky*g.DH
			for kx := 0; kx < g.KW; kx++ {
				if ix := ox*stride - g.PadL + kx*g.DW; iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
					row[ky*g.KW+kx] |= bit
				}
			}
		}
	}
}

// gradWeight adds to dw the weight gradient of the table's geometry g
// (built for it): channel c of plane j reads its input at x[c·xcs +
// j·xps] and its output gradient at dy[c·dcs + j·dps].
func (tb *dwGradTable) gradWeight(g *ConvGeom, planes int, x []float32, xcs, xps int, dy []float32, dcs, dps int, dw []float32) {
	if dwGradWArch(tb, g, planes, x, xcs, xps, dy, dcs, dps, dw) {
		return
	}
	ohw, taps := g.OH*g.OW, g.KH*g.KW
	for c := 0; c < g.C; c++ {
		out := dw[c*taps : (c+1)*taps]
		for t, o := range tb.offs {
			var acc float32
			for j := 0; j < planes; j++ {
				xs := x[c*xcs+j*xps:]
				ds := dy[c*dcs+j*dps : c*dcs+j*dps+ohw]
				for p, d := range ds {
					if tb.masks[p/16*tb.width+t]&(1<<(p%16)) != 0 {
						acc += d * xs[p+o]
					}
				}
			}
			out[t] += acc
		}
	}
}

// checkSame panics unless g is a same-size stride-1 convolution and the
// planes fit in the slices.
func checkSame(what string, g *ConvGeom, planes, ps int, ts ...[]float32) {
	if g.SH != 1 || g.SW != 1 || g.OH != g.H || g.OW != g.W {
		panic(fmt.Sprintf("kernels: %s: stride %dx%d, output %dx%d for input %dx%d: want stride 1 and the input's size", what, g.SH, g.SW, g.OH, g.OW, g.H, g.W))
	}
	last := (g.C-1)*g.H*g.W + (planes-1)*ps + g.H*g.W - 1
	for _, t := range ts {
		_ = t[last]
	}
}

// DepthwiseSameGradWeight adds to dw [C, KH, KW] the weight gradient of
// the same-size stride-1 depthwise convolution with zero padding (see
// DepthwiseSame), summed over planes images: channel c of image j is the
// input x[c·H·W + j·ps :] and the output gradient dy[c·H·W + j·ps :]
// (H×W each). It runs on the calling goroutine.
func DepthwiseSameGradWeight(g *ConvGeom, planes int, x, dy []float32, ps int, dw []float32) {
	if g.empty() || planes <= 0 {
		return
	}
	checkSame("DepthwiseSameGradWeight", g, planes, ps, x, dy)
	hw, taps := g.H*g.W, g.KH*g.KW
	_ = dw[g.C*taps-1]
	tb := dwGradTables.Get()
	defer dwGradTables.Put(tb)
	tb.build(g, 1)
	tb.gradWeight(g, planes, x, hw, ps, dy, hw, ps, dw)
}

// DepthwiseSameGradInput overwrites dx with the input gradient of the
// same-size stride-1 depthwise convolution with zero padding by the
// filters w [C, KH, KW], given the output gradient dy, for planes images
// laid out as in DepthwiseSameGradWeight. It runs on the calling
// goroutine.
func DepthwiseSameGradInput(g *ConvGeom, planes int, dy []float32, ps int, w, dx []float32) {
	if g.empty() || planes <= 0 {
		return
	}
	checkSame("DepthwiseSameGradInput", g, planes, ps, dy, dx)
	taps := g.KH * g.KW
	_ = w[g.C*taps-1]
	tb := dwGradTables.Get()
	defer dwGradTables.Put(tb)
	growFloats(&tb.wflip, g.C*taps)
	for c := 0; c < g.C; c++ {
		for t := 0; t < taps; t++ {
			tb.wflip[c*taps+t] = w[c*taps+taps-1-t]
		}
	}
	// dx[q] = Σ_t w[t]·dy[q − off_t]: the flipped filters with the pads
	// mirrored, again a same-size convolution.
	gt := *g
	gt.PadT, gt.PadB = (g.KH-1)*g.DH-g.PadT, g.PadT
	gt.PadL, gt.PadR = (g.KW-1)*g.DW-g.PadL, g.PadL
	for j := 0; j < planes; j++ {
		DepthwiseSame(&gt, 1, dy[j*ps:], g.H*g.W, tb.wflip, dx[j*ps:], g.H*g.W, nil)
	}
}

// DepthwiseStride2GradWeight adds to dw [C, KH, KW] the weight gradient
// of DepthwiseStride2 (stride 2, no dilation, zero padding, output
// ⌈H/2⌉×⌈W/2⌉) summed over planes images: the input of channel c, image j
// in the parity layout of WinogradSplit (tile 2, WinogradPlane(H, W, 2)
// floats) at x[c·xcs + j·xps], its output gradient (OH×OW) at dy[c·dcs +
// j·dps]. It runs on the calling goroutine.
func DepthwiseStride2GradWeight(g *ConvGeom, planes int, x []float32, xcs, xps int, dy []float32, dcs, dps int, dw []float32) {
	if g.empty() || planes <= 0 {
		return
	}
	checkStride2("DepthwiseStride2GradWeight", g)
	_ = x[(g.C-1)*xcs+(planes-1)*xps+WinogradPlane(g.H, g.W, 2)-1]
	_ = dy[(g.C-1)*dcs+(planes-1)*dps+g.OH*g.OW-1]
	_ = dw[g.C*g.KH*g.KW-1]
	tb := dwGradTables.Get()
	defer dwGradTables.Put(tb)
	tb.build(g, 2)
	tb.gradWeight(g, planes, x, xcs, xps, dy, dcs, dps, dw)
}

// dwParityTaps is, for one parity sub-plane of a stride-2 input gradient,
// the taps that reach it, their offsets in the output-gradient plane and
// DepthwiseSame-style masks (tap i of run m at masks[i·chunks + m], the
// store masks in row len(taps)).
type dwParityTaps struct {
	taps  []int
	offs  []int
	masks []uint16
}

// dwS2Table holds the four sub-planes' taps of a stride-2 geometry and
// the gathered filters of the current call.
type dwS2Table struct {
	key    [6]int
	chunks int
	sub    [4]dwParityTaps
	w      [4][]float32
}

var dwS2Tables FreeList[dwS2Table]

// build fills the table for g (kept when g is unchanged). Input row
// 2Y + a (sub-plane row parity a) receives tap row ky when a + PadT − ky
// is even, from output row Y + (a + PadT − ky)/2; likewise columns.
func (tb *dwS2Table) build(g *ConvGeom) {
	key := [6]int{g.H, g.W, g.KH, g.KW, g.PadT, g.PadL}
	if tb.key == key && tb.sub[0].masks != nil {
		return
	}
	tb.key = key
	ti := g.OH * g.OW
	tb.chunks = (ti + 15) / 16
	for k := range tb.sub {
		a, b := k/2, k%2
		s := &tb.sub[k]
		s.taps, s.offs = s.taps[:0], s.offs[:0]
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				if (a+g.PadT-ky)%2 == 0 && (b+g.PadL-kx)%2 == 0 {
					s.taps = append(s.taps, ky*g.KW+kx)
					s.offs = append(s.offs, (a+g.PadT-ky)/2*g.OW+(b+g.PadL-kx)/2)
				}
			}
		}
		n := len(s.taps)
		s.masks = make([]uint16, (n+1)*tb.chunks)
		for p := 0; p < ti; p++ {
			m, bit := p/16, uint16(1)<<(p%16)
			s.masks[n*tb.chunks+m] |= bit
			Y, X := p/g.OW, p%g.OW
			for i, t := range s.taps {
				ky, kx := t/g.KW, t%g.KW
				oy, ox := Y+(a+g.PadT-ky)/2, X+(b+g.PadL-kx)/2
				if oy >= 0 && oy < g.OH && ox >= 0 && ox < g.OW {
					s.masks[i*tb.chunks+m] |= bit
				}
			}
		}
	}
}

// DepthwiseStride2GradInput writes the input gradient of DepthwiseStride2
// with the filters w [C, KH, KW] in the parity layout of its input: for
// channel c of image j, WinogradPlane(H, W, 2) floats at dx[c·xcs + j·xps]
// (sub-plane positions past the image are unspecified), from the output
// gradient at dy[c·dcs + j·dps] (OH×OW). WinogradMerge turns it into
// planes. It runs on the calling goroutine.
func DepthwiseStride2GradInput(g *ConvGeom, planes int, dy []float32, dcs, dps int, w, dx []float32, xcs, xps int) {
	if g.empty() || planes <= 0 {
		return
	}
	checkStride2("DepthwiseStride2GradInput", g)
	taps, ti := g.KH*g.KW, g.OH*g.OW
	_ = dx[(g.C-1)*xcs+(planes-1)*xps+4*ti-1]
	_ = dy[(g.C-1)*dcs+(planes-1)*dps+ti-1]
	_ = w[g.C*taps-1]
	tb := dwS2Tables.Get()
	defer dwS2Tables.Put(tb)
	tb.build(g)
	for k := range tb.sub {
		s := &tb.sub[k]
		n := len(s.taps)
		growFloats(&tb.w[k], g.C*n)
		for c := 0; c < g.C; c++ {
			for i, t := range s.taps {
				tb.w[k][c*n+i] = w[c*taps+t]
			}
		}
	}
	asm := dwS2InputArch()
	inf := float32(math.Inf(1))
	for c := 0; c < g.C; c++ {
		for j := 0; j < planes; j++ {
			src := dy[c*dcs+j*dps : c*dcs+j*dps+ti]
			for k := range tb.sub {
				s := &tb.sub[k]
				n := len(s.taps)
				dst := dx[c*xcs+j*xps+k*ti : c*xcs+j*xps+(k+1)*ti]
				switch {
				case n == 0:
					clear(dst)
				case asm:
					dwSame512(&src[0], &dst[0], &tb.w[k][c*n], &s.offs[0], &s.masks[0], n, tb.chunks, tb.chunks, 1, 0, 0, -inf, inf)
				default:
					dwParityGeneric(dst, src, tb.w[k][c*n:(c+1)*n], s, tb.chunks)
				}
			}
		}
	}
}

// dwParityGeneric is the portable loop of one sub-plane of
// DepthwiseStride2GradInput.
func dwParityGeneric(dst, src, w []float32, s *dwParityTaps, chunks int) {
	for p := range dst {
		m, bit := p/16, uint16(1)<<(p%16)
		var acc float32
		for i, o := range s.offs {
			if s.masks[i*chunks+m]&bit != 0 {
				acc += w[i] * src[p+o]
			}
		}
		dst[p] = acc
	}
}
