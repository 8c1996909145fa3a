package quant

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/onnx/onnxpb"
	"lowbit/tensor"
)

// ONNX form of the quantizers (registered with package onnx):
//
//   - Uniform weights of at most 8 bits: the weight initializer holds the
//     int8 (symmetric) or uint8 codes, read by DequantizeLinear (axis 0
//     when per channel).
//   - Uniform activations of at most 8 bits: QuantizeLinear →
//     DequantizeLinear with int8/uint8 zero points. A grid narrower than
//     its storage type (b < 8, or the symmetric [−m, m] inside int8) gets a
//     Clip on the integer codes between the two, which gives exactly the
//     clamped codes of Uniform.
//   - Every other weight (WEQ, OLAQ, 16-bit uniform): the weight
//     initializer holds the exact quantized float values, read through a
//     no-op Cast(to=FLOAT) that carries the quantizer description.
//   - Every other activation (WEQ log, OLAQ, 16-bit uniform): a subgraph of
//     standard operators after a no-op Cast(to=FLOAT) marker: log levels as
//     a branch-free binary search of the float32 thresholds (GreaterOrEqual,
//     Gather, Add, Where) and a final Gather of the levels; OLAQ as
//     Relu (or Abs and Sign), Div, Round, Min, Mul for the dense grid and
//     GreaterOrEqual, Where for the outliers (Min and two Casts for binary16
//     outliers); 16-bit uniform as Div, Round, Add, Clip, Sub, Mul.
//
// The first node of each form (QuantizeLinear, DequantizeLinear, or the
// Cast marker) has the doc_string "lowbit:quant=" followed by the JSON of
// the spec and quantizer state; the other nodes of a subgraph have the
// doc_string "lowbit:quant-part", and its last node carries the quantizer
// node's name. On import the marked first node rebuilds the FakeQuant and
// claims the rest of its form, so lowbit evaluates a quantized file with
// its own quantizer code; unmarked QuantizeLinear/DequantizeLinear pairs
// and int8/uint8 weights of other producers import as 8-bit uniform
// quantizers (int8 codes are offset by 128 into the asymmetric uint8 grid,
// which is exact).
//
// The subgraphs use float32 operations in the order of lowbit's forward,
// so a runtime with IEEE float32 Div/Mul/Add, Round half to even and
// round-to-nearest-even float16 casts computes bit-identical values. The
// exceptions are NaN inputs (lowbit maps NaN to 0 in the uniform and OLAQ
// grids, the ONNX operators propagate it) and the sign of zero (an OLAQ
// subgraph may give −0 where lowbit gives +0).

const (
	docPrefix = "lowbit:quant="
	partDoc   = "lowbit:quant-part"
	docV      = 1
)

// fqDoc is the JSON description written on the first node of a form.
type fqDoc struct {
	V     int    `json:"v"`
	Spec  Spec   `json:"spec"`
	Baked bool   `json:"baked,omitempty"`
	Out   string `json:"out,omitempty"`
	State State  `json:"state"`
}

func init() {
	onnx.RegisterExporter(exportFakeQuant)
	onnx.RegisterImporter("", "QuantizeLinear", onnx.Importer{Import: importQuantizeLinear})
	onnx.RegisterImporter("", "DequantizeLinear", onnx.Importer{Import: importDequantizeLinear})
	onnx.RegisterImporter("", "Cast", onnx.Importer{Import: importCast})
}

func (f *FakeQuant) doc(baked bool, out string) (string, error) {
	st, err := StateOf(f.Q)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(fqDoc{V: docV, Spec: f.Spec, Baked: baked, Out: out, State: st})
	if err != nil {
		return "", fmt.Errorf("encode quantizer description: %w", err)
	}
	return docPrefix + string(b), nil
}

// storage returns the ONNX integer type holding the codes of a uniform
// grid of at most 8 bits.
func storage(u *Uniform) (onnxpb.TensorProto_DataType, int32, int32) {
	if u.Scheme == Symmetric {
		return onnxpb.TensorProto_INT8, -128, 127
	}
	return onnxpb.TensorProto_UINT8, 0, 255
}

func int8Bytes(dt onnxpb.TensorProto_DataType, v []int32) []byte {
	b := make([]byte, len(v))
	for i, x := range v {
		if dt == onnxpb.TensorProto_INT8 {
			b[i] = byte(int8(x))
		} else {
			b[i] = byte(uint8(x))
		}
	}
	return b
}

