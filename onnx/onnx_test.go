package onnx

import (
	"bytes"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"lowbit/graph"
	"lowbit/onnx/onnxpb"
	"lowbit/ops"
	"lowbit/tensor"
)

func randParam(g *graph.Graph, rng *rand.Rand, name string, kind graph.Kind, shape ...int) *graph.Value {
	t := tensor.New(shape...)
	t.RandNormal(rng, 0.5)
	if kind == graph.BNVar {
		for i := range t.Data {
			t.Data[i] = float32(math.Abs(float64(t.Data[i]))) + 0.5
		}
	}
	return g.AddParam(name, kind, t)
}

// opGraphs returns one small graph per exported op configuration.
func opGraphs(t testing.TB) map[string]*graph.Graph {
	t.Helper()
	gs := map[string]*graph.Graph{}
	add := func(name string, build func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value) {
		g := graph.New(name)
		rng := graph.RNG(int64(len(gs) + 1))
		x := g.Input("x", -1, 4, 8, 8)
		out := build(g, rng, x)
		g.SetOutputs(out)
		if err := g.Err(); err != nil {
			t.Fatalf("build %s: %v", name, err)
		}
		gs[name] = g
	}
	unary := func(op graph.Op) func(*graph.Graph, *rand.Rand, *graph.Value) *graph.Value {
		return func(g *graph.Graph, _ *rand.Rand, x *graph.Value) *graph.Value { return g.Apply("y", op, x) }
	}
	add("conv", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		w := randParam(g, rng, "conv.weight", graph.Weight, 6, 4, 3, 3)
		b := randParam(g, rng, "conv.bias", graph.Bias, 6)
		return g.Apply("conv", ops.Conv{StrideH: 2, StrideW: 1, PadT: 1, PadL: 0, PadB: 2, PadR: 1, DilH: 1, DilW: 2, Groups: 1}, x, w, b)
	})
	add("conv_padvalue", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		w := randParam(g, rng, "dw.weight", graph.Weight, 4, 1, 3, 3)
		return g.Apply("dw", ops.Conv{StrideH: 1, StrideW: 1, PadT: 1, PadL: 2, PadB: 0, PadR: 1, DilH: 1, DilW: 1, Groups: 4, PadValue: -0.375}, x, w)
	})
	add("batchnorm", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		s := randParam(g, rng, "bn.weight", graph.BNScale, 4)
		b := randParam(g, rng, "bn.bias", graph.BNBias, 4)
		m := randParam(g, rng, "bn.running_mean", graph.BNMean, 4)
		v := randParam(g, rng, "bn.running_var", graph.BNVar, 4)
		return g.Apply("bn", ops.BatchNorm{Epsilon: 1e-3, Momentum: 0.9}, x, s, b, m, v)
	})
	add("relu", unary(ops.Relu{}))
	add("clip", unary(ops.Clip{Min: 0, Max: 6}))
	add("leakyrelu", unary(ops.LeakyRelu{Alpha: 0.1}))
	add("hardswish", unary(ops.HardSwish{}))
	add("hardsigmoid", unary(ops.HardSigmoid{Alpha: 1.0 / 6, Beta: 0.5}))
	add("sigmoid", unary(ops.Sigmoid{}))
	add("tanh", unary(ops.Tanh{}))
	add("dropout", unary(ops.Dropout{Ratio: 0.2}))
	add("softmax", unary(ops.Softmax{Axis: 1}))
	add("maxpool", unary(ops.MaxPool{KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, CeilMode: true}))
	add("avgpool", unary(ops.AveragePool{KH: 2, KW: 3, StrideH: 2, StrideW: 1, PadT: 0, PadL: 1, PadB: 1, PadR: 0, CountIncludePad: true}))
	add("globalavgpool", unary(ops.GlobalAveragePool{}))
	add("flatten", unary(ops.Flatten{Axis: 1}))
	add("reshape", unary(ops.Reshape{Shape: []int{0, 4, -1}}))
	add("pad", unary(ops.Pad{Pads: []int{0, 0, 1, 2, 0, 0, 2, 0}, Value: 0.5}))
	add("transpose", unary(ops.Transpose{Perm: []int{0, 2, 3, 1}}))
	add("squeeze", func(g *graph.Graph, _ *rand.Rand, x *graph.Value) *graph.Value {
		u := g.Apply("u", ops.Unsqueeze{Axes: []int{2, -1}}, x)
		return g.Apply("s", ops.Squeeze{Axes: []int{-1, 2}}, u)
	})
	add("split", func(g *graph.Graph, _ *rand.Rand, x *graph.Value) *graph.Value {
		parts := g.Node("split", ops.Split{Axis: 1, Sizes: []int{3, 1}}, x)
		return g.Apply("cat", ops.Concat{Axis: 1}, parts[1], parts[0])
	})
	add("slice", unary(ops.Slice{Starts: []int{1, -1, 0}, Ends: []int{-1, math.MinInt, math.MaxInt}, Axes: []int{2, 3, 1}, Steps: []int{2, -3, 1}}))
	add("reducemean", unary(ops.ReduceMean{Axes: []int{1, 3}, KeepDims: true}))
	add("reducemean_all", unary(ops.ReduceMean{Axes: []int{-1, -2}}))
	add("identity", unary(ops.Identity{}))
	for _, op := range []graph.Op{ops.Add{}, ops.Sub{}, ops.Mul{}, ops.Div{}} {
		add(strings.ToLower(op.Type()), func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
			c := randParam(g, rng, "c", graph.Const, 1, 4, 1, 1)
			if _, ok := op.(ops.Div); ok {
				for i := range c.Param.Data.Data {
					c.Param.Data.Data[i] = 1.5 + float32(i)
				}
			}
			y := g.Apply("y", op, x, c)
			return g.Apply("z", op, y, x)
		})
	}
	add("pad_conv", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		// A user Pad feeding a Conv stays two nodes (only lowbit's own
		// marked Pad is fused).
		p := g.Apply("pad", ops.Pad{Pads: []int{0, 0, 1, 1, 0, 0, 1, 1}, Value: 0.25}, x)
		w := randParam(g, rng, "w", graph.Weight, 2, 4, 3, 3)
		return g.Apply("conv", ops.Conv{StrideH: 1, StrideW: 1, DilH: 1, DilW: 1, Groups: 1}, p, w)
	})
	add("concat", func(g *graph.Graph, _ *rand.Rand, x *graph.Value) *graph.Value {
		r := g.Apply("r", ops.Relu{}, x)
		return g.Apply("cat", ops.Concat{Axis: 1}, x, r, x)
	})
	add("gemm", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		p := g.Apply("gap", ops.GlobalAveragePool{}, x)
		f := g.Apply("flat", ops.Flatten{Axis: 1}, p)
		w := randParam(g, rng, "fc.weight", graph.Weight, 5, 4)
		b := randParam(g, rng, "fc.bias", graph.Bias, 5)
		y := g.Apply("fc", ops.Gemm{TransB: true, Alpha: 1, Beta: 1}, f, w, b)
		w2 := randParam(g, rng, "fc2.weight", graph.Weight, 5, 3)
		return g.Apply("fc2", ops.Gemm{Alpha: 0.5, Beta: 0}, y, w2)
	})
	add("matmul", func(g *graph.Graph, rng *rand.Rand, x *graph.Value) *graph.Value {
		f := g.Apply("flat", ops.Flatten{Axis: 1}, x)
		w := randParam(g, rng, "proj", graph.Weight, 256, 7)
		return g.Apply("mm", ops.MatMul{}, f, w)
	})
	return gs
}

