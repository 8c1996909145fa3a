package ops

import (
	"fmt"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// naiveGemm is the reference Alpha·op(A)·op(B) + Beta·C with C of shape
// [], [N], [1,N], [M,1] or [M,N].
func naiveGemm(op Gemm, a, b, c *tensor.Tensor) *tensor.Tensor {
	at := func(i, k int) float32 {
		if op.TransA {
			return a.Data[k*a.Shape[1]+i]
		}
		return a.Data[i*a.Shape[1]+k]
	}
	bt := func(k, j int) float32 {
		if op.TransB {
			return b.Data[j*b.Shape[1]+k]
		}
		return b.Data[k*b.Shape[1]+j]
	}
	m, k := a.Shape[0], a.Shape[1]
	if op.TransA {
		m, k = k, m
	}
	n := b.Shape[1]
	if op.TransB {
		n = b.Shape[0]
	}
	y := tensor.New(m, n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(at(i, p)) * float64(bt(p, j))
			}
			s *= float64(op.Alpha)
			if c != nil {
				var cv float32
				switch {
				case c.Len() == 1:
					cv = c.Data[0]
				case len(c.Shape) == 1 || c.Shape[0] == 1:
					cv = c.Data[j]
				case c.Shape[1] == 1:
					cv = c.Data[i]
				default:
					cv = c.Data[i*n+j]
				}
				s += float64(op.Beta) * float64(cv)
			}
			y.Data[i*n+j] = float32(s)
		}
	}
	return y
}

func TestGemm(t *testing.T) {
	const m, k, n = 5, 4, 3
	cShapes := [][]int{nil, {n}, {1, n}, {m, n}, {}, {m, 1}}
	seed := int64(0)
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			for _, cs := range cShapes {
				seed++
				op := Gemm{TransA: ta, TransB: tb, Alpha: 0.7, Beta: 1.3}
				t.Run(fmt.Sprintf("tA=%v_tB=%v_C=%v", ta, tb, cs), func(t *testing.T) {
					rng := graph.RNG(seed)
					as, bs := []int{m, k}, []int{k, n}
					if ta {
						as = []int{k, m}
					}
					if tb {
						bs = []int{n, k}
					}
					in := []*tensor.Tensor{gradcheck.Rand(rng, as...), gradcheck.Rand(rng, bs...)}
					shapes := [][]int{as, bs}
					var c *tensor.Tensor
					if cs != nil {
						c = gradcheck.Rand(rng, cs...)
						in = append(in, c)
						shapes = append(shapes, cs)
					}
					out, err := op.InferShapes(shapes)
					if err != nil {
						t.Fatal(err)
					}
					if !tensor.SameShape(out[0], []int{m, n}) {
						t.Fatalf("InferShapes %v, want [%d %d]", out[0], m, n)
					}
					y := cgForward(t, op, false, in...)
					cgAssertClose(t, "gemm", y.Data, naiveGemm(op, in[0], in[1], c).Data, 1e-5)
					if err := gradcheck.Check(op, in, gradcheck.Options{Seed: seed}); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

func TestGemmLinearAndLiteralAlpha(t *testing.T) {
	// A linear layer: x [2,3] · Wᵀ (W [2,3]) + b.
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	w := tensor.MustFromData([]float32{1, 0, -1, 0.5, 0.5, 0.5}, 2, 3)
	b := tensor.MustFromData([]float32{10, 20}, 2)
	y := cgForward(t, Gemm{TransB: true, Alpha: 1, Beta: 1}, false, x, w, b)
	cgAssertClose(t, "linear", y.Data, []float32{1 - 3 + 10, 3 + 20, 4 - 6 + 10, 7.5 + 20}, 1e-6)
	// Alpha and Beta are literal: the zero Gemm produces zeros.
	y = cgForward(t, Gemm{TransB: true}, false, x, w, b)
	cgAssertClose(t, "zero alpha", y.Data, []float32{0, 0, 0, 0}, 0)
}

func TestGemmInferShapesErrors(t *testing.T) {
	if s, err := (Gemm{TransB: true, Alpha: 1, Beta: 1}).InferShapes([][]int{{-1, 8}, {10, 8}, {10}}); err != nil || !tensor.SameShape(s[0], []int{-1, 10}) {
		t.Fatalf("batch linear: %v, %v", s, err)
	}
	bad := []struct {
		op   Gemm
		in   [][]int
		want string
	}{
		{Gemm{}, [][]int{{2, 3}, {4, 5}}, "inner dimensions"},
		{Gemm{TransB: true}, [][]int{{2, 3}, {3, 5}}, "inner dimensions"},
		{Gemm{}, [][]int{{2, 3, 1}, {3, 5}}, "2-D"},
		{Gemm{}, [][]int{{2, 3}, {3, 5}, {4}}, "does not broadcast"},
		{Gemm{}, [][]int{{2, 3}, {3, 5}, {3, 5}}, "does not broadcast"},
		{Gemm{}, [][]int{{2, 3}, {3, 5}, {1, 2, 5}}, "rank ≤ 2"},
	}
	for _, b := range bad {
		if _, err := b.op.InferShapes(b.in); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("InferShapes(%+v, %v) = %v, want error containing %q", b.op, b.in, err, b.want)
		}
	}
}
