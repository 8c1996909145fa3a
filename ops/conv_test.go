package ops

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// cgAssertClose fails the test when got and want differ by more than tol
// (absolute, relative to max(1, |want|)).
func cgAssertClose(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > tol*math.Max(1, math.Abs(float64(want[i]))) {
			t.Fatalf("%s: element %d = %g, want %g", what, i, got[i], want[i])
		}
	}
}

// cgForward runs op's Forward in a fresh context and returns its output.
func cgForward(t *testing.T, op graph.Op, training bool, in ...*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	out, err := op.Forward(graph.NewContext(training, 1), in)
	if err != nil {
		t.Fatalf("%s forward: %v", op.Type(), err)
	}
	return out[0]
}

// naiveConv is a direct convolution loop (the reference for Conv).
func naiveConv(op Conv, x, w, b *tensor.Tensor) *tensor.Tensor {
	sh, sw, dh, dw, groups, _ := op.attrs()
	n, ch, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	m, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	mg := m / groups
	oh := (h+op.PadT+op.PadB-(kh-1)*dh-1)/sh + 1
	ow := (wd+op.PadL+op.PadR-(kw-1)*dw-1)/sw + 1
	y := tensor.New(n, m, oh, ow)
	for in := 0; in < n; in++ {
		for om := 0; om < m; om++ {
			gr := om / mg
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var s float64
					if b != nil {
						s = float64(b.Data[om])
					}
					for ic := 0; ic < cg; ic++ {
						c := gr*cg + ic
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := oy*sh-op.PadT+ky*dh, ox*sw-op.PadL+kx*dw
								v := op.PadValue
								if iy >= 0 && iy < h && ix >= 0 && ix < wd {
									v = x.Data[((in*ch+c)*h+iy)*wd+ix]
								}
								s += float64(v) * float64(w.Data[((om*cg+ic)*kh+ky)*kw+kx])
							}
						}
					}
					y.Data[((in*m+om)*oh+oy)*ow+ox] = float32(s)
				}
			}
		}
	}
	return y
}

type convCase struct {
	name     string
	op       Conv
	x, w     []int
	bias     bool
	skipGrad bool
}

var convCases = []convCase{
	{name: "3x3_pad1_bias", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, x: []int{2, 3, 7, 5}, w: []int{4, 3, 3, 3}, bias: true},
	{name: "stride2_asympad_dil2_groups3", op: Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 0, PadB: 2, PadR: 1, DilH: 2, DilW: 2, Groups: 3},
		x: []int{2, 3, 7, 5}, w: []int{6, 1, 3, 2}},
	{name: "depthwise_stride2", op: Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 3}, x: []int{2, 3, 7, 5}, w: []int{3, 1, 3, 3}, bias: true},
	{name: "depthwise_negpad_dil2", op: Conv{StrideW: 2, PadT: 2, PadL: 1, PadR: 2, DilH: 2, Groups: 3, PadValue: -0.375}, x: []int{2, 3, 7, 5}, w: []int{3, 1, 3, 3}, bias: true},
	{name: "depthwise_multiplier2", op: Conv{PadT: 1, PadL: 2, Groups: 3, StrideW: 3}, x: []int{2, 3, 7, 5}, w: []int{6, 1, 3, 3}},
	{name: "groups_2x2", op: Conv{Groups: 2, PadB: 1, PadR: 1}, x: []int{2, 4, 6, 5}, w: []int{6, 2, 2, 3}, bias: true},
	{name: "pointwise", op: Conv{}, x: []int{2, 3, 7, 5}, w: []int{4, 3, 1, 1}, bias: true},
	{name: "pointwise_groups", op: Conv{Groups: 3}, x: []int{2, 6, 4, 3}, w: []int{3, 2, 1, 1}},
	// Images gathered two per product with a last group of one, and
	// planes of one full 32-column panel (one image per product); the
	// backward computes the input gradient group by group after the
	// weight gradient's.
	{name: "pointwise_batch9_gathered", op: Conv{}, x: []int{9, 5, 3, 3}, w: []int{7, 5, 1, 1}, bias: true},
	{name: "pointwise_planes32_groups2", op: Conv{Groups: 2}, x: []int{8, 4, 4, 8}, w: []int{6, 2, 1, 1}},
	{name: "1x1_stride2", op: Conv{StrideH: 2, StrideW: 2}, x: []int{2, 3, 7, 5}, w: []int{4, 3, 1, 1}},
	{name: "negative_padding", op: Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, PadValue: -0.375}, x: []int{2, 3, 7, 5}, w: []int{2, 3, 3, 3}, bias: true},
	{name: "batch5_rect_kernel", op: Conv{StrideH: 2, PadT: 2, PadB: 1}, x: []int{5, 2, 6, 4}, w: []int{3, 2, 4, 1}, bias: true, skipGrad: true},
}

