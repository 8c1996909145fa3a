package onnx

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/tensor"
)

// ImportFunc builds the graph node(s) computing the ONNX node n through d,
// usually by decoding attributes with d.Attrs, resolving inputs with d.Input
// and calling d.Apply.
type ImportFunc func(d *Decoder, n *onnxpb.NodeProto) error

// Importer describes how one ONNX operator is imported.
type Importer struct {
	Import ImportFunc
	// ParamKinds gives the parameter kind of a FLOAT initializer read as
	// input i of this operator, for files that do not record kinds (files
	// not written by lowbit). Initializers without a hint become Const.
	ParamKinds map[int]graph.Kind
}

type opKey struct{ domain, op string }

var importers = map[opKey]Importer{}

// RegisterImporter registers the importer of ONNX operator opType in
// domain ("" or "ai.onnx" for the default domain). It is meant to be called
// from init functions; a later registration replaces an earlier one.
func RegisterImporter(domain, opType string, imp Importer) {
	regMu.Lock()
	defer regMu.Unlock()
	importers[opKey{normDomain(domain), opType}] = imp
}

func importerFor(domain, op string) (Importer, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	imp, ok := importers[opKey{normDomain(domain), op}]
	return imp, ok
}

// Range of default-domain opsets the importer accepts. Files from
// torch.onnx.export use 11 to 17; lowbit writes 17.
const (
	MinImportOpset = 7
	MaxImportOpset = 18
)

// extraDomains lists the non-default domains with registered importers,
// as ", and d1, d2" (empty when there are none).
func extraDomains() string {
	regMu.RLock()
	defer regMu.RUnlock()
	set := map[string]bool{}
	for k := range importers {
		if k.domain != "" {
			set[k.domain] = true
		}
	}
	if len(set) == 0 {
		return ""
	}
	return " and " + strings.Join(slices.Sorted(maps.Keys(set)), ", ")
}

func normDomain(d string) string {
	if d == "ai.onnx" {
		return ""
	}
	return d
}

// Decoder holds the state of one import. Importers use it to resolve input
// tensors to graph values, read constant inputs, decode attributes and add
// graph nodes.
type Decoder struct {
	g         *graph.Graph
	opsets    map[string]int64
	vals      map[string]*graph.Value
	inits     map[string]*onnxpb.TensorProto
	consts    map[string]*onnxpb.TensorProto
	producer  map[string]int
	consumers map[string][]*onnxpb.NodeProto
	outputs   map[string]bool
	skip      map[*onnxpb.NodeProto]bool
	folded    map[string]bool
	attrs     map[*onnxpb.NodeProto]*Attrs
	nodes     []*onnxpb.NodeProto
	cur       int
	convPads  map[string]convPad
	// masks marks the entries of folded constants that stand for the
	// batch size (see fold.go).
	masks map[string][]bool
	// hints are the parameter kinds inferred from consumers, by tensor name.
	hints map[string]graph.Kind
	// foldedVals counts the values produced by constant folding.
	foldedVals int
}

// Graph returns the graph being built.
func (d *Decoder) Graph() *graph.Graph { return d.g }

// Opset returns the imported version of an operator set (0 if absent).
func (d *Decoder) Opset(domain string) int64 { return d.opsets[normDomain(domain)] }

// Bind makes the ONNX tensor name resolve to v (used by importers that
// alias a tensor, like Identity, or that compute several ONNX nodes at once).
func (d *Decoder) Bind(name string, v *graph.Value) { d.vals[name] = v }

// Skip marks a later node as already imported (by a pattern importer that
// consumed it); the import loop passes over it.
func (d *Decoder) Skip(n *onnxpb.NodeProto) { d.skip[n] = true }

// Producer returns the node writing tensor name, or nil for graph inputs,
// initializers and unknown names.
func (d *Decoder) Producer(name string) *onnxpb.NodeProto {
	if i, ok := d.producer[name]; ok {
		return d.nodes[i]
	}
	return nil
}

