//go:build !amd64

package kernels

// dwSameArch reports false: other architectures run the portable kernel.
func dwSameArch(*impl, *dwScratch, *ConvGeom, int, int, bool, int, []float32, int, int, []float32, []float32, int, *DWEpilogue) bool {
	return false
}
