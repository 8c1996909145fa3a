package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBNEach checks the BatchNorm row kernels of every implementation
// against float64 references, for run lengths around the vector widths,
// with and without the activation mask; sums accumulate and the gaps
// between runs stay untouched.
func TestBNEach(t *testing.T) {
	inf := float32(math.Inf(1))
	acts := []BNAct{{Lo: -inf, Hi: inf}, {Mask: true, Lo: 0, Hi: 6}, {Mask: true, Lo: 0, Hi: inf}}
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(31, 32))
			for _, n := range []int{1, 7, 15, 16, 17, 31, 32, 33, 64, 70} {
				for _, rows := range []int{1, 3} {
					stride := n + 5
					size := (rows-1)*stride + n
					x, dy := randSlice(rng, size), randSlice(rng, size)
					coef := make([]BNCoef, rows)
					for r := range coef {
						coef[r] = BNCoef{A: 2 + float32(r), B: -1, Shift: 2.5 - float32(r),
							Alpha: 1.5, Beta: -0.25 * float32(r+1), Delta: 0.125}
					}
					for i := range x {
						x[i] = 3 + 2*x[i]
					}
					x[0] = 0.5 // A·x+B = 0 exactly in run 0
					sums := []float64{1, 2, 3, 4, 5, 6}[:2*rows]
					want := append([]float64(nil), sums...)
					for r := 0; r < rows; r++ {
						for i := 0; i < n; i++ {
							d := float64(x[r*stride+i]) - float64(coef[r].Shift)
							want[2*r] += d
							want[2*r+1] += d * d
						}
					}
					BNMomentsEach(x, n, rows, stride, coef, sums, stride)
					for k := range sums {
						near64(t, "BNMomentsEach", k, sums[k], want[k], 1e-5*float64(n))
					}
					for _, act := range acts {
						y := randSlice(rng, size)
						wantY := append([]float32(nil), y...)
						dst := randSlice(rng, size)
						wantDst := append([]float32(nil), dst...)
						sums := make([]float64, 2*rows)
						want := make([]float64, 2*rows)
						for r := 0; r < rows; r++ {
							c := coef[r]
							for i := 0; i < n; i++ {
								k := r*stride + i
								z := float64(c.A)*float64(x[k]) + float64(c.B)
								wantY[k] = float32(math.Min(math.Max(z, float64(act.Lo)), float64(act.Hi)))
								g := float64(dy[k])
								if act.Mask && !(z > float64(act.Lo) && z < float64(act.Hi)) {
									g = 0
								}
								d := float64(x[k]) - float64(c.Shift)
								want[2*r] += g
								want[2*r+1] += g * d
								wantDst[k] = float32(float64(c.Alpha)*g + float64(c.Beta)*d + float64(c.Delta))
							}
						}
						BNApplyEach(y, x, nil, n, rows, stride, coef, act, stride)
						closeEnough(t, "BNApplyEach", y, wantY, 1e-6)
						// With a residual: the rounding of Affine, Add and
						// Clamp, and the mask read from the output.
						res := randSlice(rng, size)
						yr := append([]float32(nil), y...)
						wantR := append([]float32(nil), y...)
						dz := randSlice(rng, size)
						wantDZ := append([]float32(nil), dz...)
						wantRS := make([]float64, 2*rows)
						for r := 0; r < rows; r++ {
							w := wantR[r*stride : r*stride+n]
							Affine(w, x[r*stride:], coef[r].A, coef[r].B)
							Add(w, w, res[r*stride:])
							AffineClamp(w, w, 1, 0, act.Lo, act.Hi)
							for i := 0; i < n; i++ {
								k := r*stride + i
								g := dy[k]
								if act.Mask && !(w[i] > act.Lo && w[i] < act.Hi) {
									g = 0
								}
								wantDZ[k] = g
								wantRS[2*r] += float64(g)
								wantRS[2*r+1] += float64(g) * (float64(x[k]) - float64(coef[r].Shift))
							}
						}
						BNApplyEach(yr, x, res, n, rows, stride, coef, act, 0)
						closeEnough(t, "BNApplyEach with residual", yr, wantR, 0)
						rsums := make([]float64, 2*rows)
						BNMaskSumsEach(dz, dy, yr, x, n, rows, stride, coef, act, rsums, stride)
						closeEnough(t, "BNMaskSumsEach gradient", dz, wantDZ, 0)
						for k := range rsums {
							near64(t, "BNMaskSumsEach", k, rsums[k], wantRS[k], 1e-5*float64(n))
						}
						BNSumsEach(dy, x, n, rows, stride, coef, act, sums, 0)
						for k := range sums {
							near64(t, "BNSumsEach", k, sums[k], want[k], 1e-5*float64(n))
						}
						BNGradEach(dst, dy, x, n, rows, stride, coef, act, stride)
						closeEnough(t, "BNGradEach", dst, wantDst, 1e-5)
					}
				}
			}
		})
	}
}

// TestBNEachMaskMatchesClamp checks that the recomputed activation mask is
// exactly the one Relu/Clip read from the output of BNApplyEach (the fused
// forward), including values on the clamp bounds and NaN.
func TestBNEachMaskMatchesClamp(t *testing.T) {
	nan := float32(math.NaN())
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(33, 34))
			const n = 53
			x := randSlice(rng, n)
			for i := range x {
				x[i] *= 4
			}
			x[3], x[4], x[5] = 0.5, 3.5, nan // on the bounds, and NaN
			x[6], x[7] = math.Nextafter32(0.5, 1), math.Nextafter32(3.5, 0)
			coef := []BNCoef{{A: 2, B: -1, Alpha: 1}}
			act := BNAct{Mask: true, Lo: 0, Hi: 6}
			y := make([]float32, n)
			BNApplyEach(y, x, nil, n, 1, n, coef, act, 0)
			dy := make([]float32, n)
			for i := range dy {
				dy[i] = 1
			}
			dx := make([]float32, n)
			BNGradEach(dx, dy, x, n, 1, n, coef, act, 0)
			want := make([]float32, n)
			MaskInside(want, dy, y, act.Lo, act.Hi)
			passed := 0.0
			for i, w := range want {
				passed += float64(w)
				if i == 5 { // NaN input: 0·(x−Shift) is NaN
					continue
				}
				if dx[i] != w {
					t.Fatalf("mask [%d] of x=%v, y=%v: %v, want %v", i, x[i], y[i], dx[i], w)
				}
			}
			sums := make([]float64, 2)
			if BNSumsEach(dy, x, n, 1, n, coef, act, sums, 0); sums[0] != passed {
				t.Fatalf("BNSumsEach counted %v passing elements, MaskInside %v", sums[0], passed)
			}
		})
	}
}

func near64(t *testing.T, what string, i int, got, want, tol float64) {
	t.Helper()
	if d := math.Abs(got - want); !(d <= tol*(1+math.Abs(want))) {
		t.Fatalf("%s [%d] = %v, want %v", what, i, got, want)
	}
}
