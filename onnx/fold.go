package onnx

import (
	"fmt"
	"math"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/ops"
	"lowbit/tensor"
)

// Constant folding at import time. Exporters compute reshape targets and
// pads at run time through chains like Shape → Gather → Unsqueeze → Concat
// → Reshape. lowbit knows every shape except the batch size when it builds
// the graph, so such chains are evaluated here and their results become
// constants that the consuming importer reads (Reshape, Pad, ...). Entries
// equal to the batch size are tracked symbolically: they may be moved
// (Gather, Concat, Slice, ...) but not computed with, and a Reshape target
// maps them back to "copy the input dimension".

// cval is a constant tensor being folded.
type cval struct {
	dt    onnxpb.TensorProto_DataType // FLOAT, BOOL or an integer type
	shape []int
	f     []float32 // FLOAT data
	i     []int64   // integer and BOOL data
	// batch marks integer entries standing for the batch size; nil when
	// there are none.
	batch []bool
}

// maxFold bounds the elements of one folded tensor whose layout is
// computed through float32 index arithmetic (exact below 2^24).
const maxFold = 1 << 24

// foldLimit is the largest constant input that operators with a run-time
// form (Transpose, Mul, ...) fold; larger constants, such as big weights
// behind a Transpose, stay run-time nodes fed by a parameter, which keeps
// import time and memory proportional to the file.
const foldLimit = 1 << 20

// foldBudget bounds the values all folds of one import may produce, so a
// small hostile file cannot expand into gigabytes of constants.
const foldBudget = 1 << 26

func (c *cval) isFloat() bool { return c.dt == onnxpb.TensorProto_FLOAT }

func (c *cval) len() int {
	if c.isFloat() {
		return len(c.f)
	}
	return len(c.i)
}

func (c *cval) hasBatch() bool {
	for _, b := range c.batch {
		if b {
			return true
		}
	}
	return false
}

// take returns the tensor of the given shape holding the elements at the
// flat positions idx of c.
func (c *cval) take(shape []int, idx []int) *cval {
	out := &cval{dt: c.dt, shape: shape}
	if c.isFloat() {
		out.f = make([]float32, len(idx))
		for j, k := range idx {
			out.f[j] = c.f[k]
		}
		return out
	}
	out.i = make([]int64, len(idx))
	if c.batch != nil {
		out.batch = make([]bool, len(idx))
	}
	for j, k := range idx {
		out.i[j] = c.i[k]
		if c.batch != nil {
			out.batch[j] = c.batch[k]
		}
	}
	return out
}

// ints returns the integer values, failing on floats and batch entries.
func (c *cval) ints(what string) ([]int64, error) {
	if c.isFloat() {
		return nil, fmt.Errorf("%s: data type FLOAT, want an integer type", what)
	}
	if c.hasBatch() {
		return nil, fmt.Errorf("%s depends on the batch size, which lowbit only knows at run time", what)
	}
	return c.i, nil
}

// decodeConst converts a constant tensor into a cval.
func decodeConst(t *onnxpb.TensorProto, mask []bool) (*cval, error) {
	if t.DataType == int32(onnxpb.TensorProto_FLOAT) {
		f, shape, err := TensorFloats(t)
		if err != nil {
			return nil, err
		}
		return &cval{dt: onnxpb.TensorProto_FLOAT, shape: shape, f: f}, nil
	}
	i, shape, err := TensorInt64s(t)
	if err != nil {
		return nil, err
	}
	c := &cval{dt: onnxpb.TensorProto_DataType(t.DataType), shape: shape, i: i}
	if mask != nil && len(mask) == len(i) {
		c.batch = mask
	}
	return c, nil
}

// encode converts c into a tensor named name; batch entries are stored
// as −1 (the mask is kept by the decoder).
func (c *cval) encode(name string) *onnxpb.TensorProto {
	switch {
	case c.isFloat():
		return FloatTensor(name, c.f, c.shape...)
	case c.dt == onnxpb.TensorProto_BOOL:
		raw := make([]byte, len(c.i))
		for j, v := range c.i {
			if v != 0 {
				raw[j] = 1
			}
		}
		return RawTensor(name, onnxpb.TensorProto_BOOL, raw, c.shape...)
	}
	vals := c.i
	if c.hasBatch() {
		vals = append([]int64(nil), c.i...)
		for j, b := range c.batch {
			if b {
				vals[j] = -1
			}
		}
	}
	return Int64Tensor(name, vals, c.shape...)
}

