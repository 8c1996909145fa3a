package quant

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"lowbit/graph"
	"lowbit/ops"
)

// DefaultOutlierRatio is the OLAQ outlier ratio of DefaultPolicy (the
// same 3 % as the accelerator simulator's default).
const DefaultOutlierRatio = 0.03

// LayerBits overrides the bit widths of one layer's weight and input:
// 0 keeps the policy's choice, a negative value leaves the tensor in float.
type LayerBits struct{ Weight, Input int }

// Policy says where Insert places quantizers and how they quantize. The
// quantized tensors are the weights (input 1) and the data inputs (input
// 0) of every Conv and Gemm node. Precedence for a layer's bit widths:
// Skip (float), then Layers, then the first/last override, then
// WeightBits / ActBits.
type Policy struct {
	Method Method
	// WeightBits and ActBits are the default bit widths (1–8 or 16);
	// 0 leaves that kind of tensor in float.
	WeightBits, ActBits int
	// WeightCalib and ActCalib are the uniform range calibrators of
	// weights and activations; Percentile is that of CalibPercentile.
	WeightCalib, ActCalib CalibMethod
	Percentile            float64
	// PerChannel quantizes weights per output channel (uniform scales,
	// WEQ normalization). Gemm weights stored [in, out] (TransB false)
	// stay per tensor.
	PerChannel bool
	// OutlierRatio and OutlierFormat configure OLAQ.
	OutlierRatio  float64
	OutlierFormat OutlierFormat
	// WEQZero gives WEQ weights the odd level count 2^b − 1 (with a zero
	// level).
	WEQZero bool
	// FirstLastBits overrides the bit widths of the first and last
	// Conv/Gemm in topological order (0: no override); tensors the policy
	// leaves in float (WeightBits or ActBits 0) stay float.
	FirstLastBits int
	// Skip lists Conv/Gemm node names left in float.
	Skip []string
	// Layers overrides the bit widths per Conv/Gemm node name.
	Layers map[string]LayerBits
}

// DefaultPolicy returns the policy for method at the given bit widths
// with min-max calibration, 8-bit first and last layers and the default
// outlier ratio.
func DefaultPolicy(method Method, weightBits, actBits int) Policy {
	return Policy{Method: method, WeightBits: weightBits, ActBits: actBits,
		OutlierRatio: DefaultOutlierRatio, FirstLastBits: 8}
}

func checkPolicyBits(what string, b int) error {
	if b == 0 || b >= 1 && b <= 8 || b == 16 {
		return nil
	}
	return fmt.Errorf("%s %d: want 1–8 or 16 (0 for float)", what, b)
}

