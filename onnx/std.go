package onnx

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/ops"
)

// The exporters and importers of the ops in package ops, as tables: one
// entry per ONNX operator.

// simpleOps have no attributes and map one-to-one; the importer checks the
// input count.
var simpleOps = []struct {
	onnx     string
	min, max int
	op       graph.Op
	kinds    map[int]graph.Kind
}{
	{"Relu", 1, 1, ops.Relu{}, nil},
	{"Sigmoid", 1, 1, ops.Sigmoid{}, nil},
	{"Tanh", 1, 1, ops.Tanh{}, nil},
	{"HardSwish", 1, 1, ops.HardSwish{}, nil},
	{"GlobalAveragePool", 1, 1, ops.GlobalAveragePool{}, nil},
	{"Add", 2, 2, ops.Add{}, nil},
	{"Sub", 2, 2, ops.Sub{}, nil},
	{"Mul", 2, 2, ops.Mul{}, nil},
	{"Div", 2, 2, ops.Div{}, nil},
	{"MatMul", 2, 2, ops.MatMul{}, map[int]graph.Kind{1: graph.Weight}},
}

func init() {
	for _, s := range simpleOps {
		RegisterImporter("", s.onnx, Importer{ParamKinds: s.kinds, Import: func(d *Decoder, n *onnxpb.NodeProto) error {
			if err := RequireInputs(n, s.min, s.max); err != nil {
				return err
			}
			in, err := d.Inputs(n, s.max)
			if err != nil {
				return err
			}
			return d.Apply(n, s.op, in...)
		}})
	}
	simple := func(e *Encoder, n *graph.Node) error { e.Emit(n, n.Op.Type()); return nil }
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Relu) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Sigmoid) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Tanh) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.HardSwish) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.GlobalAveragePool) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Add) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Sub) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Mul) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Div) error { return simple(e, n) })
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.MatMul) error { return simple(e, n) })

	RegisterExporter(exportConv)
	RegisterImporter("", "Conv", Importer{Import: importConv, ParamKinds: map[int]graph.Kind{1: graph.Weight, 2: graph.Bias}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Gemm) error {
		e.Emit(n, "Gemm", AttrFloat("alpha", op.Alpha), AttrFloat("beta", op.Beta),
			AttrInt("transA", boolInt(op.TransA)), AttrInt("transB", boolInt(op.TransB)))
		return nil
	})
	RegisterImporter("", "Gemm", Importer{Import: importGemm, ParamKinds: map[int]graph.Kind{1: graph.Weight, 2: graph.Bias}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.BatchNorm) error {
		e.Emit(n, "BatchNormalization", AttrFloat("epsilon", op.Epsilon), AttrFloat("momentum", op.Momentum))
		return nil
	})
	RegisterImporter("", "BatchNormalization", Importer{Import: importBatchNorm, ParamKinds: map[int]graph.Kind{
		1: graph.BNScale, 2: graph.BNBias, 3: graph.BNMean, 4: graph.BNVar}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Clip) error {
		lo := e.FloatConst(n.Name+"_min", []float32{op.Min})
		hi := e.FloatConst(n.Name+"_max", []float32{op.Max})
		e.AddNode("Clip", n.Name, []string{e.Input(n, 0), lo, hi}, e.Outputs(n))
		return nil
	})
	RegisterImporter("", "Clip", Importer{Import: importClip})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.LeakyRelu) error {
		e.Emit(n, "LeakyRelu", AttrFloat("alpha", op.Alpha))
		return nil
	})
	RegisterImporter("", "LeakyRelu", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		return applyUnary(d, n, ops.LeakyRelu{Alpha: d.Attrs(n).Float("alpha", 0.01)})
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.HardSigmoid) error {
		e.Emit(n, "HardSigmoid", AttrFloat("alpha", op.Alpha), AttrFloat("beta", op.Beta))
		return nil
	})
	RegisterImporter("", "HardSigmoid", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		a := d.Attrs(n)
		return applyUnary(d, n, ops.HardSigmoid{Alpha: a.Float("alpha", 0.2), Beta: a.Float("beta", 0.5)})
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Concat) error {
		e.Emit(n, "Concat", AttrInt("axis", int64(op.Axis)))
		return nil
	})
	RegisterImporter("", "Concat", Importer{Import: importConcat})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.MaxPool) error {
		e.Emit(n, "MaxPool", AttrInts("kernel_shape", ints64(op.KH, op.KW)...),
			AttrInts("strides", ints64(one(op.StrideH), one(op.StrideW))...),
			AttrInts("pads", ints64(op.PadT, op.PadL, op.PadB, op.PadR)...),
			AttrInt("ceil_mode", boolInt(op.CeilMode)))
		return nil
	})
	RegisterImporter("", "MaxPool", Importer{Import: importMaxPool})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.AveragePool) error {
		e.Emit(n, "AveragePool", AttrInts("kernel_shape", ints64(op.KH, op.KW)...),
			AttrInts("strides", ints64(one(op.StrideH), one(op.StrideW))...),
			AttrInts("pads", ints64(op.PadT, op.PadL, op.PadB, op.PadR)...),
			AttrInt("ceil_mode", boolInt(op.CeilMode)),
			AttrInt("count_include_pad", boolInt(op.CountIncludePad)))
		return nil
	})
	RegisterImporter("", "AveragePool", Importer{Import: importAveragePool})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Flatten) error {
		e.Emit(n, "Flatten", AttrInt("axis", int64(op.Axis)))
		return nil
	})
	RegisterImporter("", "Flatten", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		op, err := flattenOp(d, n)
		if err != nil {
			return err
		}
		return applyUnary(d, n, op)
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Reshape) error {
		shape := e.Int64Const(n.Name+"_shape", ints64(op.Shape...), len(op.Shape))
		e.AddNode("Reshape", n.Name, []string{e.Input(n, 0), shape}, e.Outputs(n))
		return nil
	})
	RegisterImporter("", "Reshape", Importer{Import: importReshape})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Pad) error {
		pads := e.Int64Const(n.Name+"_pads", ints64(op.Pads...), len(op.Pads))
		val := e.FloatConst(n.Name+"_value", []float32{op.Value})
		e.AddNode("Pad", n.Name, []string{e.Input(n, 0), pads, val}, e.Outputs(n), AttrString("mode", "constant"))
		return nil
	})
	RegisterImporter("", "Pad", Importer{Import: importPad})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Dropout) error {
		ratio := e.FloatConst(n.Name+"_ratio", []float32{op.Ratio})
		e.AddNode("Dropout", n.Name, []string{e.Input(n, 0), ratio}, e.Outputs(n))
		return nil
	})
	RegisterImporter("", "Dropout", Importer{Import: importDropout})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Softmax) error {
		e.Emit(n, "Softmax", AttrInt("axis", int64(op.Axis)))
		return nil
	})
	RegisterImporter("", "Softmax", Importer{Import: importSoftmax})

	// Constant nodes of foreign files have no graph node of their own
	// (Identity and the layout ops are in layout.go).
	RegisterImporter("", "Constant", Importer{Import: importConstant})
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// one maps the "unset" 0 of strides and dilations to their default 1.
func one(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

func toInt(v int64) (int, error) {
	if v < -maxElems || v > maxElems {
		return 0, fmt.Errorf("value %d out of range", v)
	}
	return int(v), nil
}

func toInts(vs []int64) ([]int, error) {
	if vs == nil {
		return nil, nil
	}
	out := make([]int, len(vs))
	for i, v := range vs {
		x, err := toInt(v)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}

func applyUnary(d *Decoder, n *onnxpb.NodeProto, op graph.Op) error {
	x, err := firstInput(d, n, 1)
	if err != nil {
		return err
	}
	return d.Apply(n, op, x)
}

func exportConv(e *Encoder, n *graph.Node, op ops.Conv) error {
	if len(n.Inputs) < 2 || n.Inputs[1] == nil || len(n.Inputs[1].Shape) != 4 {
		return fmt.Errorf("weight must be a 4-D value")
	}
	ws := n.Inputs[1].Shape
	inputs := e.Inputs(n)
	pads := ints64(op.PadT, op.PadL, op.PadB, op.PadR)
	if op.PadValue != 0 && (op.PadT != 0 || op.PadL != 0 || op.PadB != 0 || op.PadR != 0) {
		// ONNX Conv pads with zeros: pad explicitly with the value first.
		pv := e.Int64Const(n.Name+"_pads", []int64{0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]}, 8)
		val := e.FloatConst(n.Name+"_pad_value", []float32{op.PadValue})
		out := e.FreshName(n.Name + "_padded")
		p := e.AddNode("Pad", e.FreshName(n.Name+"_pad"), []string{inputs[0], pv, val}, []string{out}, AttrString("mode", "constant"))
		p.DocString = convPadDoc
		inputs[0] = out
		pads = []int64{0, 0, 0, 0}
	}
	e.AddNode("Conv", n.Name, inputs, e.Outputs(n),
		AttrInts("kernel_shape", ints64(ws[2], ws[3])...),
		AttrInts("strides", ints64(one(op.StrideH), one(op.StrideW))...),
		AttrInts("pads", pads...),
		AttrInts("dilations", ints64(one(op.DilH), one(op.DilW))...),
		AttrInt("group", int64(one(op.Groups))))
	return nil
}

// convPad is a lowbit Pad node folded back into the Conv reading it.
type convPad struct {
	src        string
	t, l, b, r int
	value      float32
}

// window holds the spatial attributes shared by Conv and the pools.
type window struct {
	kh, kw, sh, sw, dh, dw int
	t, l, b, r             int
}

// readWindow decodes kernel_shape, strides, dilations, pads and auto_pad.
// kernel is the kernel size from the weight (Conv) or nil (pools, which
// require kernel_shape). x is the input, whose spatial size auto_pad SAME_*
// needs.
func readWindow(a *Attrs, x *graph.Value, kernel []int, dilations bool) (window, error) {
	var w window
	ks, err := toInts(a.Ints("kernel_shape"))
	if err != nil {
		return w, fmt.Errorf("attribute kernel_shape: %w", err)
	}
	switch {
	case len(ks) == 0 && kernel == nil:
		return w, fmt.Errorf("attribute kernel_shape is required")
	case len(ks) == 0:
		ks = kernel
	case kernel != nil && (len(ks) != len(kernel) || ks[0] != kernel[0] || ks[1] != kernel[1]):
		return w, fmt.Errorf("kernel_shape %v does not match the weight's kernel %v", ks, kernel)
	}
	if len(ks) != 2 {
		return w, fmt.Errorf("kernel_shape %v: only 2-D windows are supported", ks)
	}
	pair := func(name string, def int) ([]int, error) {
		v, err := toInts(a.Ints(name))
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		if v == nil {
			return []int{def, def}, nil
		}
		if len(v) != 2 || v[0] < 1 || v[1] < 1 {
			return nil, fmt.Errorf("attribute %s %v: want two positive values", name, v)
		}
		return v, nil
	}
	s, err := pair("strides", 1)
	if err != nil {
		return w, err
	}
	dl := []int{1, 1}
	if dilations || a.Has("dilations") {
		if dl, err = pair("dilations", 1); err != nil {
			return w, err
		}
		if !dilations && (dl[0] != 1 || dl[1] != 1) {
			return w, fmt.Errorf("dilations %v are not supported", dl)
		}
	}
	w.kh, w.kw, w.sh, w.sw, w.dh, w.dw = ks[0], ks[1], s[0], s[1], dl[0], dl[1]
	pads, err := toInts(a.Ints("pads"))
	if err != nil {
		return w, fmt.Errorf("attribute pads: %w", err)
	}
	if pads != nil {
		if len(pads) != 4 || pads[0] < 0 || pads[1] < 0 || pads[2] < 0 || pads[3] < 0 {
			return w, fmt.Errorf("attribute pads %v: want four non-negative values", pads)
		}
		w.t, w.l, w.b, w.r = pads[0], pads[1], pads[2], pads[3]
	}
	switch ap := a.String("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
	case "VALID":
		w.t, w.l, w.b, w.r = 0, 0, 0, 0
	case "SAME_UPPER", "SAME_LOWER":
		if pads != nil {
			return w, fmt.Errorf("auto_pad %s together with pads", ap)
		}
		if len(x.Shape) != 4 || x.Shape[2] < 0 || x.Shape[3] < 0 {
			return w, fmt.Errorf("auto_pad %s needs a known spatial input size, input %q has shape %v", ap, x.Name, x.Shape)
		}
		same := func(in, k, s, d int) (int, int) {
			out := (in + s - 1) / s
			total := max(0, (out-1)*s+(k-1)*d+1-in)
			if ap == "SAME_UPPER" {
				return total / 2, total - total/2
			}
			return total - total/2, total / 2
		}
		w.t, w.b = same(x.Shape[2], w.kh, w.sh, w.dh)
		w.l, w.r = same(x.Shape[3], w.kw, w.sw, w.dw)
	default:
		return w, fmt.Errorf("attribute auto_pad %q is not supported", ap)
	}
	return w, nil
}

func importConv(d *Decoder, n *onnxpb.NodeProto) error {
	if err := RequireInputs(n, 2, 3); err != nil {
		return err
	}
	cp, fused := d.convPads[n.Input[0]]
	var x *graph.Value
	var err error
	if fused {
		x, err = d.Value(cp.src)
	} else {
		x, err = d.Input(n, 0)
	}
	if err != nil {
		return err
	}
	w, err := d.Input(n, 1)
	if err != nil {
		return err
	}
	b, err := d.Input(n, 2)
	if err != nil {
		return err
	}
	if len(w.Shape) != 4 {
		return fmt.Errorf("weight %q has shape %v: only 2-D convolution (4-D weight) is supported", w.Name, w.Shape)
	}
	a := d.Attrs(n)
	win, err := readWindow(a, x, w.Shape[2:], true)
	if err != nil {
		return err
	}
	group, err := toInt(a.Int("group", 1))
	if err != nil || group < 1 {
		return fmt.Errorf("attribute group %d: want a positive value", a.Int("group", 1))
	}
	op := ops.Conv{StrideH: win.sh, StrideW: win.sw, DilH: win.dh, DilW: win.dw, Groups: group,
		PadT: win.t, PadL: win.l, PadB: win.b, PadR: win.r}
	if fused {
		op.PadT, op.PadL, op.PadB, op.PadR, op.PadValue = cp.t, cp.l, cp.b, cp.r, cp.value
	}
	in := []*graph.Value{x, w}
	if b != nil {
		in = append(in, b)
	}
	return d.Apply(n, op, in...)
}

// fusablePad reports whether a lowbit-marked Pad feeds exactly one Conv
// without padding of its own, so that the pair is one lowbit Conv.
func (d *Decoder) fusablePad(n *onnxpb.NodeProto, pads []int, value float32) (convPad, bool) {
	if len(n.Output) != 1 || len(pads) != 8 || d.outputs[n.Output[0]] {
		return convPad{}, false
	}
	if pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 {
		return convPad{}, false
	}
	for _, p := range pads {
		if p < 0 {
			return convPad{}, false
		}
	}
	cons := d.consumers[n.Output[0]]
	if len(cons) != 1 || cons[0].OpType != "Conv" || normDomain(cons[0].Domain) != "" {
		return convPad{}, false
	}
	c := cons[0]
	for i, in := range c.Input {
		if (i == 0) != (in == n.Output[0]) {
			return convPad{}, false
		}
	}
	for _, at := range c.Attribute {
		switch at.Name {
		case "pads":
			for _, p := range at.Ints {
				if p != 0 {
					return convPad{}, false
				}
			}
		case "auto_pad":
			if s := string(at.GetS()); s != "NOTSET" && s != "" && s != "VALID" {
				return convPad{}, false
			}
		}
	}
	return convPad{src: n.Input[0], t: pads[2], l: pads[3], b: pads[6], r: pads[7], value: value}, true
}

func importPad(d *Decoder, n *onnxpb.NodeProto) error {
	a := d.Attrs(n)
	if mode := a.String("mode", "constant"); mode != "constant" {
		return fmt.Errorf("mode %q is not supported (only constant)", mode)
	}
	var pads64 []int64
	var value float32
	if d.Opset("") < 11 {
		if err := RequireInputs(n, 1, 1); err != nil {
			return err
		}
		pads64, value = a.Ints("pads"), a.Float("value", 0)
	} else {
		if err := RequireInputs(n, 2, 4); err != nil {
			return err
		}
		if len(n.Input) == 4 && n.Input[3] != "" {
			return fmt.Errorf("input axes is not supported")
		}
		var err error
		if pads64, _, err = d.ConstInts(n, 1); err != nil {
			return err
		}
		if value, err = d.ConstFloat(n, 2, 0); err != nil {
			return err
		}
	}
	pads, err := toInts(pads64)
	if err != nil || len(pads)%2 != 0 || len(pads) == 0 {
		return fmt.Errorf("pads %v: want 2·rank values", pads64)
	}
	if n.DocString == convPadDoc {
		if cp, ok := d.fusablePad(n, pads, value); ok {
			d.convPads[n.Output[0]] = cp
			return nil
		}
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	return d.Apply(n, ops.Pad{Pads: pads, Value: value}, x)
}

func importGemm(d *Decoder, n *onnxpb.NodeProto) error {
	if err := RequireInputs(n, 2, 3); err != nil {
		return err
	}
	a := d.Attrs(n)
	if d.Opset("") < 7 {
		a.Int("broadcast", 0) // Gemm-6 broadcasting is implied by Gemm-7's
	}
	op := ops.Gemm{Alpha: a.Float("alpha", 1), Beta: a.Float("beta", 1),
		TransA: a.Int("transA", 0) != 0, TransB: a.Int("transB", 0) != 0}
	in, err := d.Inputs(n, 3)
	if err != nil {
		return err
	}
	if len(in) == 3 && in[2] == nil {
		in = in[:2]
	}
	return d.Apply(n, op, in...)
}

func importBatchNorm(d *Decoder, n *onnxpb.NodeProto) error {
	if err := RequireInputs(n, 5, 5); err != nil {
		return err
	}
	a := d.Attrs(n)
	if a.Int("training_mode", 0) != 0 {
		return fmt.Errorf("training_mode=1 is not supported")
	}
	if a.Int("spatial", 1) != 1 {
		return fmt.Errorf("spatial=0 is not supported")
	}
	a.Int("is_test", 0) // opset < 7: inference behaviour is what lowbit imports anyway
	op := ops.BatchNorm{Epsilon: a.Float("epsilon", 1e-5), Momentum: a.Float("momentum", 0.9)}
	in, err := d.Inputs(n, 5)
	if err != nil {
		return err
	}
	return d.Apply(n, op, in...)
}

func importClip(d *Decoder, n *onnxpb.NodeProto) error {
	op := ops.Clip{Min: -math.MaxFloat32, Max: math.MaxFloat32}
	if d.Opset("") < 11 {
		a := d.Attrs(n)
		op.Min, op.Max = a.Float("min", op.Min), a.Float("max", op.Max)
		return applyUnary(d, n, op)
	}
	if err := RequireInputs(n, 1, 3); err != nil {
		return err
	}
	var err error
	if op.Min, err = d.ConstFloat(n, 1, op.Min); err != nil {
		return err
	}
	if op.Max, err = d.ConstFloat(n, 2, op.Max); err != nil {
		return err
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	return d.Apply(n, op, x)
}

func poolInput(d *Decoder, n *onnxpb.NodeProto) (*graph.Value, window, error) {
	if err := RequireInputs(n, 1, 1); err != nil {
		return nil, window{}, err
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return nil, window{}, err
	}
	win, err := readWindow(d.Attrs(n), x, nil, false)
	return x, win, err
}

func importMaxPool(d *Decoder, n *onnxpb.NodeProto) error {
	x, w, err := poolInput(d, n)
	if err != nil {
		return err
	}
	a := d.Attrs(n)
	if a.Int("storage_order", 0) != 0 {
		return fmt.Errorf("storage_order=1 is not supported")
	}
	op := ops.MaxPool{KH: w.kh, KW: w.kw, StrideH: w.sh, StrideW: w.sw, PadT: w.t, PadL: w.l, PadB: w.b, PadR: w.r,
		CeilMode: a.Int("ceil_mode", 0) != 0}
	return d.Apply(n, op, x)
}

func importAveragePool(d *Decoder, n *onnxpb.NodeProto) error {
	x, w, err := poolInput(d, n)
	if err != nil {
		return err
	}
	a := d.Attrs(n)
	op := ops.AveragePool{KH: w.kh, KW: w.kw, StrideH: w.sh, StrideW: w.sw, PadT: w.t, PadL: w.l, PadB: w.b, PadR: w.r,
		CeilMode: a.Int("ceil_mode", 0) != 0, CountIncludePad: a.Int("count_include_pad", 0) != 0}
	return d.Apply(n, op, x)
}

func importDropout(d *Decoder, n *onnxpb.NodeProto) error {
	a := d.Attrs(n)
	a.Int("seed", 0) // lowbit seeds dropout per node itself
	ratio := float32(0.5)
	if d.Opset("") < 12 {
		if err := RequireInputs(n, 1, 1); err != nil {
			return err
		}
		ratio = a.Float("ratio", ratio)
		a.Int("is_test", 0)
	} else {
		if err := RequireInputs(n, 1, 3); err != nil {
			return err
		}
		var err error
		if ratio, err = d.ConstFloat(n, 1, ratio); err != nil {
			return err
		}
		training, err := d.ConstBool(n, 2, false)
		if err != nil {
			return err
		}
		if training {
			return fmt.Errorf("training_mode=true is not supported")
		}
	}
	if ratio < 0 || ratio >= 1 {
		return fmt.Errorf("ratio %v: want 0 ≤ ratio < 1", ratio)
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	return d.Apply(n, ops.Dropout{Ratio: ratio}, x)
}

func importSoftmax(d *Decoder, n *onnxpb.NodeProto) error {
	if err := RequireInputs(n, 1, 1); err != nil {
		return err
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	a := d.Attrs(n)
	if d.Opset("") < 13 {
		// Softmax-1/11 normalizes over all dimensions from axis on; that is
		// the opset-13 softmax only when axis is the last dimension.
		axis := a.Int("axis", 1)
		r := int64(len(x.Shape))
		if axis < 0 {
			axis += r
		}
		if axis != r-1 {
			return fmt.Errorf("opset %d softmax over axes %d.. of a rank-%d input is not supported", d.Opset(""), axis, r)
		}
		return d.Apply(n, ops.Softmax{Axis: -1}, x)
	}
	axis, err := toInt(a.Int("axis", -1))
	if err != nil {
		return fmt.Errorf("attribute axis: %w", err)
	}
	return d.Apply(n, ops.Softmax{Axis: axis}, x)
}

// importConstant records the tensor of a Constant node; it becomes a graph
// value only if an importer reads it as data.
func importConstant(d *Decoder, n *onnxpb.NodeProto) error {
	if len(n.Input) != 0 || len(n.Output) != 1 || n.Output[0] == "" {
		return fmt.Errorf("want no inputs and one output")
	}
	a := d.Attrs(n)
	name := n.Output[0]
	var t *onnxpb.TensorProto
	switch {
	case a.Has("value"):
		if t = a.Tensor("value"); t == nil {
			return fmt.Errorf("attribute value is empty")
		}
	case a.Has("value_float"):
		t = FloatTensor(name, []float32{a.Float("value_float", 0)})
	case a.Has("value_floats"):
		v := a.Floats("value_floats")
		t = FloatTensor(name, v, len(v))
	case a.Has("value_int"):
		t = Int64Tensor(name, []int64{a.Int("value_int", 0)})
	case a.Has("value_ints"):
		v := a.Ints("value_ints")
		t = Int64Tensor(name, v, len(v))
	default:
		return fmt.Errorf("no supported value attribute")
	}
	if err := a.Err(); err != nil {
		return err
	}
	d.SetConstant(name, t)
	return nil
}
