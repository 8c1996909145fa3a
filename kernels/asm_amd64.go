//go:build amd64

package kernels

// Go declarations and bounds-checking wrappers of the hand-written AVX-512
// assembly (vector helpers, depthwise, packing).

//go:noescape
func axpy512(alpha float32, x, y []float32)

//go:noescape
func scale512(alpha float32, x []float32)

//go:noescape
func add512(dst, a, b []float32)

//go:noescape
func dot512(x, y []float32) float32

//go:noescape
func dwRows512(dst, src *float32, offs *int, w *float32, taps, n, rows, srcStep, dstStep int)

//go:noescape
func dwDot512(src, dy *float32, offs *int, taps, n, rows, srcStep, dyStep int, out *float32)

// dwRowsAVX512 checks bounds once and runs the assembly row kernel.
func dwRowsAVX512(dst, src []float32, offs []int, w []float32, n, rows, srcStep, dstStep int) {
	if n <= 0 || rows <= 0 || len(offs) == 0 {
		dwRowsGeneric(dst, src, offs, w, n, rows, srcStep, dstStep)
		return
	}
	_ = dst[(rows-1)*dstStep+n-1]
	_ = w[len(offs)-1]
	last := (rows-1)*srcStep + n - 1
	for _, o := range offs {
		_ = src[o+last]
	}
	dwRows512(&dst[0], &src[0], &offs[0], &w[0], len(offs), n, rows, srcStep, dstStep)
}

// dwDotAVX512 checks bounds once and runs the assembly dot kernel.
func dwDotAVX512(src, dy []float32, offs []int, n, rows, srcStep, dyStep int, out []float32) {
	if n <= 0 || rows <= 0 || len(offs) == 0 {
		return
	}
	_ = dy[(rows-1)*dyStep+n-1]
	_ = out[len(offs)-1]
	last := (rows-1)*srcStep + n - 1
	for _, o := range offs {
		_ = src[o+last]
	}
	dwDot512(&src[0], &dy[0], &offs[0], len(offs), n, rows, srcStep, dyStep, &out[0])
}

//go:noescape
func spread2x512(dst, src *float32, n int)

// spreadAVX512 writes src[i] to dst[i*stride] (dst zeroed beforehand),
// with a vector path for stride 2.
func spreadAVX512(dst, src []float32, stride int) {
	if stride != 2 || len(src) < 8 {
		scatterAdd(dst, src, stride)
		return
	}
	_ = dst[2*len(src)-2]
	spread2x512(&dst[0], &src[0], len(src))
}

//go:noescape
func deint2x512(even, odd, src *float32, n int)

// deint2AVX512 splits src into its even- and odd-indexed elements.
func deint2AVX512(even, odd, src []float32) {
	if len(src) < 16 {
		deint2Generic(even, odd, src)
		return
	}
	_ = even[(len(src)+1)/2-1]
	_ = odd[len(src)/2-1]
	deint2x512(&even[0], &odd[0], &src[0], len(src))
}

//go:noescape
func packT512(dst, src *float32, ld, rows, kc, width int)

// packTAVX512 sets dst[p·width+r] = src[r·ld+p] for p < kc, r < rows
// and zero-pads rows up to width (32, or at most 16).
func packTAVX512(dst, src []float32, ld, rows, kc, width int) {
	if kc <= 0 {
		return
	}
	if rows <= 0 || ld*32 >= 1<<31 || (width != 32 && width > 16) {
		packTGeneric(dst, src, ld, rows, kc, width)
		return
	}
	_ = dst[kc*width-1]
	_ = src[(rows-1)*ld+kc-1]
	packT512(&dst[0], &src[0], ld, rows, kc, width)
}

//go:noescape
func packN512(dst, src *float32, ld, cols, kc, width int)

// packNAVX512 sets dst[p·width+j] = src[p·ld+j] for p < kc, j < cols and
// zero-pads columns up to width (32, or at most 16).
func packNAVX512(dst, src []float32, ld, cols, kc, width int) {
	if kc <= 0 {
		return
	}
	if cols <= 0 || (width != 32 && width > 16) {
		packNGeneric(dst, src, ld, cols, kc, width)
		return
	}
	_ = dst[kc*width-1]
	_ = src[(kc-1)*ld+cols-1]
	packN512(&dst[0], &src[0], ld, cols, kc, width)
}

// Pointwise helpers (pointwise_avx512_amd64.s); the exported wrappers in
// pointwise.go check the lengths.

//go:noescape
func affine512(dst, x []float32, a, b float32)

//go:noescape
func affineClamp512(dst, x []float32, a, b, lo, hi float32)

//go:noescape
func maskInside512(dst, dy, y []float32, lo, hi float32)

//go:noescape
func packTOffs512(dst, src *float32, offs *int32, rows, kc, width int)

// packTOffsAVX512 sets dst[p·width+r] = src[offs[r]+p] for p < kc,
// r < rows and zero-pads rows up to width (32, or at most 16).
func packTOffsAVX512(dst, src []float32, offs []int32, rows, kc, width int) {
	if kc <= 0 {
		return
	}
	if rows <= 0 || (width != 32 && width > 16) {
		packTOffsGeneric(dst, src, offs, rows, kc, width)
		return
	}
	_ = dst[kc*width-1]
	for _, o := range offs[:rows] {
		_ = src[int(o)+kc-1]
	}
	packTOffs512(&dst[0], &src[0], &offs[0], rows, kc, width)
}

//go:noescape
func copyRows512(dst, src []float32, n, rows, dstStride, srcStride int)

// copyRowsAVX512 checks bounds once and copies with the assembly loop.
func copyRowsAVX512(dst, src []float32, n, rows, dstStride, srcStride int) {
	if n <= 0 || rows <= 0 {
		return
	}
	_ = dst[(rows-1)*dstStride+n-1]
	_ = src[(rows-1)*srcStride+n-1]
	copyRows512(dst, src, n, rows, dstStride, srcStride)
}

//go:noescape
func epiRows512(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32, hasRes bool)

// epiRowsAVX512 checks bounds once and runs the assembly epilogue.
func epiRowsAVX512(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32) {
	if n <= 0 || rows <= 0 {
		return
	}
	_ = dst[(rows-1)*dstStride+n-1]
	_ = src[(rows-1)*srcStride+n-1]
	if res != nil {
		_ = res[(rows-1)*dstStride+n-1]
	}
	epiRows512(dst, src, res, n, rows, dstStride, srcStride, a, b, lo, hi, res != nil)
}
