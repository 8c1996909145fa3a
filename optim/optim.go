package optim

import (
	"fmt"
	"math"

	"lowbit/graph"
)

// Optimizer updates parameters from their accumulated gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr (scaled per group).
	Step(lr float64)
	// ZeroGrad clears the gradients of every parameter it manages.
	ZeroGrad()
}

// Checkpointer is an optimizer whose state can be saved and restored, so an
// interrupted run resumes on the same trajectory. SGD and Adam implement it.
type Checkpointer interface {
	StateDict() State
	LoadState(State) error
}

// Group is a set of parameters sharing a learning-rate scale and a weight
// decay. LRScale 0 means 1.
type Group struct {
	Params      []*graph.Param
	LRScale     float64
	WeightDecay float64
}

func (g Group) lrScale() float64 {
	if g.LRScale == 0 {
		return 1
	}
	return g.LRScale
}

// QuantLRScale is the learning-rate scale of quantizer parameters (1 % of
// the weight learning rate, methods.md §6).
const QuantLRScale = 0.01

// DefaultGroups splits g's learnable parameters into up to three groups,
// omitting empty ones: conv/linear weights with weight decay wd; biases
// and BatchNorm affine parameters without decay; quantizer parameters with
// LRScale 0.01 and no decay. BatchNorm statistics and constants are left
// out; frozen parameters are included (so unfreezing them later works) and
// skipped at step time.
func DefaultGroups(g *graph.Graph, wd float64) []Group {
	decay := Group{LRScale: 1, WeightDecay: wd}
	plain := Group{LRScale: 1}
	quant := Group{LRScale: QuantLRScale}
	for _, p := range g.Params() {
		switch p.Kind {
		case graph.Weight:
			decay.Params = append(decay.Params, p)
		case graph.Bias, graph.BNScale, graph.BNBias:
			plain.Params = append(plain.Params, p)
		case graph.QuantParam:
			quant.Params = append(quant.Params, p)
		}
	}
	var out []Group
	for _, gr := range []Group{decay, plain, quant} {
		if len(gr.Params) > 0 {
			out = append(out, gr)
		}
	}
	return out
}

// State is an optimizer's saved state: the hyper-parameters that shape the
// trajectory and per-parameter buffers keyed by parameter name.
type State struct {
	Kind   string       // "sgd" or "adam"
	Params []ParamState // in group order
}

// ParamState is one parameter's optimizer state.
type ParamState struct {
	Name    string
	Step    int         // number of updates applied to this parameter
	Buffers [][]float32 // SGD: [momentum]; Adam: [m, v]
}

// slots holds per-parameter state for an optimizer with nbuf buffers.
type slots struct {
	kind string
	nbuf int
	m    map[*graph.Param]*ParamState
}

func newSlots(kind string, nbuf int) slots {
	return slots{kind: kind, nbuf: nbuf, m: map[*graph.Param]*ParamState{}}
}

// get returns p's state, (re)allocating zero buffers when missing or when
// the parameter changed size.
func (s *slots) get(p *graph.Param) *ParamState {
	st := s.m[p]
	if st == nil || len(st.Buffers) != s.nbuf || len(st.Buffers[0]) != p.Data.Len() {
		st = &ParamState{Name: p.Name, Buffers: make([][]float32, s.nbuf)}
		for i := range st.Buffers {
			st.Buffers[i] = make([]float32, p.Data.Len())
		}
		s.m[p] = st
	}
	return st
}

// updatable reports whether the optimizer may touch p this step.
func updatable(p *graph.Param) bool {
	return p.Trainable() && p.Grad != nil && p.Grad.Len() == p.Data.Len()
}

func (s *slots) stateDict(groups []Group) State {
	st := State{Kind: s.kind}
	for _, g := range groups {
		for _, p := range g.Params {
			if ps := s.m[p]; ps != nil {
				c := ParamState{Name: p.Name, Step: ps.Step, Buffers: make([][]float32, len(ps.Buffers))}
				for i, b := range ps.Buffers {
					c.Buffers[i] = append([]float32(nil), b...)
				}
				st.Params = append(st.Params, c)
			}
		}
	}
	return st
}

func (s *slots) load(groups []Group, st State) error {
	if st.Kind != s.kind {
		return fmt.Errorf("optim: load %s state into a %s optimizer", st.Kind, s.kind)
	}
	byName := map[string]*graph.Param{}
	for _, g := range groups {
		for _, p := range g.Params {
			byName[p.Name] = p
		}
	}
	m := map[*graph.Param]*ParamState{}
	for _, ps := range st.Params {
		p := byName[ps.Name]
		if p == nil {
			return fmt.Errorf("optim: %s state for parameter %q, which the optimizer does not manage", s.kind, ps.Name)
		}
		if len(ps.Buffers) != s.nbuf || ps.Step < 0 {
			return fmt.Errorf("optim: %s state for %q has %d buffers and step %d, want %d buffers", s.kind, ps.Name, len(ps.Buffers), ps.Step, s.nbuf)
		}
		c := &ParamState{Name: ps.Name, Step: ps.Step, Buffers: make([][]float32, s.nbuf)}
		for i, b := range ps.Buffers {
			if len(b) != p.Data.Len() {
				return fmt.Errorf("optim: %s state for %q has %d values, parameter has %d", s.kind, ps.Name, len(b), p.Data.Len())
			}
			c.Buffers[i] = append([]float32(nil), b...)
		}
		m[p] = c
	}
	s.m = m
	return nil
}

