//go:build amd64

package kernels

// windowOuterAsm reports whether the AVX-512 window kernel is selected.
func windowOuterAsm() bool { return current.Load() == avx512Impl }

// windowOuter9 adds to out[t·ldo/4 + j] (t < 9, j < width) the sums over
// p < k of x[offs[t]/4 + p]·panel[p·width + j], width 16 or 32.
//
//go:noescape
func windowOuter9(x *float32, offs *[9]int, panel *float32, width, k int, out *float32, ldo int)
