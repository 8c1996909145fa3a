package data

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"lowbit/tensor"
)

// ErrClosed is the iteration error after Loader.Close stopped an epoch.
var ErrClosed = errors.New("data: loader closed")

// DefaultPrefetch is how many batches a loader prepares ahead by default.
const DefaultPrefetch = 2

// LoaderConfig configures a Loader. The zero value apart from Batch is the
// evaluation setting: dataset order, every image, no augmentation.
type LoaderConfig struct {
	Batch    int   // images per batch (> 0)
	Shuffle  bool  // a new permutation every epoch, fixed by (Seed, epoch)
	Seed     int64 // seeds shuffling and augmentation
	DropLast bool  // drop the last batch when it is smaller than Batch
	Augment  Augment
	// Prefetch is how many batches a background goroutine prepares ahead:
	// 0 means DefaultPrefetch; negative means no goroutine (each batch is
	// built inside Next).
	Prefetch int
	// Workers is how many goroutines build one batch (0 or 1: one).
	Workers int
}

// Loader streams normalized, optionally shuffled and augmented batches of
// a Dataset. The same configuration and epoch number always give the same
// batches, whatever the prefetching or the number of workers. A Loader may
// serve several epochs at once; Close stops them all.
type Loader struct {
	ds      *Dataset
	cfg     LoaderConfig
	lut     [][256]float32
	batches int

	mu     sync.Mutex
	closed bool
	live   map[*epochState]struct{}
	pool   []*batchBuf
}

// NewLoader validates ds and cfg and returns a loader. ds must not be
// modified while the loader is in use.
func NewLoader(ds *Dataset, cfg LoaderConfig) (*Loader, error) {
	if err := ds.Validate(); err != nil {
		return nil, err
	}
	if cfg.Batch <= 0 {
		return nil, fmt.Errorf("data: %s: batch size %d must be positive", ds.Name, cfg.Batch)
	}
	if cfg.Augment.Pad < 0 || cfg.Augment.Pad > max(ds.H, ds.W) {
		return nil, fmt.Errorf("data: %s: crop padding %d must be in [0,%d]", ds.Name, cfg.Augment.Pad, max(ds.H, ds.W))
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = DefaultPrefetch
	}
	cfg.Workers = max(cfg.Workers, 1)
	n := ds.N()
	nb := n / cfg.Batch
	if !cfg.DropLast && n%cfg.Batch != 0 {
		nb++
	}
	return &Loader{ds: ds, cfg: cfg, lut: ds.lut(), batches: nb, live: map[*epochState]struct{}{}}, nil
}

// NewEvalLoader returns the evaluation loader of ds: dataset order, every
// image, normalization only.
func NewEvalLoader(ds *Dataset, batch int) (*Loader, error) {
	return NewLoader(ds, LoaderConfig{Batch: batch})
}

// Dataset returns the loader's dataset.
func (l *Loader) Dataset() *Dataset { return l.ds }

// Config returns the effective configuration (defaults filled in).
func (l *Loader) Config() LoaderConfig { return l.cfg }

// Batches returns the number of batches per epoch.
func (l *Loader) Batches() int { return l.batches }

// batchBuf is one reusable batch: the tensor and labels handed out.
type batchBuf struct {
	x    tensor.Tensor
	data []float32
	y    []int
}

func (l *Loader) getBuf() *batchBuf {
	l.mu.Lock()
	if n := len(l.pool); n > 0 {
		b := l.pool[n-1]
		l.pool = l.pool[:n-1]
		l.mu.Unlock()
		return b
	}
	l.mu.Unlock()
	bs := min(l.cfg.Batch, max(l.ds.N(), 1))
	return &batchBuf{data: make([]float32, bs*l.ds.ImageSize()), y: make([]int, bs), x: tensor.Tensor{Shape: make([]int, 4)}}
}

func (l *Loader) putBuf(b *batchBuf) {
	if b == nil {
		return
	}
	l.mu.Lock()
	if len(l.pool) < max(l.cfg.Prefetch, 0)+2 {
		l.pool = append(l.pool, b)
	}
	l.mu.Unlock()
}

// order returns the sample order of an epoch.
func (l *Loader) order(epoch int) []int {
	if l.cfg.Shuffle {
		return permutation(l.ds.N(), l.cfg.Seed, epoch)
	}
	return nil // identity
}

