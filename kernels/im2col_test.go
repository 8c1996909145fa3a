package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// naiveIm2col and naiveCol2im are the element-by-element definitions.
func naiveIm2col(g *ConvGeom, src []float32, pad float32) []float32 {
	ohw := g.OH * g.OW
	dst := make([]float32, g.C*g.KH*g.KW*ohw)
	for c := 0; c < g.C; c++ {
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				for oy := 0; oy < g.OH; oy++ {
					for ox := 0; ox < g.OW; ox++ {
						iy := oy*g.SH - g.PadT + ky*g.DH
						ix := ox*g.SW - g.PadL + kx*g.DW
						v := pad
						if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
							v = src[(c*g.H+iy)*g.W+ix]
						}
						dst[((c*g.KH+ky)*g.KW+kx)*ohw+oy*g.OW+ox] = v
					}
				}
			}
		}
	}
	return dst
}

func naiveCol2im(g *ConvGeom, src, dst []float32) {
	ohw := g.OH * g.OW
	for c := 0; c < g.C; c++ {
		for ky := 0; ky < g.KH; ky++ {
			for kx := 0; kx < g.KW; kx++ {
				for oy := 0; oy < g.OH; oy++ {
					for ox := 0; ox < g.OW; ox++ {
						iy := oy*g.SH - g.PadT + ky*g.DH
						ix := ox*g.SW - g.PadL + kx*g.DW
						if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
							dst[(c*g.H+iy)*g.W+ix] += src[((c*g.KH+ky)*g.KW+kx)*ohw+oy*g.OW+ox]
						}
					}
				}
			}
		}
	}
}

func convCases() []ConvGeom {
	return []ConvGeom{
		{C: 3, H: 7, W: 9, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 5, H: 8, W: 8, KH: 3, KW: 3, SH: 2, SW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 4, H: 11, W: 13, KH: 5, KW: 5, SH: 1, SW: 1, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 1, DW: 1},
		{C: 2, H: 12, W: 17, KH: 5, KW: 5, SH: 2, SW: 2, PadT: 2, PadL: 1, PadB: 2, PadR: 3, DH: 1, DW: 1},
		{C: 3, H: 9, W: 10, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 0, PadL: 2, PadB: 1, PadR: 0, DH: 1, DW: 1},
		{C: 2, H: 10, W: 11, KH: 3, KW: 3, SH: 1, SW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 2, DW: 2},
		{C: 1, H: 1, W: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1},
		{C: 3, H: 6, W: 40, KH: 7, KW: 3, SH: 3, SW: 1, PadT: 3, PadL: 1, PadB: 3, PadR: 1, DH: 1, DW: 3},
		{C: 7, H: 33, W: 35, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 6, H: 34, W: 37, KH: 5, KW: 5, SH: 2, SW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 1, DW: 1},
		{C: 2, H: 5, W: 5, KH: 5, KW: 5, SH: 1, SW: 1, PadT: 4, PadL: 4, PadB: 4, PadR: 4, DH: 1, DW: 1},
		{C: 40, H: 20, W: 19, KH: 3, KW: 3, SH: 2, SW: 2, PadT: 0, PadL: 0, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 64, H: 28, W: 28, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1},
		{C: 16, H: 16, W: 16, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 3, PadL: 3, PadB: 3, PadR: 3, DH: 3, DW: 3},
		// Wide rows: several 64-column blocks plus a remainder.
		{C: 2, H: 5, W: 133, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 2, H: 6, W: 150, KH: 5, KW: 5, SH: 2, SW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 1, DW: 1},
		{C: 1, H: 4, W: 64, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 1, H: 4, W: 99, KH: 3, KW: 7, SH: 1, SW: 3, PadT: 0, PadL: 4, PadB: 0, PadR: 2, DH: 1, DW: 2},
	}
}

func TestIm2colCol2im(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, impl := range testImpls() {
		for ci, g := range convCases() {
			if !g.Init() {
				t.Fatalf("case %d: bad geometry", ci)
			}
			for _, pad := range []float32{0, -1.5} {
				t.Run(fmt.Sprintf("%s/%d/pad%g", impl, ci, pad), func(t *testing.T) {
					defer useImpl(t, impl)()
					src := randSlice(rng, g.C*g.H*g.W)
					want := naiveIm2col(&g, src, pad)
					got := randSlice(rng, len(want))
					Im2col(&g, src, got, pad)
					closeEnough(t, "im2col", got, want, 0)

					cols := randSlice(rng, len(want))
					img := randSlice(rng, len(src))
					wantImg := append([]float32(nil), img...)
					naiveCol2im(&g, cols, wantImg)
					Col2im(&g, cols, img)
					closeEnough(t, "col2im", img, wantImg, 1e-6)

					// Strided forms: rows ld apart, the gaps untouched.
					ohw, rows := g.OH*g.OW, g.C*g.KH*g.KW
					ld := ohw + 3
					wide := randSlice(rng, rows*ld)
					orig := append([]float32(nil), wide...)
					Im2colStrided(&g, src, wide, ld, pad)
					for r := 0; r < rows; r++ {
						closeEnough(t, "im2col strided", wide[r*ld:r*ld+ohw], want[r*ohw:(r+1)*ohw], 0)
						closeEnough(t, "im2col strided gap", wide[r*ld+ohw:(r+1)*ld], orig[r*ld+ohw:(r+1)*ld], 0)
						copy(wide[r*ld:], cols[r*ohw:(r+1)*ohw])
					}
					img2 := append([]float32(nil), wantImg...)
					naiveCol2im(&g, cols, wantImg)
					Col2imStrided(&g, wide, img2, ld)
					closeEnough(t, "col2im strided", img2, wantImg, 1e-6)
				})
			}
		}
	}
}

func BenchmarkIm2col(b *testing.B) {
	g := ConvGeom{C: 32, H: 56, W: 56, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1}
	g.Init()
	src := make([]float32, g.C*g.H*g.W)
	dst := make([]float32, g.C*g.KH*g.KW*g.OH*g.OW)
	b.SetBytes(int64(4 * len(dst)))
	b.Run("im2col", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Im2col(&g, src, dst, 0)
		}
	})
	b.Run("col2im", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Col2im(&g, dst, src)
		}
	})
	b.Run("naive-im2col", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			naiveIm2col(&g, src, 0)
		}
	})
}
