package quant

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/ops"
	"lowbit/tensor"
)

// QATPolicy is the quantizer-insertion policy of quantization-aware
// training: Policy's placement and bit widths, the kind of quantizer op
// (FakeQuant, or learned DuQ), the precision highway and negative padding.
type QATPolicy struct {
	Policy
	// DuQ places learned DuQ quantizers (methods.md §6) instead of
	// FakeQuant ones; Policy.Method, the calibrators and the OLAQ/WEQ
	// settings are then ignored.
	DuQ bool
	// TiedScale (DuQ only) feeds one parameter to both the range and the
	// scale input (c = a): a uniform grid with a learned step, LSQ-style.
	TiedScale bool
	// Highway is the precision-highway policy (methods.md §5).
	Highway Highway
	// NegativePadding makes padded convolutions fed by an h-swish (float,
	// or quantized by an h-swish DuQ) pad with −3/8 (see NegativePadding).
	NegativePadding bool
	// Init selects the starting ranges of DuQ quantizers ("" = InitP95,
	// methods.md §6; InitMSE fits them to the bit width).
	Init DuQInitMethod
}

// Highway says whether the residual stream stays in high precision.
//
// Enabled (the precision highway): activation quantizers feed only the
// Conv/Gemm layers they quantize; every other reader of the tensor (the
// residual addition through the skip path, concatenations, pooling) reads
// it in float, or — with Bits 8 or 16 — through one shared high-precision
// quantizer. Disabled (conventional quantization): every reader of a
// quantized tensor reads the quantized copy, so the residual stream is
// re-quantized at every block boundary.
type Highway struct {
	Enabled bool `json:"enabled"`
	// Bits of the high-precision path: 0 (float), 8 or 16.
	Bits int `json:"bits,omitempty"`
}

// HighwayBits validates the bit width of the high-precision path.
func HighwayBits(b int) error {
	if b == 0 || b == 8 || b == 16 {
		return nil
	}
	return fmt.Errorf("highway bits %d: want 0 (float), 8 or 16", b)
}

// IsQuantizer reports whether n is a quantizer node (FakeQuant or DuQ).
func IsQuantizer(n *graph.Node) bool {
	if n == nil {
		return false
	}
	switch n.Op.(type) {
	case *FakeQuant, DuQ, *DuQ:
		return true
	}
	return false
}

// duqOf returns the DuQ op of n.
func duqOf(n *graph.Node) (DuQ, bool) {
	switch q := n.Op.(type) {
	case DuQ:
		return q, true
	case *DuQ:
		return *q, true
	}
	return DuQ{}, false
}

// quantizerRole returns the role of a quantizer node.
func quantizerRole(n *graph.Node) Role {
	if q, ok := duqOf(n); ok {
		if q.Mode == DuQWeight {
			return WeightRole
		}
		return ActivationRole
	}
	if f, ok := n.Op.(*FakeQuant); ok {
		return f.Spec.Role
	}
	return ActivationRole
}

// quantizedBy returns the quantizer node producing v, or nil.
func quantizedBy(v *graph.Value) *graph.Node {
	if v == nil || v.Producer == nil || !IsQuantizer(v.Producer) {
		return nil
	}
	return v.Producer
}

// layerConsumers returns the Conv/Gemm nodes reading v.
func layerConsumers(g *graph.Graph, v *graph.Value) []*graph.Node {
	var out []*graph.Node
	for _, c := range g.Consumers(v) {
		if isLayer(c) {
			out = append(out, c)
		}
	}
	return out
}

// DuQSite is one DuQ node of a graph.
type DuQSite struct {
	Node *graph.Node
	Op   DuQ
	// Tensor is the quantized value; Alpha and Gamma the range and scale
	// parameters (the same parameter when the scale is tied); Layers the
	// Conv/Gemm nodes reading the quantized copy (none for a
	// high-precision highway quantizer).
	Tensor       *graph.Value
	Alpha, Gamma *graph.Param
	Layers       []*graph.Node
}

// Role returns the site's role.
func (s DuQSite) Role() Role {
	if s.Op.Mode == DuQWeight {
		return WeightRole
	}
	return ActivationRole
}

// PerChannel reports whether the site has one range and scale per output
// channel of its weight.
func (s DuQSite) PerChannel() bool { return s.Alpha.Data.Len() > 1 }