// fill builds batch b of an epoch into buf.
func (l *Loader) fill(buf *batchBuf, order []int, epoch, b int) {
	d := l.ds
	lo := b * l.cfg.Batch
	n := min(l.cfg.Batch, d.N()-lo)
	img := d.ImageSize()
	buf.x.Shape = append(buf.x.Shape[:0], n, d.C, d.H, d.W)
	buf.x.Data = buf.data[:n*img]
	y := buf.y[:n]
	work := func(k0, k1 int) {
		for k := k0; k < k1; k++ {
			i := lo + k
			if order != nil {
				i = order[i]
			}
			a := l.cfg.Augment.draw(l.cfg.Seed, epoch, lo+k)
			writeImage(buf.x.Data[k*img:(k+1)*img], d.Image(i), d.C, d.H, d.W, l.lut, a)
			y[k] = d.Labels[i]
		}
	}
	w := min(l.cfg.Workers, n)
	if w <= 1 {
		work(0, n)
		return
	}
	var wg sync.WaitGroup
	for j := range w {
		wg.Go(func() { work(j*n/w, (j+1)*n/w) })
	}
	wg.Wait()
}

// BatchAt builds batch b of an epoch into fresh tensors, exactly as the
// epoch iterator would deliver it. It is meant for tests and one-off
// access; iterate with Epoch for training.
func (l *Loader) BatchAt(epoch, b int) (*tensor.Tensor, []int, error) {
	if b < 0 || b >= l.batches {
		return nil, nil, fmt.Errorf("data: %s: batch %d outside [0,%d)", l.ds.Name, b, l.batches)
	}
	buf := &batchBuf{data: make([]float32, l.cfg.Batch*l.ds.ImageSize()), y: make([]int, l.cfg.Batch)}
	l.fill(buf, l.order(epoch), epoch, b)
	return &buf.x, buf.y[:len(buf.x.Data)/l.ds.ImageSize()], nil
}

// Close stops every running epoch (their Next returns false and Err
// returns ErrClosed), waits for their goroutines to exit and makes later
// epochs empty. It is safe to call more than once and concurrently with
// iteration.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closed = true
	states := make([]*epochState, 0, len(l.live))
	for s := range l.live {
		states = append(states, s)
	}
	l.mu.Unlock()
	for _, s := range states {
		s.shutdown()
	}
	return nil
}

// epochState is the part of an epoch shared with its producer goroutine;
// it holds no reference to the Iter, so an abandoned Iter can be collected
// and its cleanup stop the producer.
type epochState struct {
	l       *Loader
	ctx     context.Context
	epoch   int
	order   []int
	async   bool
	out     chan *batchBuf // filled batches, in order
	free    chan *batchBuf // buffers to fill
	stop    chan struct{}
	done    chan struct{} // closed when the producer has exited
	stopped sync.Once
	closed  sync.Once
	// complete is set by the producer before closing out when it delivered
	// every batch.
	complete bool
}

// Iter walks the batches of one epoch:
//
//	it := loader.Epoch(ctx, epoch)
//	defer it.Close()
//	for it.Next() {
//		x, y := it.Batch()
//		...
//	}
//	if err := it.Err(); err != nil { ... }
//
// The tensor and labels returned by Batch belong to the iterator and are
// reused: they stay valid until the next call to Next or Close (Clone
// them to keep them). An Iter is used from one goroutine.
type Iter struct {
	s     *epochState
	cur   *batchBuf
	spare *batchBuf // synchronous mode: the buffer to refill
	next  int       // synchronous mode: next batch index
	done  bool
	err   error
}

// Epoch starts the given epoch (shuffle and augmentation are fixed by
// (Seed, epoch)). With prefetching, a background goroutine prepares
// batches ahead until the epoch ends, ctx is cancelled, the Iter is closed
// or the Loader is closed. Iterating to the end, Close, or cancelling ctx
// releases it; an Iter that is dropped without any of these is stopped
// when the garbage collector reclaims it.
func (l *Loader) Epoch(ctx context.Context, epoch int) *Iter {
	if ctx == nil {
		ctx = context.Background()
	}
	s := &epochState{l: l, ctx: ctx, epoch: epoch, async: l.cfg.Prefetch > 0,
		stop: make(chan struct{}), done: make(chan struct{})}
	it := &Iter{s: s}
	if l.isClosed() {
		close(s.done)
		it.done, it.err = true, ErrClosed
		return it
	}
	s.order = l.order(epoch)
	if !s.async {
		close(s.done)
		return it
	}
	nbuf := l.cfg.Prefetch + 2
	s.out = make(chan *batchBuf, l.cfg.Prefetch)
	s.free = make(chan *batchBuf, nbuf)
	for range nbuf {
		s.free <- l.getBuf()
	}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.live[s] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		close(s.out)
		close(s.done)
		s.shutdown()
		it.done, it.err = true, ErrClosed
		return it
	}
	go s.produce()
	runtime.AddCleanup(it, func(s *epochState) { go s.shutdown() }, s)
	return it
}

