package onnx

import (
	"math"
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

// Tests of constructs that torch.onnx.export and zoo files use but lowbit
// never writes: folded shape chains, deduplicated initializers, opset
// variants, and their failure modes.

// floatVI describes a FLOAT tensor value; int dims are fixed, string dims
// symbolic.
func floatVI(name string, dims ...any) *onnxpb.ValueInfoProto {
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
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(onnxpb.TensorProto_FLOAT), Shape: s}}}}
}

func node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{Name: out[0] + "_node", OpType: op, Input: in, Output: out, Attribute: attrs}
}

func constNode(out string, t *onnxpb.TensorProto) *onnxpb.NodeProto {
	return node("Constant", nil, []string{out}, AttrTensor("value", t))
}

func foreignModel(opset int64, inputs, outputs []*onnxpb.ValueInfoProto, inits []*onnxpb.TensorProto, nodes ...*onnxpb.NodeProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{IrVersion: 8, ProducerName: "pytorch", OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: opset}},
		Graph: &onnxpb.GraphProto{Name: "foreign", Input: inputs, Output: outputs, Initializer: inits, Node: nodes}}
}

// shapeChain is x.reshape(x.size(0), x.size(1), -1).transpose(1, 2)
// .reshape(x.size(0), -1) as torch exports it at opset 13.
func shapeChain() *onnxpb.ModelProto {
	return foreignModel(13,
		[]*onnxpb.ValueInfoProto{floatVI("x", "batch", 4, 3, 5)},
		[]*onnxpb.ValueInfoProto{floatVI("y", "batch", 60)},
		nil,
		node("Shape", []string{"x"}, []string{"s"}),
		constNode("i0", Int64Tensor("", []int64{0})),
		node("Gather", []string{"s", "i0"}, []string{"n"}, AttrInt("axis", 0)),
		constNode("i1", Int64Tensor("", []int64{1})),
		node("Gather", []string{"s", "i1"}, []string{"c"}, AttrInt("axis", 0)),
		constNode("ax", Int64Tensor("", []int64{0}, 1)),
		node("Unsqueeze", []string{"n", "ax"}, []string{"n1"}),
		node("Unsqueeze", []string{"c", "ax"}, []string{"c1"}),
		constNode("m1", Int64Tensor("", []int64{-1}, 1)),
		node("Concat", []string{"n1", "c1", "m1"}, []string{"t1"}, AttrInt("axis", 0)),
		node("Reshape", []string{"x", "t1"}, []string{"r1"}),
		node("Transpose", []string{"r1"}, []string{"tr"}, AttrInts("perm", 0, 2, 1)),
		node("Concat", []string{"n1", "m1"}, []string{"t2"}, AttrInt("axis", 0)),
		node("Reshape", []string{"tr", "t2"}, []string{"y"}),
	)
}

func TestFoldShapeChain(t *testing.T) {
	g, err := FromModel(shapeChain())
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, n := range g.Nodes {
		kinds = append(kinds, n.Op.Type())
	}
	if !reflect.DeepEqual(kinds, []string{"Reshape", "Transpose", "Reshape"}) {
		t.Fatalf("nodes %v: the shape chain was not folded", kinds)
	}
	if r := g.Nodes[0].Op.(ops.Reshape); !reflect.DeepEqual(r.Shape, []int{0, 4, -1}) {
		t.Errorf("first reshape target %v, want [0 4 -1] (batch copied)", r.Shape)
	}
	if r := g.Nodes[2].Op.(ops.Reshape); !reflect.DeepEqual(r.Shape, []int{0, -1}) {
		t.Errorf("second reshape target %v, want [0 -1]", r.Shape)
	}
	if len(g.Params()) != 0 {
		t.Errorf("shape constants became parameters: %v", g.Params())
	}
	if g.Outputs[0].Name != "y" || !reflect.DeepEqual(g.Outputs[0].Shape, []int{-1, 60}) {
		t.Errorf("output %s %v", g.Outputs[0].Name, g.Outputs[0].Shape)
	}
	// Any batch size runs; the values follow the transposition.
	x := tensor.New(3, 4, 3, 5)
	for i := range x.Data {
		x.Data[i] = float32(i)
	}
	y := runGraph(t, g, x)
	if !reflect.DeepEqual(y.Shape, []int{3, 60}) {
		t.Fatalf("output shape %v", y.Shape)
	}
	// y[b, k*4 + c] = x[b, c, k] (k over the 15 flattened positions).
	for b := range 3 {
		for k := range 15 {
			for c := range 4 {
				if got, want := y.Data[b*60+k*4+c], x.Data[b*60+c*15+k]; got != want {
					t.Fatalf("y[%d,%d] = %v, want %v", b, k*4+c, got, want)
				}
			}
		}
	}
}

