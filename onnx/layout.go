package onnx

import (
	"fmt"
	"slices"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/ops"
)

// Exporters and importers of the layout ops (Transpose, Squeeze, Unsqueeze,
// Split, Slice, ReduceMean, Identity) and the argument readers they share
// with the constant folder. Arguments that later opsets moved from
// attributes to inputs are read from whichever the file's opset uses.

func init() {
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Transpose) error {
		if op.Perm == nil {
			e.Emit(n, "Transpose")
		} else {
			e.Emit(n, "Transpose", AttrInts("perm", ints64(op.Perm...)...))
		}
		return nil
	})
	RegisterImporter("", "Transpose", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		op, err := transposeOp(d, n)
		if err != nil {
			return err
		}
		return applyUnary(d, n, op)
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Squeeze) error {
		return emitWithInts(e, n, "Squeeze", "axes", op.Axes)
	})
	RegisterImporter("", "Squeeze", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		x, err := firstInput(d, n, 2)
		if err != nil {
			return err
		}
		op, err := squeezeOp(d, n, x.Shape)
		if err != nil {
			return err
		}
		return d.Apply(n, op, x)
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Unsqueeze) error {
		return emitWithInts(e, n, "Unsqueeze", "axes", op.Axes)
	})
	RegisterImporter("", "Unsqueeze", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		x, err := firstInput(d, n, 2)
		if err != nil {
			return err
		}
		op, err := unsqueezeOp(d, n)
		if err != nil {
			return err
		}
		return d.Apply(n, op, x)
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.Split) error {
		split := e.Int64Const(n.Name+"_split", ints64(op.Sizes...), len(op.Sizes))
		e.AddNode("Split", n.Name, []string{e.Input(n, 0), split}, e.Outputs(n), AttrInt("axis", int64(op.Axis)))
		return nil
	})
	RegisterImporter("", "Split", Importer{Import: importSplit})
	RegisterExporter(exportSlice)
	RegisterImporter("", "Slice", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		x, err := d.Input(n, 0)
		if err != nil {
			return err
		}
		if x == nil {
			return fmt.Errorf("input 0 is empty")
		}
		op, err := sliceOp(d, n, len(x.Shape))
		if err != nil {
			return err
		}
		return d.Apply(n, op, x)
	}})
	RegisterExporter(func(e *Encoder, n *graph.Node, op ops.ReduceMean) error {
		attrs := []*onnxpb.AttributeProto{AttrInt("keepdims", boolInt(op.KeepDims))}
		if op.Axes != nil {
			attrs = append(attrs, AttrInts("axes", ints64(op.Axes...)...))
		}
		e.Emit(n, "ReduceMean", attrs...)
		return nil
	})
	RegisterImporter("", "ReduceMean", Importer{Import: importReduceMean})
	RegisterExporter(func(e *Encoder, n *graph.Node, _ ops.Identity) error {
		e.Emit(n, "Identity")
		return nil
	})
	RegisterImporter("", "Identity", Importer{Import: importIdentity})
}

// firstInput checks that n has 1 to hi inputs and resolves input 0.
func firstInput(d *Decoder, n *onnxpb.NodeProto, hi int) (*graph.Value, error) {
	if err := RequireInputs(n, 1, hi); err != nil {
		return nil, err
	}
	return d.Input(n, 0)
}

// emitWithInts emits a one-to-one node whose integer list argument is an
// INT64 input (the opset-13+ form of Squeeze and Unsqueeze axes).
func emitWithInts(e *Encoder, n *graph.Node, opType, arg string, vals []int) error {
	c := e.Int64Const(n.Name+"_"+arg, ints64(vals...), len(vals))
	e.AddNode(opType, n.Name, []string{e.Input(n, 0), c}, e.Outputs(n))
	return nil
}

func exportSlice(e *Encoder, n *graph.Node, op ops.Slice) error {
	k := len(op.Starts)
	axes, steps := op.Axes, op.Steps
	if axes == nil {
		axes = make([]int, k)
		for i := range axes {
			axes[i] = i
		}
	}
	if steps == nil {
		steps = slices.Repeat([]int{1}, k)
	}
	in := []string{e.Input(n, 0),
		e.Int64Const(n.Name+"_starts", ints64(op.Starts...), k),
		e.Int64Const(n.Name+"_ends", ints64(op.Ends...), k),
		e.Int64Const(n.Name+"_axes", ints64(axes...), k),
		e.Int64Const(n.Name+"_steps", ints64(steps...), k)}
	e.AddNode("Slice", n.Name, in, e.Outputs(n))
	return nil
}

// intsArg reads an integer list that is attribute attr before opset since
// and input i from then on. ok is false when it is absent.
func (d *Decoder) intsArg(n *onnxpb.NodeProto, i int, attr string, since int64) (vals []int64, ok bool, err error) {
	if d.Opset("") < since {
		if i < len(n.Input) {
			return nil, false, fmt.Errorf("input %d (%s) is an attribute before opset %d, the model imports opset %d", i, attr, since, d.Opset(""))
		}
		a := d.Attrs(n)
		if !a.Has(attr) {
			return nil, false, nil
		}
		return a.Ints(attr), true, nil
	}
	return d.ConstInts(n, i)
}

