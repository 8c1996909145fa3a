package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestVectorHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, impl := range testImpls() {
		for _, n := range []int{0, 1, 7, 15, 16, 17, 33, 63, 64, 65, 127, 200, 1000} {
			t.Run(fmt.Sprintf("%s/%d", impl, n), func(t *testing.T) {
				defer useImpl(t, impl)()
				x := randSlice(rng, n)
				// y is longer than x: the extra element must stay untouched.
				y := randSlice(rng, n+1)
				want := append([]float32(nil), y...)
				for i := range x {
					want[i] += 0.7 * x[i]
				}
				Axpy(0.7, x, y)
				closeEnough(t, "Axpy", y, want, 1e-6)

				want = append(want[:0], x...)
				for i := range want {
					want[i] *= -1.25
				}
				s := append([]float32(nil), x...)
				Scale(-1.25, s)
				closeEnough(t, "Scale", s, want, 1e-6)

				a, b := randSlice(rng, n+2), randSlice(rng, n+3)
				dst := make([]float32, n)
				want = want[:0]
				for i := 0; i < n; i++ {
					want = append(want, a[i]+b[i])
				}
				Add(dst, a, b)
				closeEnough(t, "Add", dst, want, 0)
				Add(a[:n], a, b) // in place
				closeEnough(t, "Add in place", a[:n], want, 0)

				var d float64
				for i := range x {
					d += float64(x[i]) * float64(y[i])
				}
				if got := Dot(x, y); math.Abs(float64(got)-d) > 1e-5*(1+math.Abs(d))*math.Sqrt(float64(n)+1) {
					t.Fatalf("Dot = %g, want %g", got, d)
				}
			})
		}
	}
}

func BenchmarkAxpy(b *testing.B) {
	for _, impl := range testImpls() {
		b.Run(impl, func(b *testing.B) {
			defer useImplB(b, impl)()
			x, y := make([]float32, 4096), make([]float32, 4096)
			b.SetBytes(3 * 4 * 4096)
			for i := 0; i < b.N; i++ {
				Axpy(0.5, x, y)
			}
		})
	}
}

func TestDeinterleaveSpread(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, im := range impls {
		for n := 0; n <= 70; n++ {
			src := randSlice(rng, n)
			even := randSlice(rng, (n+1)/2+1)
			odd := randSlice(rng, n/2+1)
			wantEven := append([]float32(nil), even...)
			wantOdd := append([]float32(nil), odd...)
			for i, v := range src {
				if i%2 == 0 {
					wantEven[i/2] = v
				} else {
					wantOdd[i/2] = v
				}
			}
			im.deint2(even, odd, src)
			closeEnough(t, fmt.Sprintf("%s deint2 even n %d", im.name, n), even, wantEven, 0)
			closeEnough(t, fmt.Sprintf("%s deint2 odd n %d", im.name, n), odd, wantOdd, 0)

			for _, stride := range []int{1, 2, 3} {
				in := randSlice(rng, n)
				out := make([]float32, max((n-1)*stride+1, 0)+1)
				out[len(out)-1] = 42
				wantOut := make([]float32, len(out))
				wantOut[len(out)-1] = 42
				for i, v := range in {
					wantOut[i*stride] = v
				}
				im.spread(out[:len(out)-1], in, stride)
				closeEnough(t, fmt.Sprintf("%s spread stride %d n %d", im.name, stride, n), out, wantOut, 0)
			}
		}
	}
}
