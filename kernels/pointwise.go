package kernels

// Pointwise helpers for normalization and activations. Each runs on the
// calling goroutine over one slice; callers split large tensors (e.g. per
// channel) over the worker pool. Sums are accumulated in float32 vector
// lanes: callers that reduce long runs add the per-call results in float64.

// Affine writes a·x[i]+b into dst[i] for i < len(dst); x must be at least
// as long as dst and may alias it.
func Affine(dst, x []float32, a, b float32) {
	if len(dst) == 0 {
		return
	}
	_ = x[len(dst)-1]
	current.Load().affine(dst, x[:len(dst)], a, b)
}

// AffineClamp writes min(max(a·x[i]+b, lo), hi) into dst[i] (NaN stays
// NaN); x must be at least as long as dst and may alias it. Clamp is
// AffineClamp with a = 1, b = 0.
func AffineClamp(dst, x []float32, a, b, lo, hi float32) {
	if len(dst) == 0 {
		return
	}
	_ = x[len(dst)-1]
	current.Load().affineClamp(dst, x[:len(dst)], a, b, lo, hi)
}

// Clamp writes min(max(x[i], lo), hi) into dst[i] (NaN stays NaN).
func Clamp(dst, x []float32, lo, hi float32) {
	AffineClamp(dst, x, 1, 0, lo, hi)
}

// MaskInside writes dy[i] into dst[i] where lo < y[i] < hi and 0
// elsewhere (NaN: 0); dy and y must be at least as long as dst.
func MaskInside(dst, dy, y []float32, lo, hi float32) {
	if len(dst) == 0 {
		return
	}
	_ = dy[len(dst)-1]
	_ = y[len(dst)-1]
	current.Load().maskInside(dst, dy[:len(dst)], y[:len(dst)], lo, hi)
}

// CopyRows copies rows runs of n floats: dst[r·dstStride+i] =
// src[r·srcStride+i] for r < rows, i < n (padding an image into a wider
// buffer, or compacting it back).
func CopyRows(dst, src []float32, n, rows, dstStride, srcStride int) {
	if n <= 0 || rows <= 0 {
		return
	}
	_ = dst[(rows-1)*dstStride+n-1]
	_ = src[(rows-1)*srcStride+n-1]
	current.Load().copyRows(dst, src, n, rows, dstStride, srcStride)
}

// EpilogueRows writes rows runs of n outputs of a layer epilogue:
// dst[r·dstStride+i] = min(max(a·src[r·srcStride+i] + b + res[r·dstStride+i],
// lo), hi), with the residual term only when res is not nil (NaN stays NaN). It turns a
// convolution's padded-grid output into the next layer's input in one
// pass: BatchNorm, residual Add and ReLU/Clip with the rounding of the
// separate ops (Affine, Add, Clamp) of the same implementation.
func EpilogueRows(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32) {
	if n <= 0 || rows <= 0 {
		return
	}
	_ = dst[(rows-1)*dstStride+n-1]
	_ = src[(rows-1)*srcStride+n-1]
	if res != nil {
		_ = res[(rows-1)*dstStride+n-1]
	}
	current.Load().epiRows(dst, src, res, n, rows, dstStride, srcStride, a, b, lo, hi)
}

func epiRowsGeneric(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32) {
	for r := 0; r < rows; r++ {
		d := dst[r*dstStride : r*dstStride+n]
		s := src[r*srcStride : r*srcStride+n]
		if res == nil {
			for i, v := range s {
				d[i] = min(max(a*v+b, lo), hi)
			}
			continue
		}
		q := res[r*dstStride : r*dstStride+n]
		for i, v := range s {
			d[i] = min(max(a*v+b+q[i], lo), hi)
		}
	}
}

func momentsGeneric(x []float32, shift float32) (sum, sumSq float32) {
	var s0, s1, q0, q1 float32
	i := 0
	for ; i+2 <= len(x); i += 2 {
		d0, d1 := x[i]-shift, x[i+1]-shift
		s0 += d0
		s1 += d1
		q0 += d0 * d0
		q1 += d1 * d1
	}
	if i < len(x) {
		d := x[i] - shift
		s0 += d
		q0 += d * d
	}
	return s0 + s1, q0 + q1
}

func affineGeneric(dst, x []float32, a, b float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = a*v + b
	}
}

func affineClampGeneric(dst, x []float32, a, b, lo, hi float32) {
	x = x[:len(dst)]
	for i, v := range x {
		dst[i] = min(max(a*v+b, lo), hi)
	}
}

func maskInsideGeneric(dst, dy, y []float32, lo, hi float32) {
	dy, y = dy[:len(dst)], y[:len(dst)]
	for i, v := range y {
		if v > lo && v < hi {
			dst[i] = dy[i]
		} else {
			dst[i] = 0
		}
	}
}
