package kernels

import (
	"fmt"
	"os"
	"sync/atomic"
)

// impl is one instruction-set implementation: the SGEMM micro-kernel with
// its tile and cache-block sizes, and the vector helpers.
type impl struct {
	name string
	// mr×nr is the register tile, kc the depth of a packed block and nc
	// (a multiple of nr) the width of the C blocks that are the unit of
	// parallel work.
	mr, nr int
	kc, nc int
	// kernel sets the mr'×nr' tile at c (row stride ldc) to
	// alpha·Ap·Bp + beta·C, where Ap is a packed mr-row panel and Bp a
	// packed nr-column panel of depth k; beta == 0 ignores the old C.
	kernel func(k int, ap, bp, c []float32, ldc int, alpha, beta float32, rows, cols int)
	// kernelOffs, when set, is kernel with B row p read at b[offs[p]:]
	// (cols ≤ nr of them) instead of from a packed panel.
	kernelOffs func(k int, ap, b []float32, offs []int, c []float32, ldc int, alpha, beta float32, rows, cols int)
	// packT is the transposing pack: dst[p·width+r] = src[r·ld+p] for
	// p < kc, r < rows, zero for rows ≤ r < width.
	packT func(dst, src []float32, ld, rows, kc, width int)
	// packN is the copying pack: dst[p·width+j] = src[p·ld+j] for p < kc,
	// j < cols, zero for cols ≤ j < width.
	packN func(dst, src []float32, ld, cols, kc, width int)
	// packTOffs is packT with row r at src[offs[r]:].
	packTOffs func(dst, src []float32, offs []int32, rows, kc, width int)

	axpy  func(alpha float32, x, y []float32)
	scale func(alpha float32, x []float32)
	add   func(dst, a, b []float32)
	dot   func(x, y []float32) float32

	// Depthwise convolution row and dot kernels (see depthwise.go).
	dwRows func(dst, src []float32, offs []int, w []float32, n, rows, srcStep, dstStep int)
	dwDot  func(src, dy []float32, offs []int, n, rows, srcStep, dyStep int, out []float32)
	// spread sets dst[i·stride] = src[i] in a zeroed dst (in-between
	// elements may be rewritten as 0).
	spread func(dst, src []float32, stride int)
	// deint2 splits src into even[i] = src[2i] and odd[i] = src[2i+1].
	deint2 func(even, odd, src []float32)
	// copyRows copies rows runs of n: dst[r·dstStride+i] = src[r·srcStride+i].
	copyRows func(dst, src []float32, n, rows, dstStride, srcStride int)
	// epiRows is EpilogueRows (res nil: no residual).
	epiRows func(dst, src, res []float32, n, rows, dstStride, srcStride int, a, b, lo, hi float32)

	// Pointwise helpers (see pointwise.go).
	affine      func(dst, x []float32, a, b float32)
	affineClamp func(dst, x []float32, a, b, lo, hi float32)
	maskInside  func(dst, dy, y []float32, lo, hi float32)
}

var genericImpl = &impl{
	name: "generic",
	mr:   4, nr: 8,
	kc: 512, nc: 128,
	kernel: kernelGeneric,
	packT:  packTGeneric,
	packN:  packNGeneric,

	packTOffs: packTOffsGeneric,
	axpy:      axpyGeneric,
	scale:     scaleGeneric,
	add:       addGeneric,
	dot:       dotGeneric,
	dwRows:    dwRowsGeneric,
	dwDot:     dwDotGeneric,
	spread:    scatterAdd,
	deint2:    deint2Generic,
	copyRows:  copyRowsGeneric,
	epiRows:   epiRowsGeneric,

	affine:      affineGeneric,
	affineClamp: affineClampGeneric,
	maskInside:  maskInsideGeneric,
}

// derive returns a copy of base changed by edit.
func derive(base *impl, edit func(*impl)) *impl {
	im := *base
	edit(&im)
	return &im
}

// impls lists the implementations usable on this CPU, best last.
var impls = append([]*impl{genericImpl}, archImpls()...)

var current atomic.Pointer[impl]

func init() {
	current.Store(implFor(os.Getenv("LOWBIT_KERNELS")))
}

// implFor returns the implementation called name, or the best one this CPU
// supports when name is empty, unknown or unsupported.
func implFor(name string) *impl {
	for _, im := range impls {
		if im.name == name {
			return im
		}
	}
	return impls[len(impls)-1]
}

// Impl names the implementation in use: "generic", "avx2" or "avx512".
func Impl() string { return current.Load().name }

// Impls lists the implementations this CPU supports, slowest first.
func Impls() []string {
	names := make([]string, len(impls))
	for i, im := range impls {
		names[i] = im.name
	}
	return names
}

// SetImpl selects the implementation by name ("generic", "avx2" or
// "avx512"). The environment variable LOWBIT_KERNELS does the same at
// start-up. It returns an error if the CPU lacks the instructions; calls
// already running finish with the implementation they started with.
func SetImpl(name string) error {
	if im := implFor(name); im.name == name {
		current.Store(im)
		return nil
	}
	return fmt.Errorf("kernels: implementation %q is not available on this CPU (have %v)", name, Impls())
}