// Consumers returns the nodes reading tensor name, in file order.
func (d *Decoder) Consumers(name string) []*onnxpb.NodeProto { return d.consumers[name] }

// IsGraphOutput reports whether tensor name is an output of the graph.
func (d *Decoder) IsGraphOutput(name string) bool { return d.outputs[name] }

// used reports whether anything reads tensor name.
func (d *Decoder) used(name string) bool { return len(d.consumers[name]) > 0 || d.outputs[name] }

// Value resolves an ONNX tensor name to a graph value; "" (an omitted
// optional input) gives nil.
func (d *Decoder) Value(name string) (*graph.Value, error) {
	if name == "" {
		return nil, nil
	}
	if v, ok := d.vals[name]; ok {
		return v, nil
	}
	if t, ok := d.consts[name]; ok {
		// A constant (Constant node output or folded value) read as data
		// becomes a parameter whose kind is inferred from its consumers.
		data, shape, err := TensorFloats(t)
		if err != nil {
			return nil, fmt.Errorf("constant %q read as data: %w", name, err)
		}
		kind, ok := d.hints[name]
		if !ok {
			kind = graph.Const
		}
		v := d.g.AddParam(d.g.UniqueName(name), kind, &tensor.Tensor{Shape: shape, Data: data})
		d.vals[name] = v
		return v, nil
	}
	if t, ok := d.inits[name]; ok {
		return nil, fmt.Errorf("initializer %q has data type %s: only FLOAT tensors can be read as data", name, dataTypeName(t.DataType))
	}
	if i, ok := d.producer[name]; ok {
		if i >= d.cur {
			return nil, fmt.Errorf("tensor %q is computed by a later node (%q): nodes must be sorted topologically", name, d.nodes[i].Name)
		}
		return nil, fmt.Errorf("tensor %q (an output of node %q) is not supported", name, d.nodes[i].Name)
	}
	return nil, fmt.Errorf("tensor %q is not a graph input, an initializer or the output of any node", name)
}

// Input resolves input i of n (nil when omitted).
func (d *Decoder) Input(n *onnxpb.NodeProto, i int) (*graph.Value, error) {
	if i >= len(n.Input) {
		return nil, nil
	}
	v, err := d.Value(n.Input[i])
	if err != nil {
		return nil, fmt.Errorf("input %d: %w", i, err)
	}
	return v, nil
}

// Inputs resolves the first k inputs of n (omitted ones are nil). It fails
// if n has more than k inputs.
func (d *Decoder) Inputs(n *onnxpb.NodeProto, k int) ([]*graph.Value, error) {
	if len(n.Input) > k {
		return nil, fmt.Errorf("%d inputs, at most %d supported", len(n.Input), k)
	}
	vs := make([]*graph.Value, len(n.Input))
	for i := range n.Input {
		v, err := d.Input(n, i)
		if err != nil {
			return nil, err
		}
		vs[i] = v
	}
	return vs, nil
}

// RequireInputs checks that n has between lo and hi inputs and that the
// first lo are present.
func RequireInputs(n *onnxpb.NodeProto, lo, hi int) error {
	if len(n.Input) < lo || len(n.Input) > hi {
		if lo == hi {
			return fmt.Errorf("%d inputs, want %d", len(n.Input), lo)
		}
		return fmt.Errorf("%d inputs, want %d to %d", len(n.Input), lo, hi)
	}
	for i := 0; i < lo; i++ {
		if n.Input[i] == "" {
			return fmt.Errorf("required input %d is empty", i)
		}
	}
	return nil
}

// Constant returns the tensor of a constant input (an initializer or a
// Constant node output) or nil. Reading a constant folds it: an initializer
// that nothing reads as data does not become a graph parameter.
func (d *Decoder) Constant(name string) *onnxpb.TensorProto {
	if t, ok := d.inits[name]; ok {
		d.folded[name] = true
		return t
	}
	return d.consts[name]
}

