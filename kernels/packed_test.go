package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// packedGemm runs a product through PackedA.Pack and SgemmPacked.
func packedGemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	var p PackedA
	p.Pack(tA, m, k, a, lda)
	SgemmPacked(&p, tB, n, alpha, b, ldb, beta, c, ldc)
}

// TestSgemmPackedAndSerial checks the single-goroutine products against
// the float64 reference on odd sizes, all transposes, strided operands,
// several k blocks and both dispatch paths.
func TestSgemmPackedAndSerial(t *testing.T) {
	funcs := map[string]sgemmFunc{"packed": packedGemm, "serial": SgemmSerial}
	sizes := []int{1, 7, 16, 33, 65}
	scalars := [][2]float32{{1, 0}, {1, 1}, {-0.5, 2}, {2, -1}}
	for _, impl := range testImpls() {
		for name, fn := range funcs {
			t.Run(impl+"/"+name, func(t *testing.T) {
				defer useImpl(t, impl)()
				rng := rand.New(rand.NewPCG(11, 12))
				i := 0
				for _, m := range sizes {
					for _, n := range sizes {
						for _, k := range []int{1, 9, 144, 700} {
							for tr := 0; tr < 4; tr++ {
								ab := scalars[i%len(scalars)]
								i++
								runGemmCaseWith(t, rng, gemmCase{tA: tr&1 != 0, tB: tr&2 != 0, m: m, n: n, k: k, alpha: ab[0], beta: ab[1], pad: i % 3 * 5}, fn)
							}
						}
					}
				}
				// Wide C: several column blocks.
				runGemmCaseWith(t, rng, gemmCase{m: 20, n: 1000, k: 50, alpha: 1, beta: 0.5, pad: 2}, fn)
			})
		}
	}
}

// TestPackedReuse packs once and multiplies against several right-hand
// sides, and repacks a smaller operand into the same PackedA.
func TestPackedReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	var p PackedA
	for _, sz := range [][3]int{{40, 30, 600}, {9, 17, 5}} {
		m, n, k := sz[0], sz[1], sz[2]
		a := randSlice(rng, m*k)
		p.Pack(false, m, k, a, k)
		if p.Rows() != m || p.Depth() != k {
			t.Fatalf("Rows, Depth = %d, %d, want %d, %d", p.Rows(), p.Depth(), m, k)
		}
		for it := 0; it < 3; it++ {
			b := randSlice(rng, k*n)
			want := make([]float32, m*n)
			naiveGemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
			got := make([]float32, m*n)
			SgemmPacked(&p, false, n, 1, b, n, 0, got, n)
			if err := compareSlices(got, want, 1e-4); err != nil {
				t.Fatalf("%v, rhs %d: %v", sz, it, err)
			}
		}
	}
}

func TestSgemmPackedNoAllocs(t *testing.T) {
	const m, n, k = 64, 300, 150
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	var p PackedA
	p.Pack(false, m, k, a, k)
	SgemmPacked(&p, false, n, 1, b, n, 0, c, n)
	SgemmSerial(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
	allocs := testing.AllocsPerRun(20, func() {
		p.Pack(false, m, k, a, k)
		SgemmPacked(&p, false, n, 1, b, n, 0, c, n)
		SgemmSerial(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
	})
	if allocs != 0 {
		t.Fatalf("Pack/SgemmPacked/SgemmSerial allocate %v times per call in steady state", allocs)
	}
}

// TestSgemmPackedOffsets checks the row-offset product against the
// reference with B gathered explicitly, on every implementation: odd
// sizes, partial column tiles, overlapping and shifted rows, several k
// blocks, alpha and beta.
func TestSgemmPackedOffsets(t *testing.T) {
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(15, 16))
			for _, sz := range [][3]int{{1, 1, 1}, {7, 33, 9}, {16, 784, 144}, {9, 50, 600}, {64, 70, 576}, {20, 5, 1100}} {
				m, n, k := sz[0], sz[1], sz[2]
				b := randSlice(rng, n+3*k+40)
				offs := make([]int, k)
				for r := range offs {
					offs[r] = rng.IntN(len(b) - n + 1)
				}
				dense := make([]float32, k*n)
				for r, o := range offs {
					copy(dense[r*n:(r+1)*n], b[o:o+n])
				}
				a := randSlice(rng, m*k)
				for _, ab := range [][2]float32{{1, 0}, {-0.5, 2}} {
					ldc := n + 2
					c := randSlice(rng, m*ldc)
					want := append([]float32(nil), c...)
					naiveGemm(false, false, m, n, k, ab[0], a, k, dense, n, ab[1], want, ldc)
					var p PackedA
					p.Pack(false, m, k, a, k)
					SgemmPackedOffsets(&p, n, ab[0], b, offs, ab[1], c, ldc)
					if err := compareSlices(c, want, 1e-5*math.Sqrt(float64(k))); err != nil {
						t.Fatalf("%v alpha,beta %v: %v", sz, ab, err)
					}
				}
			}
		})
	}
}

func TestSgemmPackedOffsetsRejectsOutOfRange(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an offset past the end of B was accepted")
		}
	}()
	var p PackedA
	p.Pack(false, 2, 2, make([]float32, 4), 2)
	SgemmPackedOffsets(&p, 4, 1, make([]float32, 10), []int{0, 7}, 0, make([]float32, 8), 4)
}

// TestSgemmRowsT checks C = A·Bᵀ with B's rows at offsets against the
// reference with B gathered, on every implementation (full and narrow
// column panels, several k blocks).
func TestSgemmRowsT(t *testing.T) {
	for _, impl := range testImpls() {
		t.Run(impl, func(t *testing.T) {
			defer useImpl(t, impl)()
			rng := rand.New(rand.NewPCG(17, 18))
			for _, sz := range [][3]int{{1, 1, 1}, {16, 144, 840}, {7, 33, 9}, {5, 9, 1300}, {40, 70, 64}} {
				m, n, k := sz[0], sz[1], sz[2]
				b := randSlice(rng, k+2*n+50)
				offs := make([]int32, n)
				dense := make([]float32, n*k) // B, n×k
				for j := range offs {
					offs[j] = int32(rng.IntN(len(b) - k + 1))
					copy(dense[j*k:(j+1)*k], b[offs[j]:int(offs[j])+k])
				}
				lda, ldc := k+1, n+3
				a := randSlice(rng, m*lda)
				c := randSlice(rng, m*ldc)
				want := append([]float32(nil), c...)
				naiveGemm(false, true, m, n, k, 0.5, a, lda, dense, k, 1, want, ldc)
				SgemmRowsT(m, n, k, 0.5, a, lda, b, offs, 1, c, ldc)
				if err := compareSlices(c, want, 1e-5*math.Sqrt(float64(k))); err != nil {
					t.Fatalf("%v: %v", sz, err)
				}
			}
		})
	}
}