// mixedGraph chains many ops, with metadata and a frozen parameter.
func mixedGraph(t testing.TB) *graph.Graph {
	t.Helper()
	g := graph.New("mixed")
	rng := graph.RNG(7)
	x := g.Input("image", -1, 3, 16, 16)
	w := randParam(g, rng, "stem.weight", graph.Weight, 8, 3, 3, 3)
	w.Param.Frozen = true
	h := g.Apply("stem", ops.Conv{StrideH: 2, StrideW: 2, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DilH: 1, DilW: 1, Groups: 1}, x, w)
	h = g.Apply("stem.bn", ops.BatchNorm{Epsilon: 1e-5, Momentum: 0.9}, h,
		randParam(g, rng, "stem.bn.weight", graph.BNScale, 8), randParam(g, rng, "stem.bn.bias", graph.BNBias, 8),
		randParam(g, rng, "stem.bn.running_mean", graph.BNMean, 8), randParam(g, rng, "stem.bn.running_var", graph.BNVar, 8))
	h = g.Apply("stem.act", ops.HardSwish{}, h)
	dw := randParam(g, rng, "dw.weight", graph.Weight, 8, 1, 3, 3)
	d := g.Apply("dw", ops.Conv{StrideH: 1, StrideW: 1, PadT: 1, PadL: 1, PadB: 1, PadR: 1, DilH: 1, DilW: 1, Groups: 8, PadValue: -0.375}, h, dw)
	d = g.Apply("dw.act", ops.Clip{Min: 0, Max: 6}, d)
	h = g.Apply("res", ops.Add{}, h, d)
	p := g.Apply("pool", ops.MaxPool{KH: 2, KW: 2, StrideH: 2, StrideW: 2}, h)
	p = g.Apply("gap", ops.GlobalAveragePool{}, p)
	f := g.Apply("flat", ops.Flatten{Axis: 1}, p)
	f = g.Apply("drop", ops.Dropout{Ratio: 0.1}, f)
	y := g.Apply("fc", ops.Gemm{TransB: true, Alpha: 1, Beta: 1}, f,
		randParam(g, rng, "fc.weight", graph.Weight, 10, 8), randParam(g, rng, "fc.bias", graph.Bias, 10))
	prob := g.Apply("prob", ops.Softmax{Axis: -1}, y)
	g.SetOutputs(y, prob)
	g.Meta["dataset"] = "cifar10"
	g.Meta["bits"] = "w4a4"
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	return g
}