// ChannelScales returns the ranges and scales of every channel (one
// element for a per-tensor site).
func (s DuQSite) ChannelScales() (a, c []float32) {
	n := s.Alpha.Data.Len()
	a, c = make([]float32, n), make([]float32, n)
	for k := range n {
		a[k], c[k] = s.Op.Scales(s.Alpha.Data.Data[k], s.Gamma.Data.Data[k])
	}
	return a, c
}

// DuQSites lists the DuQ nodes of g in topological order.
func DuQSites(g *graph.Graph) ([]DuQSite, error) {
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	var out []DuQSite
	for _, n := range order {
		q, ok := duqOf(n)
		if !ok {
			continue
		}
		if len(n.Inputs) != 3 || n.Inputs[1] == nil || n.Inputs[2] == nil || n.Inputs[1].Param == nil || n.Inputs[2].Param == nil {
			return nil, fmt.Errorf("DuQ node %s: range and scale inputs must be parameters", n.Name)
		}
		out = append(out, DuQSite{Node: n, Op: q, Tensor: n.Inputs[0], Alpha: n.Inputs[1].Param, Gamma: n.Inputs[2].Param,
			Layers: layerConsumers(g, n.Outputs[0])})
	}
	return out, nil
}

// DuQActivationMode picks the DuQ form for an activation: relu after ReLU
// and Clip with a non-negative minimum (ReLU6; cap is then the Clip's
// maximum, the largest sensible initial range), hswish after HardSwish and
// for an h-swish output times a HardSigmoid/Sigmoid gate (squeeze-and-
// excite), looking through pooling, flattening, reshaping and dropout; relu for
// other non-negative values (see NonNegative); signed otherwise.
func DuQActivationMode(v *graph.Value) (mode DuQMode, cap float32) {
	orig := v
	for depth := 0; v != nil && depth < 64; depth++ {
		n := v.Producer
		if n == nil || len(n.Outputs) == 0 || n.Outputs[0] != v {
			break
		}
		var clip *ops.Clip
		switch op := n.Op.(type) {
		case ops.Clip:
			clip = &op
		case *ops.Clip:
			clip = op
		}
		if clip != nil {
			if clip.Min < 0 {
				break
			}
			if clip.Max > 0 && !math.IsInf(float64(clip.Max), 0) {
				cap = clip.Max
			}
			return DuQReLU, cap
		}
		if q, ok := duqOf(n); ok {
			if q.Mode == DuQReLU || q.Mode == DuQHSwish {
				return q.Mode, 0
			}
			break
		}
		switch n.Op.Type() {
		case "Relu":
			return DuQReLU, 0
		case "HardSwish":
			return DuQHSwish, 0
		case "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Reshape", "Dropout":
			if len(n.Inputs) > 0 {
				v = n.Inputs[0]
				continue
			}
		case "Mul":
			// An h-swish output times a gate in [0, 1] (squeeze-and-excite)
			// stays ≥ −3/8: the h-swish grid fits it better than a signed one.
			if len(n.Inputs) == 2 {
				for k := range 2 {
					if unitGate(n.Inputs[k]) {
						if m, _ := DuQActivationMode(n.Inputs[1-k]); m == DuQHSwish {
							return DuQHSwish, 0
						}
					}
				}
			}
		}
		break
	}
	if NonNegative(orig) {
		return DuQReLU, 0
	}
	return DuQSigned, 0
}

// unitGate reports whether v is the output of a HardSigmoid or Sigmoid
// (every value in [0, 1]).
func unitGate(v *graph.Value) bool {
	n := v.Producer
	if n == nil || len(n.Outputs) == 0 || n.Outputs[0] != v {
		return false
	}
	switch n.Op.Type() {
	case "HardSigmoid", "Sigmoid":
		return true
	}
	return false
}

// duqMaxInit returns (α, γ) with a = c = the largest value of the
// quantizer's domain in x (for high-precision highway quantizers, which
// must not clip).
func duqMaxInit(mode DuQMode, x []float32) (float32, float32, error) {
	m, err := duqDomainMax(mode, x)
	if err != nil {
		return 0, 0, err
	}
	p := float32(InvSoftplus(m))
	return p, p, nil
}

// duqDomainMax returns the largest value of the quantizer's domain in x:
// of h + 3/8 for h-swish, of |x| for weights and signed activations, of x
// otherwise (infinities skipped); an error when it is not positive.
func duqDomainMax(mode DuQMode, x []float32) (float64, error) {
	var m float64
	for _, v := range x {
		e := float64(v)
		switch mode {
		case DuQHSwish:
			e += HSwishOffset
		case DuQSigned, DuQWeight:
			e = math.Abs(e)
		}
		if e > m && !math.IsInf(e, 0) {
			m = e
		}
	}
	if !(m > 0) {
		return 0, fmt.Errorf("DuQ init: no positive range in %d values", len(x))
	}
	return m, nil
}

