package kernels

import (
	"fmt"
	"sync"
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
	if m <= 0 || n <= 0 {
		return
	}
	checkMatrix("C", c, m, n, ldc)
	if k <= 0 || alpha == 0 {
		scaleMatrix(m, n, beta, c, ldc)
		return
	}
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
	im := current.Load()
	x := getGemm()
	*x = gemmJob{
		im: im, transA: transA, transB: transB, m: m, n: n, k: k,
		alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc,
		bufs: x.bufs, bar: x.bar,
	}
	x.plan()
	workers := 1
	if x.tasks > 1 {
		workers = max(pool.acquire(x.tasks), 1)
	}
	x.setTasks(workers)
	if workers > 1 {
		pool.run(x, workers)
	} else {
		x.runTask(0)
	}
	x.a, x.b, x.c = nil, nil, nil
	putGemm(x)
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
// waking a worker costs microseconds.
const parallelMinWork = 1 << 20

// gemmJob holds one Sgemm call's operands, its work split and the packing
// buffers; jobs are recycled so that steady-state calls do not allocate.
type gemmJob struct {
	im             *impl
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int

	// tasks goroutines split either the rows (splitM: B blocks are packed
	// jointly into the shared buffer bufs[0].b) or the columns (each task
	// packs its own B) of C.
	tasks  int
	splitM bool
	bufs   []packBufs
	bar    *barrier
}

type packBufs struct {
	a, b []float32
}

var gemmFree struct {
	sync.Mutex
	list []*gemmJob
}

func getGemm() *gemmJob {
	gemmFree.Lock()
	defer gemmFree.Unlock()
	if n := len(gemmFree.list); n > 0 {
		x := gemmFree.list[n-1]
		gemmFree.list = gemmFree.list[:n-1]
		return x
	}
	return &gemmJob{bar: new(barrier)}
}

func putGemm(x *gemmJob) {
	gemmFree.Lock()
	gemmFree.list = append(gemmFree.list, x)
	gemmFree.Unlock()
}

// plan picks how many tasks the product deserves and along which
// dimension to split it.
func (x *gemmJob) plan() {
	im := x.im
	x.tasks = 1
	if x.m*x.n*x.k < parallelMinWork {
		return
	}
	mt := (x.m + im.mr - 1) / im.mr
	nt := (x.n + im.nr - 1) / im.nr
	x.tasks = min(mt+nt, 64) // capped again by the pool size
	// Splitting rows shares the packed B and packs A once; prefer it when
	// each task gets a few row panels.
	x.splitM = mt >= 4*nt || mt >= 8
}

func (x *gemmJob) setTasks(t int) {
	x.tasks = t
	if x.splitM && t > 1 && (x.m+x.im.mr-1)/x.im.mr < 2*t {
		x.splitM = false
	}
	for len(x.bufs) < t {
		x.bufs = append(x.bufs, packBufs{})
	}
	x.bar.reset(t)
}

// span returns task t's share [lo, hi) of n items in units of unit.
func span(n, unit, t, tasks int) (lo, hi int) {
	units := (n + unit - 1) / unit
	lo = min(units*t/tasks*unit, n)
	hi = min(units*(t+1)/tasks*unit, n)
	return lo, hi
}

func (x *gemmJob) runTask(t int) {
	im := x.im
	buf := &x.bufs[t]
	if need := im.mc * im.kc; len(buf.a) < need {
		buf.a = make([]float32, need)
	}
	if x.splitM {
		m0, m1 := span(x.m, im.mr, t, x.tasks)
		shared := &x.bufs[0]
		if t == 0 {
			if need := im.kc * im.nc; len(shared.b) < need {
				shared.b = make([]float32, need)
			}
		}
		x.bar.wait() // shared.b is allocated
		for jc := 0; jc < x.n; jc += im.nc {
			nc := min(im.nc, x.n-jc)
			for pc := 0; pc < x.k; pc += im.kc {
				kc := min(im.kc, x.k-pc)
				p0, p1 := span(nc, im.nr, t, x.tasks)
				x.packB(shared.b, pc, kc, jc, p0, p1)
				x.bar.wait()
				x.compute(buf.a, shared.b, m0, m1, jc, nc, pc, kc)
				x.bar.wait()
			}
		}
		return
	}
	if need := im.kc * im.nc; len(buf.b) < need {
		buf.b = make([]float32, need)
	}
	n0, n1 := span(x.n, im.nr, t, x.tasks)
	for jc := n0; jc < n1; jc += im.nc {
		nc := min(im.nc, n1-jc)
		for pc := 0; pc < x.k; pc += im.kc {
			kc := min(im.kc, x.k-pc)
			x.packB(buf.b, pc, kc, jc, 0, nc)
			x.compute(buf.a, buf.b, 0, x.m, jc, nc, pc, kc)
		}
	}
}

// compute multiplies rows [m0, m1) of op(A) (depth pc..pc+kc) with the
// packed B block of columns jc..jc+nc into C.
func (x *gemmJob) compute(ap, bp []float32, m0, m1, jc, nc, pc, kc int) {
	im := x.im
	mr, nr := im.mr, im.nr
	beta := x.beta
	if pc > 0 {
		beta = 1
	}
	for ic := m0; ic < m1; ic += im.mc {
		mc := min(im.mc, m1-ic)
		x.packA(ap, ic, mc, pc, kc)
		for jr := 0; jr < nc; jr += nr {
			cols := min(nr, nc-jr)
			bpan := bp[jr*kc : jr*kc+nr*kc]
			for ir := 0; ir < mc; ir += mr {
				rows := min(mr, mc-ir)
				apan := ap[ir*kc : ir*kc+mr*kc]
				off := (ic+ir)*x.ldc + jc + jr
				im.kernel(kc, apan, bpan, x.c[off:], x.ldc, x.alpha, beta, rows, cols)
			}
		}
	}
}
