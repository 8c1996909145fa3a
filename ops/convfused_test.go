package ops_test

import (
	"math"
	"math/rand"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/ops"
	"lowbit/tensor"
)

// TestFusedInferenceMatchesOps runs zoo models in evaluation twice: with
// the executor's fused chains and op by op (KeepValues disables fusion).
// The fused epilogues use the same float32 operations, so the logits
// agree to rounding noise, except where Winograd transforms round
// differently: ResNet-20 at 28×28 runs its 3×3 layers as F(4×4, 3×3)
// (28×28, 14×14) and F(2×2, 3×3) (7×7), and its logits stay within 1e-4
// of the direct ones, relative to the largest logit.
func TestFusedInferenceMatchesOps(t *testing.T) {
	for _, tc := range []struct {
		model string
		chw   []int
		batch int
		width float64
		tol   float64 // of the largest difference, relative to the largest logit
	}{
		{"resnet20", []int{1, 14, 14}, 5, 0.5, 1e-6},
		{"resnet20", []int{1, 28, 28}, 4, 1, 1e-4},
		{"mobilenetv2", []int{3, 16, 16}, 3, 0.5, 1e-6},
		{"mobilenetv3-small", []int{3, 16, 16}, 2, 0.5, 1e-6},
	} {
		t.Run(tc.model, func(t *testing.T) {
			g, err := models.Build(tc.model, models.Config{InC: tc.chw[0], H: tc.chw[1], W: tc.chw[2], Classes: 10, Width: tc.width, Seed: 3})
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
			got, plain := ops.FusedAndPlain(t, g, x)
			var maxAbs, maxDiff float64
			for i, want := range plain {
				maxAbs = math.Max(maxAbs, math.Abs(float64(want)))
				maxDiff = math.Max(maxDiff, math.Abs(float64(got[i]-want)))
			}
			if !(maxDiff <= tc.tol*math.Max(1, maxAbs)) {
				t.Fatalf("logits differ by up to %g (largest logit %g, tolerance %g)", maxDiff, maxAbs, tc.tol)
			}
		})
	}
}