// produce fills batches in order and queues them.
func (s *epochState) produce() {
	defer close(s.done)
	defer close(s.out)
	for b := range s.l.batches {
		var buf *batchBuf
		select {
		case <-s.stop:
			return
		default:
		}
		select {
		case buf = <-s.free:
		case <-s.stop:
			return
		case <-s.ctx.Done():
			return
		}
		s.l.fill(buf, s.order, s.epoch, b)
		select {
		case s.out <- buf:
		case <-s.stop:
			return
		case <-s.ctx.Done():
			return
		}
	}
	s.complete = true
}

// shutdown stops the producer, waits for it and returns the buffers to
// the loader's pool. It is idempotent.
func (s *epochState) shutdown() {
	s.closed.Do(func() {
		s.stopped.Do(func() { close(s.stop) })
		<-s.done
		if s.async {
			for b := range s.out {
				s.l.putBuf(b)
			}
		drain:
			for {
				select {
				case b := <-s.free:
					s.l.putBuf(b)
				default:
					break drain
				}
			}
		}
		s.l.mu.Lock()
		delete(s.l.live, s)
		s.l.mu.Unlock()
	})
}

// Next advances to the next batch. It returns false at the end of the
// epoch, when ctx is cancelled, or when the loader is closed; Err then
// tells which.
func (it *Iter) Next() bool {
	if it.done {
		return false
	}
	s := it.s
	if it.cur != nil {
		if s.async {
			s.free <- it.cur // never blocks: free holds every buffer
		} else {
			it.spare = it.cur
		}
		it.cur = nil
	}
	if err := s.ctx.Err(); err != nil {
		it.finish(err)
		return false
	}
	if !s.async {
		if s.l.isClosed() {
			it.finish(ErrClosed)
			return false
		}
		if it.next >= s.l.batches {
			it.finish(nil)
			return false
		}
		if it.spare == nil {
			it.spare = s.l.getBuf()
		}
		it.cur, it.spare = it.spare, nil
		s.l.fill(it.cur, s.order, s.epoch, it.next)
		it.next++
		return true
	}
	select {
	case b, ok := <-s.out:
		if ok {
			it.cur = b
			return true
		}
	case <-s.ctx.Done():
	}
	// The producer has stopped or ctx is done.
	switch {
	case s.ctx.Err() != nil:
		it.finish(s.ctx.Err())
	case s.complete:
		it.finish(nil)
	default:
		it.finish(ErrClosed)
	}
	return false
}

func (l *Loader) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// finish ends the iteration with err and releases everything.
func (it *Iter) finish(err error) {
	it.done, it.err = true, err
	it.s.shutdown()
	if it.cur != nil {
		it.s.l.putBuf(it.cur)
		it.cur = nil
	}
	if it.spare != nil {
		it.s.l.putBuf(it.spare)
		it.spare = nil
	}
}

// Batch returns the current batch: a normalized [B,C,H,W] tensor (B may be
// smaller for the last batch) and its labels. Both are valid until the
// next Next or Close. It returns nil, nil when there is no current batch.
func (it *Iter) Batch() (*tensor.Tensor, []int) {
	if it.cur == nil {
		return nil, nil
	}
	return &it.cur.x, it.cur.y[:it.cur.x.Shape[0]]
}

// Err returns why the iteration stopped: nil at the end of the epoch or
// after Close, the context's error when cancelled, ErrClosed when the
// loader was closed.
func (it *Iter) Err() error { return it.err }

// Close stops the epoch early and releases its goroutine and buffers. It
// is safe to call more than once and after the end of the epoch.
func (it *Iter) Close() error {
	if !it.done {
		it.finish(nil)
	}
	return nil
}