// TestFoldBatchMoved reshapes a value whose batch axis moved: the batch
// entry of the target becomes the single inferred dimension.
func TestFoldBatchMoved(t *testing.T) {
	m := foreignModel(13,
		[]*onnxpb.ValueInfoProto{floatVI("x", "batch", 6)},
		[]*onnxpb.ValueInfoProto{floatVI("y", "batch", 6)},
		nil,
		node("Transpose", []string{"x"}, []string{"xt"}, AttrInts("perm", 1, 0)),
		node("Shape", []string{"xt"}, []string{"s"}),
		constNode("perm", Int64Tensor("", []int64{1, 0}, 2)),
		node("Gather", []string{"s", "perm"}, []string{"s2"}, AttrInt("axis", 0)),
		node("Reshape", []string{"xt", "s2"}, []string{"r"}),
		node("Identity", []string{"r"}, []string{"y"}),
	)
	g, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Nodes[1].Op.(ops.Reshape)
	if !reflect.DeepEqual(r.Shape, []int{-1, 6}) {
		t.Errorf("reshape target %v, want [-1 6]", r.Shape)
	}
	if _, ok := g.Nodes[2].Op.(ops.Identity); !ok || g.Outputs[0].Name != "y" {
		t.Errorf("graph output %q produced by %T, want an Identity node keeping the name y", g.Outputs[0].Name, g.Nodes[2].Op)
	}
}