func exportFakeQuant(e *onnx.Encoder, n *graph.Node, f *FakeQuant) error {
	switch {
	case f.Observing:
		return fmt.Errorf("quantizer is still calibrating")
	case f.Q == nil:
		return fmt.Errorf("quantizer was never fitted or calibrated")
	case len(n.Inputs) != 1 || n.Inputs[0] == nil:
		return fmt.Errorf("quantizer needs one input")
	}
	if f.Spec.Role == WeightRole {
		return exportWeight(e, n, f)
	}
	if f.Baked {
		return fmt.Errorf("baked activation quantizers cannot be exported")
	}
	switch q := f.Q.(type) {
	case *Uniform:
		if q.Bits <= 8 {
			return exportQDQ(e, n, f, q)
		}
		return exportSubgraph(e, n, f, func(s *sub, h string) { s.uniform16(h, q) })
	case *LogQuant:
		return exportSubgraph(e, n, f, func(s *sub, h string) { s.bucketize(h, q.thresh, append([]float32{0}, q.values...)) })
	case *OLAQ:
		return exportSubgraph(e, n, f, func(s *sub, h string) { s.olaq(h, q) })
	}
	return fmt.Errorf("no ONNX form for activation quantizer %T", f.Q)
}

// exportWeight stores the quantized weight in the initializer (codes or
// exact values) and emits DequantizeLinear or the Cast marker.
func exportWeight(e *onnx.Encoder, n *graph.Node, f *FakeQuant) error {
	w := n.Inputs[0]
	if w.Param == nil {
		return fmt.Errorf("weight quantizer input %s is not a parameter", w.Name)
	}
	data := w.Param.Data
	vals := data.Data
	if !f.Baked {
		vals = make([]float32, len(data.Data))
		if err := f.Q.Forward(data.Data, vals); err != nil {
			return err
		}
	}
	// Store in place of the float weight when nothing else reads it.
	g := e.Graph()
	name := w.Name
	inPlace := len(g.Consumers(w)) == 1 && !isOutput(g, w)
	if !inPlace {
		name = e.FreshName(w.Name + ".quantized")
	}
	put := func(t *onnxpb.TensorProto) string {
		if inPlace {
			if err := e.ReplaceInitializer(name, t); err == nil {
				return name
			}
		}
		t.Name = name
		return e.AddInitializer(t)
	}
	if u, ok := f.Q.(*Uniform); ok && u.Bits <= 8 {
		codes := make([]int32, len(vals))
		if err := u.Quantize(vals, codes); err != nil {
			return err
		}
		dt, _, _ := storage(u)
		cname := put(onnx.RawTensor(name, dt, int8Bytes(dt, codes), data.Shape...))
		doc, err := f.doc(true, "")
		if err != nil {
			return err
		}
		var scale, zp string
		var attrs []*onnxpb.AttributeProto
		if len(u.Scale) == 1 {
			scale = e.FloatConst(n.Name+".scale", u.Scale)
			zp = e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, u.ZeroPoint)))
		} else {
			scale = e.FloatConst(n.Name+".scale", u.Scale, len(u.Scale))
			zp = e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, u.ZeroPoint), len(u.ZeroPoint)))
			attrs = append(attrs, onnx.AttrInt("axis", 0))
		}
		dq := e.AddNode("DequantizeLinear", n.Name, []string{cname, scale, zp}, e.Outputs(n), attrs...)
		dq.DocString = doc
		return nil
	}
	t := onnx.FloatTensor(name, vals, data.Shape...)
	vname := put(t)
	doc, err := f.doc(true, e.Output(n, 0))
	if err != nil {
		return err
	}
	c := e.AddNode("Cast", n.Name, []string{vname}, e.Outputs(n), onnx.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	c.DocString = doc
	return nil
}

