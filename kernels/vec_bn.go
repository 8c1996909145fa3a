package kernels

import "unsafe"

// Row kernels of training-mode BatchNorm, optionally fused with the ReLU or
// Clip after it. One call covers rows runs of n floats that start stride
// floats apart, each with its own coefficients: for an NCHW tensor, the
// channels [c0, c1) of one image (n = H·W, stride = n), a contiguous stretch
// of memory, so small feature maps (4×4) cost one call per image and
// channel block instead of one per image and channel, and memory is read in
// order. Per-run sums are taken in float32 vector lanes and added into
// float64 accumulators.
//
// The activation mask of the fused backward, m = [Lo < A·x + B < Hi], is
// recomputed from the BatchNorm input with the rounding of BNApplyEach
// (the fused forward), so it equals the mask Relu and Clip read from their
// output, without keeping or reading that output.

// BNCoef holds one run's (channel's) coefficients.
type BNCoef struct {
	A, B  float32 // forward map y = A·x + B (and the mask's)
	Shift float32 // subtracted from x by the sums and the gradient
	// BNGradEach writes Alpha·m·dy + Beta·(x−Shift) + Delta.
	Alpha, Beta, Delta float32
	_                  [2]float32
}

// BNAct is the activation after the BatchNorm: the forward clamps to
// [Lo, Hi] (±Inf for none) and, with Mask set, the backward passes the
// gradient only where Lo < A·x + B < Hi.
type BNAct struct {
	Mask   bool
	Lo, Hi float32
}

// pass reports whether the gradient at x passes the mask of c.
func (a BNAct) pass(c *BNCoef, x float32) bool {
	if !a.Mask {
		return true
	}
	z := c.A*x + c.B
	return z > a.Lo && z < a.Hi
}

// bnCheck panics (index out of range) unless rows runs of n at stride fit
// in every slice of ts, coef has rows entries and sums (if not nil) 2·rows.
func bnCheck(n, rows, stride int, coef []BNCoef, sums []float64, ts ...[]float32) {
	last := (rows-1)*stride + n - 1
	for _, t := range ts {
		_ = t[last]
	}
	_ = coef[rows-1]
	if sums != nil {
		_ = sums[2*rows-1]
	}
}

// BNMomentsEach adds Σ(x−Shift) and Σ(x−Shift)² of run r (x[r·stride+i],
// i < n) to sums[2r] and sums[2r+1], Shift from coef[r], for r < rows.
// With Shift near the mean (e.g. one of the values) the variance
// Σ²/N − (Σ/N)² does not cancel badly.
//
// ahead, when positive, is how many floats further the next call will
// read (the next image's block): the kernel prefetches that data, which
// the hardware does not across the page boundaries between images.
func BNMomentsEach(x []float32, n, rows, stride int, coef []BNCoef, sums []float64, ahead int) {
	if n <= 0 || rows <= 0 {
		return
	}
	bnCheck(n, rows, stride, coef, sums, x)
	if bnRowsAsm() {
		bnMomentsEach512(&x[0], n, rows, stride, &coef[0], &sums[0], ahead)
		return
	}
	for r := 0; r < rows; r++ {
		s, q := momentsGeneric(x[r*stride:r*stride+n], coef[r].Shift)
		sums[2*r] += float64(s)
		sums[2*r+1] += float64(q)
	}
}

// BNApplyEach writes min(max(A·x+B (+ res), act.Lo), act.Hi) of run r into
// dst (same layout), A and B from coef[r], the residual term only when res
// is not nil (NaN stays NaN): BatchNorm, an Add and the activation with
// the rounding of the separate ops. dst may alias x or res. ahead is as
// for BNMomentsEach (for dst and res).
func BNApplyEach(dst, x, res []float32, n, rows, stride int, coef []BNCoef, act BNAct, ahead int) {
	if n <= 0 || rows <= 0 {
		return
	}
	bnCheck(n, rows, stride, coef, nil, dst, x)
	if res != nil {
		bnCheck(n, rows, stride, coef, nil, res)
	}
	if bnRowsAsm() {
		rp := &x[0] // not read without a residual
		if res != nil {
			rp = &res[0]
		}
		bnApplyEach512(&dst[0], &x[0], rp, n, rows, stride, &coef[0], act.Lo, act.Hi, res != nil, ahead)
		return
	}
	for r := 0; r < rows; r++ {
		c := &coef[r]
		d := dst[r*stride : r*stride+n]
		for i, v := range x[r*stride : r*stride+n] {
			z := c.A*v + c.B
			if res != nil {
				z += res[r*stride+i]
			}
			d[i] = min(max(z, act.Lo), act.Hi)
		}
	}
}

