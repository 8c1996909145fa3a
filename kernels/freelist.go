package kernels

import "sync"

// FreeList recycles values (packing buffers, jobs, scratch) across calls
// so that steady-state calls do not allocate. Unlike sync.Pool it never
// drops values at a GC; it holds at most as many as were ever in use at
// once. The zero value is ready; it is safe for concurrent use.
type FreeList[T any] struct {
	mu   sync.Mutex
	list []*T
}

// Get returns a recycled value, or a new zero one.
func (f *FreeList[T]) Get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.list); n > 0 {
		v := f.list[n-1]
		f.list = f.list[:n-1]
		return v
	}
	return new(T)
}

// Put returns v for reuse.
func (f *FreeList[T]) Put(v *T) {
	f.mu.Lock()
	f.list = append(f.list, v)
	f.mu.Unlock()
}

// growFloats returns *s resized to n elements, reallocating only when its
// capacity is too small.
func growFloats(s *[]float32, n int) []float32 {
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	*s = (*s)[:n]
	return *s
}