// exportQDQ writes QuantizeLinear [→ Clip] → DequantizeLinear.
func exportQDQ(e *onnx.Encoder, n *graph.Node, f *FakeQuant, u *Uniform) error {
	if len(u.Scale) != 1 {
		return fmt.Errorf("per-channel activation quantizers have no ONNX form")
	}
	doc, err := f.doc(false, "")
	if err != nil {
		return err
	}
	dt, smin, smax := storage(u)
	scale := e.FloatConst(n.Name+".scale", u.Scale)
	zp := e.AddInitializer(onnx.RawTensor(n.Name+".zero_point", dt, int8Bytes(dt, u.ZeroPoint)))
	codes := e.FreshName(n.Name + ".codes")
	q := e.AddNode("QuantizeLinear", e.FreshName(n.Name+".quantize"), []string{e.Input(n, 0), scale, zp}, []string{codes})
	q.DocString = doc
	if qmin, qmax := u.QRange(); qmin != smin || qmax != smax {
		lo := e.AddInitializer(onnx.RawTensor(n.Name+".qmin", dt, int8Bytes(dt, []int32{qmin})))
		hi := e.AddInitializer(onnx.RawTensor(n.Name+".qmax", dt, int8Bytes(dt, []int32{qmax})))
		clipped := e.FreshName(n.Name + ".clipped")
		c := e.AddNode("Clip", e.FreshName(n.Name+".clip"), []string{codes, lo, hi}, []string{clipped})
		c.DocString = partDoc
		codes = clipped
	}
	dq := e.AddNode("DequantizeLinear", n.Name, []string{codes, scale, zp}, e.Outputs(n))
	dq.DocString = partDoc
	return nil
}

// sub emits the nodes of a float subgraph.
type sub struct {
	e    *onnx.Encoder
	n    *graph.Node
	last *onnxpb.NodeProto
}

// op emits one node and returns its output tensor.
func (s *sub) op(opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	base := s.n.Name + "/" + strings.ToLower(opType)
	out := s.e.FreshName(base + ":0")
	s.last = s.e.AddNode(opType, s.e.FreshName(base), inputs, []string{out}, attrs...)
	s.last.DocString = partDoc
	return out
}

func (s *sub) f32(hint string, v float32) string {
	return s.e.FloatConst(s.n.Name+"."+hint, []float32{v})
}

func (s *sub) i64(hint string, v int64) string { return s.e.Int64Const(s.n.Name+"."+hint, []int64{v}) }

