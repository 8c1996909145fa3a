package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestWindowOuter checks PanelT and WindowOuter on every implementation
// against float64 sums, for panels of 16 and 32 (the assembly kernel, with
// up to 9 taps) and others, fewer rows than the width, and lengths 1 to
// 300.
func TestWindowOuter(t *testing.T) {
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(53, 54))
			for _, c := range []struct{ taps, width, rows int }{{9, 16, 16}, {9, 32, 32}, {9, 32, 20}, {9, 16, 5}, {4, 32, 30}, {1, 16, 16}, {4, 8, 8}, {11, 16, 3}} {
				for _, k := range []int{1, 16, 37, 300} {
					const ld, ldo = 310, 35
					offs := make([]int, c.taps)
					for i := range offs {
						offs[i] = 3*i + i*i%7
					}
					x := randSlice(rng, 80+k)
					src := randSlice(rng, (c.rows-1)*ld+k)
					panel := randSlice(rng, k*c.width)
					PanelT(panel, src, ld, c.rows, k, c.width)
					out := randSlice(rng, (c.taps-1)*ldo+c.width)
					want := append([]float32(nil), out...)
					for tp := 0; tp < c.taps; tp++ {
						for j := 0; j < c.width; j++ {
							s := float64(want[tp*ldo+j])
							for p := 0; p < k && j < c.rows; p++ {
								s += float64(x[offs[tp]+p]) * float64(src[j*ld+p])
							}
							want[tp*ldo+j] = float32(s)
						}
					}
					WindowOuter(x, offs, panel, c.width, k, out, ldo)
					closeEnough(t, "WindowOuter", out, want, 1e-4)
				}
			}
		})
	}
}