// duqInserter places DuQ nodes with parameters initialized from the
// weights or from one batch of activations.
type duqInserter struct {
	vals   func(v *graph.Value) *tensor.Tensor
	tied   bool
	suffix string // ".duq", or ".hw.duq" for highway quantizers
	atMax  bool   // initialize at the maximum instead of the 95th percentile
	// atMaxFor, when set, selects the maximum for some activations.
	atMaxFor func(x *graph.Value, bits int) bool
	// init selects the non-maximum initialization ("" = InitP95).
	init DuQInitMethod
}

// addDuQ adds a DuQ node quantizing x right after node after, with
// parameters "<x>.duq.alpha" and "<x>.duq.gamma" of shape [len(alpha)]
// (one element, or one per output channel of a weight).
func addDuQ(g *graph.Graph, after *graph.Node, x *graph.Value, name string, q DuQ, alpha, gamma []float32, tied bool) (*graph.Value, error) {
	if q.Bits < 2 || q.Bits > 16 {
		return nil, fmt.Errorf("DuQ %s: %d bits outside 2..16", name, q.Bits)
	}
	if len(alpha) == 0 || len(gamma) != len(alpha) {
		return nil, fmt.Errorf("DuQ %s: %d ranges and %d scales", name, len(alpha), len(gamma))
	}
	av := g.AddParam(g.UniqueName(name+".alpha"), graph.QuantParam, tensor.MustFromData(alpha, len(alpha)))
	gv := av
	if !tied {
		gv = g.AddParam(g.UniqueName(name+".gamma"), graph.QuantParam, tensor.MustFromData(gamma, len(gamma)))
	}
	if av == nil || gv == nil {
		return nil, g.Err()
	}
	outs := g.InsertAfter(after, name, q, x, av, gv)
	if outs == nil {
		return nil, g.Err()
	}
	return outs[0], nil
}

func (d *duqInserter) insert(g *graph.Graph, after *graph.Node, _ string, spec Spec, x *graph.Value) (*graph.Value, error) {
	mode, capv := DuQWeight, float32(0)
	var data []float32
	channels := 1
	if spec.Role == WeightRole {
		if x.Param == nil {
			return nil, fmt.Errorf("weight %s is not a parameter", x.Name)
		}
		data = x.Param.Data.Data
		if sh := x.Param.Data.Shape; spec.PerChannel && len(sh) > 1 && sh[0] > 1 {
			channels = sh[0]
		}
	} else {
		mode, capv = DuQActivationMode(x)
		t := d.vals(x)
		if t == nil {
			return nil, fmt.Errorf("activation %s: DuQ initialization needs a training batch", x.Name)
		}
		data = t.Data
	}
	init := DuQInit
	if d.init == InitMSE && spec.Role == ActivationRole {
		init = func(mode DuQMode, x []float32) (float32, float32, error) { return DuQInitMSE(mode, spec.Bits, x) }
	}
	if d.atMax || spec.Role == ActivationRole && d.atMaxFor != nil && d.atMaxFor(x, spec.Bits) {
		init = duqMaxInit
	}
	name := g.UniqueName(x.Name + d.suffix)
	q := DuQ{Mode: mode, Bits: spec.Bits}
	if channels > 1 { // weights only
		alpha, gamma, err := DuQInitPerChannel(mode, data, channels)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", x.Name, err)
		}
		return addDuQ(g, after, x, name, q, alpha, gamma, d.tied)
	}
	alpha, gamma, err := init(mode, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", x.Name, err)
	}
	if capv > 0 && Softplus(float64(alpha)) > float64(capv) {
		alpha = float32(InvSoftplus(float64(capv)))
		gamma = alpha
	}
	return addDuQ(g, after, x, name, q, []float32{alpha}, []float32{gamma}, d.tied)
}

