//go:build !amd64

package kernels

// windowOuterAsm is false: other architectures run the portable loop.
func windowOuterAsm() bool { return false }

func windowOuter9(*float32, *[9]int, *float32, int, int, *float32, int) {
	panic("kernels: no assembly")
}
