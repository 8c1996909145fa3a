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

// TestDepthwiseStride2Grad checks the stride-2 depthwise backward on
// parity-split planes (weight gradient accumulated over images with
// separate input and gradient strides, input gradient in the parity
// layout merged back) on every implementation against the definition:
// odd and even sizes, planes below and above the 16-lane runs, 3×3 (the
// assembly weight kernel) with symmetric, one-sided and no padding, and
// 2×2 and 5×5 filters.
func TestDepthwiseStride2Grad(t *testing.T) {
	geoms := []ConvGeom{
		{C: 3, H: 7, W: 5, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 16, W: 16, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 10, W: 13, KH: 3, KW: 3, PadT: 0, PadL: 0, PadB: 1, PadR: 2},
		{C: 2, H: 9, W: 11, KH: 3, KW: 3, PadT: 1, PadL: 0, PadB: 1, PadR: 2},
		{C: 2, H: 1, W: 1, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 8, W: 6, KH: 2, KW: 2, PadT: 0, PadL: 0, PadB: 0, PadR: 0},
		{C: 2, H: 11, W: 9, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},
	}
	const images = 3
	for _, impl := range testImpls() {
		for gi, g := range geoms {
			t.Run(fmt.Sprintf("%s/%d", impl, gi), func(t *testing.T) {
				defer useImpl(t, impl)()
				g.SH, g.SW, g.DH, g.DW = 2, 2, 1, 1
				if !g.Init() || g.OH != (g.H+1)/2 || g.OW != (g.W+1)/2 {
					t.Fatalf("geometry %+v is not a stride-2 halving", g)
				}
				rng := rand.New(rand.NewPCG(43, uint64(gi)))
				hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
				ps := WinogradPlane(g.H, g.W, 2)
				x, dy := randSlice(rng, images*g.C*hw), randSlice(rng, images*g.C*ohw)
				w := randSlice(rng, g.C*taps)
				wantDX := make([]float32, images*g.C*hw)
				wantDW := randSlice(rng, g.C*taps) // accumulates onto this
				dw := append([]float32(nil), wantDW...)
				for j := 0; j < images; j++ {
					_, dxj, dwj := naiveDepthwise(&g, x[j*g.C*hw:(j+1)*g.C*hw], w, dy[j*g.C*ohw:(j+1)*g.C*ohw], 0)
					copy(wantDX[j*g.C*hw:], dxj)
					for i, v := range dwj {
						wantDW[i] += v
					}
				}
				// Channel c of image j at par[c·images·ps + j·ps].
				par := randSlice(rng, g.C*images*ps)
				WinogradSplit(g.H, g.W, 2, g.C, images, x, hw, g.C*hw, par, images*ps)
				DepthwiseStride2GradWeight(&g, images, par, images*ps, ps, dy, ohw, g.C*ohw, dw)
				closeEnough(t, "weight gradient", dw, wantDW, 1e-4)
				// Input gradient image by image, channels ps apart.
				dx := randSlice(rng, images*g.C*hw)
				for j := 0; j < images; j++ {
					buf := randSlice(rng, g.C*ps)
					DepthwiseStride2GradInput(&g, 1, dy[j*g.C*ohw:], ohw, ohw, w, buf, ps, ps)
					WinogradMerge(g.H, g.W, 2, g.C, 1, buf, ps, dx[j*g.C*hw:], hw, hw, g.W)
				}
				closeEnough(t, "input gradient", dx, wantDX, 1e-4)
			})
		}
	}
}