// InsertQAT places the quantizers p asks for on the tensors that are not
// quantized yet (a layer whose weight or input already comes from a
// quantizer keeps it), applies the highway policy and negative padding,
// and returns the number of quantizer nodes added. Call it once with the
// target bits, or — for progressive schedules — first with weights in
// float and later again with weight bits; SetBits changes the widths of
// quantizers already placed.
//
// DuQ parameters are initialized here, once (methods.md §6): weights at
// a = c = 0.9·max|w| (per output channel, with parameters of shape [Cout],
// when p.PerChannel asks for per-channel weights), activations at the 95th percentile of the
// quantizer's positive inputs when the current graph runs in evaluation
// mode on batch (which may be nil when no activation quantizer is added),
// capped at a ReLU6's 6; highway quantizers start at the maximum. DuQ nodes
// are named "<tensor>.duq" with parameters "<tensor>.duq.alpha" and
// "<tensor>.duq.gamma" (kind QuantParam). FakeQuant nodes are unfitted, as
// after Insert: fit and calibrate them (FitWeights, Calibrate).
func InsertQAT(g *graph.Graph, p QATPolicy, batch *tensor.Tensor) (int, error) {
	if err := g.Err(); err != nil {
		return 0, err
	}
	if err := HighwayBits(p.Highway.Bits); err != nil {
		return 0, fmt.Errorf("quantization policy: %w", err)
	}
	layers, err := Layers(g)
	if err != nil {
		return 0, err
	}
	before := countQuantizers(g)
	pol, err := p.Effective(g)
	if err != nil {
		return 0, err
	}
	// The quantizers of skip-path layers at the highway's width start at
	// the maximum, as the highway's own quantizers do.
	hiBits := map[*graph.Value]bool{}
	if p.Highway.Enabled && p.Highway.Bits > p.ActBits {
		skip, err := SkipPathLayers(g)
		if err != nil {
			return 0, err
		}
		for _, l := range layers {
			if skip[l.Name] && len(l.Inputs) > 0 && l.Inputs[0] != nil {
				hiBits[l.Inputs[0]] = true
			}
		}
	}
	for _, l := range layers {
		lb, has := pol.Layers[l.Name]
		changed := false
		if len(l.Inputs) > 1 && quantizedBy(l.Inputs[1]) != nil {
			lb.Weight, changed = -1, true
		}
		if len(l.Inputs) > 0 && quantizedBy(l.Inputs[0]) != nil {
			lb.Input, changed = -1, true
		}
		if changed || has {
			pol.Layers[l.Name] = lb
		}
	}
	var vals func(*graph.Value) *tensor.Tensor
	ins := insertFakeQuant
	if p.DuQ {
		// The batch runs once, when the first activation quantizer is
		// placed, through the graph as it was before any insertion.
		var got map[*graph.Value]*tensor.Tensor
		var gotErr error
		if batch != nil {
			if got, gotErr = layerInputsIfNeeded(g, pol, batch); gotErr != nil {
				return 0, fmt.Errorf("DuQ initialization batch: %w", gotErr)
			}
		}
		vals = func(v *graph.Value) *tensor.Tensor { return got[v] }
		d := &duqInserter{vals: vals, tied: p.TiedScale, suffix: ".duq", init: p.Init,
			atMaxFor: func(x *graph.Value, bits int) bool { return hiBits[x] && bits == p.Highway.Bits }}
		ins = d.insert
	}
	if err := InsertWith(g, pol, ins); err != nil {
		return 0, err
	}
	if !p.Highway.Enabled {
		if _, err := ShareQuantized(g); err != nil {
			return 0, err
		}
	} else if p.Highway.Bits > 0 {
		if err := highwayPath(g, p, vals); err != nil {
			return 0, err
		}
	}
	if p.NegativePadding {
		if _, err := NegativePadding(g); err != nil {
			return 0, err
		}
	}
	return countQuantizers(g) - before, g.Err()
}

// layerInputsIfNeeded is layerInputs when p quantizes the input of some
// layer whose input is not quantized yet, and nil otherwise.
func layerInputsIfNeeded(g *graph.Graph, p Policy, batch *tensor.Tensor) (map[*graph.Value]*tensor.Tensor, error) {
	layers, err := Layers(g)
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		if _, a := p.bits(l.Name, i, len(layers)); a > 0 && len(l.Inputs) > 0 && quantizedBy(l.Inputs[0]) == nil {
			return layerInputs(g, batch)
		}
	}
	return nil, nil
}

