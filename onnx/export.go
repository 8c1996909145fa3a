package onnx

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sync"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/tensor"
)

// File-format constants of exported models.
const (
	// Opset is the version of the default ONNX operator set exported files
	// import.
	Opset = 17
	// IRVersion is the ONNX IR version of exported files.
	IRVersion = 8
	// Producer is the producer_name of exported files.
	Producer = "lowbit"
	// BatchDim is the symbolic name of the batch dimension (shape −1).
	BatchDim = "N"
)

// Doc-string markers lowbit writes so that its own files load back exactly.
const (
	kindPrefix   = "lowbit:kind="
	frozenSuffix = ",frozen"
	convPadDoc   = "lowbit:conv_pad"
	// endKey is the key of the metadata entry written last: its absence in a
	// lowbit file reveals a file truncated between two metadata entries.
	endKey = "lowbit:end"
)

// ExportFunc writes the ONNX node(s) computing the graph node n. It reads
// names through e.Input and e.Output and emits nodes and initializers
// through e.
type ExportFunc func(e *Encoder, n *graph.Node) error

var (
	regMu     sync.RWMutex
	exporters = map[reflect.Type]ExportFunc{}
	opType    = reflect.TypeFor[graph.Op]()
)

// RegisterExporter registers fn as the exporter of ops of Go type T. It is
// meant to be called from init functions; packages outside onnx (quant)
// register their own ops this way and may emit several nodes per op. Both
// T and its pointer (or element) form dispatch to fn, whichever form the
// graph holds. A later registration for the same type replaces the earlier.
func RegisterExporter[T graph.Op](fn func(e *Encoder, n *graph.Node, op T) error) {
	t := reflect.TypeFor[T]()
	regMu.Lock()
	defer regMu.Unlock()
	exporters[t] = func(e *Encoder, n *graph.Node) error { return fn(e, n, n.Op.(T)) }
	if t.Kind() == reflect.Pointer {
		if et := t.Elem(); et.Implements(opType) {
			exporters[et] = func(e *Encoder, n *graph.Node) error {
				p := reflect.New(et)
				p.Elem().Set(reflect.ValueOf(n.Op))
				return fn(e, n, p.Interface().(T))
			}
		}
		return
	}
	exporters[reflect.PointerTo(t)] = func(e *Encoder, n *graph.Node) error {
		return fn(e, n, reflect.ValueOf(n.Op).Elem().Interface().(T))
	}
}

func exporterFor(op graph.Op) ExportFunc {
	regMu.RLock()
	defer regMu.RUnlock()
	return exporters[reflect.TypeOf(op)]
}

// Encoder accumulates the ONNX graph during an export. Exporters use it to
// name tensors, add nodes and initializers, and declare extra operator sets.
type Encoder struct {
	g      *graph.Graph
	gp     *onnxpb.GraphProto
	used   map[string]bool
	opsets map[string]int64
}

// Graph returns the graph being exported.
func (e *Encoder) Graph() *graph.Graph { return e.g }

// Input returns the ONNX tensor name of input i of n ("" for an omitted
// optional input).
func (e *Encoder) Input(n *graph.Node, i int) string {
	if i >= len(n.Inputs) || n.Inputs[i] == nil {
		return ""
	}
	return n.Inputs[i].Name
}

// Inputs returns the names of all inputs of n, dropping trailing omitted
// inputs as ONNX requires.
func (e *Encoder) Inputs(n *graph.Node) []string {
	names := make([]string, len(n.Inputs))
	for i := range n.Inputs {
		names[i] = e.Input(n, i)
	}
	for len(names) > 0 && names[len(names)-1] == "" {
		names = names[:len(names)-1]
	}
	return names
}

// Output returns the ONNX tensor name of output i of n.
func (e *Encoder) Output(n *graph.Node, i int) string { return n.Outputs[i].Name }

// Outputs returns the names of all outputs of n.
func (e *Encoder) Outputs(n *graph.Node) []string {
	names := make([]string, len(n.Outputs))
	for i, v := range n.Outputs {
		names[i] = v.Name
	}
	return names
}

// FreshName returns a tensor or node name not used anywhere in the graph or
// the export so far: hint itself, or hint_2, hint_3, ... It reserves the
// name.
func (e *Encoder) FreshName(hint string) string {
	name := hint
	for i := 2; e.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", hint, i)
	}
	e.used[name] = true
	return name
}

// AddNode appends an ONNX node in the default domain and returns it, so the
// caller may set Domain or DocString.
func (e *Encoder) AddNode(opType, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	np := &onnxpb.NodeProto{OpType: opType, Name: name, Input: inputs, Output: outputs, Attribute: attrs}
	e.gp.Node = append(e.gp.Node, np)
	return np
}