func zeroGrad(groups []Group) {
	for _, g := range groups {
		for _, p := range g.Params {
			p.ZeroGrad()
		}
	}
}

// SGD is stochastic gradient descent with PyTorch semantics (dampening 0):
// d = g + wd·p; buf = m·buf + d; d = d + m·buf (Nesterov) or buf;
// p −= lr·d. With Momentum 0 it is plain SGD with weight decay.
type SGD struct {
	Groups   []Group
	Momentum float64
	Nesterov bool
	state    slots
}

// NewSGD returns an SGD optimizer over groups.
func NewSGD(groups []Group, momentum float64, nesterov bool) *SGD {
	return &SGD{Groups: groups, Momentum: momentum, Nesterov: nesterov, state: newSlots("sgd", 1)}
}

// Step applies one update; parameters that are frozen, state, or without
// a gradient are skipped.
func (o *SGD) Step(lr float64) {
	if o.state.m == nil {
		o.state = newSlots("sgd", 1)
	}
	m := float32(o.Momentum)
	for _, g := range o.Groups {
		a, wd := float32(lr*g.lrScale()), float32(g.WeightDecay)
		for _, p := range g.Params {
			if !updatable(p) {
				continue
			}
			w, gr := p.Data.Data, p.Grad.Data[:len(p.Data.Data)]
			if m == 0 {
				for i, gi := range gr {
					w[i] -= a * (gi + wd*w[i])
				}
				continue
			}
			st := o.state.get(p)
			buf := st.Buffers[0][:len(w)]
			first := st.Step == 0
			st.Step++
			for i, gi := range gr {
				d := gi + wd*w[i]
				if first {
					buf[i] = d
				} else {
					buf[i] = m*buf[i] + d
				}
				if o.Nesterov {
					d += m * buf[i]
				} else {
					d = buf[i]
				}
				w[i] -= a * d
			}
		}
	}
}

// ZeroGrad clears the gradients of all managed parameters.
func (o *SGD) ZeroGrad() { zeroGrad(o.Groups) }

// StateDict returns a deep copy of the momentum buffers.
func (o *SGD) StateDict() State { return o.state.stateDict(o.Groups) }

// LoadState replaces the optimizer state with st (deep-copied).
func (o *SGD) LoadState(st State) error {
	if o.state.m == nil {
		o.state = newSlots("sgd", 1)
	}
	return o.state.load(o.Groups, st)
}

// Adam is Adam with PyTorch semantics and per-parameter bias correction;
// with DecoupledWD it is AdamW (p ← p·(1 − lr·wd) before the Adam step),
// otherwise the decay is added to the gradient (g + wd·p).
type Adam struct {
	Groups       []Group
	Beta1, Beta2 float64
	Eps          float64
	DecoupledWD  bool
	state        slots
}

// NewAdam returns an Adam optimizer over groups with PyTorch's defaults
// β1 0.9, β2 0.999, ε 1e-8.
func NewAdam(groups []Group, decoupledWD bool) *Adam {
	return &Adam{Groups: groups, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, DecoupledWD: decoupledWD, state: newSlots("adam", 2)}
}

// Step applies one update; parameters that are frozen, state, or without
// a gradient are skipped.
func (o *Adam) Step(lr float64) {
	if o.state.m == nil {
		o.state = newSlots("adam", 2)
	}
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	for _, g := range o.Groups {
		glr := lr * g.lrScale()
		wd := float32(g.WeightDecay)
		for _, p := range g.Params {
			if !updatable(p) {
				continue
			}
			st := o.state.get(p)
			st.Step++
			w, gr := p.Data.Data, p.Grad.Data[:len(p.Data.Data)]
			mb, vb := st.Buffers[0][:len(w)], st.Buffers[1][:len(w)]
			bc1 := 1 - math.Pow(o.Beta1, float64(st.Step))
			bc2 := math.Sqrt(1 - math.Pow(o.Beta2, float64(st.Step)))
			stepSize, eps := float32(glr/bc1), float32(o.Eps)
			shrink := float32(1 - glr*float64(wd))
			for i, gi := range gr {
				if o.DecoupledWD {
					w[i] *= shrink
				} else {
					gi += wd * w[i]
				}
				mb[i] = b1*mb[i] + (1-b1)*gi
				vb[i] = b2*vb[i] + (1-b2)*gi*gi
				denom := float32(math.Sqrt(float64(vb[i])))/float32(bc2) + eps
				w[i] -= stepSize * mb[i] / denom
			}
		}
	}
}

// ZeroGrad clears the gradients of all managed parameters.
func (o *Adam) ZeroGrad() { zeroGrad(o.Groups) }

// StateDict returns a deep copy of the moment estimates and step counts.
func (o *Adam) StateDict() State { return o.state.stateDict(o.Groups) }

// LoadState replaces the optimizer state with st (deep-copied).
func (o *Adam) LoadState(st State) error {
	if o.state.m == nil {
		o.state = newSlots("adam", 2)
	}
	return o.state.load(o.Groups, st)
}