func mustMarshal(t testing.TB, g *graph.Graph) []byte {
	t.Helper()
	b, err := Marshal(g)
	if err != nil {
		t.Fatalf("Marshal %s: %v", g.Name, err)
	}
	return b
}

func valueName(v *graph.Value) string {
	if v == nil {
		return ""
	}
	return v.Name
}

// sameGraph fails unless b has a's structure, names, attributes, kinds and
// bit-identical parameters.
func sameGraph(t *testing.T, a, b *graph.Graph) {
	t.Helper()
	if a.Name != b.Name {
		t.Errorf("graph name %q, want %q", b.Name, a.Name)
	}
	if !reflect.DeepEqual(a.Meta, b.Meta) {
		t.Errorf("meta %v, want %v", b.Meta, a.Meta)
	}
	sameValues := func(what string, x, y []*graph.Value) {
		if len(x) != len(y) {
			t.Fatalf("%s: %d values, want %d", what, len(y), len(x))
		}
		for i := range x {
			if x[i].Name != y[i].Name || !reflect.DeepEqual(x[i].Shape, y[i].Shape) {
				t.Errorf("%s %d: %s %v, want %s %v", what, i, y[i].Name, y[i].Shape, x[i].Name, x[i].Shape)
			}
		}
	}
	sameValues("input", a.Inputs, b.Inputs)
	sameValues("output", a.Outputs, b.Outputs)
	pa, pb := a.Params(), b.Params()
	if len(pa) != len(pb) {
		t.Fatalf("%d params, want %d", len(pb), len(pa))
	}
	for i, p := range pa {
		q := pb[i]
		if p.Name != q.Name || p.Kind != q.Kind || p.Frozen != q.Frozen || !reflect.DeepEqual(p.Data.Shape, q.Data.Shape) {
			t.Errorf("param %d: %s %v frozen=%v %v, want %s %v frozen=%v %v", i, q.Name, q.Kind, q.Frozen, q.Data.Shape, p.Name, p.Kind, p.Frozen, p.Data.Shape)
			continue
		}
		for j := range p.Data.Data {
			if math.Float32bits(p.Data.Data[j]) != math.Float32bits(q.Data.Data[j]) {
				t.Errorf("param %s element %d: %v, want %v", p.Name, j, q.Data.Data[j], p.Data.Data[j])
				break
			}
		}
	}
	if len(a.Nodes) != len(b.Nodes) {
		t.Fatalf("%d nodes, want %d", len(b.Nodes), len(a.Nodes))
	}
	for i, n := range a.Nodes {
		m := b.Nodes[i]
		if n.Name != m.Name || !reflect.DeepEqual(n.Op, m.Op) {
			t.Errorf("node %d: %s %T %+v, want %s %T %+v", i, m.Name, m.Op, m.Op, n.Name, n.Op, n.Op)
		}
		var in, inB, out, outB []string
		for _, v := range n.Inputs {
			in = append(in, valueName(v))
		}
		for _, v := range m.Inputs {
			inB = append(inB, valueName(v))
		}
		for _, v := range n.Outputs {
			out = append(out, v.Name)
		}
		for _, v := range m.Outputs {
			outB = append(outB, v.Name)
		}
		if !reflect.DeepEqual(in, inB) || !reflect.DeepEqual(out, outB) {
			t.Errorf("node %s: %v → %v, want %v → %v", n.Name, inB, outB, in, out)
		}
	}
}

func TestRoundTripEveryOp(t *testing.T) {
	gs := opGraphs(t)
	gs["mixed"] = mixedGraph(t)
	for name, g := range gs {
		t.Run(name, func(t *testing.T) {
			b := mustMarshal(t, g)
			g2, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			sameGraph(t, g, g2)
			if b2 := mustMarshal(t, g2); !bytes.Equal(b, b2) {
				t.Errorf("Marshal(Unmarshal(Marshal(g))) differs from Marshal(g): %d vs %d bytes", len(b2), len(b))
			}
		})
	}
}

func TestSaveLoad(t *testing.T) {
	g := mixedGraph(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(g, path); err != nil {
		t.Fatal(err)
	}
	g2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, g, g2)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after Save, want only model.onnx (no temp files)", len(entries))
	}
	if _, err := Load(filepath.Join(dir, "missing.onnx")); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("Load of a missing file: %v, want an error naming the file", err)
	}
	if err := Save(g, filepath.Join(dir, "no", "such", "dir.onnx")); err == nil {
		t.Error("Save into a missing directory succeeded")
	}
}

