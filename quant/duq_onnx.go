package quant

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/onnx/onnxpb"
)

// ONNX form of DuQ. At evaluation a DuQ is a uniform grid (duq.go's
// Forward computes exactly this), written with standard operators after a
// no-op Cast(to=FLOAT) marker:
//
//	Cast → [Add 3/8] → QuantizeLinear(scale a/s) → [Clip codes]
//	     → DequantizeLinear(scale c/s) → [Sub 3/8]
//
// with s = n−1 steps (relu, hswish: uint8 codes 0..s) or s = n/2−1
// (weight, signed: int8 codes −s..s), zero points 0, the integer Clip only
// when the grid is narrower than its storage type, and the h-swish offset
// as Add/Sub of 3/8. Grids of more than 8 bits use Div, Round, Clip and
// Mul on floats instead of QuantizeLinear/DequantizeLinear. A weight DuQ
// with one range and scale per output channel has [C] scales and zero
// points on axis 0 (or, above 8 bits, steps shaped [C, 1, …] that
// broadcast against the weight). Weights keep
// their float values in the initializer (the grid is applied at run time,
// as PyTorch exports QAT models), so a fine-tuning checkpoint loses
// nothing.
//
// The marker's doc_string is "lowbit:duq=" and the JSON of the mode, the
// bit width, the names of the α and γ initializers (kind QuantParam; they
// are not read by any ONNX node) and the output tensor; the other nodes
// carry "lowbit:quant-part". On import the marker rebuilds the DuQ node
// with its learnable parameters, so a reloaded model fine-tunes further
// and evaluates with lowbit's own DuQ code. The exception to bit-exact
// agreement with an ONNX runtime is NaN (DuQ maps it to code 0).

const duqDocPrefix = "lowbit:duq="

type duqDoc struct {
	V     int    `json:"v"`
	Mode  string `json:"mode"`
	Bits  int    `json:"bits"`
	Alpha string `json:"alpha"`
	Gamma string `json:"gamma"`
	Out   string `json:"out"`
}

func init() { onnx.RegisterExporter(exportDuQ) }

func exportDuQ(e *onnx.Encoder, n *graph.Node, q DuQ) error {
	if len(n.Inputs) != 3 || n.Inputs[0] == nil || n.Inputs[1] == nil || n.Inputs[2] == nil {
		return fmt.Errorf("DuQ needs inputs X, alpha and gamma")
	}
	pa, pg := n.Inputs[1].Param, n.Inputs[2].Param
	if pa == nil || pg == nil {
		return fmt.Errorf("DuQ range and scale (%s, %s) must be parameters to be exported", n.Inputs[1].Name, n.Inputs[2].Name)
	}
	channels := pa.Data.Len()
	if pg.Data.Len() != channels || channels != 1 && (q.Mode != DuQWeight || len(n.Inputs[0].Shape) == 0 || n.Inputs[0].Shape[0] != channels) {
		return fmt.Errorf("DuQ range and scale (%s %v, %s %v) must be scalars, or one per output channel of a weight (%v)",
			n.Inputs[1].Name, pa.Data.Shape, n.Inputs[2].Name, pg.Data.Shape, n.Inputs[0].Shape)
	}
	if q.Bits < 2 || q.Bits > 16 {
		return fmt.Errorf("DuQ: %d bits outside 2..16", q.Bits)
	}
	stepIn, stepOut := make([]float32, channels), make([]float32, channels)
	var lo float32
	for k := range channels {
		a, c := q.Scales(pa.Data.Data[k], pg.Data.Data[k])
		if !(a > 0) || !(c > 0) || math.IsInf(float64(a), 0) || math.IsInf(float64(c), 0) {
			return fmt.Errorf("DuQ range a=%v and scale c=%v (channel %d) must be positive and finite", a, c, k)
		}
		stepIn[k], stepOut[k], lo = q.Steps(a, c)
	}
	s := q.steps()
	out := e.Output(n, 0)
	b, err := json.Marshal(duqDoc{V: docV, Mode: q.Mode.String(), Bits: q.Bits, Alpha: pa.Name, Gamma: pg.Name, Out: out})
	if err != nil {
		return fmt.Errorf("encode DuQ description: %w", err)
	}
	h := e.FreshName(n.Name + ".in")
	m := e.AddNode("Cast", e.FreshName(n.Name+".mark"), []string{e.Input(n, 0)}, []string{h}, onnx.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	m.DocString = duqDocPrefix + string(b)
	sb := &sub{e: e, n: n}
	// steps is a per-tensor step as a scalar, or the per-channel steps
	// shaped [C] followed by rank−1 ones (1: the per-axis scale of
	// QuantizeLinear; the weight's rank: broadcast against it).
	steps := func(hint string, v []float32, rank int) string {
		if channels == 1 {
			return sb.f32(hint, v[0])
		}
		dims := []int{channels}
		for len(dims) < rank {
			dims = append(dims, 1)
		}
		return e.FloatConst(n.Name+"."+hint, v, dims...)
	}
	off := q.offset()
	if off != 0 {
		h = sb.op("Add", []string{h, sb.f32("offset", off)})
	}
	var y string
	if q.Bits <= 8 {
		dt, smin, smax := onnxpb.TensorProto_UINT8, int32(0), int32(255)
		if q.signed() {
			dt, smin, smax = onnxpb.TensorProto_INT8, -128, 127
		}
		var attrs []*onnxpb.AttributeProto
		var zp string
		if channels > 1 {
			attrs = append(attrs, onnx.AttrInt("axis", 0))
			zp = e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, make([]int32, channels)), channels))
		} else {
			zp = e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, []int32{0})))
		}
		codes := sb.op("QuantizeLinear", []string{h, steps("scale_in", stepIn, 1), zp}, attrs...)
		if qmin, qmax := int32(lo), int32(s); qmin != smin || qmax != smax {
			lo := e.AddInitializer(onnx.RawTensor(n.Name+".qmin", dt, int8Bytes(dt, []int32{qmin})))
			hi := e.AddInitializer(onnx.RawTensor(n.Name+".qmax", dt, int8Bytes(dt, []int32{qmax})))
			codes = sb.op("Clip", []string{codes, lo, hi})
		}
		y = sb.op("DequantizeLinear", []string{codes, steps("scale_out", stepOut, 1), zp}, attrs...)
	} else {
		rank := len(n.Inputs[0].Shape)
		t := sb.op("Round", []string{sb.op("Div", []string{h, steps("scale_in", stepIn, rank)})})
		t = sb.op("Clip", []string{t, sb.f32("qmin", lo), sb.f32("qmax", s)})
		y = sb.op("Mul", []string{t, steps("scale_out", stepOut, rank)})
	}
	if off != 0 {
		sb.op("Sub", []string{y, sb.f32("offset", off)})
	}
	sb.last.Name = n.Name
	sb.last.Output[0] = out
	return nil
}