// isConst reports whether tensor name is known at import time.
func (d *Decoder) isConst(name string) bool {
	if name == "" {
		return false
	}
	_, c := d.consts[name]
	_, i := d.inits[name]
	return c || i
}

// constLen returns the element count of constant name (or maxElems when
// its dimensions are invalid; decoding reports those).
func (d *Decoder) constLen(name string) int {
	t := d.consts[name]
	if t == nil {
		t = d.inits[name]
	}
	_, n, err := TensorDims(t)
	if err != nil {
		return maxElems
	}
	return n
}

// constVal reads a constant tensor (marking an initializer as folded).
func (d *Decoder) constVal(name string) (*cval, error) {
	t := d.Constant(name)
	if t == nil {
		return nil, fmt.Errorf("tensor %q is not a constant", name)
	}
	c, err := decodeConst(t, d.masks[name])
	if err != nil {
		return nil, fmt.Errorf("constant %q: %w", name, err)
	}
	return c, nil
}

// constInput reads input i of n as a constant (nil when omitted).
func (d *Decoder) constInput(n *onnxpb.NodeProto, i int) (*cval, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return nil, nil
	}
	c, err := d.constVal(n.Input[i])
	if err != nil {
		return nil, fmt.Errorf("input %d: %w", i, err)
	}
	return c, nil
}

// constArgs checks that n has lo to hi inputs, the first lo present, and
// reads them all as constants (omitted ones nil).
func (d *Decoder) constArgs(n *onnxpb.NodeProto, lo, hi int) ([]*cval, error) {
	if err := RequireInputs(n, lo, hi); err != nil {
		return nil, err
	}
	in := make([]*cval, len(n.Input))
	for i := range n.Input {
		c, err := d.constInput(n, i)
		if err != nil {
			return nil, err
		}
		in[i] = c
	}
	return in, nil
}

func (d *Decoder) setConst(name string, c *cval) {
	d.SetConstant(name, c.encode(name))
	if c.hasBatch() {
		d.masks[name] = c.batch
	} else {
		delete(d.masks, name)
	}
}

// foldFunc computes the single output of an ONNX node from constant
// inputs.
type foldFunc func(d *Decoder, n *onnxpb.NodeProto) (*cval, error)

// folders evaluates these operators when all their inputs are constants
// (Shape only needs its input's static shape). foldOnly lists those that
// lowbit supports only this way.
var (
	folders = map[string]foldFunc{
		"Shape": foldShape, "Gather": foldGather, "Cast": foldCast, "ConstantOfShape": foldConstantOfShape,
		"Unsqueeze": foldReshapeLike, "Squeeze": foldReshapeLike, "Reshape": foldReshapeLike, "Flatten": foldReshapeLike,
		"Identity": foldIdentity, "Concat": foldConcat, "Transpose": foldLayout, "Slice": foldLayout,
		"Add": foldArith, "Sub": foldArith, "Mul": foldArith, "Div": foldArith,
	}
	foldOnly = map[string]bool{"Shape": true, "Gather": true, "Cast": true, "ConstantOfShape": true}
)

// folder returns the fold function for n if n can be folded now.
func (d *Decoder) folder(n *onnxpb.NodeProto) foldFunc {
	// Nodes lowbit marked (quantizer forms, see hooks.go) are rebuilt by
	// their importers even when their inputs are constants.
	if normDomain(n.Domain) != "" || lowbitMarked(n) {
		return nil
	}
	f := folders[n.OpType]
	if f == nil {
		return nil
	}
	if n.OpType == "Shape" {
		return f
	}
	some := false
	for _, in := range n.Input {
		if in == "" {
			continue
		}
		if !d.isConst(in) || (!foldOnly[n.OpType] && d.constLen(in) > foldLimit) {
			return nil
		}
		some = true
	}
	if !some {
		return nil
	}
	return f
}

// fold evaluates n and records its output as a constant.
func (d *Decoder) fold(n *onnxpb.NodeProto, f foldFunc) error {
	c, err := f(d, n)
	if err != nil {
		return err
	}
	if d.foldedVals += c.len(); d.foldedVals > foldBudget {
		return fmt.Errorf("constant folding produced more than %d values; the file is not a plausible model", foldBudget)
	}
	if len(n.Output) == 0 || n.Output[0] == "" {
		return fmt.Errorf("no output")
	}
	for i, o := range n.Output[1:] {
		if o != "" && d.used(o) {
			return fmt.Errorf("output %d (%q) of a constant %s is not supported", i+1, o, n.OpType)
		}
	}
	d.setConst(n.Output[0], c)
	return nil
}

