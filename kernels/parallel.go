package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Parallel work is split into chunks that the caller and the pool's
// workers claim one at a time from an atomic counter. The caller always
// takes part and never waits for a worker to start: a worker that is
// parked, busy with another job or descheduled by the OS simply claims
// nothing, and the caller only waits for chunks that are already being
// run. This keeps a job no slower than running it on one goroutine when
// the cores are shared, and lets nested or concurrent callers share the
// pool without locks or deadlock.

// task is a job offered to the pool: participate claims and runs chunks
// of the job's generation gen until none are left, and reports whether it
// finished the last chunk while the job's owner was parked waiting.
type task interface {
	participate(gen uint32) (wokeOwner bool)
}

// workerPool is the one set of persistent goroutines that every parallel
// kernel shares. Workers spin for workerSpin after a job, so back-to-back
// kernels start within a microsecond, then park on a channel.
type workerPool struct {
	mu      sync.Mutex // serializes offers and worker creation
	workers []*poolWorker
	gen     atomic.Uint32
}

type poolWorker struct {
	state atomic.Int32 // workerSpinning, workerParked or workerHasJob
	job   task         // written by an offer before state becomes workerHasJob
	gen   uint32
	wake  chan struct{}
}

const (
	workerSpinning int32 = iota
	workerParked
	workerHasJob
)

// workerSpin is how long an idle worker waits hot for the next job before
// parking: waking a parked goroutine on an idle P costs tens to hundreds
// of microseconds on a VM, so it pays to spin through gaps of that order.
// ownerSpin is how long a job's owner waits hot for chunks that others
// are running before parking, which frees its core for them when the
// machine is oversubscribed.
const (
	workerSpin = 300 * time.Microsecond
	ownerSpin  = 200 * time.Microsecond
)

var pool workerPool

// newGen returns a fresh job generation (24 bits, see chunks).
func (p *workerPool) newGen() uint32 {
	return p.gen.Add(1) & genMask
}

// offer hands j to at most n idle workers, starting workers up to
// GOMAXPROCS-1 as needed. It does not wait for them.
func (p *workerPool) offer(j task, gen uint32, n int) {
	n = min(n, runtime.GOMAXPROCS(0)-1)
	if n <= 0 {
		return
	}
	woke := false
	p.mu.Lock()
	for len(p.workers) < n {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		w.state.Store(workerParked)
		p.workers = append(p.workers, w)
		go p.work(w)
	}
	for _, w := range p.workers {
		if n == 0 {
			break
		}
		if w.state.Load() == workerHasJob {
			continue
		}
		w.job, w.gen = j, gen
		if w.state.CompareAndSwap(workerSpinning, workerHasJob) {
			n--
		} else if w.state.CompareAndSwap(workerParked, workerHasJob) {
			w.wake <- struct{}{}
			woke = true
			n--
		}
	}
	p.mu.Unlock()
	if woke {
		// The woken worker sits in this P's run-next slot, from which idle
		// Ps are slow to steal. Yield so that it starts here at once; this
		// goroutine moves to the global queue, where the P that the wake-up
		// started finds it.
		runtime.Gosched()
	}
}

func (p *workerPool) work(w *poolWorker) {
	<-w.wake // workers start parked
	for {
		j, gen := w.job, w.gen
		w.job = nil
		if j.participate(gen) {
			// The owner now waits in this P's run-next slot; park so that
			// it runs here at once instead of waiting to be stolen.
			w.state.Store(workerParked)
			<-w.wake
			continue
		}
		w.state.Store(workerSpinning)
		if !spinUntil(workerSpin, func() bool { return w.state.Load() == workerHasJob }) &&
			w.state.CompareAndSwap(workerSpinning, workerParked) {
			<-w.wake
		}
	}
}

// spinUntil polls cond for up to limit and reports whether it held. It
// deliberately never calls runtime.Gosched: two goroutines yielding to
// each other can end up sharing one P while the other Ps sleep, because
// yielding does not wake idle Ps.
func spinUntil(limit time.Duration, cond func() bool) bool {
	var start time.Time
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		if i&1023 == 0 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > limit {
				return false
			}
		}
	}
}

// waitFor returns once cond holds; it is for short waits on work other
// goroutines are already running. After ownerSpin it yields between polls,
// in case the goroutine it waits for was preempted onto this P's queue.
func waitFor(cond func() bool) {
	for !spinUntil(ownerSpin, cond) {
		runtime.Gosched()
	}
}

