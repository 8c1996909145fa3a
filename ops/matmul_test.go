package ops

import (
	"fmt"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func naiveMatMul(a, b *tensor.Tensor, batch, m, k, n int, sharedB bool) []float32 {
	y := make([]float32, batch*m*n)
	for q := 0; q < batch; q++ {
		boff := q * k * n
		if sharedB {
			boff = 0
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for p := 0; p < k; p++ {
					s += float64(a.Data[(q*m+i)*k+p]) * float64(b.Data[boff+p*n+j])
				}
				y[(q*m+i)*n+j] = float32(s)
			}
		}
	}
	return y
}

func TestMatMul(t *testing.T) {
	cases := []struct {
		a, b, out []int
		batch     int
		shared    bool
	}{
		{a: []int{4, 3}, b: []int{3, 5}, out: []int{4, 5}, batch: 1, shared: true},
		{a: []int{2, 3, 4, 5}, b: []int{5, 2}, out: []int{2, 3, 4, 2}, batch: 6, shared: true},
		{a: []int{3, 4, 5}, b: []int{3, 5, 2}, out: []int{3, 4, 2}, batch: 3},
		{a: []int{2, 2, 3, 4}, b: []int{2, 2, 4, 3}, out: []int{2, 2, 3, 3}, batch: 4},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v_%v", tc.a, tc.b), func(t *testing.T) {
			s, err := MatMul{}.InferShapes([][]int{tc.a, tc.b})
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(s[0], tc.out) {
				t.Fatalf("InferShapes %v, want %v", s[0], tc.out)
			}
			rng := graph.RNG(int64(i))
			a, b := gradcheck.Rand(rng, tc.a...), gradcheck.Rand(rng, tc.b...)
			y := cgForward(t, MatMul{}, false, a, b)
			if !tensor.SameShape(y.Shape, tc.out) {
				t.Fatalf("output shape %v, want %v", y.Shape, tc.out)
			}
			m, k, n := tc.a[len(tc.a)-2], tc.a[len(tc.a)-1], tc.b[len(tc.b)-1]
			if tc.shared {
				m = a.Len() / k
			} else {
				m = a.Len() / k / tc.batch
			}
			batch := tc.batch
			if tc.shared {
				batch = 1
			}
			cgAssertClose(t, "matmul", y.Data, naiveMatMul(a, b, batch, m, k, n, tc.shared), 1e-5)
			if err := gradcheck.Check(MatMul{}, []*tensor.Tensor{a, b}, gradcheck.Options{Seed: int64(i)}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMatMulInferShapes(t *testing.T) {
	if s, err := (MatMul{}).InferShapes([][]int{{-1, 7, 4}, {4, 6}}); err != nil || !tensor.SameShape(s[0], []int{-1, 7, 6}) {
		t.Fatalf("batch shared B: %v, %v", s, err)
	}
	if s, err := (MatMul{}).InferShapes([][]int{{-1, 7, 4}, {-1, 4, 6}}); err != nil || !tensor.SameShape(s[0], []int{-1, 7, 6}) {
		t.Fatalf("batch batched B: %v, %v", s, err)
	}
	bad := []struct {
		in   [][]int
		want string
	}{
		{[][]int{{2, 3}, {4, 5}}, "inner dimensions"},
		{[][]int{{2, 3, 4}, {3, 4, 5}}, "leading dimensions"},
		{[][]int{{2, 2, 3, 4}, {2, 4, 5}}, "2-D or have A's rank"},
		{[][]int{{3}, {3, 4}}, "rank ≥ 2"},
	}
	for _, b := range bad {
		if _, err := (MatMul{}).InferShapes(b.in); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("InferShapes(%v) = %v, want error containing %q", b.in, err, b.want)
		}
	}
}
