package ops

import (
	"math"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// TestDepthwiseSameGradients checks the same-size stride-1 depthwise
// backward path (zero padding; 3×3 runs the assembly weight gradient)
// against finite differences and the forward reference, on every kernel
// implementation; the non-zero pad value takes the general path.
func TestDepthwiseSameGradients(t *testing.T) {
	cases := []convCase{
		{name: "3x3_4x4", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 3}, x: []int{3, 3, 4, 4}, w: []int{3, 1, 3, 3}, bias: true},
		{name: "3x3_7x5", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 2}, x: []int{2, 2, 7, 5}, w: []int{2, 1, 3, 3}},
		{name: "3x3_dil2", op: Conv{PadT: 2, PadL: 2, PadB: 2, PadR: 2, DilH: 2, DilW: 2, Groups: 2}, x: []int{2, 2, 5, 6}, w: []int{2, 1, 3, 3}},
		{name: "5x5_asym", op: Conv{PadT: 1, PadL: 2, PadB: 3, PadR: 2, Groups: 2}, x: []int{2, 2, 6, 5}, w: []int{2, 1, 5, 5}},
		{name: "3x3_padvalue", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 2, PadValue: 0.5}, x: []int{2, 2, 4, 4}, w: []int{2, 1, 3, 3}},
	}
	forEachImpl(t, func(t *testing.T) {
		for i, tc := range cases {
			in := convCaseInputs(tc, int64(200+i))
			if err := gradcheck.Check(tc.op, in, gradcheck.Options{Training: true, Seed: int64(i), MaxProbe: 60}); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	})
}

// TestConvOuterGradients checks the weight gradient by outer products
// (AVX-512; GEMMs elsewhere) against finite differences on every kernel
// implementation: stride-1 layers (windows of the padded input) with
// groups, dilation, a pad value and more images than fit one group, and
// column-matrix layers (pointwise, strided, wider than one panel).
func TestConvOuterGradients(t *testing.T) {
	cases := []convCase{
		{name: "3x3_pad1", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, x: []int{5, 3, 6, 5}, w: []int{5, 3, 3, 3}, bias: true},
		{name: "3x3_groups_dil_padvalue", op: Conv{PadT: 2, PadL: 1, PadB: 0, PadR: 3, DilH: 2, Groups: 2, PadValue: -0.5}, x: []int{3, 4, 7, 6}, w: []int{6, 2, 3, 3}},
		{name: "3x3_valid_big_batch", op: Conv{}, x: []int{40, 2, 4, 4}, w: []int{3, 2, 3, 3}},
		{name: "2x2_stride1", op: Conv{PadB: 1}, x: []int{3, 3, 5, 4}, w: []int{4, 3, 2, 2}},
		{name: "5x5_stride1", op: Conv{PadT: 2, PadL: 2, PadB: 2, PadR: 2}, x: []int{3, 2, 5, 6}, w: []int{3, 2, 5, 5}},
		{name: "pointwise_wide_panels", op: Conv{}, x: []int{6, 11, 3, 5}, w: []int{37, 11, 1, 1}, bias: true},
		{name: "pointwise_groups_small_images", op: Conv{Groups: 2}, x: []int{20, 4, 2, 2}, w: []int{6, 2, 1, 1}},
		{name: "3x3_stride2", op: Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, x: []int{4, 3, 7, 6}, w: []int{5, 3, 3, 3}},
		{name: "pointwise_expand_input_panels", op: Conv{}, x: []int{4, 17, 3, 5}, w: []int{41, 17, 1, 1}},
	}
	forEachImpl(t, func(t *testing.T) {
		for i, tc := range cases {
			in := convCaseInputs(tc, int64(300+i))
			if err := gradcheck.Check(tc.op, in, gradcheck.Options{Training: true, Seed: int64(i), MaxProbe: 60}); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
	})
}

// TestPointwiseExpandWeightGradient checks the weight gradient of
// pointwise layers with fewer input than output channels, which transpose
// the input into the panels (convPlan.swapOuter; full, partial and
// several panels, output channels not a multiple of 9, one image per
// product and gathered small images), against the sum over images and
// positions of dY·X in float64, on every kernel implementation.
func TestPointwiseExpandWeightGradient(t *testing.T) {
	cases := []struct {
		n, c, m, h, w int
		swap          bool
	}{
		{n: 3, c: 16, m: 23, h: 8, w: 4, swap: true},
		{n: 5, c: 33, m: 70, h: 3, w: 5, swap: true},
		{n: 20, c: 17, m: 41, h: 2, w: 2, swap: true},
		{n: 4, c: 7, m: 30, h: 4, w: 8},  // too few input channels
		{n: 4, c: 30, m: 20, h: 4, w: 8}, // fewer outputs: no swap
	}
	forEachImpl(t, func(t *testing.T) {
		for i, tc := range cases {
			rng := graph.RNG(int64(400 + i))
			x := gradcheck.Rand(rng, tc.n, tc.c, tc.h, tc.w)
			w := gradcheck.Rand(rng, tc.m, tc.c, 1, 1)
			dy := gradcheck.Rand(rng, tc.n, tc.m, tc.h, tc.w)
			in := []*tensor.Tensor{x, w}
			op := Conv{}
			d, _, err := op.convInputs(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := op.plan(&d).swapOuter(); got != tc.swap {
				t.Fatalf("case %d: swapOuter %v, want %v", i, got, tc.swap)
			}
			c := graph.NewContext(true, 2)
			out, err := op.Forward(c, in)
			if err != nil {
				t.Fatal(err)
			}
			grads, err := op.Backward(c, in, out, []*tensor.Tensor{dy})
			if err != nil {
				t.Fatal(err)
			}
			hw := tc.h * tc.w
			for m := 0; m < tc.m; m++ {
				for ch := 0; ch < tc.c; ch++ {
					var want float64
					for n := 0; n < tc.n; n++ {
						for p := 0; p < hw; p++ {
							want += float64(dy.Data[(n*tc.m+m)*hw+p]) * float64(x.Data[(n*tc.c+ch)*hw+p])
						}
					}
					got := float64(grads[1].Data[m*tc.c+ch])
					if math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
						t.Fatalf("case %d: dW[%d][%d] = %g, want %g", i, m, ch, got, want)
					}
				}
			}
		}
	})
}
