package quant

import (
	"fmt"
	"math"
	"testing"

	"lowbit/onnx"
	"lowbit/onnx/onnxpb"
	"lowbit/tensor"
)

// A reference interpreter for the standard ONNX operators of the exported
// quantizer forms, with IEEE float32 arithmetic, used to check that the
// files compute exactly what lowbit computes. It is a test oracle for the
// ONNX semantics, independent of the quantizer code.

type refT struct {
	dt    onnxpb.TensorProto_DataType
	shape []int
	f     []float32 // FLOAT and FLOAT16 (as exact float32 values)
	i     []int64   // integer and BOOL types
}

func (t *refT) isFloat() bool {
	return t.dt == onnxpb.TensorProto_FLOAT || t.dt == onnxpb.TensorProto_FLOAT16
}

func (t *refT) n() int {
	n := 1
	for _, d := range t.shape {
		n *= d
	}
	return n
}

func (t *refT) fl(k int) float32 {
	if t.isFloat() {
		return t.f[k]
	}
	return float32(t.i[k])
}

func refFromProto(tp *onnxpb.TensorProto) (*refT, error) {
	dt := onnxpb.TensorProto_DataType(tp.DataType)
	if dt == onnxpb.TensorProto_FLOAT {
		f, shape, err := onnx.TensorFloats(tp)
		return &refT{dt: dt, shape: shape, f: f}, err
	}
	i, shape, err := onnx.TensorInt64s(tp)
	return &refT{dt: dt, shape: shape, i: i}, err
}