// exportSubgraph writes the Cast marker, lets body emit the subgraph on
// the marker's output and renames the last node and tensor to the
// quantizer node's name and output.
func exportSubgraph(e *onnx.Encoder, n *graph.Node, f *FakeQuant, body func(s *sub, h string)) error {
	out := e.Output(n, 0)
	doc, err := f.doc(false, out)
	if err != nil {
		return err
	}
	h := e.FreshName(n.Name + ".in")
	m := e.AddNode("Cast", e.FreshName(n.Name+".mark"), []string{e.Input(n, 0)}, []string{h}, onnx.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
	m.DocString = doc
	s := &sub{e: e, n: n}
	body(s, h)
	if s.last == nil {
		return fmt.Errorf("empty quantizer subgraph")
	}
	s.last.Name = n.Name
	s.last.Output[0] = out
	return nil
}

// uniform16 is code = clamp(Round(x/Δ) + zp, qmin, qmax), y = (code − zp)·Δ.
func (s *sub) uniform16(h string, u *Uniform) {
	sc := s.f32("scale", u.Scale[0])
	zp := float32(u.ZeroPoint[0])
	qmin, qmax := u.QRange()
	t := s.op("Round", []string{s.op("Div", []string{h, sc})})
	if zp != 0 {
		t = s.op("Add", []string{t, s.f32("zero_point", zp)})
	}
	t = s.op("Clip", []string{t, s.f32("qmin", float32(qmin)), s.f32("qmax", float32(qmax))})
	if zp != 0 {
		t = s.op("Sub", []string{t, s.f32("zero_point", zp)})
	}
	s.op("Mul", []string{t, sc})
}

// bucketize emits y = values[c] with c the number of thresholds ≤ x
// (thresholds ascending, len(values) = len(thresh) + 1), by a binary search
// over the thresholds padded to a power of two P with MaxFloat32: the
// first step compares with thresh[P/2−1]; each later step of size s
// gathers the threshold c+s−1 and adds s where x reaches it. NaN compares
// false everywhere and gets values[0].
func (s *sub) bucketize(h string, thresh, values []float32) {
	n := len(thresh)
	p := 2
	for p < n {
		p *= 2
	}
	tp := make([]float32, p)
	for i := range tp {
		tp[i] = math.MaxFloat32
		if i < n {
			tp[i] = thresh[i]
		}
	}
	vp := make([]float32, p+1)
	for i := range vp {
		vp[i] = values[min(i, n)]
	}
	step := p / 2
	b := s.op("GreaterOrEqual", []string{h, s.f32("t", tp[step-1])})
	c := s.op("Where", []string{b, s.i64("step", int64(step)), s.i64("zero", 0)})
	for step /= 2; step >= 1; step /= 2 {
		tbl := make([]float32, p-2*step+1)
		for i := range tbl {
			tbl[i] = tp[i+step-1]
		}
		t := s.op("Gather", []string{s.e.FloatConst(s.n.Name+".t", tbl, len(tbl)), c}, onnx.AttrInt("axis", 0))
		b := s.op("GreaterOrEqual", []string{h, t})
		c2 := s.op("Add", []string{c, s.i64("step", int64(step))})
		c = s.op("Where", []string{b, c2, c})
	}
	s.op("Gather", []string{s.e.FloatConst(s.n.Name+".levels", vp, len(vp)), c}, onnx.AttrInt("axis", 0))
}

// olaq emits the OLAQ forward (see OLAQ.Forward).
func (s *sub) olaq(h string, q *OLAQ) {
	var a, sign string
	if q.Signed {
		a = s.op("Abs", []string{h})
		sign = s.op("Sign", []string{h})
	} else {
		a = s.op("Relu", []string{h})
	}
	delta := q.T / float32(q.m())
	var in string
	if delta > 0 {
		d := s.f32("delta", delta)
		r := s.op("Round", []string{s.op("Div", []string{a, d})})
		in = s.op("Mul", []string{s.op("Min", []string{r, s.f32("m", float32(q.m()))}), d})
	} else {
		in = s.op("Mul", []string{a, s.f32("zero", 0)})
	}
	res := in
	if q.Ratio > 0 {
		cond := s.op("GreaterOrEqual", []string{a, s.f32("T", q.T)})
		var o string
		switch q.Format {
		case OutlierFP16:
			m := s.op("Min", []string{a, s.f32("fp16_max", MaxFloat16)})
			o = s.op("Cast", []string{s.op("Cast", []string{m}, onnx.AttrInt("to", int64(onnxpb.TensorProto_FLOAT16)))},
				onnx.AttrInt("to", int64(onnxpb.TensorProto_FLOAT)))
		case Outlier8:
			levels := float32(256)
			if q.Signed {
				levels = 128
			}
			if q.Max > q.T {
				step := s.f32("outlier_step", (q.Max-q.T)/(levels-1))
				t := s.f32("T", q.T)
				c := s.op("Round", []string{s.op("Div", []string{s.op("Sub", []string{a, t}), step})})
				c = s.op("Clip", []string{c, s.f32("zero", 0), s.f32("outlier_max", levels-1)})
				o = s.op("Add", []string{s.op("Mul", []string{c, step}), t})
			} else {
				o = s.f32("T", q.T)
			}
		default:
			o = a
		}
		res = s.op("Where", []string{cond, o, in})
	}
	if q.Signed {
		s.op("Mul", []string{res, sign})
	}
}

// ---- import ----

// parseDoc decodes a lowbit:quant doc_string (ok false when absent).
func parseDoc(doc string) (*fqDoc, *FakeQuant, bool, error) {
	rest, ok := strings.CutPrefix(doc, docPrefix)
	if !ok {
		return nil, nil, false, nil
	}
	var d fqDoc
	if err := json.Unmarshal([]byte(rest), &d); err != nil {
		return nil, nil, true, fmt.Errorf("quantizer description: %w", err)
	}
	if d.V != docV {
		return nil, nil, true, fmt.Errorf("quantizer description version %d, this lowbit reads %d", d.V, docV)
	}
	if err := d.Spec.Validate(); err != nil {
		return nil, nil, true, fmt.Errorf("quantizer description: %w", err)
	}
	q, err := d.State.Quantizer()
	if err != nil {
		return nil, nil, true, fmt.Errorf("quantizer description: %w", err)
	}
	return &d, &FakeQuant{Spec: d.Spec, Q: q, Baked: d.Baked}, true, nil
}

// importCast imports the Cast marker of a lowbit quantizer, or a plain
// float-to-float Cast as the identity.
func importCast(d *onnx.Decoder, n *onnxpb.NodeProto) error {
	if isDuQMarker(n) {
		return importDuQ(d, n) // duq_onnx.go
	}
	to := d.Attrs(n).Int("to", 0)
	if err := onnx.RequireInputs(n, 1, 1); err != nil {
		return err
	}
	if len(n.Output) != 1 {
		return fmt.Errorf("%d outputs, want 1", len(n.Output))
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	doc, fq, marked, err := parseDoc(n.DocString)
	if err != nil {
		return err
	}
	if to != int64(onnxpb.TensorProto_FLOAT) {
		return fmt.Errorf("Cast to %s is not supported (lowbit computes in float32)", onnxpb.TensorProto_DataType(to))
	}
	if !marked {
		d.Bind(n.Output[0], x) // float → float: the identity
		return nil
	}
	if fq.Baked {
		if x.Param == nil {
			return fmt.Errorf("quantized weight %q is not an initializer", n.Input[0])
		}
		x.Param.Kind = graph.Weight
		return d.Apply(n, fq, x)
	}
	last, err := claimSubgraph(d, n, doc.Out)
	if err != nil {
		return err
	}
	return d.Apply(last, fq, x)
}

// claimSubgraph collects the marked nodes computing out from the marker's
// output and constants, marks them imported and returns the last one.
func claimSubgraph(d *onnx.Decoder, head *onnxpb.NodeProto, out string) (*onnxpb.NodeProto, error) {
	last := d.Producer(out)
	if out == "" || last == nil {
		return nil, fmt.Errorf("quantizer output %q is not computed by any node", out)
	}
	from := head.Output[0]
	seen := map[*onnxpb.NodeProto]bool{}
	stack := []*onnxpb.NodeProto{last}
	for len(stack) > 0 {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[m] {
			continue
		}
		if m == head || m.DocString != partDoc {
			return nil, fmt.Errorf("node %q (%s) computes part of the quantizer output %q but is not marked as part of it", m.Name, m.OpType, out)
		}
		seen[m] = true
		for _, in := range m.Input {
			if in == "" || in == from || d.Constant(in) != nil {
				continue
			}
			p := d.Producer(in)
			if p == nil {
				return nil, fmt.Errorf("quantizer subgraph node %q reads %q from outside the subgraph", m.Name, in)
			}
			stack = append(stack, p)
		}
	}
	for m := range seen {
		for _, o := range m.Output {
			if o == out || o == "" {
				continue
			}
			if d.IsGraphOutput(o) {
				return nil, fmt.Errorf("quantizer subgraph tensor %q is a graph output", o)
			}
			for _, c := range d.Consumers(o) {
				if !seen[c] {
					return nil, fmt.Errorf("quantizer subgraph tensor %q is read by node %q outside the subgraph", o, c.Name)
				}
			}
		}
		d.Skip(m)
	}
	return last, nil
}

// constInts reads a constant integer input (int8/uint8/int32 …) with its
// data type.
func constInts(d *onnx.Decoder, n *onnxpb.NodeProto, i int) ([]int64, onnxpb.TensorProto_DataType, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return nil, onnxpb.TensorProto_UINT8, nil // ONNX default zero point: uint8 0
	}
	t := d.Constant(n.Input[i])
	if t == nil {
		return nil, 0, fmt.Errorf("input %d (%q) must be a constant", i, n.Input[i])
	}
	v, _, err := onnx.TensorInt64s(t)
	if err != nil {
		return nil, 0, fmt.Errorf("input %d: %w", i, err)
	}
	return v, onnxpb.TensorProto_DataType(t.DataType), nil
}

// qdqParams reads the scale and zero point inputs (1, 2) of a
// QuantizeLinear or DequantizeLinear node.
func qdqParams(d *onnx.Decoder, n *onnxpb.NodeProto) (scale []float32, zp []int64, dt onnxpb.TensorProto_DataType, err error) {
	if err := onnx.RequireInputs(n, 2, 3); err != nil {
		return nil, nil, 0, err
	}
	t := d.Constant(n.Input[1])
	if t == nil {
		return nil, nil, 0, fmt.Errorf("scale %q must be a constant", n.Input[1])
	}
	if scale, _, err = onnx.TensorFloats(t); err != nil {
		return nil, nil, 0, fmt.Errorf("scale: %w", err)
	}
	zp, dt, err = constInts(d, n, 2)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("zero point: %w", err)
	}
	if zp == nil {
		zp = make([]int64, len(scale))
	}
	if dt != onnxpb.TensorProto_INT8 && dt != onnxpb.TensorProto_UINT8 {
		return nil, nil, 0, fmt.Errorf("zero point type %s is not supported (want INT8 or UINT8)", dt)
	}
	if len(zp) != len(scale) || len(scale) == 0 {
		return nil, nil, 0, fmt.Errorf("%d scales and %d zero points", len(scale), len(zp))
	}
	return scale, zp, dt, nil
}

