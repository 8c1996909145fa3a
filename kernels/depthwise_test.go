package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// naiveDepthwise computes y, dx and dw straight from the definition.
func naiveDepthwise(g *ConvGeom, x, w, dy []float32, pad float32) (y, dx, dw []float32) {
	y = make([]float32, g.C*g.OH*g.OW)
	dx = make([]float32, g.C*g.H*g.W)
	dw = make([]float32, g.C*g.KH*g.KW)
	for c := 0; c < g.C; c++ {
		for oy := 0; oy < g.OH; oy++ {
			for ox := 0; ox < g.OW; ox++ {
				var s float64
				o := (c*g.OH+oy)*g.OW + ox
				for ky := 0; ky < g.KH; ky++ {
					for kx := 0; kx < g.KW; kx++ {
						iy := oy*g.SH - g.PadT + ky*g.DH
						ix := ox*g.SW - g.PadL + kx*g.DW
						wi := (c*g.KH+ky)*g.KW + kx
						v := pad
						if iy >= 0 && iy < g.H && ix >= 0 && ix < g.W {
							xi := (c*g.H+iy)*g.W + ix
							v = x[xi]
							dx[xi] += w[wi] * dy[o]
						}
						s += float64(w[wi]) * float64(v)
						dw[wi] += v * dy[o]
					}
				}
				y[o] = float32(s)
			}
		}
	}
	return y, dx, dw
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

func closeEnough(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: length %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		d := float64(got[i]) - float64(want[i])
		scale := 1 + abs64(float64(want[i]))
		if !(abs64(d) <= tol*scale) {
			t.Fatalf("%s: [%d] = %g, want %g", what, i, got[i], want[i])
		}
	}
}

func abs64(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestDepthwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := convCases()
	for _, impl := range testImpls() {
		for ci, g := range cases {
			if !g.Init() {
				t.Fatalf("case %d: bad geometry", ci)
			}
			for _, pad := range []float32{0, 0.75} {
				t.Run(fmt.Sprintf("%s/%d/pad%g", impl, ci, pad), func(t *testing.T) {
					defer useImpl(t, impl)()
					x := randSlice(rng, g.C*g.H*g.W)
					w := randSlice(rng, g.C*g.KH*g.KW)
					dy := randSlice(rng, g.C*g.OH*g.OW)
					wantY, wantDx, wantDw := naiveDepthwise(&g, x, w, dy, pad)
					y := randSlice(rng, len(wantY))
					DepthwiseConv(&g, x, w, y, pad)
					closeEnough(t, "y", y, wantY, 1e-5)
					dx := randSlice(rng, len(wantDx))
					DepthwiseConvGradInput(&g, dy, w, dx)
					closeEnough(t, "dx", dx, wantDx, 1e-5)
					dw := randSlice(rng, len(wantDw))
					base := append([]float32(nil), dw...)
					DepthwiseConvGradWeight(&g, x, dy, dw, pad)
					for i := range dw {
						dw[i] -= base[i]
					}
					closeEnough(t, "dw", dw, wantDw, 1e-4)
				})
			}
		}
	}
}

func BenchmarkDepthwise(b *testing.B) {
	geoms := map[string]ConvGeom{
		"3x3s1_c64_56":  {C: 64, H: 56, W: 56, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		"3x3s2_c64_56":  {C: 64, H: 56, W: 56, KH: 3, KW: 3, SH: 2, SW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
		"5x5s1_c96_28":  {C: 96, H: 28, W: 28, KH: 5, KW: 5, SH: 1, SW: 1, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 1, DW: 1},
		"5x5s2_c96_28":  {C: 96, H: 28, W: 28, KH: 5, KW: 5, SH: 2, SW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2, DH: 1, DW: 1},
		"3x3s1_c256_14": {C: 256, H: 14, W: 14, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1},
	}
	for _, name := range []string{"3x3s1_c64_56", "3x3s2_c64_56", "5x5s1_c96_28", "5x5s2_c96_28", "3x3s1_c256_14"} {
		g := geoms[name]
		g.Init()
		rng := rand.New(rand.NewPCG(1, 1))
		x := randSlice(rng, g.C*g.H*g.W)
		w := randSlice(rng, g.C*g.KH*g.KW)
		y := randSlice(rng, g.C*g.OH*g.OW)
		dy := randSlice(rng, g.C*g.OH*g.OW)
		dx := make([]float32, len(x))
		dw := make([]float32, len(w))
		flops := 2 * float64(g.C*g.OH*g.OW*g.KH*g.KW)
		report := func(b *testing.B) {
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		}
		b.Run("fwd/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				DepthwiseConv(&g, x, w, y, 0)
			}
			report(b)
		})
		b.Run("dx/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				DepthwiseConvGradInput(&g, dy, w, dx)
			}
			report(b)
		})
		b.Run("dw/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				DepthwiseConvGradWeight(&g, x, dy, dw, 0)
			}
			report(b)
		})
	}
}

func TestConvKernelsEmptyGeometry(t *testing.T) {
	g := ConvGeom{C: 0, H: 4, W: 4, KH: 3, KW: 3, SH: 1, SW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DH: 1, DW: 1}
	if !g.Init() {
		t.Fatal("Init rejected a channel-free geometry")
	}
	// Nothing to do, and nothing indexed: nil slices must be fine.
	DepthwiseConv(&g, nil, nil, nil, 0)
	DepthwiseConvGradInput(&g, nil, nil, nil)
	DepthwiseConvGradWeight(&g, nil, nil, nil, 0)
	Im2col(&g, nil, nil, 0)
	Col2im(&g, nil, nil)
	y := []float32{7}
	g1 := ConvGeom{C: 1, H: 1, W: 1, KH: 1, KW: 1, SH: 1, SW: 1, DH: 1, DW: 1}
	g1.Init()
	DepthwiseConv(&g1, []float32{3}, []float32{2}, y, 0)
	if y[0] != 6 {
		t.Fatalf("1×1 depthwise: y = %v, want 6", y[0])
	}
}