// broadcast returns the output shape and, for each input, the flat index
// of each output element.
func broadcast(ts ...*refT) ([]int, [][]int, error) {
	rank := 0
	for _, t := range ts {
		rank = max(rank, len(t.shape))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, t := range ts {
		off := rank - len(t.shape)
		for i, d := range t.shape {
			switch {
			case out[off+i] == 1:
				out[off+i] = d
			case d != 1 && d != out[off+i]:
				return nil, nil, fmt.Errorf("shapes do not broadcast")
			}
		}
	}
	n := 1
	for _, d := range out {
		n *= d
	}
	idx := make([][]int, len(ts))
	for k, t := range ts {
		off := rank - len(t.shape)
		strides := make([]int, rank)
		s := 1
		for i := len(t.shape) - 1; i >= 0; i-- {
			if t.shape[i] != 1 {
				strides[off+i] = s
			}
			s *= t.shape[i]
		}
		idx[k] = make([]int, n)
		pos := make([]int, rank)
		for e := range n {
			f := 0
			for i := range rank {
				f += pos[i] * strides[i]
			}
			idx[k][e] = f
			for i := rank - 1; i >= 0; i-- {
				pos[i]++
				if pos[i] < out[i] {
					break
				}
				pos[i] = 0
			}
		}
	}
	return out, idx, nil
}

func attrInt(n *onnxpb.NodeProto, name string, def int64) int64 {
	for _, a := range n.Attribute {
		if a.Name == name {
			return a.GetI()
		}
	}
	return def
}

// runRef runs m on x (input "x") in the reference interpreter and returns
// the float values of tensor out.
func runRef(t *testing.T, m *onnxpb.ModelProto, x *tensor.Tensor, out string) []float32 {
	t.Helper()
	env, err := refRun(m, map[string]*refT{"x": {dt: onnxpb.TensorProto_FLOAT, shape: x.Shape, f: x.Data}})
	if err != nil {
		t.Fatal(err)
	}
	return env[out].f
}

// refRun evaluates the model's nodes in file order.
func refRun(m *onnxpb.ModelProto, inputs map[string]*refT) (map[string]*refT, error) {
	env := map[string]*refT{}
	for _, tp := range m.Graph.Initializer {
		t, err := refFromProto(tp)
		if err != nil {
			return nil, err
		}
		env[tp.Name] = t
	}
	for k, v := range inputs {
		env[k] = v
	}
	for _, n := range m.Graph.Node {
		in := make([]*refT, len(n.Input))
		for i, name := range n.Input {
			if name == "" {
				continue
			}
			if in[i] = env[name]; in[i] == nil {
				return nil, fmt.Errorf("node %s: input %q undefined", n.Name, name)
			}
		}
		out, err := refNode(n, in)
		if err != nil {
			return nil, fmt.Errorf("node %s (%s): %w", n.Name, n.OpType, err)
		}
		env[n.Output[0]] = out
	}
	return env, nil
}

func refNode(n *onnxpb.NodeProto, in []*refT) (*refT, error) {
	unaryF := func(fn func(float32) float32) (*refT, error) {
		x := in[0]
		y := &refT{dt: x.dt, shape: x.shape, f: make([]float32, len(x.f))}
		for k, v := range x.f {
			y.f[k] = fn(v)
		}
		return y, nil
	}
	binary := func(fn func(a, b float32) float32, fi func(a, b int64) int64) (*refT, error) {
		shape, idx, err := broadcast(in[0], in[1])
		if err != nil {
			return nil, err
		}
		y := &refT{dt: in[0].dt, shape: shape}
		if in[0].isFloat() {
			y.f = make([]float32, len(idx[0]))
			for k := range y.f {
				y.f[k] = fn(in[0].f[idx[0][k]], in[1].f[idx[1][k]])
			}
		} else {
			y.i = make([]int64, len(idx[0]))
			for k := range y.i {
				y.i[k] = fi(in[0].i[idx[0][k]], in[1].i[idx[1][k]])
			}
		}
		return y, nil
	}
	noInt := func(a, b int64) int64 { panic("integer op not used by the quantizer forms") }
	switch n.OpType {
	case "Cast":
		x := in[0]
		y := &refT{dt: onnxpb.TensorProto_DataType(attrInt(n, "to", 0)), shape: x.shape, f: make([]float32, x.n())}
		for k := range y.f {
			v := x.fl(k)
			if y.dt == onnxpb.TensorProto_FLOAT16 {
				v = Float16ToFloat32(Float16Bits(v))
			}
			y.f[k] = v
		}
		return y, nil
	case "Identity":
		return in[0], nil
	case "Relu":
		return unaryF(func(v float32) float32 { return max(v, 0) })
	case "Abs":
		return unaryF(func(v float32) float32 { return float32(math.Abs(float64(v))) })
	case "Sign":
		return unaryF(func(v float32) float32 {
			switch {
			case v > 0:
				return 1
			case v < 0:
				return -1
			}
			return 0
		})
	case "Round":
		return unaryF(func(v float32) float32 { return float32(math.RoundToEven(float64(v))) })
	case "Div":
		return binary(func(a, b float32) float32 { return a / b }, noInt)
	case "Mul":
		return binary(func(a, b float32) float32 { return a * b }, noInt)
	case "Sub":
		return binary(func(a, b float32) float32 { return a - b }, noInt)
	case "Add":
		return binary(func(a, b float32) float32 { return a + b }, func(a, b int64) int64 { return a + b })
	case "Min":
		return binary(func(a, b float32) float32 { return min(a, b) }, noInt)
	case "Max":
		return binary(func(a, b float32) float32 { return max(a, b) }, noInt)
	case "GreaterOrEqual":
		shape, idx, err := broadcast(in[0], in[1])
		if err != nil {
			return nil, err
		}
		y := &refT{dt: onnxpb.TensorProto_BOOL, shape: shape, i: make([]int64, len(idx[0]))}
		for k := range y.i {
			if in[0].f[idx[0][k]] >= in[1].f[idx[1][k]] {
				y.i[k] = 1
			}
		}
		return y, nil
	case "Where":
		shape, idx, err := broadcast(in[0], in[1], in[2])
		if err != nil {
			return nil, err
		}
		y := &refT{dt: in[1].dt, shape: shape}
		if in[1].isFloat() {
			y.f = make([]float32, len(idx[0]))
		} else {
			y.i = make([]int64, len(idx[0]))
		}
		for k := range idx[0] {
			src, j := in[2], idx[2][k]
			if in[0].i[idx[0][k]] != 0 {
				src, j = in[1], idx[1][k]
			}
			if y.f != nil {
				y.f[k] = src.f[j]
			} else {
				y.i[k] = src.i[j]
			}
		}
		return y, nil
	case "Gather":
		data, ix := in[0], in[1]
		if len(data.shape) != 1 || attrInt(n, "axis", 0) != 0 {
			return nil, fmt.Errorf("only 1-D Gather on axis 0")
		}
		y := &refT{dt: data.dt, shape: ix.shape, f: make([]float32, len(ix.i))}
		for k, j := range ix.i {
			if j < 0 || int(j) >= len(data.f) {
				return nil, fmt.Errorf("index %d out of range %d", j, len(data.f))
			}
			y.f[k] = data.f[j]
		}
		return y, nil
	case "Clip":
		x := in[0]
		y := &refT{dt: x.dt, shape: x.shape}
		if x.isFloat() {
			y.f = make([]float32, len(x.f))
			for k, v := range x.f {
				y.f[k] = min(max(v, in[1].f[0]), in[2].f[0])
			}
		} else {
			y.i = make([]int64, len(x.i))
			for k, v := range x.i {
				y.i[k] = min(max(v, in[1].i[0]), in[2].i[0])
			}
		}
		return y, nil
	case "QuantizeLinear":
		x, sc, zp := in[0], in[1], in[2]
		lo, hi := int64(0), int64(255)
		if zp.dt == onnxpb.TensorProto_INT8 {
			lo, hi = -128, 127
		}
		y := &refT{dt: zp.dt, shape: x.shape, i: make([]int64, len(x.f))}
		for k, v := range x.f {
			q := math.RoundToEven(float64(v/sc.f[0])) + float64(zp.i[0]) // saturates below
			y.i[k] = int64(min(max(q, float64(lo)), float64(hi)))
		}
		return y, nil
	case "DequantizeLinear":
		x, sc, zp := in[0], in[1], in[2]
		y := &refT{dt: onnxpb.TensorProto_FLOAT, shape: x.shape, f: make([]float32, len(x.i))}
		inner := len(x.i)
		if len(sc.f) > 1 {
			inner = len(x.i) / x.shape[attrInt(n, "axis", 1)]
		}
		for k, q := range x.i {
			c := k / inner
			if len(sc.f) == 1 {
				c = 0
			}
			y.f[k] = float32(q-zp.i[c]) * sc.f[c]
		}
		return y, nil
	}
	return nil, fmt.Errorf("op %s not in the reference interpreter", n.OpType)
}