func convCaseInputs(c convCase, seed int64) []*tensor.Tensor {
	rng := graph.RNG(seed)
	in := []*tensor.Tensor{gradcheck.Rand(rng, c.x...), gradcheck.Rand(rng, c.w...)}
	if c.bias {
		in = append(in, gradcheck.Rand(rng, c.w[0]))
	}
	return in
}

func TestConvForwardMatchesNaive(t *testing.T) {
	for i, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			in := convCaseInputs(tc, int64(i))
			var b *tensor.Tensor
			if tc.bias {
				b = in[2]
			}
			want := naiveConv(tc.op, in[0], in[1], b)
			shapes, err := tc.op.InferShapes([][]int{tc.x, tc.w})
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(shapes[0], want.Shape) {
				t.Fatalf("InferShapes %v, reference %v", shapes[0], want.Shape)
			}
			// Run twice in one context: the second run reuses the buffers.
			c := graph.NewContext(false, 1)
			for run := 0; run < 2; run++ {
				out, err := tc.op.Forward(c, in)
				if err != nil {
					t.Fatal(err)
				}
				if !tensor.SameShape(out[0].Shape, want.Shape) {
					t.Fatalf("output shape %v, want %v", out[0].Shape, want.Shape)
				}
				cgAssertClose(t, "conv output", out[0].Data, want.Data, 1e-5)
			}
		})
	}
}

