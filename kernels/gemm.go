package kernels

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
// where op(A) is m×k (A is m×k, or k×m when transA) and op(B) is k×n (B is
// k×n, or n×k when transB). lda, ldb and ldc are row strides. As in BLAS,
// beta == 0 overwrites C without reading it (NaNs in C do not survive),
// and when alpha == 0 or k == 0 A and B are not read. The product runs on
// packed, cache-blocked panels with a SIMD micro-kernel, split over the
// shared worker pool when it is large enough. Slices too short for the
// given sizes and strides make it panic.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivialProduct(m, n, k, alpha, beta, c, ldc) {
		return
	}
	checkOperands(transA, transB, m, n, k, a, lda, b, ldb)
	x := gemmJobs.Get()
	x.setup(current.Load(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	workers := 1
	if m*n*k >= parallelMinWork {
		workers = runtime.GOMAXPROCS(0)
	}
	x.plan(workers)
	gen := pool.newGen()
	total := x.nPack + x.nComp
	x.packDone.Store(0)
	x.work.reset(gen, total)
	if workers > 1 {
		pool.offer(x, gen, workers-1)
	}
	x.participate(gen)
	x.work.wait()
	x.a, x.b, x.c = nil, nil, nil
	if cap(x.ap) > maxKeptPack {
		x.ap = nil // do not pin the memory of one huge product
	}
	gemmJobs.Put(x)
}

// trivialProduct checks C and does the products that need no
// multiplication (C empty, k == 0 or alpha == 0: C = beta·C); it reports
// whether it did.
func trivialProduct(m, n, k int, alpha, beta float32, c []float32, ldc int) bool {
	if m <= 0 || n <= 0 {
		return true
	}
	checkMatrix("C", c, m, n, ldc)
	if k <= 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return true
	}
	return false
}

// checkOperands panics unless A and B hold op(A) (m×k) and op(B) (k×n).
func checkOperands(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int) {
	if transA {
		checkMatrix("A", a, k, m, lda)
	} else {
		checkMatrix("A", a, m, k, lda)
	}
	if transB {
		checkMatrix("B", b, n, k, ldb)
	} else {
		checkMatrix("B", b, k, n, ldb)
	}
}

// checkMatrix panics with a description if s cannot hold a rows×cols
// matrix with row stride ld.
func checkMatrix(name string, s []float32, rows, cols, ld int) {
	if ld < max(cols, 1) || len(s) < (rows-1)*ld+cols {
		panic(fmt.Sprintf("kernels: Sgemm: %s is %d×%d with stride %d but has %d elements", name, rows, cols, ld, len(s)))
	}
}

// scaleMatrix sets C = beta·C (zero when beta == 0, whatever C held).
func scaleMatrix(m, n int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			Scale(beta, row)
		}
	}
}

// parallelMinWork is the m·n·k below which Sgemm stays on one goroutine:
// below that, moving packed data and C between cores costs more than the
// second core gains (measured crossover: about 150³).
const parallelMinWork = 1 << 22

// gemmJob holds one Sgemm call: operands, the packed op(A), and the chunk
// plan. Its chunks are first the packing of op(A) (per k block, groups of
// mr-row panels), then blocks of C (groups of panels × groups of nr
// columns), each of which packs its own slice of op(B) per k block and
// runs the micro-kernel over it. Jobs are recycled, so steady-state calls
// do not allocate.
type gemmJob struct {
	im             *impl
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
	boffs          []int32 // transB with row j of B at b[boffs[j]:] (SgemmRowsT)

	ap       []float32 // packed op(A): k block kb at kb·kc·mpad, panel q at q·mr·kc' within (kc' its depth)
	mpad     int       // m rounded up to whole panels
	kc       int       // depth of the k blocks (the last may be shorter)
	panels   int       // mr-row panels of op(A)
	kblocks  int
	group    int // panels per packing chunk
	groups   int // packing chunks per k block
	nPack    int
	rowStep  int // panels per C block
	colStep  int // columns per C block (a multiple of nr)
	colBlks  int
	nComp    int
	work     chunks
	packDone atomic.Int64
}

var gemmJobs FreeList[gemmJob]

func (x *gemmJob) setup(im *impl, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	x.im, x.transA, x.transB = im, transA, transB
	x.m, x.n, x.k = m, n, k
	x.alpha, x.beta = alpha, beta
	x.a, x.b, x.c = a, b, c
	x.lda, x.ldb, x.ldc = lda, ldb, ldc
	x.boffs = nil
}

