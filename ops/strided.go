package ops

// Strided traversal shared by Transpose, Slice and ReduceMean: each visits
// a dense row-major index space and maps every element to a position in
// another tensor through per-axis strides.

// walkStrided visits the row-major index space shape and calls run once per
// innermost row: the row covers flat positions k..k+n-1 and strided
// positions pos, pos+step, ..., where pos = base + Σ idx[i]·strides[i].
// idx is scratch of len(shape). An empty index space calls run never; a
// rank-0 space calls it once with n = 1.
func walkStrided(shape, strides, idx []int, base int, run func(k, pos, n, step int)) {
	r := len(shape)
	for _, d := range shape {
		if d == 0 {
			return
		}
	}
	if r == 0 {
		run(0, base, 1, 0)
		return
	}
	for i := range idx[:r] {
		idx[i] = 0
	}
	n, step := shape[r-1], strides[r-1]
	pos, k := base, 0
	for {
		run(k, pos, n, step)
		k += n
		// Advance the odometer over the outer axes.
		d := r - 2
		for ; d >= 0; d-- {
			idx[d]++
			pos += strides[d]
			if idx[d] < shape[d] {
				break
			}
			pos -= idx[d] * strides[d]
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// gatherStrided copies the strided elements of src (see walkStrided) into
// the dense dst in row-major order.
func gatherStrided(dst, src []float32, shape, strides, idx []int, base int) {
	walkStrided(shape, strides, idx, base, func(k, pos, n, step int) {
		d := dst[k : k+n]
		for j := range d {
			d[j] = src[pos+j*step]
		}
	})
}

// scatterStrided is the inverse of gatherStrided: it writes the dense src
// into the strided positions of dst.
func scatterStrided(dst, src []float32, shape, strides, idx []int, base int) {
	walkStrided(shape, strides, idx, base, func(k, pos, n, step int) {
		for j, v := range src[k : k+n] {
			dst[pos+j*step] = v
		}
	})
}

// denseStrides writes the row-major strides of shape into dst[:len(shape)]
// and returns it.
func denseStrides(dst, shape []int) []int {
	dst = dst[:len(shape)]
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		dst[i] = s
		s *= shape[i]
	}
	return dst
}

// stridedScratch is the Context.Saved state of the strided ops: integer
// scratch reused across calls so steady-state steps do not allocate.
type stridedScratch struct{ shape, strides, idx, aux []int }

// ints returns four scratch slices with room for rank r.
func (s *stridedScratch) ints(r int) (shape, strides, idx, aux []int) {
	grow := func(p *[]int) []int {
		if cap(*p) < r {
			*p = make([]int, r, max(r, 8))
		}
		*p = (*p)[:r]
		return *p
	}
	return grow(&s.shape), grow(&s.strides), grow(&s.idx), grow(&s.aux)
}

// stridedState returns the scratch kept in c.Saved.
func stridedState(saved *any) *stridedScratch {
	p, _ := (*saved).(*stridedScratch)
	if p == nil {
		p = &stridedScratch{}
		*saved = p
	}
	return p
}
