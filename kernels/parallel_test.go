package kernels

import (
	"runtime"
	"sync/atomic"
	"testing"
)

func TestParallelCoversRange(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	for _, n := range []int{0, 1, 2, 3, 7, 100, 1001} {
		for _, grain := range []int{0, 1, 5, 64, 5000} {
			hits := make([]atomic.Int32, n)
			Parallel(n, grain, func(lo, hi int) {
				if lo >= hi {
					t.Errorf("n=%d grain=%d: empty chunk [%d,%d)", n, grain, lo, hi)
				}
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("n=%d grain=%d: index %d ran %d times", n, grain, i, h)
				}
			}
		}
	}
}

func TestParallelChunksCoversRange(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	for _, n := range []int{0, 1, 5, 64, 1001} {
		for _, chunk := range []int{0, 1, 3, 64, 2000} {
			hits := make([]atomic.Int32, n)
			var calls atomic.Int32
			ParallelChunks(n, chunk, func(lo, hi int) {
				calls.Add(1)
				if hi-lo > max(chunk, 1) && n > max(chunk, 1) {
					t.Errorf("n=%d chunk=%d: chunk [%d,%d) too long", n, chunk, lo, hi)
				}
				for i := lo; i < hi; i++ {
					hits[i].Add(1)
				}
			})
			for i := range hits {
				if h := hits[i].Load(); h != 1 {
					t.Fatalf("n=%d chunk=%d: index %d ran %d times", n, chunk, i, h)
				}
			}
		}
	}
}

func TestParallelNested(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	var total atomic.Int64
	for it := 0; it < 50; it++ {
		Parallel(8, 1, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				Parallel(10, 1, func(lo2, hi2 int) {
					total.Add(int64(hi2 - lo2))
				})
			}
		})
	}
	if got := total.Load(); got != 50*8*10 {
		t.Fatalf("nested Parallel ran %d inner items, want %d", got, 50*8*10)
	}
}

func BenchmarkParallelOverhead(b *testing.B) {
	var sink [2]atomic.Int64
	for i := 0; i < b.N; i++ {
		Parallel(2, 1, func(lo, hi int) { sink[lo].Add(1) })
	}
}
