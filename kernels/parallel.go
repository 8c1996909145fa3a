package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// task is a job the worker pool runs: runTask(t) is called once for every
// t in [0, tasks), each on its own goroutine (t = 0 on the caller's).
type task interface {
	runTask(t int)
}

// workerPool is the one set of persistent goroutines that every parallel
// kernel shares. It runs one job at a time; a caller that finds it busy
// (another goroutine's job, or a nested call from inside a job) runs its
// work on its own goroutine instead, so nesting never deadlocks.
//
// Waking a parked goroutine on an idle P can take tens of microseconds
// (longer in a VM), so workers spin for spinTime after a job and callers
// spin while waiting for their workers, before parking on channels. Back
// to back kernels then start within a microsecond.
type workerPool struct {
	busy    sync.Mutex
	workers []*poolWorker // workers[i] runs task i+1
	job     task
	pending atomic.Int32 // tasks not yet finished by workers
	caller  atomic.Int32 // callerRunning, callerParked or callerDone
	done    chan struct{}
	par     parallelJob // reused by Parallel while busy is held
}

type poolWorker struct {
	state atomic.Int32 // workerSpinning, workerParked or workerHasJob
	wake  chan struct{}
}

const (
	workerSpinning int32 = iota
	workerParked
	workerHasJob
)

const (
	callerRunning int32 = iota
	callerParked
	callerDone
)

// workerSpin is how long a worker waits hot for the next job before
// parking; waking a parked goroutine on an idle P costs tens to hundreds of
// microseconds on a VM. callerSpin is how long a caller that finished its
// own share waits hot for the workers: they run concurrently, so this is
// normally short, and parking would leave the caller in a worker's
// run-next slot, slow to resume.
const (
	workerSpin = 300 * time.Microsecond
	callerSpin = 20 * time.Millisecond
)

var pool = workerPool{done: make(chan struct{}, 1)}

// acquire reserves the pool and returns how many goroutines (the caller
// included) may work on a job, at most want; 0 means the pool is busy or
// one goroutine suffices.
func (p *workerPool) acquire(want int) int {
	workers := min(runtime.GOMAXPROCS(0), want)
	if workers <= 1 || !p.busy.TryLock() {
		return 0
	}
	for len(p.workers) < workers-1 {
		w := &poolWorker{wake: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go p.work(w, len(p.workers))
	}
	return workers
}

// run executes j on tasks goroutines and releases the pool; acquire must
// have returned at least tasks.
func (p *workerPool) run(j task, tasks int) {
	p.job = j
	p.pending.Store(int32(tasks - 1))
	p.caller.Store(callerRunning)
	woke := false
	for _, w := range p.workers[:tasks-1] {
		if !w.state.CompareAndSwap(workerSpinning, workerHasJob) {
			w.state.Store(workerHasJob)
			w.wake <- struct{}{}
			woke = true
		}
	}
	if woke {
		// A woken worker lands in this P's run-next slot, from which idle
		// Ps are slow to steal; yield so that it starts here at once and
		// this goroutine moves to the global queue, where the P that the
		// wake-up started finds it quickly.
		runtime.Gosched()
	}
	j.runTask(0)
	if !spinUntil(callerSpin, func() bool { return p.pending.Load() == 0 }) &&
		p.caller.CompareAndSwap(callerRunning, callerParked) {
		<-p.done
	}
	p.job = nil
	p.busy.Unlock()
}

func (p *workerPool) work(w *poolWorker, t int) {
	for {
		if !spinUntil(workerSpin, func() bool { return w.state.Load() == workerHasJob }) &&
			w.state.CompareAndSwap(workerSpinning, workerParked) {
			<-w.wake
		}
		p.job.runTask(t)
		w.state.Store(workerSpinning)
		if p.pending.Add(-1) == 0 && p.caller.Swap(callerDone) == callerParked {
			p.done <- struct{}{}
		}
	}
}

// spinUntil polls cond for up to limit and reports whether it held.
func spinUntil(limit time.Duration, cond func() bool) bool {
	var start time.Time
	for i := 0; ; i++ {
		if cond() {
			return true
		}
		if i&1023 == 1023 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > limit {
				return false
			}
		}
	}
}

// parallelJob adapts Parallel's chunked function to a task.
type parallelJob struct {
	fn       func(lo, hi int)
	n, chunk int
}

func (j *parallelJob) runTask(t int) {
	lo := t * j.chunk
	if lo < j.n {
		j.fn(lo, min(lo+j.chunk, j.n))
	}
}

// Parallel splits [0, n) into contiguous chunks and runs fn on them on up to
// GOMAXPROCS goroutines of the shared worker pool. grain is the smallest
// chunk worth a goroutine. fn may itself call Parallel or Sgemm: nested
// calls run on the calling goroutine.
func Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	grain = max(grain, 1)
	workers := pool.acquire((n + grain - 1) / grain)
	if workers <= 1 {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	tasks := (n + chunk - 1) / chunk
	pool.par = parallelJob{fn: fn, n: n, chunk: chunk}
	pool.run(&pool.par, tasks)
	pool.par.fn = nil
}

// barrier lets a fixed number of goroutines wait for each other. Waiters
// spin briefly (the other side is usually a few microseconds away) and
// then sleep.
type barrier struct {
	parties int
	arrived atomic.Int32
	gen     atomic.Uint32
	mu      sync.Mutex
	cond    sync.Cond
}

func (b *barrier) reset(parties int) {
	b.parties = parties
	b.arrived.Store(0)
	b.cond.L = &b.mu
}

func (b *barrier) wait() {
	if b.parties <= 1 {
		return
	}
	g := b.gen.Load()
	if int(b.arrived.Add(1)) == b.parties {
		b.arrived.Store(0)
		b.mu.Lock()
		b.gen.Add(1)
		b.mu.Unlock()
		b.cond.Broadcast()
		return
	}
	if spinUntil(callerSpin, func() bool { return b.gen.Load() != g }) {
		return
	}
	b.mu.Lock()
	for b.gen.Load() == g {
		b.cond.Wait()
	}
	b.mu.Unlock()
}
