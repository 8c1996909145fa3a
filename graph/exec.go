package graph

import (
	"fmt"

	"lowbit/tensor"
)

// Executor runs a graph. It is not safe for concurrent use; create one per
// goroutine. Output tensors may be reused buffers: they stay valid until the
// next Forward.
type Executor struct {
	G        *Graph
	Training bool
	// OnForward, when set, is called after each node's forward with its
	// inputs and outputs (used by calibration and statistics collection).
	OnForward func(n *Node, in, out []*tensor.Tensor)
	order     []*Node
	ctx       map[*Node]*Context
	vals      map[*Value]*tensor.Tensor
	grads     map[*Value]*tensor.Tensor
	gradSet   map[*Value]bool
	seed      int64
}

// NewExecutor validates the graph and prepares to run it.
func NewExecutor(g *Graph) (*Executor, error) {
	if g.Err() != nil {
		return nil, g.Err()
	}
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	e := &Executor{G: g, order: order, ctx: map[*Node]*Context{}, vals: map[*Value]*tensor.Tensor{},
		grads: map[*Value]*tensor.Tensor{}, gradSet: map[*Value]bool{}}
	for i, n := range order {
		c := NewContext(false, int64(i)*7919+1)
		c.Node = n
		e.ctx[n] = c
	}
	return e, nil
}

// Refresh re-sorts the graph after a pass changed it, keeping contexts of
// nodes that still exist.
func (e *Executor) Refresh() error {
	order, err := e.G.TopoSort()
	if err != nil {
		return err
	}
	ctx := map[*Node]*Context{}
	for i, n := range order {
		c := e.ctx[n]
		if c == nil {
			c = NewContext(false, int64(i)*7919+1)
			c.Node = n
		}
		ctx[n] = c
	}
	e.order, e.ctx = order, ctx
	e.vals = map[*Value]*tensor.Tensor{}
	e.grads = map[*Value]*tensor.Tensor{}
	e.gradSet = map[*Value]bool{}
	return nil
}

// Order returns the execution order.
func (e *Executor) Order() []*Node { return e.order }

// Context returns a node's execution context.
func (e *Executor) Context(n *Node) *Context { return e.ctx[n] }

// Get returns the tensor computed for v by the last Forward (or nil).
func (e *Executor) Get(v *Value) *tensor.Tensor { return e.vals[v] }

// Grad returns the gradient computed for v by the last Backward (or nil).
func (e *Executor) Grad(v *Value) *tensor.Tensor {
	if p := v.Param; p != nil {
		return p.Grad
	}
	if !e.gradSet[v] {
		return nil
	}
	return e.grads[v]
}

// Forward runs the graph on inputs given in the order of G.Inputs and
// returns the outputs in the order of G.Outputs.
func (e *Executor) Forward(inputs ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := e.G
	if len(inputs) != len(g.Inputs) {
		return nil, fmt.Errorf("graph %s: %d inputs given, %d expected", g.Name, len(inputs), len(g.Inputs))
	}
	for i, v := range g.Inputs {
		if err := checkShape(v, inputs[i].Shape); err != nil {
			return nil, err
		}
		e.vals[v] = inputs[i]
	}
	for _, p := range g.params {
		e.vals[p.Value] = p.Data
	}
	for _, n := range e.order {
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				in[i] = e.vals[v]
			}
		}
		c := e.ctx[n]
		c.Training = e.Training
		out, err := n.Op.Forward(c, in)
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", n.Name, n.Op.Type(), err)
		}
		if len(out) != len(n.Outputs) {
			return nil, fmt.Errorf("node %s (%s): produced %d outputs, want %d", n.Name, n.Op.Type(), len(out), len(n.Outputs))
		}
		for i, v := range n.Outputs {
			e.vals[v] = out[i]
		}
		if e.OnForward != nil {
			e.OnForward(n, in, out)
		}
	}
	outs := make([]*tensor.Tensor, len(g.Outputs))
	for i, v := range g.Outputs {
		outs[i] = e.vals[v]
	}
	return outs, nil
}

func checkShape(v *Value, got []int) error {
	if len(v.Shape) != len(got) {
		return fmt.Errorf("input %s: got shape %v, want %v", v.Name, got, v.Shape)
	}
	for i, d := range v.Shape {
		if d >= 0 && d != got[i] {
			return fmt.Errorf("input %s: got shape %v, want %v", v.Name, got, v.Shape)
		}
	}
	return nil
}

// needsGrad marks values whose gradient must be computed: trainable
// parameters and everything computed from them.
func (e *Executor) needsGrad() map[*Value]bool {
	need := map[*Value]bool{}
	for _, p := range e.G.params {
		if p.Trainable() {
			need[p.Value] = true
		}
	}
	for _, n := range e.order {
		any := false
		for _, in := range n.Inputs {
			if in != nil && need[in] {
				any = true
				break
			}
		}
		if any {
			for _, o := range n.Outputs {
				need[o] = true
			}
		}
	}
	return need
}

