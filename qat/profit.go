package qat

import (
	"fmt"
	"slices"

	"lowbit/graph"
	"lowbit/quant"
	"lowbit/tensor"
)

// QuantizedConvs returns the Conv nodes of g whose weight comes from a
// quantizer (DuQ or FakeQuant), in topological order.
func QuantizedConvs(g *graph.Graph) ([]*graph.Node, error) {
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var out []*graph.Node
	for _, n := range order {
		if n.Op.Type() == "Conv" && len(n.Inputs) > 1 && n.Inputs[1] != nil && quant.IsQuantizer(n.Inputs[1].Producer) {
			out = append(out, n)
		}
	}
	return out, nil
}

// LayerWeight returns the weight parameter of a Conv/Gemm layer, looking
// through its weight quantizer; nil when the weight is computed.
func LayerWeight(l *graph.Node) *graph.Param {
	if len(l.Inputs) < 2 || l.Inputs[1] == nil {
		return nil
	}
	v := l.Inputs[1]
	if q := v.Producer; q != nil && quant.IsQuantizer(q) && len(q.Inputs) > 0 && q.Inputs[0] != nil {
		v = q.Inputs[0]
	}
	return v.Param
}

// AIWQSampler measures AIWQ during training (methods.md §7): installed as
// an executor's OnForward, at every training forward of a quantized
// convolution it recomputes the convolution on the same input with the
// quantized weights of the previous training forward (those from before
// the last update) and folds AIWQ(new, old) into Tracker.
type AIWQSampler struct {
	Tracker *AIWQTracker
	// Err is the first error met (the hook cannot return one).
	Err    error
	e      *graph.Executor
	layers map[*graph.Node]bool
	old    map[*graph.Node]*tensor.Tensor
	ctx    map[*graph.Node]*graph.Context
}

// NewAIWQSampler prepares a sampler for the quantized convolutions of
// e's graph, folding into tracker.
func NewAIWQSampler(e *graph.Executor, tracker *AIWQTracker) (*AIWQSampler, error) {
	convs, err := QuantizedConvs(e.G)
	if err != nil {
		return nil, err
	}
	if len(convs) == 0 {
		return nil, fmt.Errorf("AIWQ sampling: graph %s has no convolution with quantized weights", e.G.Name)
	}
	s := &AIWQSampler{Tracker: tracker, e: e, layers: map[*graph.Node]bool{}, old: map[*graph.Node]*tensor.Tensor{}, ctx: map[*graph.Node]*graph.Context{}}
	for i, c := range convs {
		s.layers[c] = true
		s.ctx[c] = graph.NewContext(false, int64(i)+1)
	}
	return s, nil
}

// Install sets the sampler as e's OnForward (chaining the previous hook).
func (s *AIWQSampler) Install() {
	prev := s.e.OnForward
	s.e.OnForward = func(n *graph.Node, in, out []*tensor.Tensor) {
		s.observe(n, in, out)
		if prev != nil {
			prev(n, in, out)
		}
	}
}

func (s *AIWQSampler) observe(n *graph.Node, in, out []*tensor.Tensor) {
	if !s.e.Training || !s.layers[n] || s.Err != nil || len(in) < 2 || in[1] == nil || len(out) == 0 {
		return
	}
	w := in[1]
	if old := s.old[n]; old != nil && tensor.SameShape(old.Shape, w.Shape) {
		oin := slices.Clone(in)
		oin[1] = old
		y, err := n.Op.Forward(s.ctx[n], oin)
		if err != nil {
			s.Err = fmt.Errorf("AIWQ of %s: %w", n.Name, err)
			return
		}
		v, ok, err := AIWQ(out[0], y[0])
		if err != nil {
			s.Err = fmt.Errorf("AIWQ of %s: %w", n.Name, err)
			return
		}
		if ok {
			s.Tracker.Add(n.Name, v)
		}
	}
	if s.old[n] == nil || s.old[n].Len() != w.Len() {
		s.old[n] = w.Clone()
	} else {
		copy(s.old[n].Data, w.Data)
	}
}
