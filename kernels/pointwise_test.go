package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPointwise checks every pointwise helper on every implementation
// against float64 references, for lengths around the vector widths.
func TestPointwise(t *testing.T) {
	lengths := []int{0, 1, 7, 15, 16, 17, 31, 32, 33, 47, 64, 100, 1029}
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(21, 22))
			for _, n := range lengths {
				x, dy := randSlice(rng, n+3), randSlice(rng, n+3)
				for i := range x {
					x[i] = 3 + 2*x[i]
				}
				dst := randSlice(rng, n+3)
				tail := append([]float32(nil), dst[n:]...)
				Affine(dst[:n], x, 0.5, -1)
				for i := 0; i < n; i++ {
					near(t, "Affine", i, dst[i], 0.5*float64(x[i])-1, 1e-6)
				}
				AffineClamp(dst[:n], x, 2, -5, -1, 3)
				for i := 0; i < n; i++ {
					near(t, "AffineClamp", i, dst[i], math.Min(math.Max(2*float64(x[i])-5, -1), 3), 1e-6)
				}
				MaskInside(dst[:n], dy, x, 2, 4)
				for i := 0; i < n; i++ {
					want := float32(0)
					if x[i] > 2 && x[i] < 4 {
						want = dy[i]
					}
					if dst[i] != want {
						t.Fatalf("MaskInside[%d] = %v, want %v", i, dst[i], want)
					}
				}
				for i, v := range tail {
					if dst[n+i] != v {
						t.Fatalf("n=%d: element %d past the end written", n, n+i)
					}
				}
				// In place.
				y := append([]float32(nil), x[:n]...)
				Clamp(y, y, 1, 4)
				for i := range y {
					if want := min(max(x[i], 1), 4); y[i] != want {
						t.Fatalf("Clamp in place [%d] = %v, want %v", i, y[i], want)
					}
				}
			}
			// NaN: Clamp keeps it, MaskInside drops it.
			nan := float32(math.NaN())
			v := []float32{nan, 1}
			Clamp(v, v, 0, 6)
			if !math.IsNaN(float64(v[0])) || v[1] != 1 {
				t.Fatalf("Clamp(NaN, 1) = %v", v)
			}
			d := []float32{5, 5}
			MaskInside(d, d, []float32{nan, 1}, 0, 6)
			if d[0] != 0 || d[1] != 5 {
				t.Fatalf("MaskInside with NaN = %v", d)
			}
		})
	}
}

func near(t *testing.T, what string, i int, got float32, want, tol float64) {
	t.Helper()
	if d := math.Abs(float64(got) - want); !(d <= tol*(1+math.Abs(want))) {
		t.Fatalf("%s [%d] = %v, want %v", what, i, got, want)
	}
}

// TestCopyRows checks the strided row copy of every implementation; the
// gaps between destination rows stay untouched.
func TestCopyRows(t *testing.T) {
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(23, 24))
			for _, n := range []int{1, 15, 16, 17, 32, 33, 70} {
				rows, ds, ss := 5, n+3, n+7
				src := randSlice(rng, rows*ss)
				dst := randSlice(rng, rows*ds)
				want := append([]float32(nil), dst...)
				for r := 0; r < rows; r++ {
					copy(want[r*ds:r*ds+n], src[r*ss:r*ss+n])
				}
				current.Load().copyRows(dst, src, n, rows, ds, ss)
				closeEnough(t, "copyRows", dst, want, 0)
			}
		})
	}
}

// TestEpilogueRows checks the strided epilogue (with and without a
// residual) on every implementation against the separate helpers, which
// the fused inference path must match.
func TestEpilogueRows(t *testing.T) {
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(25, 26))
			for _, n := range []int{1, 7, 16, 28, 33} {
				rows, ds, ss := 4, n+1, n+2
				src, res := randSlice(rng, rows*ss), randSlice(rng, rows*ds)
				for _, withRes := range []bool{false, true} {
					dst := randSlice(rng, rows*ds)
					want := append([]float32(nil), dst...)
					for r := 0; r < rows; r++ {
						w := want[r*ds : r*ds+n]
						Affine(w, src[r*ss:], 1.5, -0.25)
						if withRes {
							Add(w, w, res[r*ds:])
						}
						Clamp(w, w, 0, 1)
					}
					var rs []float32
					if withRes {
						rs = res
					}
					EpilogueRows(dst, src, rs, n, rows, ds, ss, 1.5, -0.25, 0, 1)
					closeEnough(t, "EpilogueRows", dst, want, 0)
				}
			}
		})
	}
}
