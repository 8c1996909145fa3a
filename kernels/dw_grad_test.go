package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDepthwiseSameGrad checks the same-size depthwise backward (weight
// gradient accumulated over images in NCHW layout, input gradient) on
// every implementation against the definition, for plane sizes below,
// at and above the 16-lane runs, 3×3 (the assembly kernel) and other
// filters, pads and dilations.
func TestDepthwiseSameGrad(t *testing.T) {
	geoms := []ConvGeom{
		{C: 3, H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 2, H: 7, W: 5, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 2, H: 8, W: 8, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 2, DW: 2},
		{C: 2, H: 6, W: 9, KH: 5, KW: 5, SH: 1, SW: 1, PadT: 2, PadL: 1, PadB: 2, PadR: 3, DH: 1, DW: 1},
		{C: 2, H: 1, W: 1, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		{C: 2, H: 16, W: 16, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 0, PadL: 2, PadB: 2, PadR: 0, DH: 1, DW: 1},
	}
	const images = 3
	for _, impl := range testImpls() {
		for gi, g := range geoms {
			t.Run(fmt.Sprintf("%s/%d", impl, gi), func(t *testing.T) {
				defer useImpl(t, impl)()
				if !g.Init() || g.OH != g.H || g.OW != g.W {
					t.Fatalf("geometry %+v is not same-size", g)
				}
				rng := rand.New(rand.NewPCG(41, uint64(gi)))
				hw, taps := g.H*g.W, g.KH*g.KW
				ps := g.C * hw
				x, dy := randSlice(rng, images*ps), randSlice(rng, images*ps)
				w := randSlice(rng, g.C*taps)
				wantDX := make([]float32, images*ps)
				wantDW := randSlice(rng, g.C*taps) // accumulates onto this
				dw := append([]float32(nil), wantDW...)
				for j := 0; j < images; j++ {
					_, dxj, dwj := naiveDepthwise(&g, x[j*ps:(j+1)*ps], w, dy[j*ps:(j+1)*ps], 0)
					copy(wantDX[j*ps:], dxj)
					for i, v := range dwj {
						wantDW[i] += v
					}
				}
				DepthwiseSameGradWeight(&g, images, x, dy, ps, dw)
				closeEnough(t, "weight gradient", dw, wantDW, 1e-4)
				dx := randSlice(rng, images*ps)
				DepthwiseSameGradInput(&g, images, dy, ps, w, dx)
				closeEnough(t, "input gradient", dx, wantDX, 1e-4)
			})
		}
	}
}
