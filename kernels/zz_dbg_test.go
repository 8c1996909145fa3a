package kernels

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkDbgFill(b *testing.B) {
	g := ConvGeom{C: 64, H: 56, W: 56, KH: 3, KW: 3, SH: 2, SW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1}
	g.Init()
	rng := rand.New(rand.NewPCG(1, 1))
	x := randSlice(rng, g.C*g.H*g.W)
	w := randSlice(rng, g.C*9)
	y := make([]float32, g.C*g.OH*g.OW)
	sc := getDWScratch()
	lay := sc.layoutX(&g)
	im := current.Load()
	b.Run("fill", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for c := 0; c < g.C; c++ {
				lay.fill(im, sc.buf, x[c*g.H*g.W:(c+1)*g.H*g.W], &g)
			}
		}
	})
	b.Run("rows", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for c := 0; c < g.C; c++ {
				im.dwRows(y[c*g.OH*g.OW:(c+1)*g.OH*g.OW], sc.buf, sc.offs, w[c*9:c*9+9], g.OW, g.OH, lay.rowStep, g.OW)
			}
		}
	})
}