// TestExportLayout checks the ONNX encoding details the spec asks for.
func TestExportLayout(t *testing.T) {
	g := mixedGraph(t)
	m, err := ToModel(g)
	if err != nil {
		t.Fatal(err)
	}
	if m.IrVersion != 8 || m.ProducerName != "lowbit" || len(m.OpsetImport) != 1 || m.OpsetImport[0].Version != 17 || m.OpsetImport[0].Domain != "" {
		t.Errorf("header: ir %d producer %q opsets %v", m.IrVersion, m.ProducerName, m.OpsetImport)
	}
	in := m.Graph.Input[0].Type.GetTensorType().Shape.Dim
	if in[0].GetDimParam() != "N" || in[1].GetDimValue() != 3 || in[3].GetDimValue() != 16 {
		t.Errorf("input dims %v, want [N 3 16 16]", in)
	}
	inits := map[string]*onnxpb.TensorProto{}
	for _, it := range m.Graph.Initializer {
		inits[it.Name] = it
	}
	if doc := inits["stem.bn.running_mean"].GetDocString(); doc != "lowbit:kind=bn_mean" {
		t.Errorf("bn mean doc_string %q", doc)
	}
	if doc := inits["stem.weight"].GetDocString(); doc != "lowbit:kind=weight,frozen" {
		t.Errorf("frozen weight doc_string %q", doc)
	}
	w := g.Param("fc.weight").Data.Data
	if raw := inits["fc.weight"].RawData; len(raw) != 4*len(w) || math.Float32frombits(uint32(raw[0])|uint32(raw[1])<<8|uint32(raw[2])<<16|uint32(raw[3])<<24) != w[0] {
		t.Errorf("fc.weight raw_data is not little-endian float32")
	}
	nodes := map[string]*onnxpb.NodeProto{}
	for _, n := range m.Graph.Node {
		nodes[n.Name] = n
	}
	attr := func(n *onnxpb.NodeProto, name string) *onnxpb.AttributeProto {
		for _, a := range n.GetAttribute() {
			if a.Name == name {
				return a
			}
		}
		t.Fatalf("node %s has no attribute %s", n.GetName(), name)
		return nil
	}
	pad := nodes["dw_pad"]
	if pad == nil || pad.OpType != "Pad" || pad.Output[0] != "dw_padded" || nodes["dw"].Input[0] != "dw_padded" {
		t.Fatalf("conv with pad value not exported as Pad → Conv: pad %v, conv %v", pad, nodes["dw"])
	}
	if p := attr(nodes["dw"], "pads").Ints; !reflect.DeepEqual(p, []int64{0, 0, 0, 0}) {
		t.Errorf("padded conv pads %v", p)
	}
	if v, _, _ := TensorFloats(inits[pad.Input[2]]); len(v) != 1 || v[0] != -0.375 {
		t.Errorf("pad value %v", v)
	}
	if p, _, _ := TensorInt64s(inits[pad.Input[1]]); !reflect.DeepEqual(p, []int64{0, 0, 1, 1, 0, 0, 1, 1}) {
		t.Errorf("pad pads %v", p)
	}
	if k := attr(nodes["stem"], "kernel_shape").Ints; !reflect.DeepEqual(k, []int64{3, 3}) {
		t.Errorf("kernel_shape %v", k)
	}
	if g := attr(nodes["dw"], "group").GetI(); g != 8 {
		t.Errorf("group %d", g)
	}
	if c := nodes["dw.act"]; len(c.Input) != 3 {
		t.Errorf("Clip inputs %v, want x, min, max", c.Input)
	}
	if tb := attr(nodes["fc"], "transB").GetI(); tb != 1 {
		t.Errorf("transB %d", tb)
	}
	if n := nodes["stem.bn"]; n.OpType != "BatchNormalization" || attr(n, "epsilon").GetF() != 1e-5 {
		t.Errorf("bn node %v", n)
	}
	meta := map[string]string{}
	for _, p := range m.MetadataProps {
		meta[p.Key] = p.Value
	}
	if meta["dataset"] != "cifar10" || meta["bits"] != "w4a4" {
		t.Errorf("metadata %v", meta)
	}

	// Asymmetric conv padding maps t,l,b,r to ONNX [top, left, bottom, right].
	m2, err := ToModel(opGraphs(t)["conv"])
	if err != nil {
		t.Fatal(err)
	}
	if p := attr(m2.Graph.Node[0], "pads").Ints; !reflect.DeepEqual(p, []int64{1, 0, 2, 1}) {
		t.Errorf("asymmetric conv pads %v, want [1 0 2 1]", p)
	}
}

func TestKindInference(t *testing.T) {
	g := mixedGraph(t)
	m, err := ToModel(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range m.Graph.Initializer {
		it.DocString = ""
	}
	g2, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]graph.Kind{
		"stem.weight": graph.Weight, "dw.weight": graph.Weight, "fc.weight": graph.Weight, "fc.bias": graph.Bias,
		"stem.bn.weight": graph.BNScale, "stem.bn.bias": graph.BNBias,
		"stem.bn.running_mean": graph.BNMean, "stem.bn.running_var": graph.BNVar,
	}
	if len(g2.Params()) != len(want) {
		t.Errorf("%d params, want %d (folded constants must not become params)", len(g2.Params()), len(want))
	}
	for name, k := range want {
		p := g2.Param(name)
		if p == nil || p.Kind != k || p.Frozen {
			t.Errorf("param %s: %+v, want kind %v, not frozen", name, p, k)
		}
	}
	// An initializer read by an op without hints becomes a Const.
	m3, err := ToModel(opGraphs(t)["mul"])
	if err != nil {
		t.Fatal(err)
	}
	m3.Graph.Initializer[0].DocString = ""
	g3, err := FromModel(m3)
	if err != nil {
		t.Fatal(err)
	}
	if p := g3.Param("c"); p == nil || p.Kind != graph.Const {
		t.Errorf("Mul constant imported as %+v, want kind const", p)
	}
}