// ConstInts reads input i of n as a constant integer tensor. ok is false
// when the input is omitted.
func (d *Decoder) ConstInts(n *onnxpb.NodeProto, i int) (vals []int64, ok bool, err error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return nil, false, nil
	}
	t := d.Constant(n.Input[i])
	if t == nil {
		return nil, false, fmt.Errorf("input %d (%q) must be a constant (initializer or Constant node)", i, n.Input[i])
	}
	vals, _, err = TensorInt64s(t)
	if err != nil {
		return nil, false, fmt.Errorf("input %d: %w", i, err)
	}
	if slices.Contains(d.masks[n.Input[i]], true) {
		return nil, false, fmt.Errorf("input %d (%q) depends on the batch size, which lowbit only knows at run time", i, n.Input[i])
	}
	return vals, true, nil
}

// SetConstant records a tensor computed at import time (for example the
// output of a Shape node on a value of static shape) so that later
// importers can read tensor name through Constant and friends.
func (d *Decoder) SetConstant(name string, t *onnxpb.TensorProto) { d.consts[name] = t }

// ConstFloat reads input i of n as a constant float scalar (or
// one-element tensor), returning def when the input is omitted.
func (d *Decoder) ConstFloat(n *onnxpb.NodeProto, i int, def float32) (float32, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return def, nil
	}
	t := d.Constant(n.Input[i])
	if t == nil {
		return 0, fmt.Errorf("input %d (%q) must be a constant (initializer or Constant node)", i, n.Input[i])
	}
	vals, _, err := TensorFloats(t)
	if err != nil {
		return 0, fmt.Errorf("input %d: %w", i, err)
	}
	if len(vals) != 1 {
		return 0, fmt.Errorf("input %d (%q): %d values, want a scalar", i, n.Input[i], len(vals))
	}
	return vals[0], nil
}

// ConstBool reads input i of n as a constant BOOL scalar, returning def when
// the input is omitted.
func (d *Decoder) ConstBool(n *onnxpb.NodeProto, i int, def bool) (bool, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return def, nil
	}
	t := d.Constant(n.Input[i])
	if t == nil {
		return false, fmt.Errorf("input %d (%q) must be a constant (initializer or Constant node)", i, n.Input[i])
	}
	if t.DataType != int32(onnxpb.TensorProto_BOOL) {
		return false, fmt.Errorf("input %d (%q): data type %s, want BOOL", i, n.Input[i], dataTypeName(t.DataType))
	}
	vals, _, err := TensorInt64s(t)
	if err != nil || len(vals) != 1 {
		return false, fmt.Errorf("input %d (%q): want a BOOL scalar", i, n.Input[i])
	}
	return vals[0] != 0, nil
}

// Apply adds a graph node computing op on inputs for the ONNX node n and
// binds n's outputs to the node's outputs. ONNX outputs beyond those the op
// produces must be unused.
func (d *Decoder) Apply(n *onnxpb.NodeProto, op graph.Op, inputs ...*graph.Value) error {
	outs := d.g.Node(d.nodeName(n), op, inputs...)
	if outs == nil {
		return d.g.Err()
	}
	for i, o := range n.Output {
		switch {
		case o == "":
		case i < len(outs):
			d.vals[o] = outs[i]
		case d.used(o):
			return fmt.Errorf("output %d (%q) is not supported", i, o)
		}
	}
	return nil
}

// nodeName picks the graph node name of n, which also names its first
// output value: the output name when that is a graph output (so outputs
// keep their names), else the node's own name, else its first output name,
// else its op type; made unique in the graph.
func (d *Decoder) nodeName(n *onnxpb.NodeProto) string {
	name := n.Name
	if len(n.Output) > 0 && n.Output[0] != "" && d.outputs[n.Output[0]] {
		name = n.Output[0]
	}
	if name == "" && len(n.Output) > 0 {
		name = n.Output[0]
	}
	if name == "" {
		name = n.OpType
	}
	return d.g.UniqueName(name)
}