// chunks hands out the chunk indices [0, total) of one job generation.
// The claim word packs gen (24 bits), total and next (20 bits each), so a
// late worker of an older job can never claim chunks of a newer one that
// reuses the same struct. Fields other than claim are only touched after a
// successful claim or by the owner.
type chunks struct {
	claim atomic.Uint64
	// state is 2·(chunks finished) + 1 while the owner is parked in wait:
	// one word, so that the last finisher learns atomically whether to
	// wake the owner.
	state atomic.Int64
	total int64
	wake  chan struct{}
}

const (
	genMask   = 1<<24 - 1
	maxChunks = 1<<20 - 1
)

// reset starts generation gen with total chunks (at most maxChunks).
func (c *chunks) reset(gen uint32, total int) {
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	c.total = int64(total)
	c.state.Store(0)
	c.claim.Store(uint64(gen)<<40 | uint64(total)<<20)
}

// next claims a chunk of generation gen.
func (c *chunks) next(gen uint32) (int, bool) {
	for {
		v := c.claim.Load()
		if uint32(v>>40) != gen {
			return 0, false
		}
		i, total := int(v&maxChunks), int(v>>20&maxChunks)
		if i >= total {
			return 0, false
		}
		if c.claim.CompareAndSwap(v, v+1) {
			return i, true
		}
	}
}

// finish marks a claimed chunk done; it reports whether that woke the
// parked owner. The owner cannot reuse c before this chunk is counted, so
// reading total first is safe; nothing of c is touched after the add but
// the wake channel, which never changes.
func (c *chunks) finish() bool {
	total := c.total
	if v := c.state.Add(2); v>>1 == total && v&1 == 1 {
		c.wake <- struct{}{}
		return true
	}
	return false
}

// wait returns once every chunk has finished; the owner calls it after its
// own claims ran out, so it only waits for chunks others are running.
func (c *chunks) wait() {
	if spinUntil(ownerSpin, func() bool { return c.state.Load()>>1 >= c.total }) {
		return
	}
	for {
		v := c.state.Load()
		if v>>1 >= c.total {
			return
		}
		if c.state.CompareAndSwap(v, v|1) {
			<-c.wake
			return
		}
	}
}

// parallelJob runs Parallel's function over chunk ranges.
type parallelJob struct {
	work     chunks
	fn       func(lo, hi int)
	n, chunk int
}

func (j *parallelJob) participate(gen uint32) (woke bool) {
	for {
		i, ok := j.work.next(gen)
		if !ok {
			return woke
		}
		lo := i * j.chunk
		j.fn(lo, min(lo+j.chunk, j.n))
		woke = j.work.finish()
	}
}

var parallelJobs = sync.Pool{New: func() any { return new(parallelJob) }}

// chunksPerWorker is how many chunks Parallel aims at per goroutine, so
// that a slow or late goroutine leaves work for the others.
const chunksPerWorker = 4

// Parallel splits [0, n) into contiguous chunks and runs fn on them on up to
// GOMAXPROCS goroutines of the shared worker pool, the caller's included;
// it returns when all chunks are done. grain is the smallest chunk worth
// handing to another goroutine. fn may run several times on one goroutine
// and may itself call Parallel or Sgemm.
func Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		fn(0, n)
		return
	}
	parallelRun(n, max(grain, (n+chunksPerWorker*workers-1)/(chunksPerWorker*workers)), workers, fn)
}

// ParallelChunks is Parallel with chunks of the given size (the last may
// be shorter), for callers whose items are large and uneven enough that
// Parallel's few chunks per goroutine would leave one goroutine finishing
// alone: finer chunks balance the tail.
func ParallelChunks(n, chunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	workers := min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk)
	if workers <= 1 {
		fn(0, n)
		return
	}
	parallelRun(n, chunk, workers, fn)
}

// parallelRun runs fn over chunks of [0, n) on up to workers goroutines.
func parallelRun(n, chunk, workers int, fn func(lo, hi int)) {
	chunk = max(chunk, (n+maxChunks-1)/maxChunks)
	j := parallelJobs.Get().(*parallelJob)
	j.fn, j.n, j.chunk = fn, n, chunk
	total := (n + chunk - 1) / chunk
	gen := pool.newGen()
	j.work.reset(gen, total)
	pool.offer(j, gen, workers-1)
	j.participate(gen)
	j.work.wait()
	j.fn = nil
	parallelJobs.Put(j)
}
