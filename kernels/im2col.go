package kernels

// ConvGeom describes one image's 2-D convolution geometry: C input channels
// (of one group), H×W input, KH×KW kernel, strides, pads (top, left,
// bottom, right) and dilations. OH and OW are filled by Init.
type ConvGeom struct {
	C, H, W                int
	KH, KW                 int
	SH, SW                 int
	PadT, PadL, PadB, PadR int
	DH, DW                 int
	OH, OW                 int
}

// empty reports whether g has no channels, input or output positions, so
// that a kernel has nothing to do.
func (g *ConvGeom) empty() bool {
	return g.C <= 0 || g.H <= 0 || g.W <= 0 || g.KH <= 0 || g.KW <= 0 || g.OH <= 0 || g.OW <= 0
}

// Init computes the output size; it returns false if it is not positive.
func (g *ConvGeom) Init() bool {
	ekh := (g.KH-1)*g.DH + 1
	ekw := (g.KW-1)*g.DW + 1
	g.OH = (g.H+g.PadT+g.PadB-ekh)/g.SH + 1
	g.OW = (g.W+g.PadL+g.PadR-ekw)/g.SW + 1
	return g.OH > 0 && g.OW > 0 && g.H+g.PadT+g.PadB >= ekh && g.W+g.PadL+g.PadR >= ekw
}

// im2colGrain is the number of patch-matrix elements below which Im2col
// and Col2im stay on one goroutine.
const im2colGrain = 1 << 16

// Im2col writes the (C·KH·KW) × (OH·OW) patch matrix of src (C×H×W) into
// dst. Out-of-image positions take padValue. Rows of the patch matrix are
// filled with block copies where the stride is 1. Large matrices are split
// over the worker pool by channel.
func Im2col(g *ConvGeom, src, dst []float32, padValue float32) {
	if g.empty() {
		return
	}
	ohw := g.OH * g.OW
	per := g.KH * g.KW * ohw
	_ = src[g.C*g.H*g.W-1]
	_ = dst[g.C*per-1]
	parallelChannels(g.C, per, im2colGrain, func(lo, hi int) {
		im2colChannels(g, src, dst, ohw, padValue, lo, hi)
	})
}

// Im2colStrided is Im2col on the calling goroutine with the patch matrix's
// rows ld elements apart (ld ≥ OH·OW), so that several images can be
// placed side by side in one matrix of ld columns.
func Im2colStrided(g *ConvGeom, src, dst []float32, ld int, padValue float32) {
	if g.empty() {
		return
	}
	ohw := g.OH * g.OW
	if ld < ohw {
		panic("kernels: Im2colStrided: row stride shorter than OH·OW")
	}
	_ = src[g.C*g.H*g.W-1]
	_ = dst[(g.C*g.KH*g.KW-1)*ld+ohw-1]
	im2colChannels(g, src, dst, ld, padValue, 0, g.C)
}

// im2colChannels fills the patch-matrix rows of channels [lo, hi), rows ld
// apart.
func im2colChannels(g *ConvGeom, src, dst []float32, ld int, padValue float32, lo, hi int) {
	ohw := g.OH * g.OW
	hw := g.H * g.W
	// With unit strides and OW == W, consecutive output rows read
	// consecutive input rows, so the valid rows of a patch row are one
	// shifted block copy; only the columns that wrapped around the image
	// edge need the pad value afterwards.
	block := g.SH == 1 && g.SW == 1 && g.OW == g.W
	// The valid output ranges depend on the tap only: compute them once.
	var ybuf, xbuf [16]int
	yr, xr := ybuf[:0], xbuf[:0]
	for ky := 0; ky < g.KH; ky++ {
		a, b := validRange(g.OH, g.SH, g.PadT, ky*g.DH, g.H)
		yr = append(yr, a, b)
	}
	for kx := 0; kx < g.KW; kx++ {
		a, b := validRange(g.OW, g.SW, g.PadL, kx*g.DW, g.W)
		xr = append(xr, a, b)
	}
	for c := lo; c < hi; c++ {
		img := src[c*hw : (c+1)*hw]
		for ky := 0; ky < g.KH; ky++ {
			oylo, oyhi := yr[2*ky], yr[2*ky+1]
			for kx := 0; kx < g.KW; kx++ {
				oxlo, oxhi := xr[2*kx], xr[2*kx+1]
				row := dst[((c*g.KH+ky)*g.KW+kx)*ld:][:ohw]
				fill(row[:oylo*g.OW], padValue)
				fill(row[oyhi*g.OW:], padValue)
				if oylo >= oyhi {
					continue
				}
				if block {
					out := row[oylo*g.W : oyhi*g.W]
					s := (oylo-g.PadT+ky*g.DH)*g.W + kx*g.DW - g.PadL
					j0, j1 := max(0, -s), min(len(out), hw-s)
					copy(out[j0:j1], img[s+j0:s+j1])
					// Fix the columns that wrapped around the edges.
					for j := oylo * g.W; j < oyhi*g.W; j += g.W {
						for i := j; i < j+oxlo; i++ {
							row[i] = padValue
						}
						for i := j + oxhi; i < j+g.W; i++ {
							row[i] = padValue
						}
					}
					continue
				}
				ix0 := oxlo*g.SW - g.PadL + kx*g.DW
				for oy := oylo; oy < oyhi; oy++ {
					out := row[oy*g.OW : (oy+1)*g.OW]
					fill(out[:oxlo], padValue)
					fill(out[oxhi:], padValue)
					iy := oy*g.SH - g.PadT + ky*g.DH
					line := img[iy*g.W : (iy+1)*g.W]
					if g.SW == 1 {
						copy(out[oxlo:oxhi], line[ix0:])
						continue
					}
					gather(out[oxlo:oxhi], line[ix0:], g.SW)
				}
			}
		}
	}
}