// Attrs returns the attribute reader of n. After the importer returns, the
// decoder fails the import if an attribute was never read, so an importer
// cannot silently ignore an attribute that changes the semantics.
func (d *Decoder) Attrs(n *onnxpb.NodeProto) *Attrs {
	if a := d.attrs[n]; a != nil {
		return a
	}
	a := &Attrs{byName: map[string]*onnxpb.AttributeProto{}, read: map[string]bool{}}
	for _, p := range n.Attribute {
		switch {
		case a.byName[p.Name] != nil:
			a.fail(fmt.Errorf("attribute %q appears twice", p.Name))
		case p.RefAttrName != "":
			a.fail(fmt.Errorf("attribute %q refers to a function attribute outside a function", p.Name))
		}
		a.byName[p.Name] = p
	}
	d.attrs[n] = a
	return a
}

// Attrs decodes the attributes of one node with defaults. Type mismatches
// are recorded and reported by Err.
type Attrs struct {
	byName map[string]*onnxpb.AttributeProto
	read   map[string]bool
	err    error
}

func (a *Attrs) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

// Err returns the first decoding error.
func (a *Attrs) Err() error { return a.err }

// Has reports whether the attribute is present (and marks it read).
func (a *Attrs) Has(name string) bool {
	a.read[name] = true
	return a.byName[name] != nil
}

func (a *Attrs) get(name string, want onnxpb.AttributeProto_AttributeType) *onnxpb.AttributeProto {
	a.read[name] = true
	p := a.byName[name]
	if p == nil {
		return nil
	}
	if p.Type != want {
		a.fail(fmt.Errorf("attribute %q has type %s, want %s", name, p.Type, want))
		return nil
	}
	return p
}

// Int returns an INT attribute or def.
func (a *Attrs) Int(name string, def int64) int64 {
	if p := a.get(name, onnxpb.AttributeProto_INT); p != nil {
		return p.GetI()
	}
	return def
}

// Ints returns an INTS attribute, or nil when absent.
func (a *Attrs) Ints(name string) []int64 {
	if p := a.get(name, onnxpb.AttributeProto_INTS); p != nil {
		return p.Ints
	}
	return nil
}

// Float returns a FLOAT attribute or def.
func (a *Attrs) Float(name string, def float32) float32 {
	if p := a.get(name, onnxpb.AttributeProto_FLOAT); p != nil {
		return p.GetF()
	}
	return def
}

// Floats returns a FLOATS attribute, or nil when absent.
func (a *Attrs) Floats(name string) []float32 {
	if p := a.get(name, onnxpb.AttributeProto_FLOATS); p != nil {
		return p.Floats
	}
	return nil
}

// String returns a STRING attribute or def.
func (a *Attrs) String(name, def string) string {
	if p := a.get(name, onnxpb.AttributeProto_STRING); p != nil {
		return string(p.GetS())
	}
	return def
}

// Tensor returns a TENSOR attribute, or nil when absent.
func (a *Attrs) Tensor(name string) *onnxpb.TensorProto {
	if p := a.get(name, onnxpb.AttributeProto_TENSOR); p != nil {
		return p.T
	}
	return nil
}

// check reports a decoding error or an attribute no importer read.
func (a *Attrs) check() error {
	if a.err != nil {
		return a.err
	}
	var unread []string
	for name := range a.byName {
		if !a.read[name] {
			unread = append(unread, name)
		}
	}
	if len(unread) > 0 {
		slices.Sort(unread)
		return fmt.Errorf("unsupported attribute(s) %s", strings.Join(unread, ", "))
	}
	return nil
}

