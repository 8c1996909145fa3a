package kernels

import "fmt"

// PackedA is op(A) of a product packed once into the micro-kernel's panel
// layout, so that many products with the same left operand (a convolution's
// weights against every image of a batch) skip re-packing it. The zero
// value is empty; Pack fills it and may be called again to reuse its
// memory.
type PackedA struct {
	im      *impl
	m, k    int
	mpad    int // m rounded up to whole panels
	kc      int // depth of the k blocks (the last may be shorter)
	kblocks int
	data    []float32
}

// Rows and Depth return the m and k of the packed m×k operand.
func (p *PackedA) Rows() int  { return p.m }
func (p *PackedA) Depth() int { return p.k }

// Pack packs op(A), which is m×k (A is m×k, or k×m when transA, with row
// stride lda), for the implementation currently selected. It runs on the
// calling goroutine. Slices too short for the sizes make it panic.
func (p *PackedA) Pack(transA bool, m, k int, a []float32, lda int) {
	im := current.Load()
	p.im, p.m, p.k = im, max(m, 0), max(k, 0)
	if m <= 0 || k <= 0 {
		p.data = p.data[:0]
		return
	}
	if transA {
		checkMatrix("A", a, k, m, lda)
	} else {
		checkMatrix("A", a, m, k, lda)
	}
	x := gemmJobs.Get()
	x.setup(im, transA, false, m, 1, k, 1, a, lda, nil, 0, 0, nil, 0)
	x.panels = (m + im.mr - 1) / im.mr
	x.mpad = x.panels * im.mr
	x.kblocks = (k + im.kc - 1) / im.kc
	x.kc = min(im.kc, roundUp((k+x.kblocks-1)/x.kblocks, 8))
	p.mpad, p.kc, p.kblocks = x.mpad, x.kc, x.kblocks
	growFloats(&p.data, p.mpad*k)
	for kb := 0; kb < p.kblocks; kb++ {
		pc := kb * p.kc
		x.packA(p.data[kb*p.kc*p.mpad:], 0, m, pc, min(p.kc, k-pc))
	}
	x.a = nil
	gemmJobs.Put(x)
}

// SgemmPacked computes C = alpha·op(A)·op(B) + beta·C like Sgemm with op(A)
// taken from p (m×k), op(B) k×n (B is k×n, or n×k when transB). It runs
// entirely on the calling goroutine, for callers that already spread
// independent products over the workers; it does not allocate in steady
// state. Slices too short for the sizes make it panic.
func SgemmPacked(p *PackedA, transB bool, n int, alpha float32, b []float32, ldb int, beta float32, c []float32, ldc int) {
	m, k := p.m, p.k
	if trivialProduct(m, n, k, alpha, beta, c, ldc) {
		return
	}
	if transB {
		checkMatrix("B", b, n, k, ldb)
	} else {
		checkMatrix("B", b, k, n, ldb)
	}
	x := gemmJobs.Get()
	own := x.ap
	x.setup(p.im, false, transB, m, n, k, alpha, nil, 0, b, ldb, beta, c, ldc)
	x.ap, x.mpad, x.kc, x.kblocks = p.data, p.mpad, p.kc, p.kblocks
	x.panels = x.mpad / p.im.mr
	x.serialPlan()
	bp := panelBufs.Get()
	growFloats(bp, x.kc*x.colStep)
	for i := 0; i < x.nComp; i++ {
		x.computeChunk(i, *bp)
	}
	panelBufs.Put(bp)
	x.ap = own
	x.b, x.c = nil, nil
	gemmJobs.Put(x)
}

// SgemmSerial is Sgemm on the calling goroutine only (for callers that
// already run one product per worker).
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if trivialProduct(m, n, k, alpha, beta, c, ldc) {
		return
	}
	checkOperands(transA, transB, m, n, k, a, lda, b, ldb)
	x := gemmJobs.Get()
	x.setup(current.Load(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	x.runSerial()
}

// runSerial plans x for one goroutine, runs it and recycles it.
func (x *gemmJob) runSerial() {
	x.plan(1)
	for i := 0; i < x.nPack; i++ {
		x.packAChunk(i)
	}
	bp := panelBufs.Get()
	growFloats(bp, x.kc*x.colStep)
	for i := 0; i < x.nComp; i++ {
		x.computeChunk(i, *bp)
	}
	panelBufs.Put(bp)
	x.a, x.b, x.c, x.boffs = nil, nil, nil, nil
	if cap(x.ap) > maxKeptPack {
		x.ap = nil
	}
	gemmJobs.Put(x)
}

// serialPlan splits C into column blocks for one goroutine, all rows per
// block, once the k blocking is set (see serialColStep).
func (x *gemmJob) serialPlan() {
	x.nPack = 0
	x.colStep = x.serialColStep()
	x.colBlks = (x.n + x.colStep - 1) / x.colStep
	x.rowStep = x.panels
	x.nComp = x.colBlks
}

// SgemmRowsT computes C = alpha·A·Bᵀ + beta·C on the calling goroutine,
// where A is m×k (row stride lda) and row j < n of B is b[offs[j] :
// offs[j]+k]: the rows may sit anywhere in b. A stride-1 convolution's
// weight gradient multiplies the output gradient with shifted windows of
// the padded input this way, without an im2col copy. Offsets or slices out
// of range make it panic; it does not allocate in steady state.
func SgemmRowsT(m, n, k int, alpha float32, a []float32, lda int, b []float32, offs []int32, beta float32, c []float32, ldc int) {
	if trivialProduct(m, n, k, alpha, beta, c, ldc) {
		return
	}
	checkMatrix("A", a, m, k, lda)
	if len(offs) < n {
		panic(fmt.Sprintf("kernels: SgemmRowsT: %d row offsets for %d rows", len(offs), n))
	}
	for _, o := range offs[:n] {
		if o < 0 || int(o)+k > len(b) {
			panic(fmt.Sprintf("kernels: SgemmRowsT: row at offset %d of %d elements outside B of %d", o, k, len(b)))
		}
	}
	x := gemmJobs.Get()
	x.setup(current.Load(), false, true, m, n, k, alpha, a, lda, b, 0, beta, c, ldc)
	x.boffs = offs
	x.runSerial()
}