// BNSumsEach adds Σ m·dy and Σ m·dy·(x−Shift) of run r (dy and x alike)
// to sums[2r] and sums[2r+1], m the activation mask: BatchNorm's Σdy and
// Σdy·(x−mean) for its scale and input gradients. ahead is as for
// BNMomentsEach.
func BNSumsEach(dy, x []float32, n, rows, stride int, coef []BNCoef, act BNAct, sums []float64, ahead int) {
	if n <= 0 || rows <= 0 {
		return
	}
	bnCheck(n, rows, stride, coef, sums, dy, x)
	if bnRowsAsm() {
		bnSumsEach512(&dy[0], &x[0], n, rows, stride, &coef[0], act.Lo, act.Hi, act.Mask, &sums[0], ahead)
		return
	}
	for r := 0; r < rows; r++ {
		c := &coef[r]
		d := dy[r*stride : r*stride+n]
		var s, q float32
		for i, v := range x[r*stride : r*stride+n] {
			if act.pass(c, v) {
				s += d[i]
				q += d[i] * (v - c.Shift)
			}
		}
		sums[2*r] += float64(s)
		sums[2*r+1] += float64(q)
	}
}

// BNMaskSumsEach is BNSumsEach with the activation mask read from the
// output y (m = [Lo < y < Hi], or 1 without Mask) instead of recomputed,
// for a BatchNorm whose output had a residual added before the
// activation; it also writes the masked gradient m·dy into dz (the
// residual's gradient and the BatchNorm's output gradient). dz may alias
// dy. ahead is as for BNMomentsEach.
func BNMaskSumsEach(dz, dy, y, x []float32, n, rows, stride int, coef []BNCoef, act BNAct, sums []float64, ahead int) {
	if n <= 0 || rows <= 0 {
		return
	}
	bnCheck(n, rows, stride, coef, sums, dz, dy, y, x)
	if bnRowsAsm() {
		bnMaskSumsEach512(&dz[0], &dy[0], &y[0], &x[0], n, rows, stride, &coef[0], act.Lo, act.Hi, act.Mask, &sums[0], ahead)
		return
	}
	for r := 0; r < rows; r++ {
		c := &coef[r]
		o := r * stride
		var s, q float32
		for i := o; i < o+n; i++ {
			g := dy[i]
			if act.Mask && !(y[i] > act.Lo && y[i] < act.Hi) {
				g = 0
			}
			dz[i] = g
			s += g
			q += g * (x[i] - c.Shift)
		}
		sums[2*r] += float64(s)
		sums[2*r+1] += float64(q)
	}
}

// BNGradEach writes Alpha·m·dy + Beta·(x−Shift) + Delta of run r into dst
// (dy and x alike), coefficients from coef[r], m the activation mask:
// BatchNorm's input gradient. dst may alias dy. ahead is as for
// BNMomentsEach (for dst).
func BNGradEach(dst, dy, x []float32, n, rows, stride int, coef []BNCoef, act BNAct, ahead int) {
	if n <= 0 || rows <= 0 {
		return
	}
	bnCheck(n, rows, stride, coef, nil, dst, dy, x)
	if bnRowsAsm() {
		bnGradEach512(&dst[0], &dy[0], &x[0], n, rows, stride, &coef[0], act.Lo, act.Hi, act.Mask, ahead)
		return
	}
	for r := 0; r < rows; r++ {
		c := &coef[r]
		o := dst[r*stride : r*stride+n]
		d := dy[r*stride : r*stride+n]
		for i, v := range x[r*stride : r*stride+n] {
			g := d[i]
			if !act.pass(c, v) {
				g = 0
			}
			o[i] = c.Alpha*g + c.Beta*(v-c.Shift) + c.Delta
		}
	}
}

// The assembly reads BNCoef fields at fixed offsets.
var _ = [1]struct{}{}[unsafe.Sizeof(BNCoef{})-32]
