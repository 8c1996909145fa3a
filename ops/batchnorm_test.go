package ops

import (
	"math"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/internal/gradcheck"
	"lowbit/tensor"
)

// bnTestInputs returns X, scale, B, running mean and running variance (> 0).
func bnTestInputs(seed int64, shape ...int) []*tensor.Tensor {
	rng := graph.RNG(seed)
	c := shape[1]
	x := gradcheck.Rand(rng, shape...)
	scale := tensor.New(c)
	scale.RandUniform(rng, 0.5, 1.5)
	rvar := tensor.New(c)
	rvar.RandUniform(rng, 0.5, 2)
	return []*tensor.Tensor{x, scale, gradcheck.Rand(rng, c), gradcheck.Rand(rng, c), rvar}
}

func TestBatchNormTrainingValues(t *testing.T) {
	// X [4,2]: channel 0 = 1,2,3,4 (mean 2.5, biased var 1.25, unbiased 5/3);
	// channel 1 = 2,2,2,2 (var 0).
	x := tensor.MustFromData([]float32{1, 2, 2, 2, 3, 2, 4, 2}, 4, 2)
	scale := tensor.MustFromData([]float32{2, 1}, 2)
	bias := tensor.MustFromData([]float32{0.5, -1}, 2)
	rmean := tensor.MustFromData([]float32{0, 1}, 2)
	rvar := tensor.MustFromData([]float32{1, 4}, 2)
	op := BatchNorm{Momentum: 0.9}
	y := cgForward(t, op, true, x, scale, bias, rmean, rvar)
	inv := 1 / math.Sqrt(1.25+1e-5)
	want := make([]float32, 8)
	for i, v := range []float64{1, 2, 3, 4} {
		want[2*i] = float32(2*(v-2.5)*inv + 0.5)
		want[2*i+1] = -1
	}
	cgAssertClose(t, "normalized", y.Data, want, 1e-5)
	cgAssertClose(t, "running mean", rmean.Data, []float32{0.9*0 + 0.1*2.5, 0.9*1 + 0.1*2}, 1e-6)
	cgAssertClose(t, "running var", rvar.Data, []float32{0.9*1 + 0.1*5.0/3, 0.9 * 4}, 1e-6)

	// Evaluation uses the (updated) running statistics and leaves them alone.
	y = cgForward(t, BatchNorm{Momentum: 0.9, Epsilon: 1e-3}, false, x, scale, bias, rmean, rvar)
	m0, v0 := 0.25, 0.9+0.1*5.0/3
	if got, want := float64(y.Data[0]), 2*(1-m0)/math.Sqrt(v0+1e-3)+0.5; math.Abs(got-want) > 1e-5 {
		t.Fatalf("eval output %g, want %g", got, want)
	}
	cgAssertClose(t, "running mean after eval", rmean.Data, []float32{0.25, 1.1}, 1e-6)
}

func TestBatchNormShapesAndGradients(t *testing.T) {
	cases := []struct {
		name     string
		shape    []int
		training bool
	}{
		{"nchw_train", []int{2, 3, 7, 5}, true},
		{"nchw_eval", []int{2, 3, 7, 5}, false},
		{"nc_train", []int{6, 4}, true},
		{"nc_eval", []int{6, 4}, false},
		{"ncl_train", []int{3, 2, 5}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := bnTestInputs(int64(i), tc.shape...)
			shapes := make([][]int, 5)
			for j, v := range in {
				shapes[j] = v.Shape
			}
			s, err := BatchNorm{}.InferShapes(shapes)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.SameShape(s[0], tc.shape) {
				t.Fatalf("InferShapes %v, want %v", s[0], tc.shape)
			}
			err = gradcheck.Check(BatchNorm{Momentum: 0.9}, in, gradcheck.Options{Training: tc.training, Skip: []int{3, 4}, Seed: int64(i), MaxProbe: 80})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBatchNormTrainingOutputStats checks that a training forward yields
// per-channel mean B and standard deviation |scale| on a larger input.
func TestBatchNormTrainingOutputStats(t *testing.T) {
	in := bnTestInputs(9, 4, 3, 6, 5)
	y := cgForward(t, BatchNorm{Momentum: 0.9}, true, in...)
	for k := 0; k < 3; k++ {
		mean, std := channelStats(y, k)
		if math.Abs(mean-float64(in[2].Data[k])) > 1e-4 || math.Abs(std-float64(in[1].Data[k])) > 1e-3 {
			t.Errorf("channel %d: mean %g std %g, want %g and %g", k, mean, std, in[2].Data[k], in[1].Data[k])
		}
	}
}

func TestBatchNormErrors(t *testing.T) {
	bad := []struct {
		in   [][]int
		want string
	}{
		{[][]int{{2, 3, 4, 4}, {3}, {3}, {3}}, "want inputs"},
		{[][]int{{2, 3, 4, 4}, {3}, {4}, {3}, {3}}, "B must be [3]"},
		{[][]int{{2, 3, 4, 4}, {3}, {3}, {3}, {3, 1}}, "input_var must be [3]"},
		{[][]int{{6}, {6}, {6}, {6}, {6}}, "[N,C,...]"},
	}
	for _, b := range bad {
		if _, err := (BatchNorm{}).InferShapes(b.in); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("InferShapes(%v) = %v, want error containing %q", b.in, err, b.want)
		}
	}
	in := bnTestInputs(1, 2, 3, 2, 2)
	c := graph.NewContext(true, 1)
	if _, err := (BatchNorm{}).Backward(c, in, nil, []*tensor.Tensor{in[0]}); err == nil {
		t.Error("Backward without Forward succeeded")
	}
}
