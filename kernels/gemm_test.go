package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
)

// naiveGemm is the float64 reference of Sgemm.
func naiveGemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if tA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if tB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			v := float64(alpha) * s
			if beta != 0 {
				v += float64(beta) * float64(c[i*ldc+j])
			}
			c[i*ldc+j] = float32(v)
		}
	}
}

type gemmCase struct {
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
	pad         int // extra elements per row beyond the logical width
}

// sgemmFunc has Sgemm's signature (Sgemm, SgemmSerial, or PackedA with
// SgemmPacked).
type sgemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

func runGemmCase(t *testing.T, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	runGemmCaseWith(t, rng, tc, Sgemm)
}

func runGemmCaseWith(t *testing.T, rng *rand.Rand, tc gemmCase, gemm sgemmFunc) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.tA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.tB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
	a := randSlice(rng, max(ar*lda, 1))
	b := randSlice(rng, max(br*ldb, 1))
	c := randSlice(rng, tc.m*ldc)
	if tc.beta == 0 {
		for i := range c {
			if i%3 == 0 {
				c[i] = float32(math.NaN())
			}
		}
	}
	want := append([]float32(nil), c...)
	naiveGemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, want, ldc)
	gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	tol := 1e-5 * math.Sqrt(float64(tc.k)+1)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < ldc; j++ {
			got, w := c[i*ldc+j], want[i*ldc+j]
			if j >= tc.n {
				// Padding beyond n must be untouched (compare bit patterns: may be NaN).
				if math.Float32bits(got) != math.Float32bits(w) {
					t.Fatalf("%+v: padding C[%d][%d] changed to %g", tc, i, j, got)
				}
				continue
			}
			if d := math.Abs(float64(got) - float64(w)); !(d <= tol*(1+math.Abs(float64(w)))) {
				t.Fatalf("%+v: C[%d][%d] = %g, want %g", tc, i, j, got, w)
			}
		}
	}
}

func TestSgemm(t *testing.T) {
	sizes := []int{1, 7, 16, 33, 65, 127}
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2, -1}}
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(3, 4))
			i := 0
			for _, m := range sizes {
				for _, n := range sizes {
					for _, k := range []int{1, 7, 33, 300} {
						for tr := 0; tr < 4; tr++ {
							ab := scalars[i%len(scalars)]
							i++
							runGemmCase(t, rng, gemmCase{tA: tr&1 != 0, tB: tr&2 != 0, m: m, n: n, k: k, alpha: ab[0], beta: ab[1], pad: i % 3 * 5})
						}
					}
				}
			}
		})
	}
}

// TestSgemmLarge covers the multi-task paths (row and column splits, more
// than one k block, edge tiles in both directions).
func TestSgemmLarge(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	cases := []gemmCase{
		{m: 300, n: 290, k: 520, alpha: 1, beta: 0},
		{tA: true, m: 257, n: 300, k: 270, alpha: 0.5, beta: 1.5, pad: 3},
		{tB: true, m: 15, n: 2500, k: 100, alpha: 1, beta: 1},
		{tA: true, tB: true, m: 500, n: 40, k: 65, alpha: -1, beta: 0, pad: 1},
		{m: 2100, n: 3, k: 200, alpha: 1, beta: 0.25},
		{tB: true, m: 70, n: 4100, k: 9, alpha: 2, beta: 0},
	}
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(5, 6))
			for _, tc := range cases {
				runGemmCase(t, rng, tc)
			}
		})
	}
}

func TestSgemmSpecialScalars(t *testing.T) {
	nan := float32(math.NaN())
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			// alpha == 0: A and B are not read, C = beta·C.
			a := []float32{nan, nan, nan, nan}
			c := []float32{1, 2, 3, 4}
			Sgemm(false, false, 2, 2, 2, 0, a, 2, a, 2, 3, c, 2)
			for i, v := range []float32{3, 6, 9, 12} {
				if c[i] != v {
					t.Fatalf("alpha=0: c = %v", c)
				}
			}
			// k == 0 with beta == 0 clears C, even NaNs.
			c = []float32{nan, nan}
			Sgemm(false, false, 1, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
			if c[0] != 0 || c[1] != 0 {
				t.Fatalf("k=0, beta=0: c = %v", c)
			}
			// m == 0 and n == 0 are no-ops.
			Sgemm(false, false, 0, 5, 5, 1, nil, 5, nil, 5, 0, nil, 5)
		})
	}
}

func TestSgemmShortSlicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Sgemm accepted a too-short A")
		}
	}()
	Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4)
}

func TestSgemmNoAllocs(t *testing.T) {
	const n = 200
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	Sgemm(false, true, n, n, n, 1, a, n, b, n, 0, c, n)
	allocs := testing.AllocsPerRun(20, func() {
		Sgemm(false, true, n, n, n, 1, a, n, b, n, 0, c, n)
	})
	if allocs != 0 {
		t.Fatalf("Sgemm allocates %v times per call in steady state", allocs)
	}
}