// notFoldable is the error of a fold-only operator on run-time data.
func notFoldable(n *onnxpb.NodeProto) error {
	return fmt.Errorf("op type %s is supported only on constant inputs (shape computations folded at import); input %q is computed at run time", n.OpType, n.Input[0])
}

func foldIdentity(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	in, err := d.constArgs(n, 1, 1)
	if err != nil {
		return nil, err
	}
	return in[0], nil
}

// foldShape returns the static shape of its input, with the batch
// dimension symbolic. Opset 15 start and end select a range of axes.
func foldShape(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	if err := RequireInputs(n, 1, 1); err != nil {
		return nil, err
	}
	var shape []int
	if d.isConst(n.Input[0]) {
		c, err := d.constInput(n, 0)
		if err != nil {
			return nil, err
		}
		shape = c.shape
	} else {
		v, err := d.Input(n, 0)
		if err != nil {
			return nil, err
		}
		shape = v.Shape
	}
	r := int64(len(shape))
	a := d.Attrs(n)
	start, end := a.Int("start", 0), a.Int("end", r)
	clamp := func(x int64) int {
		if x < 0 {
			x += r
		}
		return int(min(max(x, 0), r))
	}
	lo, hi := clamp(start), clamp(end)
	out := &cval{dt: onnxpb.TensorProto_INT64, shape: []int{max(0, hi-lo)}}
	for _, s := range shape[lo:max(lo, hi)] {
		out.i = append(out.i, int64(s))
		out.batch = append(out.batch, s < 0)
	}
	return out, nil
}

func foldGather(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	in, err := d.constArgs(n, 2, 2)
	if err != nil {
		return nil, err
	}
	data, ic := in[0], in[1]
	ind, err := ic.ints("indices")
	if err != nil {
		return nil, err
	}
	r := len(data.shape)
	axis64 := d.Attrs(n).Int("axis", 0)
	if axis64 < int64(-r) || axis64 >= int64(r) {
		return nil, fmt.Errorf("axis %d out of range for data of shape %v", axis64, data.shape)
	}
	axis := int(axis64)
	if axis < 0 {
		axis += r
	}
	dim := data.shape[axis]
	outer, inner := tensor.Numel(data.shape[:axis]), tensor.Numel(data.shape[axis+1:])
	shape := append(append(append([]int{}, data.shape[:axis]...), ic.shape...), data.shape[axis+1:]...)
	idx := make([]int, 0, outer*len(ind)*inner)
	for o := range outer {
		for _, j := range ind {
			if j < int64(-dim) || j >= int64(dim) {
				return nil, fmt.Errorf("index %d out of range for axis %d of size %d", j, axis, dim)
			}
			if j < 0 {
				j += int64(dim)
			}
			for k := range inner {
				idx = append(idx, (o*dim+int(j))*inner+k)
			}
		}
	}
	return data.take(shape, idx), nil
}

func foldCast(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	in, err := d.constArgs(n, 1, 1)
	if err != nil {
		return nil, err
	}
	c := in[0]
	a := d.Attrs(n)
	a.Int("saturate", 1) // only matters for float8 targets, rejected below
	to := onnxpb.TensorProto_DataType(a.Int("to", 0))
	out := &cval{dt: to, shape: c.shape}
	switch {
	case to == onnxpb.TensorProto_FLOAT:
		if c.isFloat() {
			return c, nil
		}
		if c.hasBatch() {
			return nil, fmt.Errorf("cast to FLOAT of a value that depends on the batch size")
		}
		out.f = make([]float32, len(c.i))
		for j, v := range c.i {
			out.f[j] = float32(v)
		}
	case to == onnxpb.TensorProto_BOOL || intTypes[to].size > 0 || to == onnxpb.TensorProto_UINT64:
		if !c.isFloat() {
			out.i, out.batch = c.i, c.batch
		} else {
			out.i = make([]int64, len(c.f))
			for j, v := range c.f {
				if math.IsNaN(float64(v)) || math.Abs(float64(v)) >= 1<<62 {
					return nil, fmt.Errorf("cast of %v to %s", v, dataTypeName(int32(to)))
				}
				out.i[j] = int64(v) // truncation toward zero, as in ONNX
			}
		}
		if to == onnxpb.TensorProto_BOOL {
			if c.hasBatch() {
				return nil, fmt.Errorf("cast to BOOL of a value that depends on the batch size")
			}
			b := make([]int64, len(out.i))
			for j, v := range out.i {
				if v != 0 {
					b[j] = 1
				}
			}
			out.i = b
		}
	default:
		return nil, fmt.Errorf("cast to %s is not supported", dataTypeName(int32(to)))
	}
	return out, nil
}

