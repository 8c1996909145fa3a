package ops

import (
	"fmt"
	"runtime"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/kernels"
	"lowbit/tensor"
)

// TestDepthwiseMaskedTraining checks the training forward and backward of
// depthwise convolutions that take the masked kernels (same-size stride 1,
// stride 2 with output ⌈H/2⌉×⌈W/2⌉; 3×3 and 5×5, odd sizes) against the
// direct loops and the forward against the padded-copy kernel
// (kernels.DepthwiseConv) on every kernel implementation, with one image
// and with more images than workers; a non-zero pad value and a geometry
// the masked kernels do not take check the fallback.
func TestDepthwiseMaskedTraining(t *testing.T) {
	cases := []struct {
		name string
		op   Conv
		c    int
		h, w int
		k    int
		bias bool
	}{
		{"s1_3x3_odd", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 5, 7, 9, 3, true},
		{"s1_5x5_odd", Conv{PadT: 2, PadL: 2, PadB: 2, PadR: 2}, 3, 9, 5, 5, false},
		{"s1_3x3_dil2", Conv{PadT: 2, PadL: 2, PadB: 2, PadR: 2, DilH: 2, DilW: 2}, 3, 5, 7, 3, true},
		{"s1_3x3_wide", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 4, 6, 21, 3, true},
		{"s2_3x3_odd", Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 5, 7, 9, 3, true},
		{"s2_3x3_even", Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 3, 8, 6, 3, false},
		{"s2_5x5_odd", Conv{StrideH: 2, StrideW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2}, 3, 9, 11, 5, true},
		{"s2_3x3_asym", Conv{StrideH: 2, StrideW: 2, PadT: 0, PadL: 0, PadB: 1, PadR: 1}, 2, 5, 7, 3, false},
		// Planes big enough that the backward splits images (weight
		// gradient) and channels (input gradient) into several blocks.
		{"s2_3x3_blocks", Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, 6, 64, 62, 3, true},
		{"s1_padvalue_fallback", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, PadValue: 0.5}, 3, 5, 5, 3, true},
		{"s2_valid_fallback", Conv{StrideH: 2, StrideW: 2}, 3, 7, 7, 3, false},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	forEachImpl(t, func(t *testing.T) {
		for _, procs := range []int{1, 2} {
			runtime.GOMAXPROCS(procs)
			for ci, tc := range cases {
				for _, n := range []int{1, 5} {
					t.Run(fmt.Sprintf("%s/procs%d/n%d", tc.name, procs, n), func(t *testing.T) {
						op := tc.op
						op.Groups = tc.c
						rng := graph.RNG(int64(10*ci + n))
						x := gradcheck.Rand(rng, n, tc.c, tc.h, tc.w)
						w := gradcheck.Rand(rng, tc.c, 1, tc.k, tc.k)
						in := []*tensor.Tensor{x, w}
						var b *tensor.Tensor
						if tc.bias {
							b = gradcheck.Rand(rng, tc.c)
							in = append(in, b)
						}
						c := graph.NewContext(true, 1)
						for run := 0; run < 2; run++ { // the second run reuses buffers
							out, err := op.Forward(c, in)
							if err != nil {
								t.Fatal(err)
							}
							cgAssertClose(t, "Y vs naive", out[0].Data, naiveConv(op, x, w, b).Data, 1e-5)
							cgAssertClose(t, "Y vs padded kernel", out[0].Data, paddedDepthwise(t, op, x, w, b, out[0].Shape), 1e-5)
							dy := gradcheck.Rand(rng, out[0].Shape...)
							g, err := op.Backward(c, in, out, []*tensor.Tensor{dy})
							if err != nil {
								t.Fatal(err)
							}
							wantX, wantW := naiveConvBackward(op, x, w, dy)
							cgAssertClose(t, "dX", g[0].Data, wantX.Data, 1e-5)
							cgAssertClose(t, "dW", g[1].Data, wantW.Data, 1e-4)
						}
					})
				}
			}
		}
	})
}

// paddedDepthwise is the depthwise forward of the padded-copy kernel,
// image by image, plus the bias.
func paddedDepthwise(t *testing.T, op Conv, x, w, b *tensor.Tensor, yShape []int) []float32 {
	t.Helper()
	d, err := op.dims(x.Shape, w.Shape, nil)
	if err != nil {
		t.Fatal(err)
	}
	y := tensor.New(yShape...)
	g := d.geom
	ohw := g.OH * g.OW
	for n := 0; n < d.N; n++ {
		yn := y.Data[n*d.M*ohw : (n+1)*d.M*ohw]
		kernels.DepthwiseConv(&g, x.Data[n*d.C*d.H*d.W:], w.Data, yn, op.PadValue)
		if b != nil {
			for m := 0; m < d.M; m++ {
				for i := range yn[m*ohw : (m+1)*ohw] {
					yn[m*ohw+i] += b.Data[m]
				}
			}
		}
	}
	return y.Data
}

// TestDepthwiseMaskedEpilogue checks the fused epilogue of the masked
// depthwise forward (bias, per-channel affine, clamp, with and without a
// residual added before the clamp) against the direct loops followed by
// the same operations, on every kernel implementation.
func TestDepthwiseMaskedEpilogue(t *testing.T) {
	ops := []Conv{
		{PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 4},
		{StrideH: 2, StrideW: 2, PadT: 2, PadL: 2, PadB: 2, PadR: 2, Groups: 4},
	}
	kernelSizes := []int{3, 5}
	forEachImpl(t, func(t *testing.T) {
		for oi, op := range ops {
			for _, withRes := range []bool{false, true} {
				rng := graph.RNG(int64(40 + oi))
				k := kernelSizes[oi]
				x := gradcheck.Rand(rng, 3, 4, 7, 9)
				w := gradcheck.Rand(rng, 4, 1, k, k)
				bias, a, b := gradcheck.Rand(rng, 4), gradcheck.Rand(rng, 4), gradcheck.Rand(rng, 4)
				ref := naiveConv(op, x, w, bias)
				epi := &convEpilogue{bias: bias.Data, a: a.Data, b: b.Data, clamp: true, lo: -0.25, hi: 0.5}
				var res *tensor.Tensor
				if withRes {
					res = gradcheck.Rand(rng, ref.Shape...)
					epi.res = res.Data
				}
				d, err := op.dims(x.Shape, w.Shape, bias.Shape)
				if err != nil {
					t.Fatal(err)
				}
				ohw := ref.Shape[2] * ref.Shape[3]
				want := make([]float32, len(ref.Data))
				for i, v := range ref.Data {
					m := i / ohw % 4
					v = a.Data[m]*v + b.Data[m]
					if res != nil {
						v += res.Data[i]
					}
					want[i] = min(max(v, -0.25), 0.5)
				}
				y := make([]float32, len(ref.Data))
				op.forwardData(nil, &d, x.Data, w.Data, y, epi)
				cgAssertClose(t, fmt.Sprintf("op %d res %v", oi, withRes), y, want, 1e-5)
			}
		}
	})
}
