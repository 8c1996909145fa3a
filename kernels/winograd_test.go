package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naiveConv3x3 is the direct 3×3, stride-1, pad-1 convolution of one
// c×h×w image by w [m, c, 3, 3], in float64.
func naiveConv3x3(x, w []float32, m, c, h, wd int) []float64 {
	y := make([]float64, m*h*wd)
	for o := 0; o < m; o++ {
		for r := 0; r < h; r++ {
			for col := 0; col < wd; col++ {
				var s float64
				for i := 0; i < c; i++ {
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							iy, ix := r-1+ky, col-1+kx
							if iy < 0 || iy >= h || ix < 0 || ix >= wd {
								continue
							}
							s += float64(w[((o*c+i)*3+ky)*3+kx]) * float64(x[(i*h+iy)*wd+ix])
						}
					}
				}
				y[(o*h+r)*wd+col] = s
			}
		}
	}
	return y
}

// TestWinogradConv compares the F(2×2, 3×3) and F(4×4, 3×3) convolutions
// (with the split into and the merge from the parity layout) with the
// direct one on sizes that are and are not multiples of the tile, rows
// wider than one 16-tile run, several images, an output layout with gaps,
// and the epilogue with and without a residual, for every implementation.
func TestWinogradConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []struct{ m, c, h, w, planes int }{
		{3, 2, 1, 1, 1},
		{5, 3, 4, 4, 2},
		{8, 16, 7, 7, 3},
		{16, 5, 9, 14, 2},
		{4, 3, 28, 28, 1},
		{9, 7, 13, 35, 2},
		{17, 9, 3, 70, 1},
		{2, 1, 2, 3, 4},
	}
	for _, impl := range testImpls() {
		for ci, tc := range cases {
			for _, cfg := range []struct {
				n   int
				epi string
			}{{2, "none"}, {2, "affine"}, {2, "residual"}, {4, "none"}, {4, "affine"}, {4, "residual"}} {
				n, epi := cfg.n, cfg.epi
				t.Run(fmt.Sprintf("%s/%d/F%d/%s", impl, ci, n, epi), func(t *testing.T) {
					defer useImpl(t, impl)()
					hw := tc.h * tc.w
					xcs := tc.planes*hw + 3
					x := randSlice(rng, tc.c*xcs)
					w := randSlice(rng, tc.m*tc.c*9)
					yld := tc.w + 2
					yps := tc.h*yld + 5
					ycs := tc.planes*yps + 1
					y := randSlice(rng, tc.m*ycs)
					keep := append([]float32(nil), y...)
					var ww WinogradWeights
					ww.Prepare(tc.m, tc.c, n, w)
					ps := WinogradPlane(tc.h, tc.w, n)
					px := make([]float32, tc.c*tc.planes*ps)
					WinogradSplit(tc.h, tc.w, n, tc.c, tc.planes, x, xcs, hw, px, tc.planes*ps)
					var ep *WinogradEpilogue
					var res []float32
					if epi != "none" {
						ep = &WinogradEpilogue{A: randSlice(rng, tc.m), B: randSlice(rng, tc.m), Bias: randSlice(rng, tc.m), Lo: -1.5, Hi: 2}
						if epi == "residual" {
							res = randSlice(rng, tc.planes*tc.m*hw) // NCHW
							ep.Res, ep.ResCS, ep.ResPS = make([]float32, tc.m*tc.planes*ps), tc.planes*ps, ps
							WinogradSplit(tc.h, tc.w, n, tc.m, tc.planes, res, hw, tc.m*hw, ep.Res, tc.planes*ps)
						}
					}
					py := randSlice(rng, tc.m*tc.planes*ps+7)
					WinogradConv(&ww, tc.h, tc.w, tc.planes, px, tc.planes*ps, py, tc.planes*ps, ep)
					WinogradMerge(tc.h, tc.w, n, tc.m, tc.planes, py, tc.planes*ps, y, ycs, yps, yld)
					written := make([]bool, len(y))
					for j := 0; j < tc.planes; j++ {
						img := make([]float32, tc.c*hw)
						for i := 0; i < tc.c; i++ {
							copy(img[i*hw:(i+1)*hw], x[i*xcs+j*hw:])
						}
						want := naiveConv3x3(img, w, tc.m, tc.c, tc.h, tc.w)
						for o := 0; o < tc.m; o++ {
							for p := 0; p < hw; p++ {
								v := want[o*hw+p]
								if ep != nil {
									v = float64(ep.A[o])*(v+float64(ep.Bias[o])) + float64(ep.B[o])
									if res != nil {
										v += float64(res[(j*tc.m+o)*hw+p])
									}
									v = math.Min(math.Max(v, -1.5), 2)
								}
								i := o*ycs + j*yps + (p/tc.w)*yld + p%tc.w
								written[i] = true
								// F(4×4, 3×3) rounds more: its transforms
								// scale by up to 8 and 1/24.
								tol := 1e-6
								if n == 4 {
									tol = 3e-5
								}
								if d := math.Abs(float64(y[i]) - v); d > tol*(1+math.Abs(v))*math.Sqrt(float64(9*tc.c)) {
									t.Fatalf("channel %d image %d position %d: got %v, want %v", o, j, p, y[i], v)
								}
							}
						}
					}
					for i := range y {
						if !written[i] && y[i] != keep[i] {
							t.Fatalf("element %d outside the output changed", i)
						}
					}
				})
			}
		}
	}
}

