// Package gradcheck compares an op's analytic gradients (Backward) with
// central finite differences of its Forward, for the op tests.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand"

	"lowbit/graph"
	"lowbit/tensor"
)

// Options tunes a check. Zero values pick defaults.
type Options struct {
	Eps      float64 // finite-difference step (default 1e-2)
	Tol      float64 // tolerance on |a-n| / max(1, |a|, |n|) (default 2e-2)
	Training bool    // run the op in training mode
	Skip     []int   // inputs not checked (e.g. BatchNorm running statistics)
	Seed     int64
	MaxProbe int // at most this many elements probed per input (default 200)
}

// Check returns an error describing the first gradient mismatch, or nil.
// The scalar objective is L = Σ_i Σ_j r_ij·out_i[j] with fixed random r.
func Check(op graph.Op, inputs []*tensor.Tensor, o Options) error {
	if o.Eps == 0 {
		o.Eps = 1e-2
	}
	if o.Tol == 0 {
		o.Tol = 2e-2
	}
	if o.MaxProbe == 0 {
		o.MaxProbe = 200
	}
	rng := rand.New(rand.NewSource(o.Seed + 17))
	run := func() ([]*tensor.Tensor, *graph.Context, error) {
		c := graph.NewContext(o.Training, o.Seed)
		outs, err := op.Forward(c, inputs)
		if err != nil {
			return nil, nil, err
		}
		cl := make([]*tensor.Tensor, len(outs))
		for i, t := range outs {
			cl[i] = t.Clone()
		}
		return cl, c, nil
	}
	outs, c, err := run()
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	r := make([]*tensor.Tensor, len(outs))
	for i, t := range outs {
		r[i] = tensor.New(t.Shape...)
		r[i].RandUniform(rng, -1, 1)
	}
	objective := func(os []*tensor.Tensor) float64 {
		var s float64
		for i, t := range os {
			for j, v := range t.Data {
				s += float64(v) * float64(r[i].Data[j])
			}
		}
		return s
	}
	skip := map[int]bool{}
	for _, s := range o.Skip {
		skip[s] = true
	}
	c.NeedGrad = make([]bool, len(inputs))
	for i, in := range inputs {
		c.NeedGrad[i] = in != nil && !skip[i]
	}
	// Snapshot inputs (ops such as BatchNorm update some in training).
	saved := make([]*tensor.Tensor, len(inputs))
	for i, in := range inputs {
		if in != nil {
			saved[i] = in.Clone()
		}
	}
	restore := func() {
		for i, in := range inputs {
			if in != nil {
				copy(in.Data, saved[i].Data)
			}
		}
	}
	dIn, err := op.Backward(c, inputs, outs, r)
	if err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	restore()
	for i, in := range inputs {
		if in == nil || skip[i] {
			continue
		}
		if i >= len(dIn) || dIn[i] == nil {
			return fmt.Errorf("input %d: no gradient returned", i)
		}
		if dIn[i].Len() != in.Len() {
			return fmt.Errorf("input %d: gradient has %d elements, input %d", i, dIn[i].Len(), in.Len())
		}
		idx := rng.Perm(in.Len())
		if len(idx) > o.MaxProbe {
			idx = idx[:o.MaxProbe]
		}
		for _, j := range idx {
			orig := in.Data[j]
			in.Data[j] = orig + float32(o.Eps)
			up, _, err := run()
			if err != nil {
				return err
			}
			restore()
			in.Data[j] = orig - float32(o.Eps)
			down, _, err := run()
			if err != nil {
				return err
			}
			restore()
			num := (objective(up) - objective(down)) / (2 * o.Eps)
			ana := float64(dIn[i].Data[j])
			den := math.Max(1, math.Max(math.Abs(num), math.Abs(ana)))
			if math.Abs(num-ana)/den > o.Tol {
				return fmt.Errorf("input %d (shape %v) element %d: analytic %.6g, numeric %.6g", i, in.Shape, j, ana, num)
			}
		}
	}
	return nil
}

// Rand returns a tensor of the given shape with U(-1, 1) values.
func Rand(rng *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	t.RandUniform(rng, -1, 1)
	return t
}
