package ops

import (
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

func TestGlobalAveragePool(t *testing.T) {
	x := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, -1, -1, 4, 0, 0, 0}, 2, 2, 3)
	s, err := GlobalAveragePool{}.InferShapes([][]int{{-1, 2, 3}})
	if err != nil || !tensor.SameShape(s[0], []int{-1, 2, 1}) {
		t.Fatalf("InferShapes: %v, %v", s, err)
	}
	y := cgForward(t, GlobalAveragePool{}, false, x)
	if !tensor.SameShape(y.Shape, []int{2, 2, 1}) {
		t.Fatalf("shape %v", y.Shape)
	}
	cgAssertClose(t, "rank 3", y.Data, []float32{2, 5, 2.0 / 3, 0}, 1e-6)
	x4 := gradcheck.Rand(graph.RNG(1), 2, 3, 4, 5)
	y = cgForward(t, GlobalAveragePool{}, false, x4)
	if !tensor.SameShape(y.Shape, []int{2, 3, 1, 1}) {
		t.Fatalf("shape %v", y.Shape)
	}
	for p := 0; p < 6; p++ {
		var sum float64
		for _, v := range x4.Data[p*20 : (p+1)*20] {
			sum += float64(v)
		}
		cgAssertClose(t, "rank 4", y.Data[p:p+1], []float32{float32(sum / 20)}, 1e-6)
	}
	if _, err := (GlobalAveragePool{}).InferShapes([][]int{{2, 3}}); err == nil {
		t.Error("accepted a 2-D input")
	}
	if err := gradcheck.Check(GlobalAveragePool{}, []*tensor.Tensor{x}, gradcheck.Options{}); err != nil {
		t.Fatal(err)
	}
}