func foldConstantOfShape(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	in, err := d.constArgs(n, 1, 1)
	if err != nil {
		return nil, err
	}
	dims, err := in[0].ints("shape")
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(dims))
	total := 1
	for j, v := range dims {
		if v < 0 || v > maxFold {
			return nil, fmt.Errorf("invalid dimension %d in shape %v", v, dims)
		}
		shape[j] = int(v)
		total *= int(v)
		if total > maxFold {
			return nil, fmt.Errorf("shape %v is too large to fold", dims)
		}
	}
	fill := &cval{dt: onnxpb.TensorProto_FLOAT, f: []float32{0}}
	if t := d.Attrs(n).Tensor("value"); t != nil {
		if fill, err = decodeConst(t, nil); err != nil {
			return nil, fmt.Errorf("attribute value: %w", err)
		}
		if fill.len() != 1 {
			return nil, fmt.Errorf("attribute value has %d elements, want 1", fill.len())
		}
	}
	out := &cval{dt: fill.dt, shape: shape}
	if fill.isFloat() {
		out.f = make([]float32, total)
		for j := range out.f {
			out.f[j] = fill.f[0]
		}
	} else {
		out.i = make([]int64, total)
		for j := range out.i {
			out.i[j] = fill.i[0]
		}
	}
	return out, nil
}

// layoutIndex runs op on a float tensor holding the flat indices of shape
// and returns the output shape and the source index of every output
// element: folding reuses the run-time op's exact semantics.
func layoutIndex(op graph.Op, shape []int) ([]int, []int, error) {
	n := tensor.Numel(shape)
	if n > maxFold {
		return nil, nil, fmt.Errorf("constant of shape %v is too large to fold", shape)
	}
	x := &tensor.Tensor{Shape: shape, Data: make([]float32, n)}
	for j := range x.Data {
		x.Data[j] = float32(j)
	}
	if _, err := op.InferShapes([][]int{shape}); err != nil {
		return nil, nil, err
	}
	out, err := op.Forward(graph.NewContext(false, 0), []*tensor.Tensor{x})
	if err != nil {
		return nil, nil, err
	}
	idx := make([]int, len(out[0].Data))
	for j, v := range out[0].Data {
		idx[j] = int(v)
	}
	return append([]int{}, out[0].Shape...), idx, nil
}

// foldLayout folds Transpose and Slice through the ops' own forward.
func foldLayout(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	c, err := d.constInput(n, 0)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("input 0 is empty")
	}
	var op graph.Op
	if n.OpType == "Transpose" {
		op, err = transposeOp(d, n)
	} else {
		op, err = sliceOp(d, n, len(c.shape))
	}
	if err != nil {
		return nil, err
	}
	shape, idx, err := layoutIndex(op, c.shape)
	if err != nil {
		return nil, err
	}
	return c.take(shape, idx), nil
}

// foldReshapeLike folds Reshape, Flatten, Squeeze and Unsqueeze: the data
// stays, the shape changes.
func foldReshapeLike(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	c, err := d.constInput(n, 0)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("input 0 is empty")
	}
	var op graph.Op
	switch n.OpType {
	case "Reshape":
		var target []int
		if target, err = reshapeTarget(d, n, c.shape, false); err == nil {
			op = ops.Reshape{Shape: target}
		}
	case "Flatten":
		op, err = flattenOp(d, n)
	case "Squeeze":
		op, err = squeezeOp(d, n, c.shape)
	default:
		op, err = unsqueezeOp(d, n)
	}
	if err != nil {
		return nil, err
	}
	shapes, err := op.InferShapes([][]int{c.shape})
	if err != nil {
		return nil, err
	}
	out := *c
	out.shape = shapes[0]
	return &out, nil
}

