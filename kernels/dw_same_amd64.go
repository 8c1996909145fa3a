//go:build amd64

package kernels

// dwSame512 runs chunks runs of 16 outputs of DepthwiseSame or
// DepthwiseStride2 for one channel, from x and y on: run r reads tap t at
// x[16r + offs[t] + i] for the lanes i of mask masks[t·period + m] and
// stores the lanes of masks[taps·period + m], where m = r mod period
// (period a multiple of 4 or at least chunks).
//
//go:noescape
func dwSame512(x, y, w *float32, offs *int, masks *uint16, taps, chunks, period int, a, b, bias, lo, hi float32)

// dwSameArch runs the depthwise kernel of dwStrided with the AVX-512
// code when im is the AVX-512 implementation; it reports whether it did.
// Input planes are xps apart, output planes OH·OW.
func dwSameArch(im *impl, sc *dwScratch, g *ConvGeom, chunks, period int, sweep bool, planes int, x []float32, xcs, xps int, w, y []float32, ycs int, e *DWEpilogue) bool {
	if im != avx512Impl {
		return false
	}
	ohw, taps := g.OH*g.OW, g.KH*g.KW
	offs, masks := sc.sameOffs, sc.masks
	for c := 0; c < g.C; c++ {
		a, b, bias := e.coeffs(c)
		wc := &w[c*taps]
		if sweep || planes == 1 {
			// Planes of whole runs: one sweep over all of them.
			dwSame512(&x[c*xcs], &y[c*ycs], wc, &offs[0], &masks[0], taps, planes*chunks, period, a, b, bias, e.Lo, e.Hi)
			continue
		}
		for j := 0; j < planes; j++ {
			dwSame512(&x[c*xcs+j*xps], &y[c*ycs+j*ohw], wc, &offs[0], &masks[0], taps, chunks, period, a, b, bias, e.Lo, e.Hi)
		}
	}
	return true
}
