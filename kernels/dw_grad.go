package kernels

import "fmt"

// Backward of the "same" depthwise convolution (stride 1, output of the
// input's size, zero padding) without padded copies: like DepthwiseSame,
// each run of 16 outputs of a flattened plane reads every tap's 16 inputs
// at a fixed offset, with a lane mask that drops those outside the image.
// The weight gradient accumulates dy·x over all runs of all planes of a
// channel in one vector per tap; the input gradient is DepthwiseSame of dy
// with the flipped filters (the transposed convolution of a same-size
// stride-1 convolution is one too, with the pads mirrored).

// dwGradTable is the per-run mask table of a geometry: run r (16 outputs
// of the flattened plane) has its tap masks at masks[r·width + t] and its
// output-lane mask at masks[r·width + taps]; offs are the taps' offsets
// in the plane (elements) and offBytes the same in bytes.
type dwGradTable struct {
	key      [8]int
	runs     int
	width    int
	masks    []uint16
	offs     []int
	offBytes []int
	wflip    []float32
}

var dwGradTables FreeList[dwGradTable]

// build fills the table for g (kept when g is unchanged).
func (tb *dwGradTable) build(g *ConvGeom) {
	key := [8]int{g.H, g.W, g.KH, g.KW, g.PadT, g.PadL, g.DH, g.DW}
	if tb.key == key && tb.masks != nil {
		return
	}
	tb.key = key
	hw, taps := g.H*g.W, g.KH*g.KW
	tb.runs = (hw + 15) / 16
	tb.width = (taps + 16) / 16 * 16
	tb.masks = make([]uint16, tb.runs*tb.width)
	tb.offs, tb.offBytes = tb.offs[:0], tb.offBytes[:0]
	for ky := 0; ky < g.KH; ky++ {
		for kx := 0; kx < g.KW; kx++ {
			o := (ky*g.DH-g.PadT)*g.W + kx*g.DW - g.PadL
			tb.offs = append(tb.offs, o)
			tb.offBytes = append(tb.offBytes, 4*o)
		}
	}
	for p := 0; p < hw; p++ {
		row := tb.masks[p/16*tb.width:]
		bit := uint16(1) << (p % 16)
		row[taps] |= bit
		oy, ox := p/g.W, p%g.W
		for ky := 0; ky < g.KH; ky++ {
			iy := oy - g.PadT + ky*g.DH
			for kx := 0; kx < g.KW; kx++ {
				if ix := ox - g.PadL + kx*g.DW; iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
					row[ky*g.KW+kx] |= bit
				}
			}
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
	tb.build(g)
	if dwSameGradWArch(tb, g, planes, x, dy, ps, dw) {
		return
	}
	for c := 0; c < g.C; c++ {
		out := dw[c*taps : (c+1)*taps]
		for t, o := range tb.offs {
			var acc float32
			for j := 0; j < planes; j++ {
				xs := x[c*hw+j*ps:]
				ds := dy[c*hw+j*ps : c*hw+j*ps+hw]
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