// isDuQMarker reports whether a Cast node is the marker of a DuQ form.
func isDuQMarker(n *onnxpb.NodeProto) bool { return strings.HasPrefix(n.DocString, duqDocPrefix) }

// importDuQ rebuilds a DuQ node from its marker and claims the rest of
// its form.
func importDuQ(d *onnx.Decoder, n *onnxpb.NodeProto) error {
	if to := d.Attrs(n).Int("to", 0); to != int64(onnxpb.TensorProto_FLOAT) {
		return fmt.Errorf("DuQ marker Cast to %s, want FLOAT", onnxpb.TensorProto_DataType(to))
	}
	if err := onnx.RequireInputs(n, 1, 1); err != nil {
		return err
	}
	if len(n.Output) != 1 {
		return fmt.Errorf("%d outputs, want 1", len(n.Output))
	}
	var doc duqDoc
	if err := json.Unmarshal([]byte(strings.TrimPrefix(n.DocString, duqDocPrefix)), &doc); err != nil {
		return fmt.Errorf("DuQ description: %w", err)
	}
	if doc.V != docV {
		return fmt.Errorf("DuQ description version %d, this lowbit reads %d", doc.V, docV)
	}
	mode, err := ParseDuQMode(doc.Mode)
	if err != nil {
		return fmt.Errorf("DuQ description: %w", err)
	}
	if doc.Bits < 2 || doc.Bits > 16 {
		return fmt.Errorf("DuQ description: %d bits outside 2..16", doc.Bits)
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	param := func(what, name string) (*graph.Value, error) {
		v, err := d.Value(name)
		if err != nil {
			return nil, fmt.Errorf("DuQ %s: %w", what, err)
		}
		if v == nil || v.Param == nil {
			return nil, fmt.Errorf("DuQ %s %q is not an initializer", what, name)
		}
		// Per output channel: shape [C] (InferShapes checks C against
		// the weight).
		if l := v.Param.Data.Len(); l != 1 && (mode != DuQWeight || len(v.Param.Data.Shape) != 1) {
			return nil, fmt.Errorf("DuQ %s %q of shape %v: want a scalar, or [C] per output channel of a weight", what, name, v.Param.Data.Shape)
		}
		v.Param.Kind = graph.QuantParam
		return v, nil
	}
	av, err := param("range alpha", doc.Alpha)
	if err != nil {
		return err
	}
	gv, err := param("scale gamma", doc.Gamma)
	if err != nil {
		return err
	}
	if mode == DuQWeight && x.Param != nil {
		x.Param.Kind = graph.Weight
	}
	last, err := claimSubgraph(d, n, doc.Out)
	if err != nil {
		return err
	}
	return d.Apply(last, DuQ{Mode: mode, Bits: doc.Bits}, x, av, gv)
}