// FromModel rebuilds a graph from an ONNX model (see Unmarshal).
func FromModel(m *onnxpb.ModelProto) (*graph.Graph, error) {
	gp := m.GetGraph()
	if gp == nil {
		return nil, fmt.Errorf("model has no graph")
	}
	if m.IrVersion < 3 {
		return nil, fmt.Errorf("model IR version %d is not supported (need 3 or later)", m.IrVersion)
	}
	d := &Decoder{
		g: graph.New(gp.Name), opsets: map[string]int64{}, vals: map[string]*graph.Value{},
		inits: map[string]*onnxpb.TensorProto{}, consts: map[string]*onnxpb.TensorProto{},
		producer: map[string]int{}, consumers: map[string][]*onnxpb.NodeProto{}, outputs: map[string]bool{},
		skip: map[*onnxpb.NodeProto]bool{}, folded: map[string]bool{}, attrs: map[*onnxpb.NodeProto]*Attrs{},
		nodes: gp.Node, convPads: map[string]convPad{}, masks: map[string][]bool{},
	}
	for _, o := range m.OpsetImport {
		dom := normDomain(o.Domain)
		if _, dup := d.opsets[dom]; dup {
			return nil, fmt.Errorf("operator set %q is imported twice", o.Domain)
		}
		if o.Version <= 0 {
			return nil, fmt.Errorf("operator set %q has invalid version %d", o.Domain, o.Version)
		}
		d.opsets[dom] = o.Version
	}
	if d.opsets[""] == 0 {
		return nil, fmt.Errorf("model does not import the default ONNX operator set")
	}
	if v := d.opsets[""]; v < MinImportOpset || v > MaxImportOpset {
		return nil, fmt.Errorf("model imports ONNX opset %d; lowbit imports opsets %d to %d", v, MinImportOpset, MaxImportOpset)
	}
	meta, err := readMeta(m)
	if err != nil {
		return nil, err
	}
	d.g.Meta = meta
	if err := d.index(gp); err != nil {
		return nil, err
	}
	if err := d.declare(gp); err != nil {
		return nil, err
	}
	for i, n := range gp.Node {
		d.cur = i
		if d.skip[n] {
			continue
		}
		if err := d.importNode(n); err != nil {
			return nil, fmt.Errorf("node %q (%s): %w", n.Name, n.OpType, err)
		}
	}
	d.cur = len(gp.Node)
	return d.finish(gp)
}

// readMeta returns the metadata_props as a map; a lowbit file must end with
// the end marker.
func readMeta(m *onnxpb.ModelProto) (map[string]string, error) {
	props := m.MetadataProps
	if m.ProducerName == Producer {
		if len(props) == 0 || props[len(props)-1].Key != endKey {
			return nil, fmt.Errorf("lowbit file is truncated: metadata end marker %q is missing", endKey)
		}
		if want := fmt.Sprint(len(props) - 1); props[len(props)-1].Value != want {
			return nil, fmt.Errorf("lowbit file is corrupt: end marker counts %s metadata entries, file has %s", props[len(props)-1].Value, want)
		}
		props = props[:len(props)-1]
	}
	meta := map[string]string{}
	for _, p := range props {
		if _, dup := meta[p.Key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", p.Key)
		}
		meta[p.Key] = p.Value
	}
	return meta, nil
}

// index records initializers, producers and consumers, and checks that
// every tensor name is defined once.
func (d *Decoder) index(gp *onnxpb.GraphProto) error {
	if len(gp.SparseInitializer) > 0 {
		return fmt.Errorf("sparse initializers are not supported")
	}
	defined := map[string]string{}
	for _, t := range gp.Initializer {
		if t.Name == "" {
			return fmt.Errorf("initializer without a name")
		}
		if _, dup := d.inits[t.Name]; dup {
			return fmt.Errorf("initializer %q appears twice", t.Name)
		}
		d.inits[t.Name] = t
		defined[t.Name] = "an initializer"
	}
	for _, vi := range gp.Input {
		if _, isInit := d.inits[vi.Name]; isInit {
			continue
		}
		if vi.Name == "" {
			return fmt.Errorf("graph input without a name")
		}
		if what, dup := defined[vi.Name]; dup {
			return fmt.Errorf("graph input %q is already %s", vi.Name, what)
		}
		defined[vi.Name] = "a graph input"
	}
	for i, n := range gp.Node {
		for _, in := range n.Input {
			if in != "" {
				d.consumers[in] = append(d.consumers[in], n)
			}
		}
		for _, o := range n.Output {
			if o == "" {
				continue
			}
			if what, dup := defined[o]; dup {
				return fmt.Errorf("node %q (%s): output %q is already %s", n.Name, n.OpType, o, what)
			}
			defined[o] = fmt.Sprintf("the output of node %q", n.Name)
			d.producer[o] = i
		}
	}
	for _, vi := range gp.Output {
		if vi.Name == "" {
			return fmt.Errorf("graph output without a name")
		}
		d.outputs[vi.Name] = true
	}
	return nil
}

