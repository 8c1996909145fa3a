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
// Mul on floats instead of QuantizeLinear/DequantizeLinear. Weights keep
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
	if pa == nil || pg == nil || pa.Data.Len() != 1 || pg.Data.Len() != 1 {
		return fmt.Errorf("DuQ range and scale (%s, %s) must be scalar parameters to be exported", n.Inputs[1].Name, n.Inputs[2].Name)
	}
	if q.Bits < 2 || q.Bits > 16 {
		return fmt.Errorf("DuQ: %d bits outside 2..16", q.Bits)
	}
	a, c := q.Scales(pa.Data.Data[0], pg.Data.Data[0])
	if !(a > 0) || !(c > 0) || math.IsInf(float64(a), 0) || math.IsInf(float64(c), 0) {
		return fmt.Errorf("DuQ range a=%v and scale c=%v must be positive and finite", a, c)
	}
	stepIn, stepOut, lo := q.Steps(a, c)
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
		zp := e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, []int32{0})))
		codes := sb.op("QuantizeLinear", []string{h, sb.f32("scale_in", stepIn), zp})
		if qmin, qmax := int32(lo), int32(s); qmin != smin || qmax != smax {
			lo := e.AddInitializer(onnx.RawTensor(n.Name+".qmin", dt, int8Bytes(dt, []int32{qmin})))
			hi := e.AddInitializer(onnx.RawTensor(n.Name+".qmax", dt, int8Bytes(dt, []int32{qmax})))
			codes = sb.op("Clip", []string{codes, lo, hi})
		}
		y = sb.op("DequantizeLinear", []string{codes, sb.f32("scale_out", stepOut), zp})
	} else {
		t := sb.op("Round", []string{sb.op("Div", []string{h, sb.f32("scale_in", stepIn)})})
		t = sb.op("Clip", []string{t, sb.f32("qmin", lo), sb.f32("qmax", s)})
		y = sb.op("Mul", []string{t, sb.f32("scale_out", stepOut)})
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
		if v == nil || v.Param == nil || v.Param.Data.Len() != 1 {
			return nil, fmt.Errorf("DuQ %s %q is not a scalar initializer", what, name)
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
