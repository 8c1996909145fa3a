package graph

import (
	"errors"
	"fmt"
	"math/rand"

	"lowbit/tensor"
)

// Kind classifies a parameter; it decides its optimizer treatment
// (weight decay, learning-rate group) and whether it gets gradients.
type Kind int

const (
	// Weight is a conv/linear weight: trainable, weight-decayed.
	Weight Kind = iota
	// Bias is a conv/linear bias: trainable, not decayed.
	Bias
	// BNScale is a BatchNorm gamma.
	BNScale
	// BNBias is a BatchNorm beta.
	BNBias
	// BNMean is a BatchNorm running mean (state, no gradient).
	BNMean
	// BNVar is a BatchNorm running variance (state, no gradient).
	BNVar
	// QuantParam is a learnable quantizer parameter (DuQ a, c; LSQ step).
	QuantParam
	// Const is a constant tensor (no gradient, never updated by optimizers).
	Const
)

var kindNames = [...]string{"weight", "bias", "bn_scale", "bn_bias", "bn_mean", "bn_var", "quant", "const"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// IsState reports whether a kind holds state rather than learnable values.
func (k Kind) IsState() bool { return k == BNMean || k == BNVar || k == Const }

// Param is a named tensor owned by the graph: a learnable parameter, a
// BatchNorm statistic or a constant.
type Param struct {
	Name   string
	Kind   Kind
	Data   *tensor.Tensor
	Grad   *tensor.Tensor // accumulated by Executor.Backward; nil until needed
	Frozen bool           // frozen parameters get no gradient and are not updated
	Value  *Value         // the graph value that carries it
}

// Trainable reports whether the parameter receives gradients.
func (p *Param) Trainable() bool { return !p.Frozen && !p.Kind.IsState() }

// ZeroGrad clears the accumulated gradient.
func (p *Param) ZeroGrad() {
	if p.Grad != nil {
		p.Grad.Zero()
	}
}

// Value is an edge of the graph: a graph input, a parameter, or a node output.
type Value struct {
	Name     string
	Shape    []int  // inferred static shape; -1 marks the batch (unknown) dimension
	Producer *Node  // nil for graph inputs and parameters
	Param    *Param // non-nil for parameters and constants
}

// Node applies an Op to input values and produces output values.
type Node struct {
	Name    string
	Op      Op
	Inputs  []*Value // an input may be nil for an omitted optional input
	Outputs []*Value
}

// Graph is a model: inputs, nodes, parameters and outputs.
type Graph struct {
	Name    string
	Inputs  []*Value
	Outputs []*Value
	Nodes   []*Node
	params  []*Param
	byName  map[string]*Value
	nodeSet map[string]*Node
	err     error
	// Meta holds free-form string metadata (saved as ONNX metadata_props).
	Meta map[string]string
}

// New returns an empty graph.
func New(name string) *Graph {
	return &Graph{Name: name, byName: map[string]*Value{}, nodeSet: map[string]*Node{}, Meta: map[string]string{}}
}

// Err returns the first error recorded while building the graph.
func (g *Graph) Err() error { return g.err }

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// SetErr records err as the graph's build error if none is set yet; builders
// outside this package use it to report their own invalid arguments.
func (g *Graph) SetErr(err error) { g.fail(err) }

// Value returns the value with the given name, or nil.
func (g *Graph) Value(name string) *Value { return g.byName[name] }

// NodeByName returns the node with the given name, or nil.
func (g *Graph) NodeByName(name string) *Node { return g.nodeSet[name] }

func (g *Graph) addValue(v *Value) bool {
	if _, dup := g.byName[v.Name]; dup {
		g.fail(fmt.Errorf("graph %s: duplicate value name %q", g.Name, v.Name))
		return false
	}
	g.byName[v.Name] = v
	return true
}

// Input declares a graph input. Use -1 for the batch dimension.
func (g *Graph) Input(name string, shape ...int) *Value {
	v := &Value{Name: name, Shape: append([]int{}, shape...)}
	if g.addValue(v) {
		g.Inputs = append(g.Inputs, v)
	}
	return v
}

// AddParam registers a named parameter (or constant) and returns its value.
func (g *Graph) AddParam(name string, kind Kind, t *tensor.Tensor) *Value {
	p := &Param{Name: name, Kind: kind, Data: t}
	v := &Value{Name: name, Shape: append([]int{}, t.Shape...), Param: p}
	p.Value = v
	if g.addValue(v) {
		g.params = append(g.params, p)
	}
	return v
}

// Params returns all parameters in creation order.
func (g *Graph) Params() []*Param { return g.params }

// Param returns the parameter with the given name, or nil.
func (g *Graph) Param(name string) *Param {
	if v := g.byName[name]; v != nil {
		return v.Param
	}
	return nil
}

// RemoveParam drops a parameter that no node uses any more.
func (g *Graph) RemoveParam(p *Param) {
	for i, q := range g.params {
		if q == p {
			g.params = append(g.params[:i], g.params[i+1:]...)
			break
		}
	}
	delete(g.byName, p.Name)
}

// UniqueName returns prefix if unused, else prefix_2, prefix_3, ...
func (g *Graph) UniqueName(prefix string) string {
	if g.byName[prefix] == nil && g.nodeSet[prefix] == nil {
		return prefix
	}
	for i := 2; ; i++ {
		n := fmt.Sprintf("%s_%d", prefix, i)
		if g.byName[n] == nil && g.nodeSet[n] == nil {
			return n
		}
	}
}

// Node appends a node applying op to inputs, infers its output shapes and
// returns its outputs. Output values are named after the node (name, then
// name:1, name:2, ... for further outputs). Errors are recorded in Err and
// nil is returned.
func (g *Graph) Node(name string, op Op, inputs ...*Value) []*Value {
	if g.err != nil {
		return nil
	}
	if _, dup := g.nodeSet[name]; dup {
		g.fail(fmt.Errorf("graph %s: duplicate node name %q", g.Name, name))
		return nil
	}
	shapes := make([][]int, len(inputs))
	for i, in := range inputs {
		if in != nil {
			shapes[i] = in.Shape
		}
	}
	outShapes, err := op.InferShapes(shapes)
	if err != nil {
		g.fail(fmt.Errorf("node %s (%s): %w", name, op.Type(), err))
		return nil
	}
	n := &Node{Name: name, Op: op, Inputs: append([]*Value(nil), inputs...)}
	for i, s := range outShapes {
		vn := name
		if i > 0 {
			vn = fmt.Sprintf("%s:%d", name, i)
		}
		v := &Value{Name: vn, Shape: s, Producer: n}
		if !g.addValue(v) {
			return nil
		}
		n.Outputs = append(n.Outputs, v)
	}
	g.nodeSet[name] = n
	g.Nodes = append(g.Nodes, n)
	return n.Outputs
}

// Apply is Node for single-output ops; it returns the first output or nil.
func (g *Graph) Apply(name string, op Op, inputs ...*Value) *Value {
	outs := g.Node(name, op, inputs...)
	if len(outs) == 0 {
		return nil
	}
	return outs[0]
}

// SetOutputs declares the graph outputs.
func (g *Graph) SetOutputs(vs ...*Value) {
	for _, v := range vs {
		if v == nil {
			g.fail(fmt.Errorf("graph %s: nil output", g.Name))
			return
		}
	}
	g.Outputs = append([]*Value(nil), vs...)
}

// Consumers returns the nodes that read v, in node order.
func (g *Graph) Consumers(v *Value) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == v {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// ReplaceUses makes every node input and graph output that reads old read
// repl instead, except in the node skip (which may be nil).
func (g *Graph) ReplaceUses(old, repl *Value, skip *Node) {
	for _, n := range g.Nodes {
		if n == skip {
			continue
		}
		for i, in := range n.Inputs {
			if in == old {
				n.Inputs[i] = repl
			}
		}
	}
	for i, o := range g.Outputs {
		if o == old {
			g.Outputs[i] = repl
		}
	}
}

// RemoveNode deletes a node and its output values. Callers must first
// rewire its consumers.
func (g *Graph) RemoveNode(n *Node) {
	for i, m := range g.Nodes {
		if m == n {
			g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
			break
		}
	}
	delete(g.nodeSet, n.Name)
	for _, o := range n.Outputs {
		delete(g.byName, o.Name)
	}
}

// InsertAfter creates a node reading inputs right after node `after` in the
// node order (at the front when after is nil) and returns its outputs. It
// does not rewire consumers; see ReplaceUses.
func (g *Graph) InsertAfter(after *Node, name string, op Op, inputs ...*Value) []*Value {
	outs := g.Node(name, op, inputs...)
	if outs == nil {
		return nil
	}
	n := g.Nodes[len(g.Nodes)-1]
	g.Nodes = g.Nodes[:len(g.Nodes)-1]
	pos := 0
	if after != nil {
		for i, m := range g.Nodes {
			if m == after {
				pos = i + 1
				break
			}
		}
	}
	g.Nodes = append(g.Nodes, nil)
	copy(g.Nodes[pos+1:], g.Nodes[pos:])
	g.Nodes[pos] = n
	return outs
}

// Reinfer recomputes every node's output shapes in topological order, for
// use after a pass changed parameters or inputs.
func (g *Graph) Reinfer() error {
	order, err := g.TopoSort()
	if err != nil {
		return err
	}
	for _, n := range order {
		shapes := make([][]int, len(n.Inputs))
		for i, in := range n.Inputs {
			if in != nil {
				shapes[i] = in.Shape
			}
		}
		outs, err := n.Op.InferShapes(shapes)
		if err != nil {
			return fmt.Errorf("node %s (%s): %w", n.Name, n.Op.Type(), err)
		}
		if len(outs) != len(n.Outputs) {
			return fmt.Errorf("node %s (%s): %d outputs inferred, node has %d", n.Name, n.Op.Type(), len(outs), len(n.Outputs))
		}
		for i, s := range outs {
			n.Outputs[i].Shape = s
		}
	}
	return nil
}

// TopoSort returns the nodes in an order where producers come before
// consumers, preserving the existing order where possible. It reports a
// cycle or a dangling input.
func (g *Graph) TopoSort() ([]*Node, error) {
	ready := map[*Value]bool{}
	for _, v := range g.Inputs {
		ready[v] = true
	}
	for _, p := range g.params {
		ready[p.Value] = true
	}
	produced := map[*Value]bool{}
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			produced[o] = true
		}
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != nil && !ready[in] && !produced[in] {
				return nil, fmt.Errorf("graph %s: node %s reads %q, which no input, parameter or node provides", g.Name, n.Name, in.Name)
			}
		}
	}
	done := make(map[*Node]bool, len(g.Nodes))
	order := make([]*Node, 0, len(g.Nodes))
	for len(order) < len(g.Nodes) {
		progress := false
		for _, n := range g.Nodes {
			if done[n] {
				continue
			}
			ok := true
			for _, in := range n.Inputs {
				if in != nil && !ready[in] {
					ok = false
					break
				}
			}
			if !ok {
				continue
			}
			done[n] = true
			order = append(order, n)
			for _, o := range n.Outputs {
				ready[o] = true
			}
			progress = true
		}
		if !progress {
			return nil, errors.New("graph " + g.Name + ": cycle among nodes")
		}
	}
	for _, o := range g.Outputs {
		if !ready[o] {
			return nil, fmt.Errorf("graph %s: output %q is never computed", g.Name, o.Name)
		}
	}
	return order, nil
}

// ZeroGrad clears every parameter gradient.
func (g *Graph) ZeroGrad() {
	for _, p := range g.params {
		p.ZeroGrad()
	}
}

// NumParams counts the elements of trainable parameters (and all parameters).
func (g *Graph) NumParams() (trainable, all int) {
	for _, p := range g.params {
		n := p.Data.Len()
		all += n
		if !p.Kind.IsState() {
			trainable += n
		}
	}
	return
}

// RNG returns a deterministic random source derived from a seed; builders
// use it for initialization.
func RNG(seed int64) *rand.Rand { return rand.New(rand.NewSource(seed)) }
