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
// filled with block copies where the stride is 1.
func Im2col(g *ConvGeom, src, dst []float32, padValue float32) {
	if g.empty() {
		return
	}
	ohw := g.OH * g.OW
	per := g.KH * g.KW * ohw
	_ = src[g.C*g.H*g.W-1]
	_ = dst[g.C*per-1]
	parallelChannels(g.C, per, im2colGrain, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			img := src[c*g.H*g.W : (c+1)*g.H*g.W]
			for ky := 0; ky < g.KH; ky++ {
				oylo, oyhi := validRange(g.OH, g.SH, g.PadT, ky*g.DH, g.H)
				for kx := 0; kx < g.KW; kx++ {
					oxlo, oxhi := validRange(g.OW, g.SW, g.PadL, kx*g.DW, g.W)
					row := dst[((c*g.KH+ky)*g.KW+kx)*ohw:][:ohw]
					fill(row[:oylo*g.OW], padValue)
					fill(row[oyhi*g.OW:], padValue)
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
	})
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
		for c := lo; c < hi; c++ {
			img := dst[c*g.H*g.W : (c+1)*g.H*g.W]
			for ky := 0; ky < g.KH; ky++ {
				oylo, oyhi := validRange(g.OH, g.SH, g.PadT, ky*g.DH, g.H)
				for kx := 0; kx < g.KW; kx++ {
					oxlo, oxhi := validRange(g.OW, g.SW, g.PadL, kx*g.DW, g.W)
					if oxlo >= oxhi {
						continue
					}
					row := src[((c*g.KH+ky)*g.KW+kx)*ohw:][:ohw]
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
	})
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