// declare creates the graph inputs and the parameters (FLOAT initializers).
func (d *Decoder) declare(gp *onnxpb.GraphProto) error {
	for _, vi := range gp.Input {
		if _, isInit := d.inits[vi.Name]; isInit {
			continue
		}
		shape, err := tensorShape(vi)
		if err != nil {
			return fmt.Errorf("graph input %q: %w", vi.Name, err)
		}
		if shape == nil {
			return fmt.Errorf("graph input %q: shape is missing", vi.Name)
		}
		d.vals[vi.Name] = d.g.Input(vi.Name, shape...)
	}
	hints := d.kindHints(gp)
	d.hints = hints
	for _, t := range gp.Initializer {
		if t.DataType != int32(onnxpb.TensorProto_FLOAT) {
			continue // integer constants are only read through Constant
		}
		kind, frozen, known, err := parseKindDoc(t.DocString)
		if err != nil {
			return fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		if !known {
			kind = graph.Const
			if k, ok := hints[t.Name]; ok {
				kind = k
			}
		}
		data, shape, err := TensorFloats(t)
		if err != nil {
			return fmt.Errorf("initializer %q: %w", t.Name, err)
		}
		v := d.g.AddParam(t.Name, kind, &tensor.Tensor{Shape: shape, Data: data})
		v.Param.Frozen = frozen
		d.vals[t.Name] = v
	}
	return d.g.Err()
}

// kindHints infers parameter kinds from the first consumer with a hint.
func (d *Decoder) kindHints(gp *onnxpb.GraphProto) map[string]graph.Kind {
	hints := map[string]graph.Kind{}
	for _, n := range gp.Node {
		imp, ok := importerFor(n.Domain, n.OpType)
		if !ok {
			continue
		}
		for i, in := range n.Input {
			if _, done := hints[in]; done {
				continue
			}
			if k, ok := imp.ParamKinds[i]; ok {
				hints[in] = k
			}
		}
	}
	return hints
}

var kindByName = func() map[string]graph.Kind {
	m := map[string]graph.Kind{}
	for k := graph.Kind(0); k < 64; k++ {
		s := k.String()
		if strings.HasPrefix(s, "kind(") {
			break
		}
		m[s] = k
	}
	return m
}()

// parseKindDoc decodes "lowbit:kind=NAME[,frozen]".
func parseKindDoc(doc string) (kind graph.Kind, frozen, known bool, err error) {
	rest, ok := strings.CutPrefix(doc, kindPrefix)
	if !ok {
		return 0, false, false, nil
	}
	rest, frozen = strings.CutSuffix(rest, frozenSuffix)
	kind, ok = kindByName[rest]
	if !ok {
		return 0, false, false, fmt.Errorf("unknown parameter kind %q in doc_string", rest)
	}
	return kind, frozen, true, nil
}

// tensorShape returns the shape of a FLOAT tensor value (nil if the file
// gives no type or shape); symbolic and unknown dimensions become −1.
func tensorShape(vi *onnxpb.ValueInfoProto) ([]int, error) {
	if vi.GetType() == nil {
		return nil, nil
	}
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return nil, fmt.Errorf("not a tensor")
	}
	if tt.ElemType != int32(onnxpb.TensorProto_FLOAT) {
		return nil, fmt.Errorf("element type %s is not supported (only FLOAT)", dataTypeName(tt.ElemType))
	}
	if tt.Shape == nil {
		return nil, nil
	}
	shape := make([]int, len(tt.Shape.Dim))
	for i, dim := range tt.Shape.Dim {
		shape[i] = -1
		if v, ok := dim.Value.(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
			if v.DimValue < 0 || v.DimValue > maxElems {
				return nil, fmt.Errorf("invalid dimension %d", v.DimValue)
			}
			shape[i] = int(v.DimValue)
		}
	}
	return shape, nil
}

