package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDepthwiseSame checks the masked "same" kernel against the naive
// definition (zero padding) with its epilogue, on planes of whole runs of
// 16 (swept across images) and ragged ones, for every implementation.
func TestDepthwiseSame(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []ConvGeom{
		{C: 3, H: 4, W: 4, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 5, H: 8, W: 8, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 32, W: 32, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 3, H: 7, W: 7, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 5, W: 13, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},
		{C: 2, H: 9, W: 6, KH: 3, KW: 2, PadT: 3, PadL: 0, PadB: 1, PadR: 1, DH: 2},
		{C: 1, H: 3, W: 16, KH: 3, KW: 3, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 2, DW: 2},
		{C: 2, H: 1, W: 3, KH: 1, KW: 3, PadL: 1, PadR: 1},
		{C: 4, H: 2, W: 2, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
	}
	for _, impl := range testImpls() {
		for ci, g := range cases {
			g.SH, g.SW = 1, 1
			g.DH, g.DW = max(g.DH, 1), max(g.DW, 1)
			if !g.Init() || g.OH != g.H || g.OW != g.W {
				t.Fatalf("case %d: not a same-size geometry", ci)
			}
			for _, planes := range []int{1, 3, 6} {
				for _, epi := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%d/planes%d/epi%v", impl, ci, planes, epi), func(t *testing.T) {
						defer useImpl(t, impl)()
						hw, taps := g.H*g.W, g.KH*g.KW
						xcs, ycs := planes*hw+5, planes*hw+3
						x := randSlice(rng, g.C*xcs)
						w := randSlice(rng, g.C*taps)
						y := randSlice(rng, g.C*ycs)
						keep := append([]float32(nil), y...)
						var ep *DWEpilogue
						if epi {
							ep = &DWEpilogue{A: randSlice(rng, g.C), B: randSlice(rng, g.C), Bias: randSlice(rng, g.C), Lo: -0.5, Hi: 1}
						}
						DepthwiseSame(&g, planes, x, xcs, w, y, ycs, ep)
						one := g
						one.C = 1
						for c := 0; c < g.C; c++ {
							for j := 0; j < planes; j++ {
								want, _, _ := naiveDepthwise(&one, x[c*xcs+j*hw:c*xcs+(j+1)*hw], w[c*taps:(c+1)*taps], make([]float32, hw), 0)
								if ep != nil {
									for i, v := range want {
										want[i] = float32(math.Min(math.Max(float64(ep.A[c]*(v+ep.Bias[c])+ep.B[c]), -0.5), 1))
									}
								}
								closeEnough(t, fmt.Sprintf("channel %d plane %d", c, j), y[c*ycs+j*hw:c*ycs+(j+1)*hw], want, 1e-5)
							}
							// The gap after the planes is untouched.
							closeEnough(t, "gap", y[c*ycs+planes*hw:(c+1)*ycs], keep[c*ycs+planes*hw:(c+1)*ycs], 0)
						}
					})
				}
			}
		}
	}
}

// TestDepthwiseConvChannels compares the strided-channel serial kernel
// with DepthwiseConv on every test geometry.
func TestDepthwiseConvChannels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, impl := range testImpls() {
		for ci, g := range convCases() {
			if !g.Init() {
				t.Fatalf("case %d: bad geometry", ci)
			}
			t.Run(fmt.Sprintf("%s/%d", impl, ci), func(t *testing.T) {
				defer useImpl(t, impl)()
				hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
				xcs, ycs := hw+7, ohw+2
				x := randSlice(rng, g.C*xcs)
				w := randSlice(rng, g.C*taps)
				y := make([]float32, g.C*ycs)
				DepthwiseConvChannels(&g, x, xcs, w, y, ycs, 0.5)
				one := g
				one.C = 1
				for c := 0; c < g.C; c++ {
					want, _, _ := naiveDepthwise(&one, x[c*xcs:c*xcs+hw], w[c*taps:(c+1)*taps], make([]float32, ohw), 0.5)
					closeEnough(t, fmt.Sprintf("channel %d", c), y[c*ycs:c*ycs+ohw], want, 1e-5)
				}
			})
		}
	}
}

// TestDepthwiseStride2 checks the stride-2 kernel on parity-split input
// against the naive definition, with and without the epilogue, for every
// implementation.
func TestDepthwiseStride2(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	cases := []ConvGeom{
		{C: 3, H: 8, W: 8, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 32, W: 32, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 4, H: 7, W: 9, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
		{C: 2, H: 11, W: 14, KH: 5, KW: 5, PadT: 2, PadL: 2, PadB: 2, PadR: 2},
		{C: 3, H: 2, W: 3, KH: 3, KW: 3, PadT: 1, PadL: 1, PadB: 1, PadR: 1},
	}
	for _, impl := range testImpls() {
		for ci, g := range cases {
			g.SH, g.SW, g.DH, g.DW = 2, 2, 1, 1
			if !g.Init() {
				t.Fatalf("case %d: bad geometry", ci)
			}
			for _, planes := range []int{1, 3} {
				for _, epi := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%d/planes%d/epi%v", impl, ci, planes, epi), func(t *testing.T) {
						defer useImpl(t, impl)()
						hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
						ps := WinogradPlane(g.H, g.W, 2)
						x := randSlice(rng, g.C*planes*hw)
						px := make([]float32, g.C*planes*ps)
						WinogradSplit(g.H, g.W, 2, g.C, planes, x, planes*hw, hw, px, planes*ps)
						w := randSlice(rng, g.C*taps)
						ycs := planes*ohw + 3
						y := randSlice(rng, g.C*ycs)
						var ep *DWEpilogue
						if epi {
							ep = &DWEpilogue{A: randSlice(rng, g.C), B: randSlice(rng, g.C), Bias: randSlice(rng, g.C), Lo: -0.5, Hi: 1}
						}
						DepthwiseStride2(&g, planes, px, planes*ps, w, y, ycs, ep)
						one := g
						one.C = 1
						for c := 0; c < g.C; c++ {
							for j := 0; j < planes; j++ {
								want, _, _ := naiveDepthwise(&one, x[(c*planes+j)*hw:(c*planes+j+1)*hw], w[c*taps:(c+1)*taps], make([]float32, ohw), 0)
								if ep != nil {
									for i, v := range want {
										want[i] = float32(math.Min(math.Max(float64(ep.A[c]*(v+ep.Bias[c])+ep.B[c]), -0.5), 1))
									}
								}
								closeEnough(t, fmt.Sprintf("channel %d plane %d", c, j), y[c*ycs+j*ohw:c*ycs+(j+1)*ohw], want, 1e-5)
							}
						}
					})
				}
			}
		}
	}
}