// validate checks the policy's own fields (specs are validated per
// tensor).
func (p *Policy) validate(layers []*graph.Node) error {
	if err := checkPolicyBits("weight bits", p.WeightBits); err != nil {
		return err
	}
	if err := checkPolicyBits("activation bits", p.ActBits); err != nil {
		return err
	}
	if err := checkPolicyBits("first/last layer bits", p.FirstLastBits); err != nil {
		return err
	}
	names := map[string]bool{}
	for _, n := range layers {
		names[n.Name] = true
	}
	for _, s := range p.Skip {
		if !names[s] {
			return fmt.Errorf("skip: %q is not a Conv/Gemm node (layers: %s)", s, layerList(layers))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(p.Layers)) {
		lb := p.Layers[name]
		if !names[name] {
			return fmt.Errorf("layer bits: %q is not a Conv/Gemm node (layers: %s)", name, layerList(layers))
		}
		for _, b := range []int{lb.Weight, lb.Input} {
			if b > 0 {
				if err := checkPolicyBits("layer "+name+" bits", b); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func layerList(layers []*graph.Node) string {
	var s []string
	for _, n := range layers {
		s = append(s, n.Name)
	}
	if len(s) > 12 {
		s = append(s[:10], "…", s[len(s)-1])
	}
	return strings.Join(s, ", ")
}

// bits returns the weight and input bit widths of layer i of n (0: float).
func (p *Policy) bits(name string, i, n int) (w, a int) {
	if slices.Contains(p.Skip, name) {
		return 0, 0
	}
	w, a = p.WeightBits, p.ActBits
	if p.FirstLastBits > 0 && (i == 0 || i == n-1) {
		// The override changes quantized tensors only: a kind of tensor
		// the policy leaves in float stays float.
		if w > 0 {
			w = p.FirstLastBits
		}
		if a > 0 {
			a = p.FirstLastBits
		}
	}
	if lb, ok := p.Layers[name]; ok {
		if lb.Weight != 0 {
			w = max(lb.Weight, 0)
		}
		if lb.Input != 0 {
			a = max(lb.Input, 0)
		}
	}
	return w, a
}

// spec returns the quantizer spec of one tensor.
func (p *Policy) spec(role Role, bits int, signed, perChannel bool) Spec {
	s := Spec{Role: role, Method: p.Method, Bits: bits, Signed: signed, Percentile: p.Percentile,
		OutlierRatio: p.OutlierRatio, OutlierFormat: p.OutlierFormat}
	if role == WeightRole {
		s.Signed = true
		s.Calib = p.WeightCalib
		s.PerChannel = perChannel && p.PerChannel
		s.WEQZero = p.WEQZero
	} else {
		s.Calib = p.ActCalib
	}
	return s
}

// Site is one quantizer node of a graph.
type Site struct {
	Node *graph.Node
	Op   *FakeQuant
	// Tensor is the quantized value (a weight parameter or an
	// activation); Layers are the Conv/Gemm nodes reading the quantized
	// copy.
	Tensor *graph.Value
	Layers []*graph.Node
}

// LayerNames joins the names of the site's layers.
func (s Site) LayerNames() string {
	var n []string
	for _, l := range s.Layers {
		n = append(n, l.Name)
	}
	return strings.Join(n, ",")
}

// isLayer reports whether n is a Conv or Gemm node.
func isLayer(n *graph.Node) bool {
	t := n.Op.Type()
	return t == "Conv" || t == "Gemm"
}

// Layers returns the Conv and Gemm nodes of g in topological order.
func Layers(g *graph.Graph) ([]*graph.Node, error) {
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var out []*graph.Node
	for _, n := range order {
		if isLayer(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Sites lists the FakeQuant nodes of g in topological order.
func Sites(g *graph.Graph) ([]Site, error) {
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var out []Site
	for _, n := range order {
		fq, ok := n.Op.(*FakeQuant)
		if !ok || len(n.Inputs) != 1 || len(n.Outputs) != 1 {
			continue
		}
		s := Site{Node: n, Op: fq, Tensor: n.Inputs[0]}
		for _, c := range g.Consumers(n.Outputs[0]) {
			if isLayer(c) {
				s.Layers = append(s.Layers, c)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// gemmTransB reports whether a Gemm stores its weight [out, in].
func gemmTransB(op graph.Op) bool {
	switch o := op.(type) {
	case ops.Gemm:
		return o.TransB
	case *ops.Gemm:
		return o.TransB
	}
	return true // Conv: [out, …]
}

// Insert places FakeQuant nodes in g according to p and returns them.
// Weight quantizers go between each layer's weight parameter and the
// layer (one per layer), activation quantizers after the producer of each
// layer's input (one per tensor and bit width, read by the quantized
// layers only: other consumers such as residual additions keep the float
// value). The new nodes are unfitted: fit the weights with FitWeights and
// calibrate the activations with Calibrate.
//
// An activation is treated as unsigned when its producer guarantees
// non-negative values (see NonNegative), otherwise as signed: uniform
// grids are then asymmetric, OLAQ is sign-magnitude and WEQ falls back to
// a uniform grid (the log domain has no negative levels; with the default
// first-layer override this concerns the network input at 8 bits and, in
// networks with linear bottlenecks or residual sums feeding a layer,
// those inputs).
func Insert(g *graph.Graph, p Policy) ([]Site, error) {
	for _, n := range g.Nodes {
		if _, ok := n.Op.(*FakeQuant); ok {
			return nil, fmt.Errorf("insert quantizers: graph %s already has quantizer %s", g.Name, n.Name)
		}
	}
	if err := InsertWith(g, p, insertFakeQuant); err != nil {
		return nil, err
	}
	return Sites(g)
}

// Inserter adds the node(s) quantizing x per spec, placed right after node
// after in the node order (at the front when after is nil) and named after
// name, and returns the quantized value. InsertWith uses it to place other
// quantizer ops (such as learned-range ones) with the placement rules of
// Insert.
type Inserter func(g *graph.Graph, after *graph.Node, name string, spec Spec, x *graph.Value) (*graph.Value, error)

func insertFakeQuant(g *graph.Graph, after *graph.Node, name string, spec Spec, x *graph.Value) (*graph.Value, error) {
	fq, err := NewFakeQuant(spec)
	if err != nil {
		return nil, err
	}
	outs := g.InsertAfter(after, name, fq, x)
	if outs == nil {
		return nil, g.Err()
	}
	return outs[0], nil
}

// InsertWith is Insert with the quantizer nodes built by ins: it decides
// which tensors are quantized and with which Spec (validated first), calls
// ins once per weight and once per activation tensor and bit width, and
// rewires the layers to the values it returns.
func InsertWith(g *graph.Graph, p Policy, ins Inserter) error {
	if err := g.Err(); err != nil {
		return err
	}
	layers, err := Layers(g)
	if err != nil {
		return err
	}
	if err := p.validate(layers); err != nil {
		return fmt.Errorf("quantization policy: %w", err)
	}
	type actUse struct {
		v      *graph.Value
		bits   int
		layers []*graph.Node
	}
	var acts []*actUse
	findAct := func(v *graph.Value, bits int) *actUse {
		for _, a := range acts {
			if a.v == v && a.bits == bits {
				return a
			}
		}
		a := &actUse{v: v, bits: bits}
		acts = append(acts, a)
		return a
	}
	// Plan and validate everything first, so that an invalid spec leaves
	// the graph untouched.
	type weightUse struct {
		layer *graph.Node
		spec  Spec
	}
	var weights []weightUse
	for i, l := range layers {
		wb, ab := p.bits(l.Name, i, len(layers))
		if wb > 0 && len(l.Inputs) > 1 && l.Inputs[1] != nil && l.Inputs[1].Param != nil {
			spec := p.spec(WeightRole, wb, true, gemmTransB(l.Op))
			if err := spec.Validate(); err != nil {
				return fmt.Errorf("layer %s weight: %w", l.Name, err)
			}
			weights = append(weights, weightUse{l, spec})
		}
		if ab > 0 && len(l.Inputs) > 0 && l.Inputs[0] != nil {
			a := findAct(l.Inputs[0], ab)
			a.layers = append(a.layers, l)
		}
	}
	specs := make([]Spec, len(acts))
	for i, a := range acts {
		specs[i] = p.spec(ActivationRole, a.bits, !NonNegative(a.v), false)
		if err := specs[i].Validate(); err != nil {
			return fmt.Errorf("input %s of %s: %w", a.v.Name, a.layers[0].Name, err)
		}
	}
	for _, wu := range weights {
		l, w := wu.layer, wu.layer.Inputs[1]
		var prev *graph.Node
		if k := slices.Index(g.Nodes, l); k > 0 {
			prev = g.Nodes[k-1]
		}
		q, err := ins(g, prev, g.UniqueName(w.Name+".q"), wu.spec, w)
		if err != nil {
			return fmt.Errorf("layer %s weight: %w", l.Name, err)
		}
		l.Inputs[1] = q
	}
	for i, a := range acts {
		q, err := ins(g, a.v.Producer, g.UniqueName(a.v.Name+".q"), specs[i], a.v)
		if err != nil {
			return fmt.Errorf("input %s of %s: %w", a.v.Name, a.layers[0].Name, err)
		}
		for _, l := range a.layers {
			l.Inputs[0] = q
		}
	}
	return g.Err()
}

// NonNegative reports whether v is non-negative by construction: the
// output of Relu, Clip with a non-negative minimum (ReLU6), Sigmoid,
// HardSigmoid or Softmax, a parameter without negative entries, or a
// pooling, reshaping, padding (with a non-negative value), concatenation,
// addition, multiplication or quantizer of non-negative values. Graph
// inputs count as signed.
func NonNegative(v *graph.Value) bool {
	return nonNeg(v, map[*graph.Value]bool{})
}

func nonNeg(v *graph.Value, seen map[*graph.Value]bool) bool {
	if v == nil {
		return false
	}
	if r, ok := seen[v]; ok {
		return r
	}
	seen[v] = false
	r := nonNegCompute(v, seen)
	seen[v] = r
	return r
}

func nonNegCompute(v *graph.Value, seen map[*graph.Value]bool) bool {
	if v.Param != nil {
		for _, x := range v.Param.Data.Data {
			if !(x >= 0) {
				return false
			}
		}
		return true
	}
	n := v.Producer
	if n == nil || len(n.Outputs) == 0 || n.Outputs[0] != v {
		return false
	}
	all := func(ins []*graph.Value) bool {
		if len(ins) == 0 {
			return false
		}
		for _, in := range ins {
			if !nonNeg(in, seen) {
				return false
			}
		}
		return true
	}
	switch op := n.Op.(type) {
	case ops.Clip:
		return op.Min >= 0
	case *ops.Clip:
		return op.Min >= 0
	case ops.Pad:
		return op.Value >= 0 && all(n.Inputs[:1])
	case *ops.Pad:
		return op.Value >= 0 && all(n.Inputs[:1])
	case *FakeQuant:
		return all(n.Inputs[:1])
	}
	switch n.Op.Type() {
	case "Relu", "Sigmoid", "HardSigmoid", "Softmax":
		return true
	case "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Dropout":
		return all(n.Inputs[:1])
	case "Concat", "Add", "Mul":
		return all(n.Inputs)
	}
	return false
}