// Backward propagates output gradients (one per graph output, nil for none)
// from the last Forward and accumulates gradients into the trainable
// parameters' Grad tensors (call Graph.ZeroGrad between steps).
func (e *Executor) Backward(dout ...*tensor.Tensor) error {
	return e.backward(dout, nil)
}

// BackwardInputs is Backward that also returns the gradients with respect
// to the graph inputs (used by tests and analyses).
func (e *Executor) BackwardInputs(dout ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	extra := map[*Value]bool{}
	for _, v := range e.G.Inputs {
		extra[v] = true
	}
	if err := e.backward(dout, extra); err != nil {
		return nil, err
	}
	res := make([]*tensor.Tensor, len(e.G.Inputs))
	for i, v := range e.G.Inputs {
		if e.gradSet[v] {
			res[i] = e.grads[v]
		}
	}
	return res, nil
}

func (e *Executor) backward(dout []*tensor.Tensor, extra map[*Value]bool) error {
	g := e.G
	if len(dout) != len(g.Outputs) {
		return fmt.Errorf("graph %s: %d output gradients given, %d outputs", g.Name, len(dout), len(g.Outputs))
	}
	need := e.needsGrad()
	if extra != nil {
		for v := range extra {
			need[v] = true
		}
		// Propagate again so that values computed from the inputs need grads.
		for _, n := range e.order {
			for _, in := range n.Inputs {
				if in != nil && need[in] {
					for _, o := range n.Outputs {
						need[o] = true
					}
					break
				}
			}
		}
	}
	clear(e.gradSet)
	for i, v := range g.Outputs {
		if dout[i] == nil {
			continue
		}
		if !tensor.SameShape(dout[i].Shape, e.vals[v].Shape) {
			return fmt.Errorf("graph %s: gradient of output %s has shape %v, output has %v", g.Name, v.Name, dout[i].Shape, e.vals[v].Shape)
		}
		if err := e.accum(v, dout[i]); err != nil {
			return err
		}
	}
	for k := len(e.order) - 1; k >= 0; k-- {
		n := e.order[k]
		dOut := make([]*tensor.Tensor, len(n.Outputs))
		anyOut := false
		for i, o := range n.Outputs {
			if e.gradSet[o] {
				dOut[i] = e.grads[o]
				anyOut = true
			}
		}
		if !anyOut {
			continue
		}
		c := e.ctx[n]
		if cap(c.NeedGrad) < len(n.Inputs) {
			c.NeedGrad = make([]bool, len(n.Inputs))
		}
		c.NeedGrad = c.NeedGrad[:len(n.Inputs)]
		anyIn := false
		for i, in := range n.Inputs {
			c.NeedGrad[i] = in != nil && need[in]
			anyIn = anyIn || c.NeedGrad[i]
		}
		if !anyIn {
			continue
		}
		in := make([]*tensor.Tensor, len(n.Inputs))
		for i, v := range n.Inputs {
			if v != nil {
				in[i] = e.vals[v]
			}
		}
		out := make([]*tensor.Tensor, len(n.Outputs))
		for i, v := range n.Outputs {
			out[i] = e.vals[v]
		}
		dIn, err := n.Op.Backward(c, in, out, dOut)
		if err != nil {
			return fmt.Errorf("backward of node %s (%s): %w", n.Name, n.Op.Type(), err)
		}
		for i, v := range n.Inputs {
			if v == nil || !c.NeedGrad[i] || i >= len(dIn) || dIn[i] == nil {
				continue
			}
			if err := e.accum(v, dIn[i]); err != nil {
				return fmt.Errorf("backward of node %s (%s): %w", n.Name, n.Op.Type(), err)
			}
		}
	}
	return nil
}

// accum adds d into the gradient of v (parameter gradients go to Param.Grad).
func (e *Executor) accum(v *Value, d *tensor.Tensor) error {
	if p := v.Param; p != nil {
		if !p.Trainable() {
			return nil
		}
		if p.Grad == nil || p.Grad.Len() != p.Data.Len() {
			p.Grad = tensor.New(p.Data.Shape...)
		}
		if d.Len() != p.Grad.Len() {
			return fmt.Errorf("gradient for %s has %d elements, parameter has %d", v.Name, d.Len(), p.Grad.Len())
		}
		addTo(p.Grad.Data, d.Data)
		return nil
	}
	gb := e.grads[v]
	if !e.gradSet[v] {
		if gb == nil || cap(gb.Data) < d.Len() {
			gb = &tensor.Tensor{Data: make([]float32, d.Len())}
			e.grads[v] = gb
		}
		gb.Data = gb.Data[:d.Len()]
		gb.Shape = append(gb.Shape[:0], d.Shape...)
		copy(gb.Data, d.Data)
		e.gradSet[v] = true
		return nil
	}
	if d.Len() != gb.Len() {
		return fmt.Errorf("gradient for %s has shape %v, earlier gradient %v", v.Name, d.Shape, gb.Shape)
	}
	addTo(gb.Data, d.Data)
	return nil
}

func addTo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
	}
}
