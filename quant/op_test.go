package quant

import (
	"math/rand"
	"slices"
	"testing"

	"lowbit/graph"
	"lowbit/tensor"
)

// TestFakeQuantSTE checks the straight-through backward: the output
// gradient passes where the input is inside the grid and is zero where
// it was clipped.
func TestFakeQuantSTE(t *testing.T) {
	fq, err := NewFakeQuant(Spec{Role: ActivationRole, Method: MethodUniform, Bits: 2})
	if err != nil {
		t.Fatal(err)
	}
	fq.Q, err = UniformFromRange(2, Unsigned, 0, 3) // levels 0, 1, 2, 3
	if err != nil {
		t.Fatal(err)
	}
	c := graph.NewContext(true, 1)
	x := tensor.MustFromData([]float32{-1, 0.4, 0.6, 2.5, 3.4, 3.6, 10}, 7)
	out, err := fq.Forward(c, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{0, 0, 1, 2, 3, 3, 3}; !slices.Equal(out[0].Data, want) {
		t.Errorf("forward %v, want %v", out[0].Data, want)
	}
	dy := tensor.MustFromData([]float32{1, 2, 3, 4, 5, 6, 7}, 7)
	dx, err := fq.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
	if err != nil {
		t.Fatal(err)
	}
	// −1 rounds to code −1 < 0 and 3.6, 10 to codes ≥ 4 > 3: clipped.
	if want := []float32{0, 2, 3, 4, 5, 0, 0}; !slices.Equal(dx[0].Data, want) {
		t.Errorf("backward %v, want %v", dx[0].Data, want)
	}
	// Observing passes values and gradients through unchanged.
	if err := fq.StartCalibration(); err != nil {
		t.Fatal(err)
	}
	out, err = fq.Forward(c, []*tensor.Tensor{x})
	if err != nil || !slices.Equal(out[0].Data, x.Data) {
		t.Errorf("observing forward %v (%v), want the input", out[0].Data, err)
	}
	dx, err = fq.Backward(c, []*tensor.Tensor{x}, out, []*tensor.Tensor{dy})
	if err != nil || !slices.Equal(dx[0].Data, dy.Data) {
		t.Errorf("observing backward %v (%v), want dy", dx[0].Data, err)
	}
	if err := fq.FinishCalibration(); err != nil {
		t.Fatal(err)
	}
	if u := fq.Q.(*Uniform); u.Scale[0] != float32(10)/3 {
		t.Errorf("calibrated on max 10: scale %v, want 10/3", u.Scale[0])
	}
}

// TestAdaptRefitsWeights checks the hook fine-tuning uses: in training
// mode with Adapt, a weight quantizer refits to the current weights on
// every forward, warm-starting WEQ from its previous partition.
func TestAdaptRefitsWeights(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	w := tensor.MustFromData(sample(rng, 200, true), 10, 20)
	fq, err := NewFakeQuant(Spec{Role: WeightRole, Method: MethodWEQ, Bits: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := fq.Fit(w); err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(fq.Q.(*WEQ).Reps)
	for i := range w.Data {
		w.Data[i] *= 2 // an "update"
	}
	c := graph.NewContext(false, 1)
	if _, err := fq.Forward(c, []*tensor.Tensor{w}); err != nil {
		t.Fatal(err)
	}
	if got := fq.Q.(*WEQ).Reps; !slices.Equal(got, before) {
		t.Errorf("evaluation forward refitted the quantizer")
	}
	fq.Adapt = true
	c.Training = true
	out, err := fq.Forward(c, []*tensor.Tensor{w})
	if err != nil {
		t.Fatal(err)
	}
	q := fq.Q.(*WEQ)
	for k, r := range q.Reps {
		if d := r - 2*before[k]; d > 1e-5*r || d < -1e-5*r {
			t.Errorf("after doubling the weights, representative %d is %v, want %v", k, r, 2*before[k])
		}
	}
	if q.Sweeps > 2 {
		t.Errorf("warm-started refit took %d sweeps (the doubled partition is already optimal)", q.Sweeps)
	}
	for _, v := range out[0].Data {
		if !slices.Contains(q.Levels(), v) {
			t.Fatalf("output %v is not a level of %v", v, q.Levels())
		}
	}
}

// TestSpecKinds checks the documented method → quantizer mapping.
func TestSpecKinds(t *testing.T) {
	cases := []struct {
		s    Spec
		want Kind
	}{
		{Spec{Role: WeightRole, Method: MethodWEQ, Bits: 2}, KindWEQ},
		{Spec{Role: ActivationRole, Method: MethodWEQ, Bits: 3}, KindLog},
		{Spec{Role: ActivationRole, Method: MethodWEQ, Bits: 3, Signed: true}, KindUniform},
		{Spec{Role: ActivationRole, Method: MethodOLAQ, Bits: 4}, KindOLAQ},
		{Spec{Role: WeightRole, Method: MethodOLAQ, Bits: 16}, KindUniform},
		{Spec{Role: WeightRole, Method: MethodUniform, Bits: 4}, KindUniform},
	}
	for _, c := range cases {
		if got := c.s.Kind(); got != c.want {
			t.Errorf("%+v: kind %s, want %s", c.s, got, c.want)
		}
	}
	for _, bad := range []Spec{
		{Role: WeightRole, Method: MethodUniform, Bits: 1}, // symmetric 1-bit has one level
		{Role: ActivationRole, Method: MethodOLAQ, Bits: 1, Signed: true},
		{Role: WeightRole, Method: MethodWEQ, Bits: 9},
		{Role: WeightRole, Method: MethodWEQ, Bits: 1, WEQZero: true},
		{Role: ActivationRole, Method: MethodOLAQ, Bits: 4, OutlierRatio: 1},
	} {
		if _, err := NewFakeQuant(bad); err == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}
