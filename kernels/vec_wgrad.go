package kernels

import "fmt"

// Weight gradient of a stride-1 convolution by implicit GEMM without
// packing the input: for one input channel, the gradient of output
// channel j and tap t is the dot product of the output gradient spread
// onto the padded input grid (zero off the outputs) with the tap's window
// of the padded input, a run of the same length at the tap's offset. The
// output gradient is transposed once into panels of 16 or 32 output
// channels per grid position (PanelT), shared by all input channels; the
// assembly then adds, per grid position, the nine taps' inputs (broadcast
// from the windows in place: they overlap, so a channel's stay in the L1
// cache, and scalar loads never straddle cache lines) times the panel row
// into 9 × 2 vector accumulators.

// PanelT transposes rows rows of k floats (ld apart in src) into the panel
// dst[p·width + r] = src[r·ld + p] (p < k, r < rows), zero for
// rows ≤ r < width: the layout WindowOuter reads.
func PanelT(dst, src []float32, ld, rows, k, width int) {
	if k <= 0 {
		return
	}
	if rows > width {
		panic(fmt.Sprintf("kernels: PanelT: %d rows for width %d", rows, width))
	}
	_ = dst[k*width-1]
	if rows > 0 {
		_ = src[(rows-1)*ld+k-1]
	}
	current.Load().packT(dst, src, ld, rows, k, width)
}

// HasWindowOuter reports whether WindowOuter has a vector kernel for taps
// windows (up to 9) and panels of width in the implementation in use.
func HasWindowOuter(taps, width int) bool {
	return taps >= 1 && taps <= 9 && (width == 16 || width == 32) && windowOuterAsm()
}

// WindowOuter adds to out[t·ldo + j], for t < len(offs) and j < width,
// Σ_{p<k} x[offs[t] + p] · panel[p·width + j]: the weight gradient of one
// input channel for the taps at offs (or of up to 9 rows of a column
// matrix) and the width output channels of the panel (see PanelT), as a
// sum of outer products.
func WindowOuter(x []float32, offs []int, panel []float32, width, k int, out []float32, ldo int) {
	taps := len(offs)
	if k <= 0 || taps == 0 || width <= 0 {
		return
	}
	for _, o := range offs {
		_ = x[o]
		_ = x[o+k-1]
	}
	_ = panel[k*width-1]
	_ = out[(taps-1)*ldo+width-1]
	if HasWindowOuter(taps, width) {
		var ob [9]int
		for t := range ob {
			ob[t] = 4 * offs[min(t, taps-1)]
		}
		if taps == 9 {
			windowOuter9(&x[0], &ob, &panel[0], width, k, &out[0], ldo)
			return
		}
		// Fewer rows: repeat the last one into a scratch block.
		var tmp [9 * 32]float32
		windowOuter9(&x[0], &ob, &panel[0], width, k, &tmp[0], width)
		for t := 0; t < taps; t++ {
			row := out[t*ldo : t*ldo+width]
			addGeneric(row, row, tmp[t*width:(t+1)*width])
		}
		return
	}
	for t, o := range offs {
		row := out[t*ldo : t*ldo+width]
		for p, v := range x[o : o+k] {
			axpyGeneric(v, panel[p*width:(p+1)*width], row)
		}
	}
}