// TestCorruptFiles checks that damaged files give errors naming the fault.
func TestCorruptFiles(t *testing.T) {
	g := mixedGraph(t)
	b := mustMarshal(t, g)
	for i := 0; i < len(b); i++ {
		if _, err := Unmarshal(b[:i]); err == nil {
			t.Fatalf("Unmarshal of the first %d of %d bytes succeeded", i, len(b))
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		junk := make([]byte, rng.Intn(300))
		rng.Read(junk)
		if _, err := Unmarshal(junk); err == nil {
			t.Errorf("Unmarshal of random bytes %x succeeded", junk)
		}
	}
	// Random byte flips must never panic; when they decode, the graph must
	// export again.
	for i := 0; i < 300; i++ {
		c := append([]byte(nil), b...)
		for k := 0; k < 1+rng.Intn(3); k++ {
			c[rng.Intn(len(c))] ^= byte(1 + rng.Intn(255))
		}
		if g2, err := Unmarshal(c); err == nil {
			if _, err := Marshal(g2); err != nil {
				t.Errorf("graph decoded from a corrupted file does not export: %v", err)
			}
		}
	}

	edit := func(name, want string, fn func(m *onnxpb.ModelProto)) {
		t.Run(name, func(t *testing.T) {
			m, err := ToModel(g)
			if err != nil {
				t.Fatal(err)
			}
			fn(m)
			data, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Unmarshal(data)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got error %v, want one containing %q", err, want)
			}
		})
	}
	initNamed := func(m *onnxpb.ModelProto, name string) *onnxpb.TensorProto {
		for _, it := range m.Graph.Initializer {
			if it.Name == name {
				return it
			}
		}
		t.Fatalf("no initializer %s", name)
		return nil
	}
	nodeNamed := func(m *onnxpb.ModelProto, name string) *onnxpb.NodeProto {
		for _, n := range m.Graph.Node {
			if n.Name == name {
				return n
			}
		}
		t.Fatalf("no node %s", name)
		return nil
	}
	setFloat := func(it *onnxpb.TensorProto, v float32) {
		bits := math.Float32bits(v)
		it.RawData[4], it.RawData[5], it.RawData[6], it.RawData[7] = byte(bits), byte(bits>>8), byte(bits>>16), byte(bits>>24)
	}
	edit("nan", `"fc.weight"`, func(m *onnxpb.ModelProto) { setFloat(initNamed(m, "fc.weight"), float32(math.NaN())) })
	edit("inf", "+Inf", func(m *onnxpb.ModelProto) { setFloat(initNamed(m, "stem.bn.running_var"), float32(math.Inf(1))) })
	edit("dangling", `"no_such_tensor"`, func(m *onnxpb.ModelProto) { nodeNamed(m, "res").Input[1] = "no_such_tensor" })
	edit("dangling output", `"ghost"`, func(m *onnxpb.ModelProto) { m.Graph.Output[0].Name = "ghost" })
	edit("unsupported op", `node "stem.act" (FancyAct): unsupported op type FancyAct`, func(m *onnxpb.ModelProto) {
		nodeNamed(m, "stem.act").OpType = "FancyAct"
	})
	edit("unsupported attribute", "bogus", func(m *onnxpb.ModelProto) {
		n := nodeNamed(m, "pool")
		n.Attribute = append(n.Attribute, AttrInt("bogus", 1))
	})
	edit("attribute type", `attribute "kernel_shape" has type`, func(m *onnxpb.ModelProto) {
		n := nodeNamed(m, "pool")
		for i, a := range n.Attribute {
			if a.Name == "kernel_shape" {
				n.Attribute[i] = AttrInt("kernel_shape", 2)
			}
		}
	})
	edit("short raw data", `"fc.bias"`, func(m *onnxpb.ModelProto) {
		it := initNamed(m, "fc.bias")
		it.RawData = it.RawData[:len(it.RawData)-4]
	})
	edit("bad kind", `unknown parameter kind "weigth"`, func(m *onnxpb.ModelProto) { initNamed(m, "fc.weight").DocString = "lowbit:kind=weigth" })
	edit("no opset", "default ONNX operator set", func(m *onnxpb.ModelProto) { m.OpsetImport = nil })
	edit("no graph", "no graph", func(m *onnxpb.ModelProto) { m.Graph = nil })
	edit("unsorted", "sorted topologically", func(m *onnxpb.ModelProto) {
		n := m.Graph.Node
		n[0], n[1] = n[1], n[0]
	})
	edit("duplicate output", "already", func(m *onnxpb.ModelProto) { nodeNamed(m, "pool").Output[0] = "res" })
	edit("truncated metadata", "truncated", func(m *onnxpb.ModelProto) { m.MetadataProps = m.MetadataProps[:1] })
	edit("wrong output shape", "declares shape", func(m *onnxpb.ModelProto) {
		m.Graph.Output[0].Type.GetTensorType().Shape.Dim[1].Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: 11}
	})
	edit("huge dims", "invalid dimension", func(m *onnxpb.ModelProto) { initNamed(m, "fc.bias").Dims = []int64{1 << 40} })
	edit("external data", "external data", func(m *onnxpb.ModelProto) {
		initNamed(m, "fc.bias").DataLocation = onnxpb.TensorProto_EXTERNAL
	})
	edit("input type", "element type", func(m *onnxpb.ModelProto) {
		m.Graph.Input[0].Type.GetTensorType().ElemType = int32(onnxpb.TensorProto_INT8)
	})
}

