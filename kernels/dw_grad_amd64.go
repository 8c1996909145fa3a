//go:build amd64

package kernels

// dwGradW9x512 adds to out[0..9) the weight gradient of one channel of a
// 3×3 depthwise convolution over planes planes (xps bytes apart in x, dps
// in dy) of runs runs of 16 outputs each: the run-major mask table masks
// (16 entries per run, the output-lane mask at entry 9) and the taps'
// byte offsets offs.
//
//go:noescape
func dwGradW9x512(x, dy *float32, offs *int, masks *uint16, runs, planes, xps, dps int, out *float32)

// dwGradWArch runs the weight gradient of table tb with the AVX-512
// kernel for 3×3 filters (channel c of plane j: input at x[c·xcs + j·xps],
// output gradient at dy[c·dcs + j·dps]); it reports whether it did.
func dwGradWArch(tb *dwGradTable, g *ConvGeom, planes int, x []float32, xcs, xps int, dy []float32, dcs, dps int, dw []float32) bool {
	if current.Load() != avx512Impl || g.KH*g.KW != 9 || tb.width != 16 {
		return false
	}
	for c := 0; c < g.C; c++ {
		dwGradW9x512(&x[c*xcs], &dy[c*dcs], &tb.offBytes[0], &tb.masks[0], tb.runs, planes, 4*xps, 4*dps, &dw[c*9])
	}
	return true
}

// dwS2InputArch reports whether DepthwiseStride2GradInput runs dwSame512.
func dwS2InputArch() bool { return current.Load() == avx512Impl }