// Col2im adds the patch matrix src ((C·KH·KW) × (OH·OW)) back into the
// image dst (C×H×W), the adjoint of Im2col.
func Col2im(g *ConvGeom, src, dst []float32) {
	if g.empty() {
		return
	}
	ohw := g.OH * g.OW
	per := g.KH * g.KW * ohw
	_ = dst[g.C*g.H*g.W-1]
	_ = src[g.C*per-1]
	parallelChannels(g.C, per, im2colGrain, func(lo, hi int) {
		col2imChannels(g, src, dst, ohw, lo, hi)
	})
}

// Col2imStrided is Col2im on the calling goroutine for a patch matrix
// whose rows are ld elements apart (ld ≥ OH·OW), the adjoint of
// Im2colStrided.
func Col2imStrided(g *ConvGeom, src, dst []float32, ld int) {
	if g.empty() {
		return
	}
	ohw := g.OH * g.OW
	if ld < ohw {
		panic("kernels: Col2imStrided: row stride shorter than OH·OW")
	}
	_ = dst[g.C*g.H*g.W-1]
	_ = src[(g.C*g.KH*g.KW-1)*ld+ohw-1]
	col2imChannels(g, src, dst, ld, 0, g.C)
}

// col2imChannels adds the patch-matrix rows (ld apart) of channels
// [lo, hi) into the image.
func col2imChannels(g *ConvGeom, src, dst []float32, ld, lo, hi int) {
	ohw := g.OH * g.OW
	for c := lo; c < hi; c++ {
		img := dst[c*g.H*g.W : (c+1)*g.H*g.W]
		for ky := 0; ky < g.KH; ky++ {
			oylo, oyhi := validRange(g.OH, g.SH, g.PadT, ky*g.DH, g.H)
			for kx := 0; kx < g.KW; kx++ {
				oxlo, oxhi := validRange(g.OW, g.SW, g.PadL, kx*g.DW, g.W)
				if oxlo >= oxhi {
					continue
				}
				row := src[((c*g.KH+ky)*g.KW+kx)*ld:][:ohw]
				ix0 := oxlo*g.SW - g.PadL + kx*g.DW
				for oy := oylo; oy < oyhi; oy++ {
					iy := oy*g.SH - g.PadT + ky*g.DH
					line := img[iy*g.W : (iy+1)*g.W]
					in := row[oy*g.OW+oxlo : oy*g.OW+oxhi]
					if g.SW == 1 {
						seg := line[ix0 : ix0+len(in)]
						Add(seg, seg, in)
						continue
					}
					scatterAdd(line[ix0:], in, g.SW)
				}
			}
		}
	}
}

func fill(s []float32, v float32) {
	if v == 0 && len(s) > 16 {
		clear(s)
		return
	}
	for i := range s {
		s[i] = v
	}
}

// gather sets dst[i] = src[i*stride].
func gather(dst, src []float32, stride int) {
	if len(dst) == 0 {
		return
	}
	src = src[:(len(dst)-1)*stride+1]
	for i := range dst {
		dst[i] = src[i*stride]
	}
}

// scatterAdd adds src[i] to dst[i*stride].
func scatterAdd(dst, src []float32, stride int) {
	if len(src) == 0 {
		return
	}
	dst = dst[:(len(src)-1)*stride+1]
	for i, v := range src {
		dst[i*stride] += v
	}
}
