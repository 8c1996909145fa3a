package models

import (
	"testing"

	"lowbit/graph"
	"lowbit/tensor"
)

// TestForwardFinite runs every model forward on a batch of 2 in training
// and evaluation mode, and backward once, checking shapes and finiteness.
func TestForwardFinite(t *testing.T) {
	for _, name := range Names() {
		cfg := Config{InC: 3, H: 32, W: 32, Classes: 10, Seed: 1}
		if name == "lenet5" || name == "resnet20" {
			cfg = Config{InC: 1, H: 28, W: 28, Classes: 10, Seed: 1}
		}
		g := mustBuild(t, name, cfg)
		e, err := graph.NewExecutor(g)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		x := tensor.New(2, cfg.InC, cfg.H, cfg.W)
		x.RandNormal(graph.RNG(3), 1)
		for _, training := range []bool{true, false} {
			e.Training = training
			out, err := e.Forward(x)
			if err != nil {
				t.Fatalf("%s (training %v): %v", name, training, err)
			}
			y := out[0]
			if !tensor.SameShape(y.Shape, []int{2, cfg.Classes}) || y.HasNaN() {
				t.Fatalf("%s (training %v): logits %v, NaN/Inf %v", name, training, y.Shape, y.HasNaN())
			}
			if y.MaxAbs() == 0 {
				t.Errorf("%s (training %v): all-zero logits", name, training)
			}
			if training {
				dy := tensor.New(y.Shape...)
				dy.Fill(1)
				if err := e.Backward(dy); err != nil {
					t.Fatalf("%s backward: %v", name, err)
				}
				for _, p := range g.Params() {
					if p.Trainable() && (p.Grad == nil || p.Grad.HasNaN()) {
						t.Fatalf("%s: parameter %s has no finite gradient", name, p.Name)
					}
				}
			}
		}
	}
}