// TestFoldErrors checks the messages of chains lowbit cannot fold.
func TestFoldErrors(t *testing.T) {
	in := []*onnxpb.ValueInfoProto{floatVI("x", "batch", 4)}
	out := []*onnxpb.ValueInfoProto{floatVI("y")}
	for name, c := range map[string]struct {
		m    *onnxpb.ModelProto
		want string
	}{
		"batch arithmetic": {foreignModel(13, in, out, nil,
			node("Shape", []string{"x"}, []string{"s"}),
			node("Mul", []string{"s", "s"}, []string{"s2"}),
			node("Reshape", []string{"x", "s2"}, []string{"y"})),
			`node "s2_node" (Mul): arithmetic on a value that depends on the batch size`},
		"gather on data": {foreignModel(13, in, out, []*onnxpb.TensorProto{Int64Tensor("i", []int64{0})},
			node("Gather", []string{"x", "i"}, []string{"y"}, AttrInt("axis", 1))),
			`node "y_node" (Gather): op type Gather is supported only on constant inputs`},
		"batch in pads": {foreignModel(13, in, out, nil,
			node("Shape", []string{"x"}, []string{"s"}),
			node("Concat", []string{"s", "s"}, []string{"p"}, AttrInt("axis", 0)),
			node("Pad", []string{"x", "p"}, []string{"y"})),
			`input 1 ("p") depends on the batch size`},
		"constant of batch shape": {foreignModel(13, in, out, nil,
			node("Shape", []string{"x"}, []string{"s"}),
			node("ConstantOfShape", []string{"s"}, []string{"y"})),
			"shape depends on the batch size"},
		"gather out of range": {foreignModel(13, in, out, []*onnxpb.TensorProto{Int64Tensor("i", []int64{5})},
			node("Shape", []string{"x"}, []string{"s"}),
			node("Gather", []string{"s", "i"}, []string{"y"})),
			"index 5 out of range"},
		"integer division by zero": {foreignModel(13, in, out, []*onnxpb.TensorProto{Int64Tensor("a", []int64{4, 2}, 2), Int64Tensor("b", []int64{2, 0}, 2)},
			node("Div", []string{"a", "b"}, []string{"q"}),
			node("Reshape", []string{"x", "q"}, []string{"y"})),
			"integer division by zero"},
		"cast to string": {foreignModel(13, in, out, nil,
			node("Shape", []string{"x"}, []string{"s"}),
			node("Cast", []string{"s"}, []string{"y"}, AttrInt("to", int64(onnxpb.TensorProto_STRING)))),
			"cast to STRING is not supported"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := FromModel(c.m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

// TestDeduplicatedInitializers imports the Identity nodes torch.onnx.export
// emits for equal initializers: each consumer gets its own copy, named
// after the Identity output, with the kind its consumer implies.
func TestDeduplicatedInitializers(t *testing.T) {
	ones := []float32{1, 1}
	zeros := []float32{0, 0}
	bnIn := func(prefix string) []string {
		return []string{prefix + ".weight", prefix + ".bias", prefix + ".running_mean", prefix + ".running_var"}
	}
	m := foreignModel(13,
		[]*onnxpb.ValueInfoProto{floatVI("x", "batch", 2, 3, 3)},
		[]*onnxpb.ValueInfoProto{floatVI("y", "batch", 2, 3, 3)},
		[]*onnxpb.TensorProto{FloatTensor("bn1.weight", ones, 2), FloatTensor("bn1.bias", zeros, 2)},
		node("Identity", []string{"bn1.bias"}, []string{"bn1.running_mean"}),
		node("Identity", []string{"bn1.weight"}, []string{"bn1.running_var"}),
		node("Identity", []string{"bn1.weight"}, []string{"bn2.weight"}),
		node("Identity", []string{"bn1.bias"}, []string{"bn2.bias"}),
		node("Identity", []string{"bn1.bias"}, []string{"bn2.running_mean"}),
		node("Identity", []string{"bn1.weight"}, []string{"bn2.running_var"}),
		node("BatchNormalization", append([]string{"x"}, bnIn("bn1")...), []string{"h"}),
		node("BatchNormalization", append([]string{"h"}, bnIn("bn2")...), []string{"y"}),
	)
	g, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]graph.Kind{}
	for _, bn := range []string{"bn1", "bn2"} {
		for i, k := range []graph.Kind{graph.BNScale, graph.BNBias, graph.BNMean, graph.BNVar} {
			want[bnIn(bn)[i]] = k
		}
	}
	if len(g.Params()) != len(want) {
		t.Errorf("%d params, want %d", len(g.Params()), len(want))
	}
	seen := map[*float32]string{}
	for name, k := range want {
		p := g.Param(name)
		if p == nil || p.Kind != k {
			t.Errorf("param %s: %+v, want kind %v", name, p, k)
			continue
		}
		if other, dup := seen[&p.Data.Data[0]]; dup {
			t.Errorf("params %s and %s share storage", name, other)
		}
		seen[&p.Data.Data[0]] = name
	}
}

// TestOpsetsAndDomains checks the accepted opset range and unknown domains.
func TestOpsetsAndDomains(t *testing.T) {
	base := func(opset int64) *onnxpb.ModelProto {
		return foreignModel(opset, []*onnxpb.ValueInfoProto{floatVI("x", "batch", 4)}, []*onnxpb.ValueInfoProto{floatVI("y", "batch", 4)}, nil,
			node("Relu", []string{"x"}, []string{"y"}))
	}
	for _, v := range []int64{7, 11, 13, 17, 18} {
		if _, err := FromModel(base(v)); err != nil {
			t.Errorf("opset %d: %v", v, err)
		}
	}
	for _, v := range []int64{25, 6} {
		if _, err := FromModel(base(v)); err == nil || !strings.Contains(err.Error(), "lowbit imports opsets 7 to 18") {
			t.Errorf("opset %d: %v, want an error naming the supported range", v, err)
		}
	}
	m := base(13)
	m.OpsetImport = append(m.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: "com.example", Version: 1})
	m.Graph.Node[0].Domain = "com.example"
	if _, err := FromModel(m); err == nil || !strings.Contains(err.Error(), `unsupported op type Relu in domain "com.example"`) {
		t.Errorf("unknown domain: %v", err)
	}
	m.OpsetImport = m.OpsetImport[:1]
	if _, err := FromModel(m); err == nil || !strings.Contains(err.Error(), `domain "com.example" is not imported`) {
		t.Errorf("undeclared domain: %v", err)
	}
	m = base(13)
	m.Graph.Node[0].OpType = "NonMaxSuppression"
	if _, err := FromModel(m); err == nil || !strings.Contains(err.Error(), `node "y_node" (NonMaxSuppression): unsupported op type NonMaxSuppression`) {
		t.Errorf("unsupported op: %v", err)
	}
}

// TestForeignOpVariants imports the older and newer argument forms of the
// layout ops and checks the resulting ops.
func TestForeignOpVariants(t *testing.T) {
	x := []*onnxpb.ValueInfoProto{floatVI("x", "batch", 6, 1)}
	for name, c := range map[string]struct {
		opset int64
		nodes []*onnxpb.NodeProto
		inits []*onnxpb.TensorProto
		want  graph.Op
	}{
		"squeeze attr": {11, []*onnxpb.NodeProto{node("Squeeze", []string{"x"}, []string{"y"}, AttrInts("axes", -1))}, nil, ops.Squeeze{Axes: []int{-1}}},
		"squeeze all":  {13, []*onnxpb.NodeProto{node("Squeeze", []string{"x"}, []string{"y"})}, nil, ops.Squeeze{Axes: []int{2}}},
		"unsqueeze":    {13, []*onnxpb.NodeProto{node("Unsqueeze", []string{"x", "a"}, []string{"y"})}, []*onnxpb.TensorProto{Int64Tensor("a", []int64{0}, 1)}, ops.Unsqueeze{Axes: []int{0}}},
		"split equal":  {13, []*onnxpb.NodeProto{node("Split", []string{"x"}, []string{"y", "z"}, AttrInt("axis", 1))}, nil, ops.Split{Axis: 1, Sizes: []int{3, 3}}},
		"split attr":   {11, []*onnxpb.NodeProto{node("Split", []string{"x"}, []string{"y", "z"}, AttrInt("axis", 1), AttrInts("split", 2, 4))}, nil, ops.Split{Axis: 1, Sizes: []int{2, 4}}},
		"split 18":     {18, []*onnxpb.NodeProto{node("Split", []string{"x"}, []string{"y", "z", "w", "v"}, AttrInt("axis", 1), AttrInt("num_outputs", 4))}, nil, ops.Split{Axis: 1, Sizes: []int{2, 2, 2, 0}}},
		"slice 9":      {9, []*onnxpb.NodeProto{node("Slice", []string{"x"}, []string{"y"}, AttrInts("starts", 1), AttrInts("ends", 4), AttrInts("axes", 1))}, nil, ops.Slice{Starts: []int{1}, Ends: []int{4}, Axes: []int{1}}},
		"reducemean":   {13, []*onnxpb.NodeProto{node("ReduceMean", []string{"x"}, []string{"y"}, AttrInt("keepdims", 0))}, nil, ops.ReduceMean{}},
		"reducemean18": {18, []*onnxpb.NodeProto{node("ReduceMean", []string{"x", "a"}, []string{"y"})}, []*onnxpb.TensorProto{Int64Tensor("a", []int64{1}, 1)}, ops.ReduceMean{Axes: []int{1}, KeepDims: true}},
		"noop axes":    {18, []*onnxpb.NodeProto{node("ReduceMean", []string{"x"}, []string{"y"}, AttrInt("noop_with_empty_axes", 1))}, nil, ops.Identity{}},
		"transpose":    {13, []*onnxpb.NodeProto{node("Transpose", []string{"x"}, []string{"y"})}, nil, ops.Transpose{}},
	} {
		t.Run(name, func(t *testing.T) {
			var outs []*onnxpb.ValueInfoProto
			for _, o := range c.nodes[0].Output {
				outs = append(outs, &onnxpb.ValueInfoProto{Name: o})
			}
			g, err := FromModel(foreignModel(c.opset, x, outs, c.inits, c.nodes...))
			if err != nil {
				t.Fatal(err)
			}
			if got := g.Nodes[0].Op; !reflect.DeepEqual(got, c.want) {
				t.Errorf("imported %T%+v, want %T%+v", got, got, c.want, c.want)
			}
		})
	}
	// Squeeze axes as an input before opset 13 is an error naming the opset.
	_, err := FromModel(foreignModel(11, x, []*onnxpb.ValueInfoProto{{Name: "y"}}, []*onnxpb.TensorProto{Int64Tensor("a", []int64{2}, 1)},
		node("Squeeze", []string{"x", "a"}, []string{"y"})))
	if err == nil || !strings.Contains(err.Error(), "before opset 13") {
		t.Errorf("opset-13 squeeze form at opset 11: %v", err)
	}
}

// TestForeignNonFinite checks that NaN and Inf in constants a foreign file
// reads as data are rejected, wherever they come from.
func TestForeignNonFinite(t *testing.T) {
	nan := float32(math.NaN())
	x := []*onnxpb.ValueInfoProto{floatVI("x", "batch", 2)}
	y := []*onnxpb.ValueInfoProto{floatVI("y", "batch", 2)}
	for name, m := range map[string]*onnxpb.ModelProto{
		"constant node": foreignModel(13, x, y, nil,
			constNode("c", FloatTensor("", []float32{1, nan}, 2)),
			node("Mul", []string{"x", "c"}, []string{"y"})),
		"via identity": foreignModel(13, x, y, []*onnxpb.TensorProto{FloatTensor("w", []float32{float32(math.Inf(1)), 1}, 2)},
			node("Identity", []string{"w"}, []string{"w2"}),
			node("Add", []string{"x", "w2"}, []string{"y"})),
		"folded": foreignModel(13, x, y, []*onnxpb.TensorProto{FloatTensor("a", []float32{3e38, 1}, 2), FloatTensor("b", []float32{10, 1}, 2)},
			node("Mul", []string{"a", "b"}, []string{"ab"}),
			node("Add", []string{"x", "ab"}, []string{"y"})),
	} {
		if _, err := FromModel(m); err == nil || !strings.Contains(err.Error(), "Inf") && !strings.Contains(err.Error(), "NaN") {
			t.Errorf("%s: %v, want an error naming the non-finite value", name, err)
		}
	}
}

// TestImportedFixtureTrains runs a training step on an imported torchvision
// file: gradients reach convolution weights and BatchNorm parameters, and
// BatchNorm running statistics update, as for zoo models.
func TestImportedFixtureTrains(t *testing.T) {
	g, err := Load(filepath.Join("testdata", "torchvision", "mobilenet_v3_small.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	e.Training = true
	x := tensor.New(2, 3, 64, 64)
	x.RandNormal(graph.RNG(1), 1)
	var mean *graph.Param
	for _, p := range g.Params() {
		if p.Kind == graph.BNMean {
			mean = p
			break
		}
	}
	before := mean.Data.Clone()
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	dy := tensor.New(out[0].Shape...)
	dy.Fill(1)
	g.ZeroGrad()
	if err := e.Backward(dy); err != nil {
		t.Fatal(err)
	}
	grads := map[graph.Kind]float64{}
	for _, p := range g.Params() {
		if p.Grad == nil {
			continue
		}
		for _, v := range p.Grad.Data {
			if math.IsNaN(float64(v)) {
				t.Fatalf("param %s: NaN gradient", p.Name)
			}
			grads[p.Kind] += math.Abs(float64(v))
		}
	}
	for _, k := range []graph.Kind{graph.Weight, graph.Bias, graph.BNScale, graph.BNBias} {
		if grads[k] == 0 {
			t.Errorf("no gradient reached %v parameters (%v)", k, grads)
		}
	}
	if reflect.DeepEqual(before.Data, mean.Data.Data) {
		t.Errorf("BatchNorm running mean %s did not update in training", mean.Name)
	}
}

// TestFixtureSeedsLoad keeps the fuzz seeds honest: every fixture file
// loads (FuzzUnmarshal starts from them).
func TestFixtureSeedsLoad(t *testing.T) {
	for _, s := range fixtureSeeds(t) {
		if _, err := Unmarshal(s); err != nil {
			t.Errorf("fixture seed of %d bytes: %v", len(s), err)
		}
	}
}

// fixtureSeeds returns the small torchvision fixture files (< 64 KiB) as
// fuzz seeds, plus a file with a folded shape chain.
func fixtureSeeds(t testing.TB) [][]byte {
	t.Helper()
	dir := filepath.Join("testdata", "torchvision")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seeds [][]byte
	for _, e := range entries {
		if info, err := e.Info(); err != nil || filepath.Ext(e.Name()) != ".onnx" || info.Size() > 64<<10 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	b, err := proto.Marshal(shapeChain())
	if err != nil {
		t.Fatal(err)
	}
	return append(seeds, b)
}

// TestLargeConstantsStayNodes checks that a layout op on a large constant
// (a weight behind a Transpose) becomes a run-time node fed by a parameter
// instead of being folded.
func TestLargeConstantsStayNodes(t *testing.T) {
	w := make([]float32, 1024*1025)
	w[1024] = 2 // w[1][0]
	m := foreignModel(13,
		[]*onnxpb.ValueInfoProto{floatVI("x", "batch", 1024)},
		[]*onnxpb.ValueInfoProto{floatVI("y", "batch", 1025)},
		[]*onnxpb.TensorProto{FloatTensor("w", w, 1025, 1024)},
		node("Transpose", []string{"w"}, []string{"wt"}),
		node("MatMul", []string{"x", "wt"}, []string{"y"}))
	g, err := FromModel(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Nodes) != 2 || g.Nodes[0].Op.Type() != "Transpose" || g.Param("w") == nil {
		t.Fatalf("nodes %v params %v: the large Transpose was folded", g.Nodes, g.Params())
	}
	x := tensor.New(1, 1024)
	x.Data[0] = 3
	if y := runGraph(t, g, x); y.Data[1] != 6 {
		t.Errorf("y[0,1] = %v, want 6", y.Data[1])
	}
}
