//go:build amd64

package kernels

// Declarations of the AVX-512 BatchNorm row kernels (vec_bn_avx512_amd64.s);
// the exported wrappers in vec_bn.go check the bounds. coef points at rows
// BNCoef entries (32 bytes each), sums at 2·rows float64.

// bnRowsAsm reports whether the AVX-512 row kernels are selected.
func bnRowsAsm() bool { return current.Load() == avx512Impl }

//go:noescape
func bnMomentsEach512(x *float32, n, rows, stride int, coef *BNCoef, sums *float64, ahead int)

//go:noescape
func bnApplyEach512(dst, x, res *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, hasRes bool, ahead int)

//go:noescape
func bnSumsEach512(dy, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, sums *float64, ahead int)

//go:noescape
func bnGradEach512(dst, dy, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, ahead int)

//go:noescape
func bnMaskSumsEach512(dz, dy, y, x *float32, n, rows, stride int, coef *BNCoef, lo, hi float32, masked bool, sums *float64, ahead int)