// layerInputs runs g in evaluation mode on batch and returns copies of
// the values that Conv/Gemm layers read as data (input 0).
func layerInputs(g *graph.Graph, batch *tensor.Tensor) (map[*graph.Value]*tensor.Tensor, error) {
	want := map[*graph.Value]bool{}
	for _, n := range g.Nodes {
		if isLayer(n) && len(n.Inputs) > 0 && n.Inputs[0] != nil {
			want[n.Inputs[0]] = true
		}
	}
	got := map[*graph.Value]*tensor.Tensor{}
	for _, v := range g.Inputs {
		if want[v] {
			got[v] = batch
		}
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		return nil, err
	}
	e.OnForward = func(n *graph.Node, _, out []*tensor.Tensor) {
		for i, v := range n.Outputs {
			if want[v] && i < len(out) && out[i] != nil {
				got[v] = out[i].Clone()
			}
		}
	}
	if _, err := e.Forward(batch); err != nil {
		return nil, err
	}
	return got, nil
}

func countQuantizers(g *graph.Graph) int {
	n := 0
	for _, m := range g.Nodes {
		if IsQuantizer(m) {
			n++
		}
	}
	return n
}

// SetBits changes the bit widths of the quantizers (DuQ and FakeQuant) of
// g that feed Conv/Gemm layers to those p gives the first layer each one
// feeds, and returns the quantizers it changed. DuQ parameters are kept
// (a progressive schedule initializes them once); a changed FakeQuant
// loses its fitted quantizer and must be refitted (FitWeights) or
// recalibrated (Calibrate). High-precision highway quantizers (which feed
// no layer) keep their width. It fails when p leaves a quantized tensor in
// float.
func SetBits(g *graph.Graph, p Policy) ([]*graph.Node, error) {
	layers, err := Layers(g)
	if err != nil {
		return nil, err
	}
	if err := p.validate(layers); err != nil {
		return nil, fmt.Errorf("quantization policy: %w", err)
	}
	index := map[*graph.Node]int{}
	for i, l := range layers {
		index[l] = i
	}
	var changed []*graph.Node
	for _, n := range g.Nodes {
		if !IsQuantizer(n) {
			continue
		}
		ls := layerConsumers(g, n.Outputs[0])
		if len(ls) == 0 {
			continue
		}
		w, a := p.bits(ls[0].Name, index[ls[0]], len(layers))
		role := quantizerRole(n)
		b := a
		if role == WeightRole {
			b = w
		}
		if b == 0 {
			return nil, fmt.Errorf("quantizer %s: the policy leaves the %s of layer %s in float, but it is quantized", n.Name, role, ls[0].Name)
		}
		if q, ok := duqOf(n); ok {
			if q.Bits == b {
				continue
			}
			if b < 2 || b > 16 {
				return nil, fmt.Errorf("quantizer %s: DuQ needs 2..16 bits, policy gives %d", n.Name, b)
			}
			q.Bits = b
			n.Op = q
			changed = append(changed, n)
			continue
		}
		f := n.Op.(*FakeQuant)
		if f.Spec.Bits == b {
			continue
		}
		spec := f.Spec
		spec.Bits = b
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("quantizer %s: %w", n.Name, err)
		}
		f.Spec, f.Q, f.Baked = spec, nil, false
		changed = append(changed, n)
	}
	return changed, nil
}

// NegativePadding sets the pad value of every padded Conv whose input is
// an h-swish output — a HardSwish node, or a DuQ in h-swish mode — to
// −3/8, h-swish's minimum, which an h-swish DuQ represents by code 0
// (methods.md §6); convolutions that already pad with a non-zero value
// are left alone. It returns the number of convolutions changed. Apply it
// to the float model before training (lowbit train --neg-pad) so that the
// float and the quantized network compute the same function.
func NegativePadding(g *graph.Graph) (int, error) {
	if err := g.Err(); err != nil {
		return 0, err
	}
	changed := 0
	for _, n := range g.Nodes {
		if len(n.Inputs) == 0 || !hswishOutput(n.Inputs[0]) {
			continue
		}
		switch c := n.Op.(type) {
		case ops.Conv:
			if padded(c) && c.PadValue == 0 {
				c.PadValue = -HSwishOffset
				n.Op = c
				changed++
			}
		case *ops.Conv:
			if padded(*c) && c.PadValue == 0 {
				c.PadValue = -HSwishOffset
				changed++
			}
		}
	}
	return changed, nil
}

func padded(c ops.Conv) bool { return c.PadT != 0 || c.PadL != 0 || c.PadB != 0 || c.PadR != 0 }

// hswishOutput reports whether v comes straight from a HardSwish or an
// h-swish DuQ.
func hswishOutput(v *graph.Value) bool {
	if v == nil || v.Producer == nil {
		return false
	}
	if q, ok := duqOf(v.Producer); ok {
		return q.Mode == DuQHSwish
	}
	return v.Producer.Op.Type() == "HardSwish"
}
