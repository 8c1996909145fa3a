//go:build !amd64

package kernels

// The *Arch functions report false: other architectures run the portable
// transforms.

func winoInputArch(*impl, int, *winoScratch, []float32, int, []float32, int) bool { return false }

func winoOutputArch(*impl, int, *winoScratch, []float32, int, int, []float32, []float32, float32, float32, float32, float32, float32) bool {
	return false
}

func winoSplitArch(*impl, int, []float32, int, int, []float32, int, int) bool { return false }

func winoMergeArch(*impl, int, []float32, int, int, []float32, int, int) bool { return false }

func sub2Arch(*impl, []float32, int, int, []float32) bool { return false }

func winoProductsArch(*impl, *WinogradWeights, []float32, []int, int, []float32) bool { return false }

func winoPairedArch(*impl, *winoKind, *winoScratch, *WinogradWeights, []float32, int, int, []float32) bool {
	return false
}