// foreignUniform builds the 8-bit asymmetric quantizer equivalent to
// ONNX codes of type dt with zero points zp: int8 codes and zero points
// are offset by 128 into the uint8 grid, which dequantizes identically.
func foreignUniform(scale []float32, zp []int64, dt onnxpb.TensorProto_DataType) (*Uniform, error) {
	u := &Uniform{Bits: 8, Scheme: Asymmetric, Scale: scale, ZeroPoint: make([]int32, len(zp))}
	for i, z := range zp {
		if dt == onnxpb.TensorProto_INT8 {
			z += 128
		}
		u.ZeroPoint[i] = int32(z)
	}
	return validUniform(u)
}

// matchUniform checks that a described uniform quantizer has the scale,
// zero point and storage type found in the file.
func matchUniform(u *Uniform, scale []float32, zp []int64, dt onnxpb.TensorProto_DataType) error {
	want, _, _ := storage(u)
	if u.Bits > 8 || want != dt || len(u.Scale) != len(scale) {
		return fmt.Errorf("described quantizer (%s) does not match the file's %d scales of type %s", u.Describe(), len(scale), dt)
	}
	for i := range scale {
		if math.Float32bits(u.Scale[i]) != math.Float32bits(scale[i]) || int64(u.ZeroPoint[i]) != zp[i] {
			return fmt.Errorf("described quantizer (%s) does not match the file's scale %v, zero point %d", u.Describe(), scale[i], zp[i])
		}
	}
	return nil
}

