//go:build !amd64

package kernels

// dwGradWArch is false: other architectures run the portable loop.
func dwGradWArch(*dwGradTable, *ConvGeom, int, []float32, int, int, []float32, int, int, []float32) bool {
	return false
}

// dwS2InputArch is false: other architectures run the portable loop.
func dwS2InputArch() bool { return false }

// dwSame512 is never called on other architectures.
func dwSame512(x, y, w *float32, offs *int, masks *uint16, taps, chunks, period int, a, b, bias, lo, hi float32) {
	panic("kernels: dwSame512 without amd64")
}