func TestConvGradients(t *testing.T) {
	for i, tc := range convCases {
		if tc.skipGrad {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if err := gradcheck.Check(tc.op, convCaseInputs(tc, int64(100+i)), gradcheck.Options{Training: true, Seed: int64(i), MaxProbe: 60}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestConvBackwardMatchesFullBatch checks that per-worker weight-gradient
// partials are summed (batch 5 over the workers) against a batch-split sum.
func TestConvBackwardMatchesFullBatch(t *testing.T) {
	tc := convCases[len(convCases)-1]
	in := convCaseInputs(tc, 7)
	c := graph.NewContext(true, 1)
	out, err := tc.op.Forward(c, in)
	if err != nil {
		t.Fatal(err)
	}
	dy := gradcheck.Rand(graph.RNG(3), out[0].Shape...)
	full, err := tc.op.Backward(c, in, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	wantW := make([]float32, in[1].Len())
	wantB := make([]float32, in[2].Len())
	n := tc.x[0]
	img, oimg := in[0].Len()/n, dy.Len()/n
	for k := 0; k < n; k++ {
		xk := tensor.MustFromData(in[0].Data[k*img:(k+1)*img], append([]int{1}, tc.x[1:]...)...)
		dyk := tensor.MustFromData(dy.Data[k*oimg:(k+1)*oimg], append([]int{1}, dy.Shape[1:]...)...)
		ck := graph.NewContext(true, 1)
		ok, err := tc.op.Forward(ck, []*tensor.Tensor{xk, in[1], in[2]})
		if err != nil {
			t.Fatal(err)
		}
		g, err := tc.op.Backward(ck, []*tensor.Tensor{xk, in[1], in[2]}, ok, []*tensor.Tensor{dyk})
		if err != nil {
			t.Fatal(err)
		}
		cgAssertClose(t, fmt.Sprintf("dX of image %d", k), full[0].Data[k*img:(k+1)*img], g[0].Data, 1e-5)
		for i, v := range g[1].Data {
			wantW[i] += v
		}
		for i, v := range g[2].Data {
			wantB[i] += v
		}
	}
	cgAssertClose(t, "dW", full[1].Data, wantW, 1e-4)
	cgAssertClose(t, "dB", full[2].Data, wantB, 1e-4)
}

func TestConvSkipsInputGradient(t *testing.T) {
	tc := convCases[0]
	in := convCaseInputs(tc, 5)
	c := graph.NewContext(true, 1)
	out, err := tc.op.Forward(c, in)
	if err != nil {
		t.Fatal(err)
	}
	dy := gradcheck.Rand(graph.RNG(2), out[0].Shape...)
	all, err := tc.op.Backward(c, in, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	wantW := all[1].Clone()
	c.NeedGrad = []bool{false, true, false}
	g, err := tc.op.Backward(c, in, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	if g[0] != nil || g[2] != nil {
		t.Fatalf("gradients computed for inputs that need none: dX %v, dB %v", g[0] != nil, g[2] != nil)
	}
	cgAssertClose(t, "dW without dX", g[1].Data, wantW.Data, 1e-6)
}

// TestConvPadValue checks that padded positions are constants:
// with a 1x1 image and pads, only the centre tap reaches dX.
func TestConvPadValue(t *testing.T) {
	op := Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, PadValue: -0.375}
	x := tensor.MustFromData([]float32{2}, 1, 1, 1, 1)
	w := tensor.New(1, 1, 3, 3)
	w.Fill(1)
	y := cgForward(t, op, false, x, w)
	// 8 padded taps of −3/8 plus the centre 2.
	cgAssertClose(t, "padded sum", y.Data, []float32{2 - 8*0.375}, 1e-6)
	c := graph.NewContext(true, 1)
	out, _ := op.Forward(c, []*tensor.Tensor{x, w})
	g, err := op.Backward(c, []*tensor.Tensor{x, w}, out, []*tensor.Tensor{tensor.MustFromData([]float32{1}, 1, 1, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cgAssertClose(t, "dX", g[0].Data, []float32{1}, 1e-6)
	want := []float32{-0.375, -0.375, -0.375, -0.375, 2, -0.375, -0.375, -0.375, -0.375}
	cgAssertClose(t, "dW", g[1].Data, want, 1e-6)
}

func TestConvInferShapes(t *testing.T) {
	shapes, err := Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}.InferShapes([][]int{{-1, 3, 32, 31}, {8, 3, 3, 3}, {8}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{-1, 8, 16, 16}; !tensor.SameShape(shapes[0], want) {
		t.Fatalf("got %v, want %v", shapes[0], want)
	}
	bad := []struct {
		op   Conv
		in   [][]int
		want string
	}{
		{Conv{Groups: 2}, [][]int{{1, 3, 8, 8}, {4, 1, 3, 3}}, "not divisible by groups"},
		{Conv{Groups: 2}, [][]int{{1, 4, 8, 8}, {3, 2, 3, 3}}, "output channels 3"},
		{Conv{}, [][]int{{1, 4, 8, 8}, {3, 2, 3, 3}}, "needs 4"},
		{Conv{}, [][]int{{1, 3, 2, 8}, {3, 3, 3, 3}}, "larger than padded input"},
		{Conv{DilH: 3}, [][]int{{1, 3, 6, 8}, {3, 3, 3, 3}}, "larger than padded input"},
		{Conv{}, [][]int{{1, 3, 8, 8}, {4, 3, 3, 3}, {3}}, "bias B must be [4]"},
		{Conv{}, [][]int{{1, 3, 8}, {4, 3, 3, 3}}, "4-D NCHW"},
		{Conv{PadT: -1}, [][]int{{1, 3, 8, 8}, {4, 3, 3, 3}}, "negative pads"},
		{Conv{}, [][]int{{1, 3, 8, 8}}, "want inputs"},
	}
	for _, b := range bad {
		_, err := b.op.InferShapes(b.in)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("InferShapes(%+v, %v) = %v, want error containing %q", b.op, b.in, err, b.want)
		}
	}
	// Forward rejects mismatched runtime shapes without panicking.
	if _, err := (Conv{}).Forward(graph.NewContext(false, 1), []*tensor.Tensor{tensor.New(1, 2, 4, 4), tensor.New(1, 3, 3, 3)}); err == nil {
		t.Error("Forward accepted a weight with the wrong channel count")
	}
}

// TestConvInGraph runs Conv → BatchNorm → GlobalAveragePool through the
// executor in training mode: parameter gradients arrive and the running
// statistics move.
func TestConvInGraph(t *testing.T) {
	rng := graph.RNG(1)
	g := graph.New("tiny")
	x := g.Input("x", -1, 3, 6, 5)
	w := g.AddParam("w", graph.Weight, gradcheck.Rand(rng, 4, 3, 3, 3))
	scale := tensor.New(4)
	scale.Fill(1)
	rv := tensor.New(4)
	rv.Fill(1)
	h := g.Apply("conv", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, x, w)
	h = g.Apply("bn", BatchNorm{Momentum: 0.9}, h,
		g.AddParam("bn.scale", graph.BNScale, scale), g.AddParam("bn.bias", graph.BNBias, tensor.New(4)),
		g.AddParam("bn.mean", graph.BNMean, tensor.New(4)), g.AddParam("bn.var", graph.BNVar, rv))
	h = g.Apply("gap", GlobalAveragePool{}, h)
	g.SetOutputs(h)
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	e.Training = true
	out, err := e.Forward(gradcheck.Rand(rng, 2, 3, 6, 5))
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 4, 1, 1}; !tensor.SameShape(out[0].Shape, want) {
		t.Fatalf("output shape %v, want %v", out[0].Shape, want)
	}
	if err := e.Backward(gradcheck.Rand(rng, 2, 4, 1, 1)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w", "bn.scale", "bn.bias"} {
		p := g.Param(name)
		if p.Grad == nil || p.Grad.MaxAbs() == 0 {
			t.Errorf("parameter %s got no gradient", name)
		}
	}
	if g.Param("bn.mean").Data.MaxAbs() == 0 {
		t.Error("running mean not updated in training")
	}
	if g.Param("bn.mean").Grad != nil {
		t.Error("running mean got a gradient")
	}
}

// Benchmarks: a forward+backward training step of typical layers.
func benchConv(b *testing.B, op Conv, x, w []int) {
	rng := graph.RNG(1)
	in := []*tensor.Tensor{gradcheck.Rand(rng, x...), gradcheck.Rand(rng, w...)}
	c := graph.NewContext(true, 1)
	out, err := op.Forward(c, in)
	if err != nil {
		b.Fatal(err)
	}
	dy := gradcheck.Rand(rng, out[0].Shape...)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err = op.Forward(c, in)
		if err == nil {
			_, err = op.Backward(c, in, out, []*tensor.Tensor{dy})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkConv3x3(b *testing.B) {
	benchConv(b, Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, []int{32, 32, 16, 16}, []int{32, 32, 3, 3})
}

func BenchmarkConvDW(b *testing.B) {
	benchConv(b, Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1, Groups: 64}, []int{32, 64, 16, 16}, []int{64, 1, 3, 3})
}

func BenchmarkConv1x1(b *testing.B) {
	benchConv(b, Conv{}, []int{32, 64, 16, 16}, []int{64, 64, 1, 1})
}

// naiveConvBackward is the direct-loop reference of Conv's input and weight
// gradients.
func naiveConvBackward(op Conv, x, w, dy *tensor.Tensor) (dx, dw *tensor.Tensor) {
	sh, sw, dh, dwl, groups, _ := op.attrs()
	n, ch, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	m, cg, kh, kw := w.Shape[0], w.Shape[1], w.Shape[2], w.Shape[3]
	oh, ow := dy.Shape[2], dy.Shape[3]
	mg := m / groups
	dx, dw = tensor.New(x.Shape...), tensor.New(w.Shape...)
	for in := 0; in < n; in++ {
		for om := 0; om < m; om++ {
			gr := om / mg
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					g := dy.Data[((in*m+om)*oh+oy)*ow+ox]
					for ic := 0; ic < cg; ic++ {
						c := gr*cg + ic
						for ky := 0; ky < kh; ky++ {
							for kx := 0; kx < kw; kx++ {
								iy, ix := oy*sh-op.PadT+ky*dh, ox*sw-op.PadL+kx*dwl
								wi := ((om*cg+ic)*kh+ky)*kw + kx
								v := op.PadValue
								if iy >= 0 && iy < h && ix >= 0 && ix < wd {
									xi := ((in*ch+c)*h+iy)*wd + ix
									v = x.Data[xi]
									dx.Data[xi] += g * w.Data[wi]
								}
								dw.Data[wi] += g * v
							}
						}
					}
				}
			}
		}
	}
	return dx, dw
}

// TestConvBatchPaths covers the batch schedules against direct loops: one
// image at a time with split products (batch below the worker count),
// images spread over workers, and several small images side by side in one
// product, for the stride-1 transposed-convolution input gradient, the
// col2im input gradient, pointwise and grouped convolutions.
func TestConvBatchPaths(t *testing.T) {
	cases := []struct {
		name string
		op   Conv
		x, w []int
	}{
		{"3x3_same", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, []int{0, 3, 4, 5}, []int{5, 3, 3, 3}},
		{"3x3_stride2", Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, []int{0, 3, 5, 6}, []int{4, 3, 3, 3}},
		{"3x3_asym_dil_padvalue", Conv{PadT: 2, PadL: 0, PadB: 1, PadR: 2, DilH: 2, PadValue: -0.375}, []int{0, 2, 6, 5}, []int{3, 2, 3, 3}},
		{"pointwise", Conv{}, []int{0, 6, 3, 4}, []int{7, 6, 1, 1}},
		{"pointwise_groups", Conv{Groups: 2}, []int{0, 4, 3, 3}, []int{6, 2, 1, 1}},
		{"1x1_stride2", Conv{StrideH: 2, StrideW: 2}, []int{0, 3, 5, 5}, []int{4, 3, 1, 1}},
		{"groups_3x3", Conv{Groups: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}, []int{0, 4, 4, 4}, []int{6, 2, 3, 3}},
		{"pad_beyond_kernel", Conv{PadT: 3, PadL: 1, PadB: 0, PadR: 1}, []int{0, 2, 3, 4}, []int{3, 2, 2, 3}},
		// Rows of at least shiftMinWidth outputs: the implicit GEMM.
		{"implicit_3x3", Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}, []int{0, 3, 5, 13}, []int{9, 3, 3, 3}},
		{"implicit_dil_asym_padvalue_groups", Conv{PadT: 2, PadL: 1, PadB: 0, PadR: 3, DilH: 2, DilW: 2, Groups: 2, PadValue: -0.375}, []int{0, 4, 6, 14}, []int{6, 2, 3, 2}},
		{"implicit_5x5_nopad", Conv{}, []int{0, 2, 7, 17}, []int{3, 2, 5, 5}},
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		for ci, tc := range cases {
			for _, n := range []int{1, 3, 9, 17} {
				t.Run(fmt.Sprintf("procs%d/%s/n%d", procs, tc.name, n), func(t *testing.T) {
					rng := graph.RNG(int64(100*ci + n))
					xs := append([]int{n}, tc.x[1:]...)
					x, w := gradcheck.Rand(rng, xs...), gradcheck.Rand(rng, tc.w...)
					b := gradcheck.Rand(rng, tc.w[0])
					c := graph.NewContext(true, 1)
					in := []*tensor.Tensor{x, w, b}
					for run := 0; run < 2; run++ { // the second run reuses packed weights and buffers
						out, err := tc.op.Forward(c, in)
						if err != nil {
							t.Fatal(err)
						}
						cgAssertClose(t, "Y", out[0].Data, naiveConv(tc.op, x, w, b).Data, 1e-5)
						dy := gradcheck.Rand(rng, out[0].Shape...)
						g, err := tc.op.Backward(c, in, out, []*tensor.Tensor{dy})
						if err != nil {
							t.Fatal(err)
						}
						wantX, wantW := naiveConvBackward(tc.op, x, w, dy)
						cgAssertClose(t, "dX", g[0].Data, wantX.Data, 1e-5)
						cgAssertClose(t, "dW", g[1].Data, wantW.Data, 1e-4)
					}
				})
			}
		}
	}
}

// TestConvDeterministic checks that the weight gradient does not depend on
// which goroutine ran which images.
func TestConvDeterministic(t *testing.T) {
	op := Conv{PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	rng := graph.RNG(5)
	in := []*tensor.Tensor{gradcheck.Rand(rng, 24, 4, 6, 6), gradcheck.Rand(rng, 8, 4, 3, 3)}
	var first []float32
	for run := 0; run < 4; run++ {
		c := graph.NewContext(true, 1)
		out, err := op.Forward(c, in)
		if err != nil {
			t.Fatal(err)
		}
		dy := tensor.New(out[0].Shape...)
		dy.Fill(1)
		g, err := op.Backward(c, in, out, []*tensor.Tensor{dy})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = append([]float32(nil), g[1].Data...)
			continue
		}
		for i, v := range g[1].Data {
			if v != first[i] {
				t.Fatalf("run %d: dW[%d] = %v, first run %v", run, i, v, first[i])
			}
		}
	}
}