// TestSgemmConcurrent runs products from several goroutines at once and
// from inside Parallel, exercising the busy-pool fallback.
func TestSgemmConcurrent(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	rng := rand.New(rand.NewPCG(7, 8))
	const m, n, k = 170, 190, 150 // above parallelMinWork
	a, b := randSlice(rng, m*k), randSlice(rng, k*n)
	want := make([]float32, m*n)
	naiveGemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
	errs := make(chan error, 8)
	for g := 0; g < 4; g++ {
		go func() {
			c := make([]float32, m*n)
			for it := 0; it < 5; it++ {
				Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
				if err := compareSlices(c, want, 1e-4); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	results := make([][]float32, 4)
	Parallel(4, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			results[i] = make([]float32, m*n)
			Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, results[i], n)
		}
	})
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range results {
		if err := compareSlices(r, want, 1e-4); err != nil {
			t.Fatal("nested:", err)
		}
	}
}

func compareSlices(got, want []float32, tol float64) error {
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol*(1+math.Abs(float64(want[i])))) {
			return fmt.Errorf("[%d] = %g, want %g", i, got[i], want[i])
		}
	}
	return nil
}

func BenchmarkSgemm(b *testing.B) {
	for _, impl := range testImpls() {
		for _, n := range []int{256, 512, 1024} {
			for _, tr := range []string{"NN", "NT", "TN"} {
				if tr != "NN" && n != 512 {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/%d", impl, tr, n), func(b *testing.B) {
					defer useImplB(b, impl)()
					rng := rand.New(rand.NewPCG(1, 1))
					x, y, z := randSlice(rng, n*n), randSlice(rng, n*n), make([]float32, n*n)
					tA, tB := tr[0] == 'T', tr[1] == 'T'
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						Sgemm(tA, tB, n, n, n, 1, x, n, y, n, 0, z, n)
					}
					flops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOPS")
					b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "threads")
				})
			}
		}
	}
}

func useImplB(b *testing.B, name string) func() {
	prev := Impl()
	if err := SetImpl(name); err != nil {
		b.Fatal(err)
	}
	return func() { _ = SetImpl(prev) }
}

// BenchmarkSgemmShapes covers convolution- and linear-layer-shaped
// products: (m, n, k) = (out channels, OH·OW, C·KH·KW) and friends.
func BenchmarkSgemmShapes(b *testing.B) {
	shapes := []struct {
		name    string
		tA, tB  bool
		m, n, k int
	}{
		{"conv3x3_c32_56", false, false, 32, 3136, 288},
		{"conv1x1_c64_28", false, false, 128, 784, 64},
		{"conv_dW_c32_56", false, true, 32, 288, 3136},
		{"conv_dX_c32_56", true, false, 288, 3136, 32},
		{"linear_b64", false, true, 64, 1000, 1024},
		{"small_64", false, false, 64, 64, 64},
	}
	for _, s := range shapes {
		b.Run(s.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x := randSlice(rng, s.m*s.k)
			y := randSlice(rng, s.k*s.n)
			z := make([]float32, s.m*s.n)
			lda, ldb := s.k, s.n
			if s.tA {
				lda = s.m
			}
			if s.tB {
				ldb = s.k
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, z, s.n)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// TestSgemmPackedColumnBlocks checks SgemmPacked on both sides of its
// column blocking (serialColStep) against the float64 reference on every
// implementation: short, wide products taken in one block of all columns
// (k = 24 over 1000 columns, transposed B too, and a second k block), and
// products whose packed B would exceed the bound, split into blocks of nc
// columns with a partial last one.
func TestSgemmPackedColumnBlocks(t *testing.T) {
	cases := []gemmCase{
		{m: 19, n: 1000, k: 24, alpha: 1, beta: 0, pad: 3},
		{m: 9, n: 1025, k: 17, alpha: -0.5, beta: 2, tB: true, pad: 1},
		{m: 13, n: 333, k: 600, alpha: 1, beta: 1},
		{m: 13, n: 1500, k: 200, alpha: 2, beta: 0, pad: 5},
		{m: 7, n: 2100, k: 130, alpha: 1, beta: -1, tB: true},
	}
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			im := current.Load()
			rng := rand.New(rand.NewPCG(21, 22))
			wide := 0
			for _, tc := range cases {
				x := gemmJob{im: im, n: tc.n}
				x.kblocks = (tc.k + im.kc - 1) / im.kc
				x.kc = min(im.kc, roundUp((tc.k+x.kblocks-1)/x.kblocks, 8))
				if x.serialColStep() >= tc.n {
					wide++
				} else if x.serialColStep()%im.nr != 0 {
					t.Fatalf("column block %d not a multiple of nr %d", x.serialColStep(), im.nr)
				}
				runGemmCaseWith(t, rng, tc, packedGemm)
			}
			if wide == 0 || wide == len(cases) {
				t.Fatalf("%d of %d cases in one column block: both blockings must be covered", wide, len(cases))
			}
		})
	}
}