// importDequantizeLinear imports a quantized weight: a DequantizeLinear
// of an integer initializer becomes a weight parameter holding the
// dequantized values and a baked uniform quantizer.
func importDequantizeLinear(d *onnx.Decoder, n *onnxpb.NodeProto) error {
	axis := d.Attrs(n).Int("axis", 1)
	scale, zp, dt, err := qdqParams(d, n)
	if err != nil {
		return err
	}
	t := d.Constant(n.Input[0])
	if t == nil {
		return fmt.Errorf("DequantizeLinear of the computed tensor %q is supported only right after QuantizeLinear", n.Input[0])
	}
	if t.DataType != int32(dt) {
		return fmt.Errorf("codes %q have type %s, zero point %s", n.Input[0], onnxpb.TensorProto_DataType(t.DataType), dt)
	}
	codes, shape, err := onnx.TensorInt64s(t)
	if err != nil {
		return err
	}
	if len(scale) > 1 {
		if axis < 0 {
			axis += int64(len(shape))
		}
		if axis != 0 || len(shape) == 0 || shape[0] != len(scale) {
			return fmt.Errorf("per-axis dequantization on axis %d of shape %v with %d scales: only axis 0 is supported", axis, shape, len(scale))
		}
	}
	doc, fq, marked, err := parseDoc(n.DocString)
	if err != nil {
		return err
	}
	var u *Uniform
	if marked {
		var ok bool
		if u, ok = fq.Q.(*Uniform); !ok || !doc.Baked || fq.Spec.Role != WeightRole {
			return fmt.Errorf("quantizer description on DequantizeLinear is not a baked uniform weight quantizer")
		}
		if err := matchUniform(u, scale, zp, dt); err != nil {
			return err
		}
	} else {
		if u, err = foreignUniform(scale, zp, dt); err != nil {
			return err
		}
		fq = &FakeQuant{Spec: Spec{Role: WeightRole, Method: MethodUniform, Bits: 8, Signed: true, PerChannel: len(scale) > 1}, Q: u, Baked: true}
	}
	q := make([]int32, len(codes))
	qmin, qmax := u.QRange()
	off := int64(0)
	if !marked && dt == onnxpb.TensorProto_INT8 {
		off = 128
	}
	for i, c := range codes {
		c += off
		if c < int64(qmin) || c > int64(qmax) {
			return fmt.Errorf("code %d of %q outside the grid [%d, %d]", c-off, n.Input[0], qmin-int32(off), qmax-int32(off))
		}
		q[i] = int32(c)
	}
	w := tensor.New(shape...)
	if err := u.Dequantize(q, w.Data); err != nil {
		return err
	}
	v := d.Graph().AddParam(d.Graph().UniqueName(n.Input[0]), graph.Weight, w)
	if v == nil {
		return d.Graph().Err()
	}
	return d.Apply(n, fq, v)
}