func TestExportErrors(t *testing.T) {
	g := opGraphs(t)["conv"]
	g.Param("conv.bias").Data.Data[2] = float32(math.Inf(-1))
	if _, err := Marshal(g); err == nil || !strings.Contains(err.Error(), "conv.bias") {
		t.Errorf("export with -Inf bias: %v, want an error naming conv.bias", err)
	}
	g2 := graph.New("custom")
	x := g2.Input("x", -1, 3)
	g2.SetOutputs(g2.Apply("odd", unexportedOp{}, x))
	if _, err := Marshal(g2); err == nil || !strings.Contains(err.Error(), "node odd") || !strings.Contains(err.Error(), "Odd") {
		t.Errorf("export of an op without exporter: %v", err)
	}
}

// unexportedOp has no exporter; scaleOp is registered by the test as a
// two-node subgraph in a custom domain.
type unexportedOp struct{}

func (unexportedOp) Type() string                            { return "Odd" }
func (unexportedOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (unexportedOp) Forward(_ *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return in, nil
}
func (unexportedOp) Backward(_ *graph.Context, _, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return dout, nil
}

type scaleOp struct{ S float32 }

func (*scaleOp) Type() string                            { return "Scale" }
func (*scaleOp) InferShapes(in [][]int) ([][]int, error) { return [][]int{in[0]}, nil }
func (*scaleOp) Forward(_ *graph.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return in, nil
}
func (*scaleOp) Backward(_ *graph.Context, _, _, dout []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return dout, nil
}

// TestRegistry exercises the extension hooks the way package quant uses
// them: an exporter emitting a small subgraph, and a custom-domain importer
// that folds it back by claiming the second node.
func TestRegistry(t *testing.T) {
	RegisterExporter(func(e *Encoder, n *graph.Node, op *scaleOp) error {
		s := e.FloatConst(n.Name+"_s", []float32{op.S})
		mid := e.FreshName(n.Name + "_mid")
		e.AddNode("Mul", e.FreshName(n.Name+"_mul"), []string{e.Input(n, 0), s}, []string{mid})
		id := e.AddNode("Scale", n.Name, []string{mid}, e.Outputs(n))
		id.Domain = "test.lowbit"
		e.UseOpset("test.lowbit", 1)
		return nil
	})
	old, _ := importerFor("", "Mul")
	defer RegisterImporter("", "Mul", old)
	RegisterImporter("", "Mul", Importer{Import: func(d *Decoder, n *onnxpb.NodeProto) error {
		cons := d.Consumers(n.Output[0])
		if len(cons) == 1 && cons[0].OpType == "Scale" {
			s, err := d.ConstFloat(n, 1, 1)
			if err != nil {
				return err
			}
			x, err := d.Input(n, 0)
			if err != nil {
				return err
			}
			d.Skip(cons[0])
			return d.Apply(cons[0], &scaleOp{S: s}, x)
		}
		in, err := d.Inputs(n, 2)
		if err != nil {
			return err
		}
		return d.Apply(n, ops.Mul{}, in...)
	}})

	g := graph.New("scaled")
	x := g.Input("x", -1, 4)
	y := g.Apply("scale", &scaleOp{S: 2.5}, x)
	z := g.Apply("scale2", &scaleOp{S: 3}, y)
	g.SetOutputs(z)
	m, err := ToModel(g)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Graph.Node) != 4 || m.Graph.Node[1].Domain != "test.lowbit" || len(m.OpsetImport) != 2 || m.OpsetImport[1].Domain != "test.lowbit" {
		t.Fatalf("custom export: nodes %v opsets %v", m.Graph.Node, m.OpsetImport)
	}
	g2, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	sameGraph(t, g, g2)
	if len(g2.Params()) != 0 {
		t.Errorf("folded scale constants became params: %v", g2.Params())
	}

	// Ops registered by value also export when the graph holds a pointer.
	g3 := graph.New("ptr")
	x3 := g3.Input("x", -1, 4)
	g3.SetOutputs(g3.Apply("act", &ops.Relu{}, x3))
	m3, err := ToModel(g3)
	if err != nil {
		t.Fatal(err)
	}
	if m3.Graph.Node[0].OpType != "Relu" {
		t.Errorf("pointer op exported as %v", m3.Graph.Node[0])
	}
}