// TestWinogradConvStacked compares WinogradConvStacked (inputs split by
// SplitParity into the stacked layout, outputs merged by MergeParity, the
// residual in that layout) with the direct convolution, for tile sizes 2
// and 4, planes smaller than one 16-tile run, several images, and tile
// and output-channel counts that leave the products' 32-column and
// 8-row panels partly empty.
func TestWinogradConvStacked(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	cases := []struct{ m, c, h, w, planes int }{
		{3, 2, 1, 1, 3},
		{5, 3, 7, 7, 5},
		{8, 9, 5, 6, 7},
		{4, 3, 14, 13, 2},
		{6, 4, 3, 17, 9},
		{19, 5, 6, 9, 4},
	}
	for _, impl := range testImpls() {
		for ci, tc := range cases {
			for _, n := range []int{2, 4} {
				t.Run(fmt.Sprintf("%s/%d/F%d", impl, ci, n), func(t *testing.T) {
					defer useImpl(t, impl)()
					hw := tc.h * tc.w
					x := randSlice(rng, tc.planes*tc.c*hw) // NCHW
					res := randSlice(rng, tc.planes*tc.m*hw)
					w := randSlice(rng, tc.m*tc.c*9)
					var ww WinogradWeights
					ww.Prepare(tc.m, tc.c, n, w)
					th, tw := (tc.h+n-1)/n, (tc.w+n-1)/n
					ps := WinogradPlane(tc.h, tc.w, n)
					cs := tc.planes*ps + 5 // a gap between channels
					l := ParityLayout{N: n, CS: cs, SS: tc.planes * th * tw, PS: th * tw, LD: tw}
					px := make([]float32, tc.c*cs)
					SplitParity(tc.h, tc.w, tc.c, tc.planes, x, hw, tc.c*hw, px, l)
					ep := &WinogradEpilogue{A: randSlice(rng, tc.m), B: randSlice(rng, tc.m), Lo: -1.5, Hi: 2,
						Res: make([]float32, tc.m*cs), ResCS: cs}
					SplitParity(tc.h, tc.w, tc.m, tc.planes, res, hw, tc.m*hw, ep.Res, l)
					py := randSlice(rng, tc.m*cs)
					WinogradConvStacked(&ww, tc.h, tc.w, tc.planes, px, cs, py, cs, ep)
					y := make([]float32, tc.planes*tc.m*hw)
					MergeParity(tc.h, tc.w, tc.m, tc.planes, py, l, y, hw, tc.m*hw, tc.w)
					for j := 0; j < tc.planes; j++ {
						want := naiveConv3x3(x[j*tc.c*hw:(j+1)*tc.c*hw], w, tc.m, tc.c, tc.h, tc.w)
						for o := 0; o < tc.m; o++ {
							for p := 0; p < hw; p++ {
								i := (j*tc.m+o)*hw + p
								v := float64(ep.A[o])*want[o*hw+p] + float64(ep.B[o]) + float64(res[i])
								v = math.Min(math.Max(v, -1.5), 2)
								tol := 1e-6
								if n == 4 {
									tol = 3e-5
								}
								if d := math.Abs(float64(y[i]) - v); d > tol*(1+math.Abs(v))*math.Sqrt(float64(9*tc.c)) {
									t.Fatalf("channel %d image %d position %d: got %v, want %v", o, j, p, y[i], v)
								}
							}
						}
					}
				})
			}
		}
	}
}