// plainInts converts int64 arguments (axes, starts, ...) to int; on 64-bit
// platforms this is exact, so INT64_MAX keeps meaning "to the end".
func plainInts(vs []int64) []int {
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = int(v)
	}
	return out
}

// axesInts converts axes, rejecting absurd values.
func axesInts(name string, vs []int64) ([]int, error) {
	out, err := toInts(vs)
	if err != nil {
		return nil, fmt.Errorf("%s %v: %w", name, vs, err)
	}
	return out, nil
}

func transposeOp(d *Decoder, n *onnxpb.NodeProto) (graph.Op, error) {
	if err := RequireInputs(n, 1, 1); err != nil {
		return nil, err
	}
	perm, err := axesInts("perm", d.Attrs(n).Ints("perm"))
	if err != nil {
		return nil, err
	}
	return ops.Transpose{Perm: perm}, nil
}

// squeezeOp builds a Squeeze of an input of the given shape; without axes
// it squeezes the axes of static size 1 (never the batch axis).
func squeezeOp(d *Decoder, n *onnxpb.NodeProto, shape []int) (graph.Op, error) {
	v, ok, err := d.intsArg(n, 1, "axes", 13)
	if err != nil {
		return nil, err
	}
	axes, err := axesInts("axes", v)
	if err != nil {
		return nil, err
	}
	if !ok || len(axes) == 0 {
		axes = nil
		for i, s := range shape {
			if s == 1 {
				axes = append(axes, i)
			}
		}
		if len(axes) == 0 {
			return ops.Identity{}, nil
		}
	}
	return ops.Squeeze{Axes: axes}, nil
}

func unsqueezeOp(d *Decoder, n *onnxpb.NodeProto) (graph.Op, error) {
	v, ok, err := d.intsArg(n, 1, "axes", 13)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("axes are required")
	}
	axes, err := axesInts("axes", v)
	if err != nil {
		return nil, err
	}
	return ops.Unsqueeze{Axes: axes}, nil
}

func flattenOp(d *Decoder, n *onnxpb.NodeProto) (graph.Op, error) {
	if err := RequireInputs(n, 1, 1); err != nil {
		return nil, err
	}
	axis, err := toInt(d.Attrs(n).Int("axis", 1))
	if err != nil {
		return nil, fmt.Errorf("attribute axis: %w", err)
	}
	return ops.Flatten{Axis: axis}, nil
}

// sliceOp reads the Slice arguments (attributes before opset 10, inputs
// from then on) for an input of the given rank.
func sliceOp(d *Decoder, n *onnxpb.NodeProto, rank int) (graph.Op, error) {
	var starts, ends, axes, steps []int64
	if d.Opset("") < 10 {
		if err := RequireInputs(n, 1, 1); err != nil {
			return nil, err
		}
		a := d.Attrs(n)
		starts, ends, axes = a.Ints("starts"), a.Ints("ends"), a.Ints("axes")
	} else {
		if err := RequireInputs(n, 3, 5); err != nil {
			return nil, err
		}
		var err error
		for i, dst := range []*[]int64{&starts, &ends, &axes, &steps} {
			if *dst, _, err = d.ConstInts(n, i+1); err != nil {
				return nil, err
			}
		}
	}
	op := ops.Slice{Starts: plainInts(starts), Ends: plainInts(ends)}
	if axes != nil {
		var err error
		if op.Axes, err = axesInts("axes", axes); err != nil {
			return nil, err
		}
	}
	if steps != nil {
		op.Steps = plainInts(steps)
	}
	if _, err := op.InferShapes([][]int{make([]int, rank)}); err != nil {
		return nil, err
	}
	return op, nil
}

func concatAxis(d *Decoder, n *onnxpb.NodeProto) (int, error) {
	a := d.Attrs(n)
	if !a.Has("axis") {
		return 0, fmt.Errorf("attribute axis is required")
	}
	axis, err := toInt(a.Int("axis", 0))
	if err != nil {
		return 0, fmt.Errorf("attribute axis: %w", err)
	}
	if len(n.Input) == 0 {
		return 0, fmt.Errorf("no inputs")
	}
	return axis, nil
}