// TestForeignFeatures imports constructs lowbit never writes but other
// exporters do: Constant nodes, Identity, omitted Clip bounds, auto_pad,
// older opsets, and no kind doc strings.
func TestForeignFeatures(t *testing.T) {
	vi := func(name string, dims ...any) *onnxpb.ValueInfoProto {
		s := &onnxpb.TensorShapeProto{}
		for _, d := range dims {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch d := d.(type) {
			case int:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(d)}
			case string:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
			}
			s.Dim = append(s.Dim, dim)
		}
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: 1, Shape: s}}}}
	}
	w := make([]float32, 2*3*3*3)
	m := &onnxpb.ModelProto{
		IrVersion: 7, ProducerName: "pytorch", OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 13}},
		Graph: &onnxpb.GraphProto{
			Name:        "torch_jit",
			Input:       []*onnxpb.ValueInfoProto{vi("input.1", "batch", 3, 7, 7)},
			Output:      []*onnxpb.ValueInfoProto{vi("out", "batch", 98)},
			Initializer: []*onnxpb.TensorProto{FloatTensor("conv.w", w, 2, 3, 3, 3), FloatTensor("lo", []float32{-1})},
			Node: []*onnxpb.NodeProto{
				{Name: "Conv_0", OpType: "Conv", Input: []string{"input.1", "conv.w"}, Output: []string{"3"},
					Attribute: []*onnxpb.AttributeProto{AttrString("auto_pad", "SAME_UPPER"), AttrInts("strides", 1, 1)}},
				{Name: "Clip_1", OpType: "Clip", Input: []string{"3", "lo"}, Output: []string{"4"}},
				{Name: "Identity_2", OpType: "Identity", Input: []string{"4"}, Output: []string{"5"}},
				{Name: "Constant_3", OpType: "Constant", Output: []string{"6"},
					Attribute: []*onnxpb.AttributeProto{AttrTensor("value", Int64Tensor("", []int64{0, -1}, 2))}},
				{Name: "Reshape_4", OpType: "Reshape", Input: []string{"5", "6"}, Output: []string{"out"}},
			},
		},
	}
	g, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 3 || len(g.Params()) != 1 || g.Param("conv.w").Kind != graph.Weight {
		t.Fatalf("nodes %d params %v", len(g.Nodes), g.Params())
	}
	conv, ok := g.Nodes[0].Op.(ops.Conv)
	if !ok || conv.PadT != 1 || conv.PadB != 1 || conv.PadL != 1 || conv.PadR != 1 {
		t.Errorf("SAME_UPPER conv imported as %+v", g.Nodes[0].Op)
	}
	if c, ok := g.Nodes[1].Op.(ops.Clip); !ok || c.Min != -1 || c.Max != math.MaxFloat32 {
		t.Errorf("clip imported as %+v", g.Nodes[1].Op)
	}
	if r, ok := g.Nodes[2].Op.(ops.Reshape); !ok || !reflect.DeepEqual(r.Shape, []int{0, -1}) || g.Nodes[2].Inputs[0] != g.Nodes[1].Outputs[0] {
		t.Errorf("reshape imported as %+v reading %v", g.Nodes[2].Op, g.Nodes[2].Inputs[0].Name)
	}
	if g.Nodes[0].Name != "Conv_0" || g.Outputs[0] != g.Nodes[2].Outputs[0] {
		t.Errorf("names: node %q, output %q", g.Nodes[0].Name, g.Outputs[0].Name)
	}
	// The imported foreign graph exports as a valid lowbit file.
	if _, err := Unmarshal(mustMarshal(t, g)); err != nil {
		t.Errorf("re-import of an exported foreign graph: %v", err)
	}

	// Opset-6-style Clip with attributes.
	m.OpsetImport[0].Version = 10
	m.Graph.Node[1] = &onnxpb.NodeProto{Name: "Clip_1", OpType: "Clip", Input: []string{"3"}, Output: []string{"4"},
		Attribute: []*onnxpb.AttributeProto{AttrFloat("min", 0), AttrFloat("max", 6)}}
	g, err = FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if c := g.Nodes[1].Op.(ops.Clip); c.Min != 0 || c.Max != 6 {
		t.Errorf("opset-10 clip imported as %+v", c)
	}
}

