package ops

import (
	"math"
	"runtime"

	"lowbit/graph"
	"lowbit/kernels"
	"lowbit/tensor"
)

// dwParityScratch holds the parity-split input channels of the stride-2
// masked depthwise forward, one buffer per goroutine.
var dwParityScratch kernels.FreeList[[]float32]

// dwParityBlock is the most floats of parity-split input one goroutine
// converts before running the kernel on them (a few L2-resident channels).
const dwParityBlock = 1 << 14

// depthwiseMasked runs the depthwise forward with the masked kernels that
// read unpadded planes (kernels.DepthwiseSame for same-size stride-1
// layers, kernels.DepthwiseStride2 on a parity split of the input for
// stride-2 layers with output ⌈H/2⌉×⌈W/2⌉), both with zero padding only.
// It reports false, doing nothing, for other geometries. (image, channel)
// pairs are spread over the workers; the epilogue's per-channel part runs
// in the kernel, the residual after it.
func (op Conv) depthwiseMasked(d *convDims, x, w, y []float32, epi *convEpilogue) bool {
	g := d.geom
	same := g.SH == 1 && g.SW == 1 && g.OH == g.H && g.OW == g.W
	s2 := halvingStride2(&g)
	if op.PadValue != 0 || (!same && !s2) || g.OH <= 0 || g.OW <= 0 {
		return false
	}
	var ep kernels.DWEpilogue // used when epi != nil
	if epi != nil {
		ep = kernels.DWEpilogue{A: epi.a, B: epi.b, Bias: epi.bias, Lo: float32(math.Inf(-1)), Hi: float32(math.Inf(1))}
		if epi.clamp && epi.res == nil {
			ep.Lo, ep.Hi = epi.lo, epi.hi
		}
	}
	hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
	ps := kernels.WinogradPlane(g.H, g.W, 2)
	total := d.N * d.C
	workers := runtime.GOMAXPROCS(0)
	kernels.ParallelChunks(total, max(1, total/(4*workers)), func(lo, hi int) {
		var par *[]float32
		var sub kernels.DWEpilogue
		if s2 {
			par = dwParityScratch.Get()
			defer dwParityScratch.Put(par)
		}
		for i := lo; i < hi; {
			n, c0 := i/d.C, i%d.C
			c1 := min(d.C, c0+hi-i)
			i += c1 - c0
			xn := x[n*d.C*hw:]
			yn := y[n*d.M*ohw:]
			if same {
				gl := g
				gl.C = c1 - c0
				kernels.DepthwiseSame(&gl, 1, xn[c0*hw:], hw, w[c0*taps:], yn[c0*ohw:], ohw, channelEpilogue(&sub, epi != nil, &ep, c0))
				continue
			}
			blk := max(1, dwParityBlock/ps)
			for b0 := c0; b0 < c1; b0 += blk {
				b1 := min(c1, b0+blk)
				buf := grow(par, (b1-b0)*ps)
				kernels.WinogradSplit(g.H, g.W, 2, b1-b0, 1, xn[b0*hw:], hw, hw, buf, ps)
				gl := g
				gl.C = b1 - b0
				kernels.DepthwiseStride2(&gl, 1, buf, ps, w[b0*taps:], yn[b0*ohw:], ohw, channelEpilogue(&sub, epi != nil, &ep, b0))
			}
		}
	})
	if epi != nil && epi.res != nil {
		size := d.M * ohw
		kernels.ParallelChunks(d.N, max(1, d.N/(4*workers)), func(lo, hi int) {
			for n := lo; n < hi; n++ {
				epi.finish(y[n*size:(n+1)*size], n, ohw)
			}
		})
	}
	return true
}

// halvingStride2 reports whether g is a stride-2 geometry without
// dilation whose output is ⌈H/2⌉×⌈W/2⌉, the one kernels.DepthwiseStride2
// and its backward take.
func halvingStride2(g *kernels.ConvGeom) bool {
	return g.SH == 2 && g.SW == 2 && g.DH == 1 && g.DW == 1 && g.OH == (g.H+1)/2 && g.OW == (g.W+1)/2
}

// channelEpilogue sets *dst to ep restricted to the channels from c0 on
// and returns dst, or nil when there is no epilogue (!has).
func channelEpilogue(dst *kernels.DWEpilogue, has bool, ep *kernels.DWEpilogue, c0 int) *kernels.DWEpilogue {
	if !has {
		return nil
	}
	*dst = *ep
	if dst.A != nil {
		dst.A, dst.B = dst.A[c0:], dst.B[c0:]
	}
	if dst.Bias != nil {
		dst.Bias = dst.Bias[c0:]
	}
	return dst
}

// depthwiseStride2Backward is depthwiseBackward for the stride-2 layers
// of depthwiseMasked, with the masked kernels on parity-split planes
// instead of padded copies: the weight gradient with channels spread over
// the workers (each sums its channels over all images in a fixed order),
// the input gradient with images spread over them, each block of channels
// computed in the parity layout and merged into planes; both in one
// parallel region. It reports false, doing nothing, for other geometries.
func (op Conv) depthwiseStride2Backward(c *graph.Context, d *convDims, in []*tensor.Tensor, dy []float32, needX, needW bool, grads []*tensor.Tensor) bool {
	g := d.geom
	if op.PadValue != 0 || !halvingStride2(&g) || g.OH <= 0 || g.OW <= 0 {
		return false
	}
	hw, ohw, taps := g.H*g.W, g.OH*g.OW, g.KH*g.KW
	ps := kernels.WinogradPlane(g.H, g.W, 2)
	x, w := in[0].Data, in[1].Data
	dw, dx := dwGradBuffers(c, in, needW, needX, grads)
	// Planes per parity block: images of one channel (weight gradient),
	// channels of one image (input gradient).
	blk := max(1, dwParityBlock/ps)
	gradBothParallel(d, needW, needX, func(lo, hi int) {
		par := dwParityScratch.Get()
		defer dwParityScratch.Put(par)
		gl := g
		gl.C = 1
		for ch := lo; ch < hi; ch++ {
			for j0 := 0; j0 < d.N; j0 += blk {
				cnt := min(blk, d.N-j0)
				buf := grow(par, cnt*ps)
				kernels.WinogradSplit(g.H, g.W, 2, 1, cnt, x[(j0*d.C+ch)*hw:], hw, d.C*hw, buf, cnt*ps)
				kernels.DepthwiseStride2GradWeight(&gl, cnt, buf, cnt*ps, ps, dy[(j0*d.M+ch)*ohw:], ohw, d.M*ohw, dw[ch*taps:])
			}
		}
	}, func(lo, hi int) {
		par := dwParityScratch.Get()
		defer dwParityScratch.Put(par)
		for n := lo; n < hi; n++ {
			for c0 := 0; c0 < d.C; c0 += blk {
				gl := g
				gl.C = min(blk, d.C-c0)
				buf := grow(par, gl.C*ps)
				kernels.DepthwiseStride2GradInput(&gl, 1, dy[(n*d.M+c0)*ohw:], ohw, ohw, w[c0*taps:], buf, ps, ps)
				kernels.WinogradMerge(g.H, g.W, 2, gl.C, 1, buf, ps, dx[(n*d.C+c0)*hw:], hw, hw, g.W)
			}
		}
	})
	return true
}