// reshapeTarget reads the target shape of a Reshape whose input has shape
// in. Entries standing for the batch size (from a folded Shape) become 0
// ("copy") where the input has its batch axis at the same index, or the
// single inferred −1 otherwise; batched is false for constant inputs,
// which have no batch axis.
func reshapeTarget(d *Decoder, n *onnxpb.NodeProto, in []int, batched bool) ([]int, error) {
	a := d.Attrs(n)
	var target []int64
	var mask []bool
	if d.Opset("") < 5 {
		if err := RequireInputs(n, 1, 1); err != nil {
			return nil, err
		}
		target = a.Ints("shape")
	} else {
		if err := RequireInputs(n, 2, 2); err != nil {
			return nil, err
		}
		c, err := d.constInput(n, 1)
		if err != nil {
			return nil, err
		}
		if c.isFloat() {
			return nil, fmt.Errorf("input 1 (%q): data type FLOAT, want INT64", n.Input[1])
		}
		target, mask = c.i, c.batch
	}
	shape, err := toInts(target)
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	infer := false
	for j, s := range shape {
		infer = infer || (s == -1 && (j >= len(mask) || !mask[j]))
	}
	for j, isBatch := range mask {
		if !isBatch {
			continue
		}
		switch {
		case !batched:
			return nil, fmt.Errorf("shape %v of a constant depends on the batch size", target)
		case j < len(in) && in[j] < 0:
			shape[j] = 0
		case !infer:
			shape[j], infer = -1, true
		default:
			return nil, fmt.Errorf("shape %v: the batch size moves to axis %d next to an inferred axis; lowbit cannot express this", target, j)
		}
	}
	if a.Int("allowzero", 0) != 0 && slices.Contains(target, 0) {
		return nil, fmt.Errorf("allowzero=1 with a zero in shape %v is not supported", target)
	}
	return shape, nil
}

func importReshape(d *Decoder, n *onnxpb.NodeProto) error {
	if len(n.Input) == 0 {
		return fmt.Errorf("no inputs")
	}
	x, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	shape, err := reshapeTarget(d, n, x.Shape, true)
	if err != nil {
		return err
	}
	return d.Apply(n, ops.Reshape{Shape: shape}, x)
}

func importConcat(d *Decoder, n *onnxpb.NodeProto) error {
	axis, err := concatAxis(d, n)
	if err != nil {
		return err
	}
	in, err := d.Inputs(n, len(n.Input))
	if err != nil {
		return err
	}
	for i, v := range in {
		if v == nil {
			return fmt.Errorf("input %d is empty", i)
		}
	}
	return d.Apply(n, ops.Concat{Axis: axis}, in...)
}

func importSplit(d *Decoder, n *onnxpb.NodeProto) error {
	x, err := firstInput(d, n, 2)
	if err != nil {
		return err
	}
	a := d.Attrs(n)
	axis, err := toInt(a.Int("axis", 0))
	if err != nil {
		return fmt.Errorf("attribute axis: %w", err)
	}
	v, ok, err := d.intsArg(n, 1, "split", 13)
	if err != nil {
		return err
	}
	sizes, err := axesInts("split", v)
	if err != nil {
		return err
	}
	if !ok {
		// Equal parts, one per output (opset 18: num_outputs, the last
		// part possibly smaller).
		parts := len(n.Output)
		uneven := false
		if a.Has("num_outputs") {
			k := a.Int("num_outputs", 0)
			if k < 1 || k != int64(len(n.Output)) {
				return fmt.Errorf("num_outputs %d with %d outputs", k, len(n.Output))
			}
			uneven = true
		}
		ax := axis
		if ax < 0 {
			ax += len(x.Shape)
		}
		if ax < 0 || ax >= len(x.Shape) || x.Shape[ax] < 0 || parts == 0 {
			return fmt.Errorf("cannot split axis %d of shape %v into %d parts", axis, x.Shape, parts)
		}
		dim := x.Shape[ax]
		if dim%parts != 0 && !uneven {
			return fmt.Errorf("axis %d of shape %v does not split into %d equal parts", axis, x.Shape, parts)
		}
		each := (dim + parts - 1) / parts
		for range parts {
			sizes = append(sizes, min(each, dim))
			dim -= min(each, dim)
		}
	}
	if len(sizes) != len(n.Output) {
		return fmt.Errorf("%d split sizes for %d outputs", len(sizes), len(n.Output))
	}
	return d.Apply(n, ops.Split{Axis: axis, Sizes: sizes}, x)
}

func importReduceMean(d *Decoder, n *onnxpb.NodeProto) error {
	x, err := firstInput(d, n, 2)
	if err != nil {
		return err
	}
	a := d.Attrs(n)
	keep := a.Int("keepdims", 1) != 0
	v, ok, err := d.intsArg(n, 1, "axes", 18)
	if err != nil {
		return err
	}
	axes, err := axesInts("axes", v)
	if err != nil {
		return err
	}
	if !ok || len(axes) == 0 {
		if a.Int("noop_with_empty_axes", 0) != 0 {
			return d.Apply(n, ops.Identity{}, x)
		}
		axes = nil
	}
	return d.Apply(n, ops.ReduceMean{Axes: axes, KeepDims: keep}, x)
}

// importIdentity aliases the output to the input, except for graph
// outputs, which keep their own name through an Identity node.
func importIdentity(d *Decoder, n *onnxpb.NodeProto) error {
	if err := RequireInputs(n, 1, 1); err != nil {
		return err
	}
	if len(n.Output) != 1 || n.Output[0] == "" {
		return fmt.Errorf("%d outputs, want 1", len(n.Output))
	}
	v, err := d.Input(n, 0)
	if err != nil {
		return err
	}
	if d.IsGraphOutput(n.Output[0]) {
		return d.Apply(n, ops.Identity{}, v)
	}
	d.Bind(n.Output[0], v)
	return nil
}
