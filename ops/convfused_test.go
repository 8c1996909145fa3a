package ops_test

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/tensor"
)

// TestFusedInferenceMatchesOps runs zoo models in evaluation twice: with
// the executor's fused Conv+BatchNorm+activation chains and op by op
// (KeepValues disables fusion). The fused epilogue uses the same float32
// operations, so the outputs agree to rounding noise at most.
func TestFusedInferenceMatchesOps(t *testing.T) {
	for _, tc := range []struct {
		model string
		chw   []int
		batch int
	}{
		{"resnet20", []int{1, 14, 14}, 5},
		{"mobilenetv2", []int{3, 16, 16}, 3},
		{"mobilenetv3-small", []int{3, 16, 16}, 2},
	} {
		t.Run(tc.model, func(t *testing.T) {
			g, err := models.Build(tc.model, models.Config{InC: tc.chw[0], H: tc.chw[1], W: tc.chw[2], Classes: 10, Width: 0.5, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewSource(4))
			for _, p := range g.Params() {
				switch p.Kind {
				case graph.BNMean, graph.BNBias:
					p.Data.RandUniform(rng, -0.5, 0.5)
				case graph.BNVar, graph.BNScale:
					p.Data.RandUniform(rng, 0.5, 1.5)
				}
			}
			x := tensor.New(append([]int{tc.batch}, tc.chw...)...)
			x.RandUniform(rng, 0, 1)
			e, err := graph.NewExecutor(g)
			if err != nil {
				t.Fatal(err)
			}
			fused, err := e.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			got := append([]float32(nil), fused[0].Data...)
			e.KeepValues = true
			plain, err := e.Forward(x)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range plain[0].Data {
				if d := math.Abs(float64(got[i] - want)); d > 1e-6*(1+math.Abs(float64(want))) {
					t.Fatalf("logit %d: fused %v, op by op %v", i, got[i], want)
				}
			}
		})
	}
}
