package optim

import (
	"errors"
	"fmt"

	"lowbit/graph"
)

// DefaultEMADecay is the EMA decay of methods.md §7.
const DefaultEMADecay = 0.9997

// EMA keeps an exponential moving average ("shadow") of every parameter of
// a graph except constants: weights, biases, BatchNorm affine parameters
// and running statistics, quantizer parameters. Parameters added to the
// graph after NewEMA (e.g. by quantizer insertion) join at their current
// value on the next Update.
type EMA struct {
	G     *graph.Graph
	Decay float64
	// RampUp uses min(Decay, (1+n)/(10+n)) at the n-th update (as
	// TensorFlow's ExponentialMovingAverage with num_updates), so short runs
	// are not dominated by the initial weights.
	RampUp bool
	// Updates counts the calls of Update.
	Updates int
	shadow  map[*graph.Param][]float32
	backup  map[*graph.Param][]float32 // live values while the shadow is applied
}

// NewEMA starts an average of g's current parameters with decay (0 means
// DefaultEMADecay).
func NewEMA(g *graph.Graph, decay float64) *EMA {
	if decay == 0 {
		decay = DefaultEMADecay
	}
	e := &EMA{G: g, Decay: decay, shadow: map[*graph.Param][]float32{}}
	e.sync()
	return e
}

// sync adds shadows for new parameters and drops those of removed ones.
func (e *EMA) sync() {
	live := map[*graph.Param]bool{}
	for _, p := range e.G.Params() {
		if p.Kind == graph.Const {
			continue
		}
		live[p] = true
		if s := e.shadow[p]; len(s) != p.Data.Len() {
			e.shadow[p] = append([]float32(nil), e.live(p)...)
		}
	}
	for p := range e.shadow {
		if !live[p] {
			delete(e.shadow, p)
		}
	}
}

// live returns p's training values (held in the backup while applied).
func (e *EMA) live(p *graph.Param) []float32 {
	if b, ok := e.backup[p]; ok {
		return b
	}
	return p.Data.Data
}

// decay returns the decay used by the next update.
func (e *EMA) decay() float32 {
	d := e.Decay
	if e.RampUp {
		n := float64(e.Updates)
		d = min(d, (1+n)/(10+n))
	}
	return float32(d)
}

// Update folds the current parameters into the average:
// shadow = d·shadow + (1−d)·param. While the shadow is applied it reads
// the training values saved by Apply.
func (e *EMA) Update() {
	if e.shadow == nil {
		e.shadow = map[*graph.Param][]float32{}
	}
	e.sync()
	d := e.decay()
	for p, s := range e.shadow {
		for i, v := range e.live(p) {
			s[i] = d*s[i] + (1-d)*v
		}
	}
	e.Updates++
}

// Apply swaps the averaged values into the graph (for evaluation or
// export); Restore swaps the training values back.
func (e *EMA) Apply() error {
	if e.backup != nil {
		return errors.New("optim: EMA already applied")
	}
	e.sync()
	e.backup = make(map[*graph.Param][]float32, len(e.shadow))
	for p, s := range e.shadow {
		e.backup[p] = append([]float32(nil), p.Data.Data...)
		copy(p.Data.Data, s)
	}
	return nil
}

// Restore undoes Apply.
func (e *EMA) Restore() error {
	if e.backup == nil {
		return errors.New("optim: EMA restore without apply")
	}
	for p, b := range e.backup {
		if len(b) == p.Data.Len() {
			copy(p.Data.Data, b)
		}
	}
	e.backup = nil
	return nil
}

// Keep makes an applied shadow the graph's values for good: the training
// values saved by Apply are dropped, so later updates average from here.
func (e *EMA) Keep() error {
	if e.backup == nil {
		return errors.New("optim: EMA keep without apply")
	}
	e.backup = nil
	return nil
}

// Applied reports whether the shadow is currently swapped in.
func (e *EMA) Applied() bool { return e.backup != nil }

// EMAState is the saved state of an EMA.
type EMAState struct {
	Updates int
	Names   []string
	Shadow  [][]float32
}

// StateDict returns a deep copy of the averages, in graph parameter order.
func (e *EMA) StateDict() EMAState {
	e.sync()
	st := EMAState{Updates: e.Updates}
	for _, p := range e.G.Params() {
		if s, ok := e.shadow[p]; ok {
			st.Names = append(st.Names, p.Name)
			st.Shadow = append(st.Shadow, append([]float32(nil), s...))
		}
	}
	return st
}

// LoadState restores averages saved by StateDict; parameters it does not
// mention start from their current values.
func (e *EMA) LoadState(st EMAState) error {
	if len(st.Names) != len(st.Shadow) {
		return fmt.Errorf("optim: EMA state has %d names and %d tensors", len(st.Names), len(st.Shadow))
	}
	if e.backup != nil {
		return errors.New("optim: EMA load while applied")
	}
	shadow := map[*graph.Param][]float32{}
	for i, name := range st.Names {
		p := e.G.Param(name)
		if p == nil || p.Kind == graph.Const {
			return fmt.Errorf("optim: EMA state for %q, which is not a parameter of graph %s", name, e.G.Name)
		}
		if len(st.Shadow[i]) != p.Data.Len() {
			return fmt.Errorf("optim: EMA state for %q has %d values, parameter has %d", name, len(st.Shadow[i]), p.Data.Len())
		}
		shadow[p] = append([]float32(nil), st.Shadow[i]...)
	}
	e.shadow, e.Updates = shadow, st.Updates
	e.sync()
	return nil
}
