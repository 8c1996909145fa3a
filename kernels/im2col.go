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

// Init computes the output size; it returns false if it is not positive.
func (g *ConvGeom) Init() bool {
	ekh := (g.KH-1)*g.DH + 1
	ekw := (g.KW-1)*g.DW + 1
	g.OH = (g.H+g.PadT+g.PadB-ekh)/g.SH + 1
	g.OW = (g.W+g.PadL+g.PadR-ekw)/g.SW + 1
	return g.OH > 0 && g.OW > 0 && g.H+g.PadT+g.PadB >= ekh && g.W+g.PadL+g.PadR >= ekw
}

// Im2col writes the (C·KH·KW) × (OH·OW) patch matrix of src (C×H×W) into
// dst. Out-of-image positions take padValue.
func Im2col(g *ConvGeom, src, dst []float32, padValue float32) {
	ohw := g.OH * g.OW
	for c := 0; c < g.C; c++ {
		img := src[c*g.H*g.W : (c+1)*g.H*g.W]
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				row := dst[((c*g.KH+ky)*g.KW+kx)*ohw:][:ohw]
				for oy := 0; oy < g.OH; oy++ {
					iy := oy*g.SH - g.PadT + ky*g.DH
					out := row[oy*g.OW : (oy+1)*g.OW]
					if iy < 0 || iy >= g.H {
						for i := range out {
							out[i] = padValue
						}
						continue
					}
					line := img[iy*g.W : (iy+1)*g.W]
					for ox := range out {
						ix := ox*g.SW - g.PadL + kx*g.DW
						if ix < 0 || ix >= g.W {
							out[ox] = padValue
						} else {
							out[ox] = line[ix]
						}
					}
				}
			}
		}
	}
}

// Col2im adds the patch matrix src ((C·KH·KW) × (OH·OW)) back into the
// image dst (C×H×W), the adjoint of Im2col.
func Col2im(g *ConvGeom, src, dst []float32) {
	ohw := g.OH * g.OW
	for c := 0; c < g.C; c++ {
		img := dst[c*g.H*g.W : (c+1)*g.H*g.W]
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				row := src[((c*g.KH+ky)*g.KW+kx)*ohw:][:ohw]
				for oy := 0; oy < g.OH; oy++ {
					iy := oy*g.SH - g.PadT + ky*g.DH
					if iy < 0 || iy >= g.H {
						continue
					}
					line := img[iy*g.W : (iy+1)*g.W]
					in := row[oy*g.OW : (oy+1)*g.OW]
					for ox, v := range in {
						ix := ox*g.SW - g.PadL + kx*g.DW
						if ix >= 0 && ix < g.W {
							line[ix] += v
						}
					}
				}
			}
		}
	}
}
