//go:build !amd64

package kernels

// bnRowsAsm is false: other architectures run the portable row kernels.
func bnRowsAsm() bool { return false }

func bnMomentsEach512(*float32, int, int, int, *BNCoef, *float64, int) { panic("kernels: no assembly") }

func bnApplyEach512(_, _, _ *float32, _, _, _ int, _ *BNCoef, _, _ float32, _ bool, _ int) {
	panic("kernels: no assembly")
}

func bnSumsEach512(_, _ *float32, _, _, _ int, _ *BNCoef, _, _ float32, _ bool, _ *float64, _ int) {
	panic("kernels: no assembly")
}

func bnGradEach512(_, _, _ *float32, _, _, _ int, _ *BNCoef, _, _ float32, _ bool, _ int) {
	panic("kernels: no assembly")
}

func bnMaskSumsEach512(_, _, _, _ *float32, _, _, _ int, _ *BNCoef, _, _ float32, _ bool, _ *float64, _ int) {
	panic("kernels: no assembly")
}