// importQuantizeLinear imports QuantizeLinear [→ integer Clip] →
// DequantizeLinear as a uniform activation quantizer.
func importQuantizeLinear(d *onnx.Decoder, n *onnxpb.NodeProto) error {
	d.Attrs(n).Int("axis", 1)
	scale, zp, dt, err := qdqParams(d, n)
	if err != nil {
		return err
	}
	if len(scale) != 1 {
		return fmt.Errorf("per-axis activation quantization is not supported")
	}
	next := func(name string) (*onnxpb.NodeProto, error) {
		cons := d.Consumers(name)
		if len(cons) != 1 || d.IsGraphOutput(name) {
			return nil, fmt.Errorf("quantized tensor %q must feed exactly one Clip or DequantizeLinear", name)
		}
		return cons[0], nil
	}
	m, err := next(n.Output[0])
	if err != nil {
		return err
	}
	var clip *onnxpb.NodeProto
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if m.OpType == "Clip" && m.Domain == "" {
		clip = m
		if len(m.Input) > 1 && m.Input[1] != "" {
			v, t, err := constInts(d, m, 1)
			if err != nil || len(v) != 1 || t != dt {
				return fmt.Errorf("integer Clip %q: min must be a %s scalar constant", m.Name, dt)
			}
			lo = v[0]
		}
		if len(m.Input) > 2 && m.Input[2] != "" {
			v, t, err := constInts(d, m, 2)
			if err != nil || len(v) != 1 || t != dt {
				return fmt.Errorf("integer Clip %q: max must be a %s scalar constant", m.Name, dt)
			}
			hi = v[0]
		}
		if m, err = next(m.Output[0]); err != nil {
			return err
		}
	}
	if m.OpType != "DequantizeLinear" || m.Domain != "" {
		return fmt.Errorf("QuantizeLinear output feeds %s %q; lowbit imports QuantizeLinear only as part of a QuantizeLinear → DequantizeLinear pair", m.OpType, m.Name)
	}
	dscale, dzp, ddt, err := qdqParams(d, m)
	if err != nil {
		return fmt.Errorf("DequantizeLinear %q: %w", m.Name, err)
	}
	if len(dscale) != 1 || math.Float32bits(dscale[0]) != math.Float32bits(scale[0]) || dzp[0] != zp[0] || ddt != dt {
		return fmt.Errorf("QuantizeLinear and DequantizeLinear %q use different scales or zero points", m.Name)
	}
	smin, smax := int64(0), int64(255)
	if dt == onnxpb.TensorProto_INT8 {
		smin, smax = -128, 127
	}
	lo, hi = max(lo, smin), min(hi, smax)
	_, fq, marked, err := parseDoc(n.DocString)
	if err != nil {
		return err
	}
	if marked {
		u, ok := fq.Q.(*Uniform)
		if !ok || fq.Spec.Role != ActivationRole {
			return fmt.Errorf("quantizer description on QuantizeLinear is not a uniform activation quantizer")
		}
		if err := matchUniform(u, scale, zp, dt); err != nil {
			return err
		}
		if qmin, qmax := u.QRange(); int64(qmin) != lo || int64(qmax) != hi {
			return fmt.Errorf("described grid [%d, %d] does not match the file's code range [%d, %d]", qmin, qmax, lo, hi)
		}
	} else {
		if lo != smin || hi != smax {
			return fmt.Errorf("integer Clip to [%d, %d] without a lowbit quantizer description is not supported", lo, hi)
		}
		u, err := foreignUniform(scale, zp, dt)
		if err != nil {
			return err
		}
		fq = &FakeQuant{Spec: Spec{Role: ActivationRole, Method: MethodUniform, Bits: 8, Signed: true}, Q: u}
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	if clip != nil {
		d.Skip(clip)
	}
	d.Skip(m)
	return d.Apply(m, fq, x)
}