// Emit is the common one-to-one export: one ONNX node of type opType named
// like n, reading n's inputs and writing n's outputs.
func (e *Encoder) Emit(n *graph.Node, opType string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return e.AddNode(opType, n.Name, e.Inputs(n), e.Outputs(n), attrs...)
}

// AddInitializer adds a constant tensor, renaming it with FreshName(t.Name)
// if needed, and returns its final name.
func (e *Encoder) AddInitializer(t *onnxpb.TensorProto) string {
	t.Name = e.FreshName(t.Name)
	e.gp.Initializer = append(e.gp.Initializer, t)
	return t.Name
}

// FloatConst adds a FLOAT initializer named after hint and returns its name.
func (e *Encoder) FloatConst(hint string, data []float32, dims ...int) string {
	return e.AddInitializer(FloatTensor(hint, data, dims...))
}

// Int64Const adds an INT64 initializer named after hint and returns its name.
func (e *Encoder) Int64Const(hint string, data []int64, dims ...int) string {
	return e.AddInitializer(Int64Tensor(hint, data, dims...))
}

// UseOpset declares that the model imports the operator set domain at least
// at version (for example "com.microsoft" for contrib ops).
func (e *Encoder) UseOpset(domain string, version int64) {
	if e.opsets[domain] < version {
		e.opsets[domain] = version
	}
}

// ToModel converts g to an ONNX model (see Marshal).
func ToModel(g *graph.Graph) (*onnxpb.ModelProto, error) {
	if err := g.Err(); err != nil {
		return nil, fmt.Errorf("export graph %s: %w", g.Name, err)
	}
	order, err := g.TopoSort()
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	name := g.Name
	if name == "" {
		name = "lowbit" // ONNX requires a graph name
	}
	e := &Encoder{g: g, gp: &onnxpb.GraphProto{Name: name}, used: map[string]bool{}, opsets: map[string]int64{"": Opset}}
	for _, v := range g.Inputs {
		e.used[v.Name] = true
	}
	for _, p := range g.Params() {
		e.used[p.Name] = true
	}
	for _, n := range g.Nodes {
		e.used[n.Name] = true
		for _, v := range n.Outputs {
			e.used[v.Name] = true
		}
	}
	for _, v := range g.Inputs {
		e.gp.Input = append(e.gp.Input, valueInfo(v))
	}
	for _, p := range g.Params() {
		if err := checkFinite(p.Data.Data); err != nil {
			return nil, fmt.Errorf("export graph %s: parameter %s: %w", g.Name, p.Name, err)
		}
		if tensor.Numel(p.Data.Shape) != len(p.Data.Data) {
			return nil, fmt.Errorf("export graph %s: parameter %s: shape %v does not match %d values", g.Name, p.Name, p.Data.Shape, len(p.Data.Data))
		}
		t := FloatTensor(p.Name, p.Data.Data, p.Data.Shape...)
		t.DocString = kindPrefix + p.Kind.String()
		if p.Frozen {
			t.DocString += frozenSuffix
		}
		e.gp.Initializer = append(e.gp.Initializer, t)
	}
	for _, n := range order {
		fn := exporterFor(n.Op)
		if fn == nil {
			return nil, fmt.Errorf("export graph %s: node %s: no ONNX exporter registered for op %s (Go type %T)", g.Name, n.Name, n.Op.Type(), n.Op)
		}
		if err := fn(e, n); err != nil {
			return nil, fmt.Errorf("export graph %s: node %s (%s): %w", g.Name, n.Name, n.Op.Type(), err)
		}
	}
	for _, v := range g.Outputs {
		e.gp.Output = append(e.gp.Output, valueInfo(v))
	}
	m := &onnxpb.ModelProto{
		IrVersion:    IRVersion,
		ProducerName: Producer,
		Graph:        e.gp,
	}
	for _, d := range slices.Sorted(maps.Keys(e.opsets)) {
		m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: d, Version: e.opsets[d]})
	}
	keys := slices.Sorted(maps.Keys(g.Meta))
	for _, k := range keys {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: k, Value: g.Meta[k]})
	}
	m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: endKey, Value: fmt.Sprint(len(keys))})
	return m, nil
}

func checkFinite(data []float32) error {
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("element %d is %v", i, v)
		}
	}
	return nil
}

// valueInfo describes a float tensor value; −1 dimensions become the
// symbolic batch dimension.
func valueInfo(v *graph.Value) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range v.Shape {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if d < 0 {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: BatchDim}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: v.Name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: shape},
	}}}
}