// BenchmarkWinograd times the ResNet-20 layer shapes (C = M, planes
// images per call) on one goroutine, parity or stacked layout in and out.
func BenchmarkWinograd(b *testing.B) {
	for _, s := range []struct {
		c, hw, planes, n int
		stacked          bool
	}{{16, 28, 1, 2, false}, {16, 28, 1, 4, false}, {32, 14, 3, 2, false}, {64, 7, 8, 2, false},
		{16, 28, 3, 4, true}, {32, 14, 2, 4, true}, {64, 7, 8, 2, true}, {64, 7, 8, 4, true}} {
		b.Run(fmt.Sprintf("F%d_c%d_%dx%d_n%d_stacked%v", s.n, s.c, s.hw, s.hw, s.planes, s.stacked), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			ps := WinogradPlane(s.hw, s.hw, s.n)
			x := randSlice(rng, s.c*s.planes*ps)
			w := randSlice(rng, s.c*s.c*9)
			y := make([]float32, s.c*s.planes*ps)
			var ww WinogradWeights
			ww.Prepare(s.c, s.c, s.n, w)
			b.ResetTimer()
			conv := WinogradConv
			if s.stacked {
				conv = WinogradConvStacked
			}
			for i := 0; i < b.N; i++ {
				conv(&ww, s.hw, s.hw, s.planes, x, s.planes*ps, y, s.planes*ps, nil)
			}
			b.ReportMetric(float64(2*9*s.c*s.c*s.hw*s.hw*s.planes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// TestParityCopies checks SplitParity in a padded layout with gaps (every
// sub-plane element lands where ParityLayout says, the rest is untouched),
// MergeParity back from it, and Subsample2, on odd and even sizes and wide
// rows, for every implementation.
func TestParityCopies(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	for _, impl := range testImpls() {
		for _, sz := range [][2]int{{1, 1}, {5, 7}, {8, 8}, {13, 70}, {28, 28}, {3, 130}} {
			for _, n := range []int{2, 4} {
				t.Run(fmt.Sprintf("%s/%dx%d/N%d", impl, sz[0], sz[1], n), func(t *testing.T) {
					defer useImpl(t, impl)()
					h, w := sz[0], sz[1]
					th, tw := (h+n-1)/n, (w+n-1)/n
					const ch, planes = 2, 3
					xcs, xps := h*w+3, 2*(h*w+3)+1
					x := randSlice(rng, planes*xps)
					l := ParityLayout{N: n, LD: tw + 2, Off: tw + 3}
					l.PS = (th+2)*l.LD + 1
					l.SS = planes*l.PS + 2
					l.CS = n*n*l.SS + 5
					y := randSlice(rng, ch*l.CS)
					keep := append([]float32(nil), y...)
					SplitParity(h, w, ch, planes, x, xcs, xps, y, l)
					written := make([]bool, len(y))
					for c := 0; c < ch; c++ {
						for j := 0; j < planes; j++ {
							for r := 0; r < h; r++ {
								for col := 0; col < w; col++ {
									i := c*l.CS + (r%n*n+col%n)*l.SS + j*l.PS + l.Off + r/n*l.LD + col/n
									written[i] = true
									if y[i] != x[c*xcs+j*xps+r*w+col] {
										t.Fatalf("channel %d image %d (%d, %d): got %v, want %v", c, j, r, col, y[i], x[c*xcs+j*xps+r*w+col])
									}
								}
							}
						}
					}
					for i := range y {
						// Positions past the image within a sub-plane row may
						// be zeroed; nothing outside the sub-planes changes.
						if !written[i] && y[i] != keep[i] && y[i] != 0 {
							t.Fatalf("element %d outside the image changed to %v", i, y[i])
						}
					}
					// MergeParity puts them back, rows with a gap, and writes
					// nothing else.
					yld := w + 3
					back := randSlice(rng, ch*planes*h*yld)
					before := append([]float32(nil), back...)
					MergeParity(h, w, ch, planes, y, l, back, planes*h*yld, h*yld, yld)
					for i, v := range back {
						c, j, r, col := i/(planes*h*yld), i/(h*yld)%planes, i/yld%h, i%yld
						want := before[i]
						if col < w {
							want = x[c*xcs+j*xps+r*w+col]
						}
						if v != want {
							t.Fatalf("merged channel %d image %d (%d, %d): got %v, want %v", c, j, r, col, v, want)
						}
					}
					if n != 2 {
						return
					}
					oh, ow := (h+1)/2, (w+1)/2
					s := randSlice(rng, ch*planes*oh*ow)
					Subsample2(h, w, ch, planes, x, xcs, xps, s, planes*oh*ow, oh*ow)
					for c := 0; c < ch; c++ {
						for j := 0; j < planes; j++ {
							for r := 0; r < oh; r++ {
								for col := 0; col < ow; col++ {
									if got, want := s[(c*planes+j)*oh*ow+r*ow+col], x[c*xcs+j*xps+2*r*w+2*col]; got != want {
										t.Fatalf("subsample channel %d image %d (%d, %d): got %v, want %v", c, j, r, col, got, want)
									}
								}
							}
						}
					}
				})
			}
		}
	}
}