func foldConcat(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	axis, err := concatAxis(d, n)
	if err != nil {
		return nil, err
	}
	// Concatenate the flat data, then reorder it with the Concat op
	// applied to index tensors.
	var parts []*cval
	joined := &cval{}
	var idxIn []*tensor.Tensor
	for i := range n.Input {
		c, err := d.constInput(n, i)
		if err != nil {
			return nil, err
		}
		if c == nil {
			return nil, fmt.Errorf("input %d is empty", i)
		}
		if i > 0 && c.isFloat() != parts[0].isFloat() {
			return nil, fmt.Errorf("inputs 0 and %d have different data types", i)
		}
		off := joined.len()
		if off+c.len() > maxFold {
			return nil, fmt.Errorf("constants too large to fold")
		}
		t := tensor.New(c.shape...)
		for j := range t.Data {
			t.Data[j] = float32(off + j)
		}
		idxIn = append(idxIn, t)
		parts = append(parts, c)
		joined.dt = c.dt
		joined.f = append(joined.f, c.f...)
		joined.i = append(joined.i, c.i...)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("no inputs")
	}
	for _, c := range parts {
		if c.hasBatch() {
			// Some entries stand for the batch size: carry the masks along.
			joined.batch = make([]bool, 0, len(joined.i))
			for _, p := range parts {
				m := p.batch
				if m == nil {
					m = make([]bool, len(p.i))
				}
				joined.batch = append(joined.batch, m...)
			}
			break
		}
	}
	shapes := make([][]int, len(parts))
	for i, c := range parts {
		shapes[i] = c.shape
	}
	op := ops.Concat{Axis: axis}
	if _, err := op.InferShapes(shapes); err != nil {
		return nil, err
	}
	out, err := op.Forward(graph.NewContext(false, 0), idxIn)
	if err != nil {
		return nil, err
	}
	idx := make([]int, len(out[0].Data))
	for j, v := range out[0].Data {
		idx[j] = int(v)
	}
	return joined.take(append([]int{}, out[0].Shape...), idx), nil
}

// foldArith folds Add, Sub, Mul and Div with NumPy broadcasting. Integer
// division truncates toward zero, as ONNX Runtime does.
func foldArith(d *Decoder, n *onnxpb.NodeProto) (*cval, error) {
	in, err := d.constArgs(n, 2, 2)
	if err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if a.isFloat() != b.isFloat() {
		return nil, fmt.Errorf("inputs have different data types (%s and %s)", dataTypeName(int32(a.dt)), dataTypeName(int32(b.dt)))
	}
	if a.hasBatch() || b.hasBatch() {
		return nil, fmt.Errorf("arithmetic on a value that depends on the batch size is not supported (lowbit folds shape computations at import time)")
	}
	shape, ia, ib, err := broadcastIndex(a.shape, b.shape)
	if err != nil {
		return nil, err
	}
	out := &cval{dt: a.dt, shape: shape}
	if a.isFloat() {
		out.f = arith(n.OpType, a.f, b.f, ia, ib)
		return out, nil
	}
	if n.OpType == "Div" {
		for _, k := range ib {
			if b.i[k] == 0 {
				return nil, fmt.Errorf("integer division by zero")
			}
		}
	}
	out.i = arith(n.OpType, a.i, b.i, ia, ib)
	return out, nil
}

// arith computes a[ia[j]] op b[ib[j]] for every j (op is Add, Sub, Mul or
// Div; integer division truncates).
func arith[T int64 | float32](op string, a, b []T, ia, ib []int) []T {
	out := make([]T, len(ia))
	for j := range ia {
		x, y := a[ia[j]], b[ib[j]]
		switch op {
		case "Add":
			out[j] = x + y
		case "Sub":
			out[j] = x - y
		case "Mul":
			out[j] = x * y
		default:
			out[j] = x / y
		}
	}
	return out
}

// broadcastIndex returns the NumPy broadcast of shapes a and b and, for
// every output element, the flat index into each operand.
func broadcastIndex(a, b []int) (shape, ia, ib []int, err error) {
	r := max(len(a), len(b))
	shape = make([]int, r)
	sa, sb := make([]int, r), make([]int, r)
	stA, stB := 1, 1
	for k := r - 1; k >= 0; k-- {
		da, db := 1, 1
		if j := k - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := k - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db || db == 1:
			shape[k] = da
		case da == 1:
			shape[k] = db
		default:
			return nil, nil, nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
		if da != 1 {
			sa[k] = stA
		}
		if db != 1 {
			sb[k] = stB
		}
		stA *= da
		stB *= db
	}
	total := tensor.Numel(shape)
	if total > maxFold {
		return nil, nil, nil, fmt.Errorf("broadcast shape %v is too large to fold", shape)
	}
	ia, ib = make([]int, total), make([]int, total)
	idx := make([]int, r)
	for j := range total {
		for k := range r {
			ia[j] += idx[k] * sa[k]
			ib[j] += idx[k] * sb[k]
		}
		for k := r - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return shape, ia, ib, nil
}
