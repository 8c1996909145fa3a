//go:build !amd64

package kernels

// dwSameGradWArch is false: other architectures run the portable loop.
func dwSameGradWArch(*dwGradTable, *ConvGeom, int, []float32, []float32, int, []float32) bool {
	return false
}