// plan sizes the packed A and splits the work into chunks for workers
// goroutines: enough C blocks that a late or slow goroutine leaves work
// for the others, few enough that each packs a useful slice of B.
func (x *gemmJob) plan(workers int) {
	im := x.im
	x.panels = (x.m + im.mr - 1) / im.mr
	x.mpad = x.panels * im.mr
	// Equal k blocks of at most im.kc (a multiple of 8 where possible), so
	// that no block is a thin remainder.
	x.kblocks = (x.k + im.kc - 1) / im.kc
	x.kc = min(im.kc, roundUp((x.k+x.kblocks-1)/x.kblocks, 8))
	growFloats(&x.ap, x.mpad*x.k)

	x.group = x.panels
	if workers > 1 {
		x.group = max(1, (x.panels+chunksPerWorker*workers-1)/(chunksPerWorker*workers))
	}
	x.groups = (x.panels + x.group - 1) / x.group
	x.nPack = x.kblocks * x.groups

	// C blocks: narrow column blocks first (each packs a disjoint slice of
	// B); split rows too only when columns are scarce and every row block
	// stays tall enough to amortize packing its own copy of the B slice.
	want := 1
	if workers > 1 {
		want = chunksPerWorker * workers
	}
	x.colStep = min(im.nc, max(im.nr, roundUp((x.n+want-1)/want, im.nr)))
	x.colBlks = (x.n + x.colStep - 1) / x.colStep
	rowBlks := 1
	if x.colBlks < 2*workers {
		rowBlks = max(1, min((want+x.colBlks-1)/x.colBlks, x.m/minRowBlock))
	}
	x.rowStep = (x.panels + rowBlks - 1) / rowBlks
	rowBlks = (x.panels + x.rowStep - 1) / x.rowStep
	x.nComp = rowBlks * x.colBlks
}

// maxKeptPack is the largest packed-A buffer (in floats) kept for reuse.
const maxKeptPack = 1 << 22

// minRowBlock is the fewest rows of C worth a private copy of a B slice.
const minRowBlock = 128

func roundUp(v, unit int) int { return (v + unit - 1) / unit * unit }

func (x *gemmJob) participate(gen uint32) (woke bool) {
	var bp *[]float32
	for {
		i, ok := x.work.next(gen)
		if !ok {
			break
		}
		if i < x.nPack {
			x.packAChunk(i)
			x.packDone.Add(1)
		} else {
			if bp == nil {
				bp = panelBufs.Get()
				growFloats(bp, x.kc*x.colStep)
			}
			nPack := int64(x.nPack)
			waitFor(func() bool { return x.packDone.Load() >= nPack })
			x.computeChunk(i-x.nPack, *bp)
		}
		woke = x.work.finish()
	}
	if bp != nil {
		panelBufs.Put(bp)
	}
	return woke
}

// packAChunk packs one group of panels of one k block of op(A).
func (x *gemmJob) packAChunk(i int) {
	mr := x.im.mr
	kb, g := i/x.groups, i%x.groups
	pc := kb * x.kc
	kc := min(x.kc, x.k-pc)
	q0 := g * x.group
	q1 := min(q0+x.group, x.panels)
	dst := x.ap[kb*x.kc*x.mpad:]
	x.packA(dst[q0*mr*kc:], q0*mr, min(q1*mr, x.m)-q0*mr, pc, kc)
}

// computeChunk runs one block of C over all k blocks.
func (x *gemmJob) computeChunk(i int, bp []float32) {
	im := x.im
	mr, nr := im.mr, im.nr
	q0 := i / x.colBlks * x.rowStep
	q1 := min(q0+x.rowStep, x.panels)
	j0 := i % x.colBlks * x.colStep
	cols := min(x.colStep, x.n-j0)
	for kb := 0; kb < x.kblocks; kb++ {
		pc := kb * x.kc
		kc := min(x.kc, x.k-pc)
		x.packB(bp, pc, kc, j0, 0, cols)
		beta := x.beta
		if kb > 0 {
			beta = 1
		}
		apb := x.ap[kb*x.kc*x.mpad:]
		for q := q0; q < q1; q++ {
			rows := min(mr, x.m-q*mr)
			apan := apb[q*mr*kc : (q+1)*mr*kc]
			for jr := 0; jr < cols; jr += nr {
				off := q*mr*x.ldc + j0 + jr
				im.kernel(kc, apan, bp[jr*kc:(jr+nr)*kc], x.c[off:], x.ldc, x.alpha, beta, rows, min(nr, cols-jr))
			}
		}
	}
}

// panelBufs recycles the buffers of packed B slices.
var panelBufs FreeList[[]float32]

// serialWideFloats bounds the packed B block (kc × columns, in floats) of
// a single-goroutine product that takes all its columns in one block.
const serialWideFloats = 1 << 18

// serialColStep is the column block of a single-goroutine product: all
// of C's columns when their packed B block fits serialWideFloats (1 MiB),
// else nc. One block writes each row of C as one run and packs each row
// of B in one pass; blocks of nc columns would write the rows of a short
// and wide product (a convolution with few input channels over a large
// image: k = 16..32, n = 1024) as short runs a page apart, which costs
// far more than the arithmetic.
func (x *gemmJob) serialColStep() int {
	cols := roundUp(x.n, x.im.nr)
	if x.kc*cols <= serialWideFloats {
		return cols
	}
	return min(x.im.nc, cols)
}