// TestConvPadNotFused checks that a marked Pad is imported as a Pad node when
// something besides its Conv reads it.
func TestConvPadNotFused(t *testing.T) {
	m, err := ToModel(mixedGraph(t))
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Node = append(m.Graph.Node, &onnxpb.NodeProto{Name: "extra", OpType: "Relu", Input: []string{"dw_padded"}, Output: []string{"extra"}})
	m.Graph.Output = append(m.Graph.Output, &onnxpb.ValueInfoProto{Name: "extra", Type: m.Graph.Input[0].Type})
	m.Graph.Output[2].Type = nil
	g, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	pad := g.NodeByName("dw_pad")
	conv := g.NodeByName("dw")
	if pad == nil || conv == nil {
		t.Fatalf("pad %v conv %v", pad, conv)
	}
	if p, ok := pad.Op.(ops.Pad); !ok || p.Value != -0.375 || !reflect.DeepEqual(p.Pads, []int{0, 0, 1, 1, 0, 0, 1, 1}) {
		t.Errorf("pad imported as %+v", pad.Op)
	}
	if c := conv.Op.(ops.Conv); c.PadValue != 0 || c.PadT != 0 || conv.Inputs[0] != pad.Outputs[0] {
		t.Errorf("conv imported as %+v reading %s", c, conv.Inputs[0].Name)
	}
}

func TestTensorDecode(t *testing.T) {
	raw := RawTensor("q", onnxpb.TensorProto_INT8, []byte{0xff, 0x7f, 0x80}, 3)
	if v, shape, err := TensorInt64s(raw); err != nil || !reflect.DeepEqual(v, []int64{-1, 127, -128}) || !reflect.DeepEqual(shape, []int{3}) {
		t.Errorf("int8 raw: %v %v %v", v, shape, err)
	}
	u8 := &onnxpb.TensorProto{Name: "zp", DataType: int32(onnxpb.TensorProto_UINT8), Dims: []int64{2}, Int32Data: []int32{0, 255}}
	if v, _, err := TensorInt64s(u8); err != nil || !reflect.DeepEqual(v, []int64{0, 255}) {
		t.Errorf("uint8 int32_data: %v %v", v, err)
	}
	i64 := Int64Tensor("s", []int64{-5, 1 << 40}, 2)
	if v, _, err := TensorInt64s(i64); err != nil || !reflect.DeepEqual(v, []int64{-5, 1 << 40}) {
		t.Errorf("int64 raw: %v %v", v, err)
	}
	fl := &onnxpb.TensorProto{Name: "f", DataType: 1, Dims: []int64{2, 1}, FloatData: []float32{1.5, -2}}
	if v, shape, err := TensorFloats(fl); err != nil || !reflect.DeepEqual(v, []float32{1.5, -2}) || !reflect.DeepEqual(shape, []int{2, 1}) {
		t.Errorf("float_data: %v %v %v", v, shape, err)
	}
	huge := &onnxpb.TensorProto{Name: "h", DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{1 << 30, 1 << 30}}
	if _, _, err := TensorInt64s(huge); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("huge dims: %v", err)
	}
	lie := &onnxpb.TensorProto{Name: "l", DataType: int32(onnxpb.TensorProto_INT64), Dims: []int64{1 << 29}}
	if _, _, err := TensorInt64s(lie); err == nil || !strings.Contains(err.Error(), `"l"`) {
		t.Errorf("dims without data: %v", err)
	}
	if _, _, err := TensorFloats(i64); err == nil || !strings.Contains(err.Error(), "INT64") {
		t.Errorf("float decode of an int tensor: %v", err)
	}
}

// TestExecution runs an original graph and its reloaded copy on the same
// input; the outputs must be bit-identical.
func TestExecution(t *testing.T) {
	g := mixedGraph(t)
	g2, err := Unmarshal(mustMarshal(t, g))
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(2, 3, 16, 16)
	x.RandNormal(graph.RNG(3), 1)
	run := func(g *graph.Graph) []*tensor.Tensor {
		e, err := graph.NewExecutor(g)
		if err != nil {
			t.Fatal(err)
		}
		out, err := e.Forward(x)
		if err != nil {
			t.Fatalf("forward %s: %v", g.Name, err)
		}
		res := make([]*tensor.Tensor, len(out))
		for i, o := range out {
			res[i] = o.Clone()
		}
		return res
	}
	a, b := run(g), run(g2)
	for i := range a {
		if !reflect.DeepEqual(a[i].Shape, b[i].Shape) {
			t.Fatalf("output %d shape %v vs %v", i, a[i].Shape, b[i].Shape)
		}
		for j := range a[i].Data {
			if math.Float32bits(a[i].Data[j]) != math.Float32bits(b[i].Data[j]) {
				t.Fatalf("output %d element %d: %v vs %v", i, j, a[i].Data[j], b[i].Data[j])
			}
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	gs := opGraphs(f)
	f.Add(mustMarshal(f, mixedGraph(f)))
	f.Add(mustMarshal(f, gs["conv_padvalue"]))
	f.Add(mustMarshal(f, gs["reshape"]))
	f.Add(mustMarshal(f, gs["slice"]))
	f.Add(mustMarshal(f, gs["split"]))
	for _, s := range fixtureSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Unmarshal(data)
		if err != nil {
			if strings.Contains(err.Error(), "panic:") {
				t.Errorf("import panicked: %v", err)
			}
			return
		}
		if _, err := Marshal(g); err != nil {
			t.Errorf("decoded graph does not export: %v", err)
		}
	})
}