func (d *Decoder) importNode(n *onnxpb.NodeProto) (err error) {
	// Importers and op shape inference must not panic on hostile files;
	// should one still do, report it as an error naming the node.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("internal error (panic: %v)", r)
		}
	}()
	if _, ok := d.opsets[normDomain(n.Domain)]; !ok {
		return fmt.Errorf("domain %q is not imported by the model (opset_import)", n.Domain)
	}
	var run ImportFunc
	if f := d.folder(n); f != nil {
		run = func(d *Decoder, n *onnxpb.NodeProto) error { return d.fold(n, f) }
	} else if imp, ok := importerFor(n.Domain, n.OpType); ok && imp.Import != nil {
		run = imp.Import
	} else {
		switch {
		case normDomain(n.Domain) == "" && foldOnly[n.OpType]:
			return notFoldable(n)
		case n.Domain != "":
			return fmt.Errorf("unsupported op type %s in domain %q (lowbit imports the default ONNX domain%s)", n.OpType, n.Domain, extraDomains())
		}
		return fmt.Errorf("unsupported op type %s (see docs/onnx.md for the supported operators)", n.OpType)
	}
	a := d.Attrs(n)
	if err := a.Err(); err != nil {
		return err
	}
	if err := run(d, n); err != nil {
		if a.Err() != nil {
			return a.Err() // a mistyped attribute is the root cause
		}
		return err
	}
	return a.check()
}

// finish sets the outputs, drops initializers that were only folded into
// attributes, and validates the result.
func (d *Decoder) finish(gp *onnxpb.GraphProto) (*graph.Graph, error) {
	g := d.g
	if len(gp.Output) == 0 {
		return nil, fmt.Errorf("graph %q has no outputs", gp.Name)
	}
	outs := make([]*graph.Value, len(gp.Output))
	for i, vi := range gp.Output {
		v, err := d.Value(vi.Name)
		if err != nil {
			return nil, fmt.Errorf("graph output %q: %w", vi.Name, err)
		}
		outs[i] = v
	}
	g.SetOutputs(outs...)
	if err := g.Err(); err != nil {
		return nil, err
	}
	used := map[*graph.Value]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, v := range outs {
		used[v] = true
	}
	for _, p := range append([]*graph.Param(nil), g.Params()...) {
		if d.folded[p.Name] && !used[p.Value] {
			g.RemoveParam(p)
			continue
		}
		if err := checkFinite(p.Data.Data); err != nil {
			return nil, fmt.Errorf("initializer %q: %w", p.Name, err)
		}
	}
	if _, err := g.TopoSort(); err != nil {
		return nil, err
	}
	for i, vi := range gp.Output {
		want, err := tensorShape(vi)
		if err != nil {
			return nil, fmt.Errorf("graph output %q: %w", vi.Name, err)
		}
		if want != nil && !shapesAgree(want, outs[i].Shape) {
			return nil, fmt.Errorf("graph output %q: file declares shape %v, the imported graph computes %v", vi.Name, want, outs[i].Shape)
		}
	}
	return g, nil
}

// shapesAgree compares shapes where −1 matches any dimension.
func shapesAgree(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] >= 0 && b[i] >= 0 && a[i] != b[i] {
			return false
		}
	}
	return true
}
