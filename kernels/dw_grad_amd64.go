//go:build amd64

package kernels

// dwSameGradW9x512 adds to out[0..9) the weight gradient of one channel of
// a 3×3 same-size depthwise convolution over planes planes (ps bytes
// apart) of runs runs of 16 outputs each: the run-major mask table masks
// (16 entries per run, the output-lane mask at entry 9) and the taps'
// byte offsets offs.
//
//go:noescape
func dwSameGradW9x512(x, dy *float32, offs *int, masks *uint16, runs, planes, ps int, out *float32)

// dwSameGradWArch runs DepthwiseSameGradWeight with the AVX-512 kernel
// for 3×3 filters; it reports whether it did.
func dwSameGradWArch(tb *dwGradTable, g *ConvGeom, planes int, x, dy []float32, ps int, dw []float32) bool {
	if current.Load() != avx512Impl || g.KH*g.KW != 9 || tb.width != 16 {
		return false
	}
	hw := g.H * g.W
	for c := 0; c < g.C; c++ {
		dwSameGradW9x512(&x[c*hw], &dy[c*hw], &tb.offBytes[0], &tb.masks[0], tb.runs, planes, 4*ps, &dw[c*9])
	}
	return true
}
