package quant

import (
	"fmt"

	"lowbit/graph"
	"lowbit/tensor"
)

// The precision highway (methods.md §5) as a policy of the insertion
// pass. With the highway, the residual stream — the skip path including
// a projection shortcut's input, the residual addition and the block
// output — stays in float (or at Highway.Bits), while the branch takes a
// quantized copy of the block input and every weight is quantized.
// Without it (conventional quantization), every reader of a quantized
// tensor reads the quantized copy, so the stream is re-quantized at every
// block.

// ResidualAdds returns the residual additions of g in topological order:
// Add nodes whose two inputs are computed values of the same shape (the
// zoo's "<block>.add" nodes, and the residual sums of imported graphs).
func ResidualAdds(g *graph.Graph) ([]*graph.Node, error) {
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var out []*graph.Node
	for _, n := range order {
		if n.Op.Type() != "Add" || len(n.Inputs) != 2 || n.Inputs[0] == nil || n.Inputs[1] == nil {
			continue
		}
		a, b := n.Inputs[0], n.Inputs[1]
		if a.Param != nil || b.Param != nil || a.Producer == nil && !isInput(g, a) || b.Producer == nil && !isInput(g, b) ||
			!tensor.SameShape(a.Shape, b.Shape) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func isInput(g *graph.Graph, v *graph.Value) bool {
	for _, in := range g.Inputs {
		if in == v {
			return true
		}
	}
	return false
}

// ancestors maps every value v is computed from (through data inputs,
// parameters excluded) to its distance in nodes.
func ancestors(v *graph.Value, limit int) map[*graph.Value]int {
	dist := map[*graph.Value]int{v: 0}
	queue := []*graph.Value{v}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		if dist[u] >= limit || u.Producer == nil {
			continue
		}
		for _, in := range u.Producer.Inputs {
			if in == nil || in.Param != nil {
				continue
			}
			if _, seen := dist[in]; !seen {
				dist[in] = dist[u] + 1
				queue = append(queue, in)
			}
		}
	}
	return dist
}

// SkipPathLayers returns the Conv/Gemm layers on the skip paths of g's
// residual additions (projection shortcuts such as ResNet's 1×1
// shortcut.conv). For each addition, the skip path is the shorter of the
// two paths from the nearest common ancestor of its inputs (the block
// input) to the addition, the second input on a tie (the zoo's inputs are
// (branch, shortcut)).
func SkipPathLayers(g *graph.Graph) (map[string]bool, error) {
	adds, err := ResidualAdds(g)
	if err != nil {
		return nil, err
	}
	const limit = 64
	out := map[string]bool{}
	for _, n := range adds {
		da, db := ancestors(n.Inputs[0], limit), ancestors(n.Inputs[1], limit)
		var common *graph.Value
		best := -1
		for v, a := range da {
			if b, ok := db[v]; ok && (best < 0 || a+b < best || a+b == best && v.Name < common.Name) {
				common, best = v, a+b
			}
		}
		if common == nil {
			continue
		}
		skip := n.Inputs[1]
		if da[common] < db[common] {
			skip = n.Inputs[0]
		}
		for v := skip; v != common && v != nil && v.Producer != nil; {
			p := v.Producer
			if isLayer(p) {
				out[p.Name] = true
			}
			var next *graph.Value
			for _, in := range p.Inputs {
				if in != nil && in.Param == nil {
					next = in
					break
				}
			}
			v = next
		}
	}
	return out, nil
}

// Effective returns the policy with the highway's overrides: with the
// highway enabled, the inputs of skip-path layers (see SkipPathLayers)
// that the policy quantizes are left in float, or quantized at
// Highway.Bits.
func (p QATPolicy) Effective(g *graph.Graph) (Policy, error) {
	pol := p.Policy
	pol.Layers = map[string]LayerBits{}
	for k, v := range p.Layers {
		pol.Layers[k] = v
	}
	if !p.Highway.Enabled {
		return pol, nil
	}
	skip, err := SkipPathLayers(g)
	if err != nil {
		return pol, err
	}
	if len(skip) == 0 {
		return pol, nil
	}
	layers, err := Layers(g)
	if err != nil {
		return pol, err
	}
	for i, l := range layers {
		if !skip[l.Name] {
			continue
		}
		if _, a := pol.bits(l.Name, i, len(layers)); a == 0 {
			continue
		}
		lb := pol.Layers[l.Name]
		lb.Input = -1
		if p.Highway.Bits > 0 {
			lb.Input = p.Highway.Bits
		}
		pol.Layers[l.Name] = lb
	}
	return pol, nil
}

// ShareQuantized applies the no-highway policy: every reader of a tensor
// quantized for a Conv/Gemm layer — other than layers (which the policy
// placed) and other quantizers — reads the quantized copy instead of the
// float tensor. It returns the number of rewired inputs.
func ShareQuantized(g *graph.Graph) (int, error) {
	rewired := 0
	for _, q := range append([]*graph.Node(nil), g.Nodes...) {
		if !IsQuantizer(q) || quantizerRole(q) != ActivationRole || len(q.Inputs) == 0 {
			continue
		}
		if len(layerConsumers(g, q.Outputs[0])) == 0 {
			continue
		}
		v := q.Inputs[0]
		for _, c := range g.Consumers(v) {
			if c == q || IsQuantizer(c) || isLayer(c) {
				continue
			}
			for i, in := range c.Inputs {
				if in == v {
					c.Inputs[i] = q.Outputs[0]
					rewired++
				}
			}
		}
	}
	if _, err := g.TopoSort(); err != nil {
		return rewired, err
	}
	return rewired, g.Err()
}

// quantizerBits returns the bit width of a quantizer node.
func quantizerBits(n *graph.Node) int {
	if q, ok := duqOf(n); ok {
		return q.Bits
	}
	if f, ok := n.Op.(*FakeQuant); ok {
		return f.Spec.Bits
	}
	return 0
}

// highwayPath gives the other readers (residual additions, pooling, …) of
// each quantized layer input one shared quantizer at p.Highway.Bits,
// reusing a quantizer of that width already on the tensor (a projection
// shortcut's).
func highwayPath(g *graph.Graph, p QATPolicy, vals func(*graph.Value) *tensor.Tensor) error {
	skip, err := SkipPathLayers(g)
	if err != nil {
		return err
	}
	// reusable reports whether quantizer c can serve the highway: it has
	// the highway's width and feeds no layer but skip-path ones.
	reusable := func(c *graph.Node) bool {
		if quantizerBits(c) != p.Highway.Bits {
			return false
		}
		for _, l := range layerConsumers(g, c.Outputs[0]) {
			if !skip[l.Name] {
				return false
			}
		}
		return true
	}
	done := map[*graph.Value]bool{}
	for _, q := range append([]*graph.Node(nil), g.Nodes...) {
		if !IsQuantizer(q) || quantizerRole(q) != ActivationRole || len(layerConsumers(g, q.Outputs[0])) == 0 {
			continue
		}
		v := q.Inputs[0]
		if done[v] {
			continue
		}
		done[v] = true
		var others []*graph.Node
		var hw *graph.Node
		for _, c := range g.Consumers(v) {
			switch {
			case isLayer(c):
			case IsQuantizer(c):
				if hw == nil && reusable(c) {
					hw = c
				}
			default:
				others = append(others, c)
			}
		}
		if len(others) == 0 {
			continue
		}
		var hv *graph.Value
		if hw != nil {
			hv = hw.Outputs[0]
		} else {
			var err error
			if p.DuQ {
				d := &duqInserter{vals: vals, suffix: ".hw.duq", atMax: true}
				hv, err = d.insert(g, v.Producer, "", Spec{Role: ActivationRole, Bits: p.Highway.Bits}, v)
			} else {
				spec := Spec{Role: ActivationRole, Method: MethodUniform, Bits: p.Highway.Bits, Signed: !NonNegative(v), Calib: CalibMinMax}
				hv, err = insertFakeQuant(g, v.Producer, g.UniqueName(v.Name+".hw.q"), spec, v)
			}
			if err != nil {
				return fmt.Errorf("highway quantizer of %s: %w", v.Name, err)
			}
		}
		for _, c := range others {
			for i, in := range c.Inputs {
				if in == v {
					c.Inputs[i] = hv
				}
			}
		}
	}
	return g.Err()
}
