package ops

import (
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// distinctInput returns a tensor whose values are a random permutation of
// spaced levels (no ties closer than 0.05, more than twice the gradcheck
// step), shifted by offset.
func distinctInput(seed int64, offset float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i, p := range graph.RNG(seed).Perm(t.Len()) {
		t.Data[i] = float32(p)*0.05 + offset
	}
	return t
}

func TestPoolOutputSize(t *testing.T) {
	cases := []struct {
		in, k, s, p0, p1 int
		ceil             bool
		want             int
	}{
		{in: 7, k: 3, s: 2, p0: 1, p1: 1, want: 4},
		{in: 4, k: 3, s: 2, want: 1},
		{in: 4, k: 3, s: 2, ceil: true, want: 2},               // ceil keeps the overhanging window
		{in: 3, k: 2, s: 2, p0: 1, p1: 1, ceil: true, want: 2}, // a third window would start in the end padding
		{in: 112, k: 3, s: 2, p0: 1, p1: 1, ceil: true, want: 57},
		{in: 112, k: 3, s: 2, p0: 1, p1: 1, want: 56},
		{in: 5, k: 2, s: 2, ceil: true, want: 3},
	}
	for _, c := range cases {
		if got := poolOut(c.in, c.k, c.s, c.p0, c.p1, c.ceil); got != c.want {
			t.Errorf("poolOut(%+v) = %d, want %d", c, got, c.want)
		}
	}
}

func TestMaxPoolForward(t *testing.T) {
	// Negative input with pads: padded positions must never win.
	x := tensor.MustFromData([]float32{
		-1, -2, -3,
		-4, -5, -6,
		-7, -8, -9}, 1, 1, 3, 3)
	op := MaxPool{KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	y := cgForward(t, op, false, x)
	if !tensor.SameShape(y.Shape, []int{1, 1, 2, 2}) {
		t.Fatalf("shape %v", y.Shape)
	}
	cgAssertClose(t, "maxpool with pads", y.Data, []float32{-1, -2, -4, -5}, 0)
	// Ceil mode on 4x4 with a 3x3 window, stride 2: the overhanging windows
	// take the maximum of their in-image part.
	x = tensor.New(1, 1, 4, 4)
	for i := range x.Data {
		x.Data[i] = float32((i * 7) % 16)
	}
	y = cgForward(t, MaxPool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, CeilMode: true}, false, x)
	// rows: 0 7 14 5 / 12 3 10 1 / 8 15 6 13 / 4 11 2 9
	cgAssertClose(t, "maxpool ceil", y.Data, []float32{15, 14, 15, 13}, 0)
}

func TestMaxPoolBackwardRoutesToArgmax(t *testing.T) {
	x := tensor.MustFromData([]float32{
		1, 9, 2, 0,
		3, 4, 8, 5}, 1, 1, 2, 4)
	op := MaxPool{KH: 2, KW: 2, StrideH: 1, StrideW: 2}
	c := graph.NewContext(true, 1)
	out, err := op.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	cgAssertClose(t, "max", out[0].Data, []float32{9, 8}, 0)
	g, err := op.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{tensor.MustFromData([]float32{1, 2}, 1, 1, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	cgAssertClose(t, "dX", g[0].Data, []float32{0, 1, 0, 0, 0, 0, 2, 0}, 0)
}

func TestAveragePoolCountIncludePad(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)
	op := AveragePool{KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}
	// Windows: {1}, {2,3}, {4,7}, {5,6,8,9}.
	cgAssertClose(t, "exclude pad", cgForward(t, op, false, x).Data, []float32{1, 2.5, 5.5, 7}, 1e-6)
	op.CountIncludePad = true
	cgAssertClose(t, "include pad", cgForward(t, op, false, x).Data, []float32{0.25, 1.25, 2.75, 7}, 1e-6)
	// Ceil mode: the part of a window beyond the end padding is never
	// counted, even with CountIncludePad (PyTorch semantics).
	x4 := tensor.New(1, 1, 4, 4)
	for i := range x4.Data {
		x4.Data[i] = float32(i)
	}
	op = AveragePool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, CeilMode: true, CountIncludePad: true}
	// Window (0,0): rows 0-2, cols 0-2 → mean 5; (0,1): rows 0-2, cols 2-3 →
	// (2+3+6+7+10+11)/6; (1,0): rows 2-3, cols 0-2 → (8+9+10+12+13+14)/6;
	// (1,1): rows 2-3, cols 2-3 → (10+11+14+15)/4.
	cgAssertClose(t, "ceil include pad", cgForward(t, op, false, x4).Data, []float32{5, 39.0 / 6, 66.0 / 6, 12.5}, 1e-6)
	// Ceil mode with pads: a pad of 1 on each side counts, the overhang
	// does not: 3x3 input, k2 s2 → windows rows [-1,1), [1,3).
	op = AveragePool{KH: 2, KW: 2, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, CeilMode: true, CountIncludePad: true}
	cgAssertClose(t, "ceil with pads", cgForward(t, op, false, x).Data, []float32{0.25, 1.25, 2.75, 7}, 1e-6)
}

func TestPoolGradients(t *testing.T) {
	cases := []struct {
		name string
		op   graph.Op
	}{
		{"max_3x3_s2_p1", MaxPool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}},
		{"max_asym_ceil", MaxPool{KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadT: 2, PadL: 0, PadB: 1, PadR: 1, CeilMode: true}},
		{"max_overlap_s1", MaxPool{KH: 2, KW: 2}},
		{"avg_3x3_s2_p1", AveragePool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}},
		{"avg_include_pad_ceil", AveragePool{KH: 3, KW: 2, StrideH: 2, StrideW: 3, PadT: 2, PadB: 1, PadR: 1, CeilMode: true, CountIncludePad: true}},
		{"avg_exclude_pad_ceil", AveragePool{KH: 2, KW: 3, StrideH: 2, StrideW: 2, PadL: 1, PadB: 1, CeilMode: true}},
		{"global", GlobalAveragePool{}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := distinctInput(int64(i), -3, 2, 3, 7, 5)
			if err := gradcheck.Check(tc.op, []*tensor.Tensor{x}, gradcheck.Options{Seed: int64(i), MaxProbe: 100}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPoolInferShapes(t *testing.T) {
	s, err := MaxPool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1}.InferShapes([][]int{{-1, 16, 112, 111}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{-1, 16, 56, 56}; !tensor.SameShape(s[0], want) {
		t.Fatalf("got %v, want %v", s[0], want)
	}
	bad := []struct {
		op   graph.Op
		in   []int
		want string
	}{
		{MaxPool{KH: 2, KW: 2, PadT: 2}, []int{1, 1, 4, 4}, "smaller than the kernel"},
		{MaxPool{KW: 2}, []int{1, 1, 4, 4}, "must be positive"},
		{AveragePool{KH: 5, KW: 2}, []int{1, 1, 4, 4}, "larger than padded input"},
		{AveragePool{KH: 2, KW: 2}, []int{1, 4, 4}, "4-D NCHW"},
	}
	for _, b := range bad {
		if _, err := b.op.InferShapes([][]int{b.in}); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s InferShapes(%+v, %v) = %v, want error containing %q", b.op.Type(), b.op, b.in, err, b.want)
		}
	}
}
