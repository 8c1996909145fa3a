package quant

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/onnx/onnxpb"
	"lowbit/ops"
	"lowbit/tensor"
)

// actCase is one activation quantizer configuration.
type actCase struct {
	name string
	spec Spec
}

func actCases() []actCase {
	var cs []actCase
	for _, b := range []int{1, 2, 4, 8, 16} {
		for _, signed := range []bool{false, true} {
			if b == 1 && signed {
				continue
			}
			for _, c := range []CalibMethod{CalibMinMax, CalibKL} {
				cs = append(cs, actCase{fmt.Sprintf("uniform_b%d_signed%v_%s", b, signed, c),
					Spec{Role: ActivationRole, Method: MethodUniform, Bits: b, Signed: signed, Calib: c}})
			}
		}
	}
	for _, b := range []int{1, 2, 3, 4, 8} {
		cs = append(cs, actCase{fmt.Sprintf("weqlog_b%d", b), Spec{Role: ActivationRole, Method: MethodWEQ, Bits: b}})
	}
	cs = append(cs, actCase{"weq_signed_fallback", Spec{Role: ActivationRole, Method: MethodWEQ, Bits: 3, Signed: true, Calib: CalibMSE}})
	for _, b := range []int{2, 4, 8} {
		for _, signed := range []bool{false, true} {
			for _, f := range []OutlierFormat{OutlierFP16, Outlier8, OutlierFP32} {
				for _, r := range []float64{0, 0.03} {
					cs = append(cs, actCase{fmt.Sprintf("olaq_b%d_signed%v_%s_r%g", b, signed, f, r),
						Spec{Role: ActivationRole, Method: MethodOLAQ, Bits: b, Signed: signed, OutlierRatio: r, OutlierFormat: f}})
				}
			}
		}
	}
	return cs
}

// sample returns n heavy-tailed values with 10 % zeros, only non-negative
// ones when !signed.
func sample(rng *rand.Rand, n int, signed bool) []float32 {
	x := heavyTailed(rng, n, 1, 0.7, 0.1)
	if !signed {
		for i, v := range x {
			x[i] = float32(math.Abs(float64(v)))
		}
	}
	return x
}

// calibratedActGraph builds input → FakeQuant → output and calibrates it.
func calibratedActGraph(t *testing.T, spec Spec, rng *rand.Rand) (*graph.Graph, *FakeQuant) {
	t.Helper()
	g := graph.New("act")
	x := g.Input("x", -1, 4, 5)
	fq, err := NewFakeQuant(spec)
	if err != nil {
		t.Fatal(err)
	}
	g.SetOutputs(g.Apply("x.q", fq, x))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	var batches []*tensor.Tensor
	for range 3 {
		batches = append(batches, tensor.MustFromData(sample(rng, 8*20, spec.Signed), 8, 4, 5))
	}
	n, err := Calibrate(t.Context(), g, seqBatches(batches), 0)
	if err != nil || n != 24 {
		t.Fatalf("calibrate: %d images, %v", n, err)
	}
	return g, fq
}

// probeInputs returns values around every level and decision point of q
// (ties, thresholds and their float32 neighbours) plus random values,
// zeros, negatives and huge magnitudes, as a [k, 4, 5] tensor.
func probeInputs(q Quantizer, rng *rand.Rand) *tensor.Tensor {
	var v []float32
	lv := q.Levels()
	add := func(x float32) {
		v = append(v, x, math.Nextafter32(x, float32(math.Inf(1))), math.Nextafter32(x, float32(math.Inf(-1))), -x)
	}
	for i, l := range lv {
		add(l)
		if i > 0 {
			add((l + lv[i-1]) / 2)
		}
	}
	switch q := q.(type) {
	case *LogQuant:
		for _, th := range q.thresh {
			add(th)
		}
	case *OLAQ:
		add(q.T)
		add(q.Max)
		add(q.T * 1.5)
		add(70000)
	}
	v = append(v, 0, float32(math.Copysign(0, -1)), 1e30, -1e30, 1e-30, math.MaxFloat32)
	v = append(v, sample(rng, 200, true)...)
	v = append(v, sample(rng, 200, true)...)
	for i := range v[len(v)-200:] {
		v[len(v)-200+i] *= -1
	}
	for len(v)%20 != 0 {
		v = append(v, 0.5)
	}
	return tensor.MustFromData(v, len(v)/20, 4, 5)
}

func forward(t *testing.T, g *graph.Graph, x *tensor.Tensor) []float32 {
	t.Helper()
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out[0].Data...)
}

// sameValues compares element-wise; −0 equals +0 (the documented
// exception of the OLAQ subgraph).
func sameValues(t *testing.T, what string, want, got []float32, in []float32) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range want {
		if want[i] != got[i] && !(want[i] != want[i] && got[i] != got[i]) {
			if bad < 5 {
				t.Errorf("%s: element %d (input %v): got %v, want %v", what, i, in[i], got[i], want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(want))
	}
}

// TestActivationExportExact exports every activation quantizer form and
// checks that (a) the ONNX subgraph, run by a reference interpreter of the
// standard operators with float32 arithmetic, computes exactly lowbit's
// values and (b) the file imports back to a quantizer computing them too.
func TestActivationExportExact(t *testing.T) {
	for _, c := range actCases() {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(3))
			g, fq := calibratedActGraph(t, c.spec, rng)
			x := probeInputs(fq.Q, rng)
			want := forward(t, g, x)
			m, err := onnx.ToModel(g)
			if err != nil {
				t.Fatal(err)
			}
			sameValues(t, "ONNX reference", want, runRef(t, m, x, "x.q"), x.Data)
			g2, err := onnx.FromModel(m)
			if err != nil {
				t.Fatal(err)
			}
			if len(g2.Nodes) != 1 || len(g2.Params()) != 0 {
				t.Fatalf("import gave %d nodes and %d params, want the quantizer alone", len(g2.Nodes), len(g2.Params()))
			}
			fq2, ok := g2.Nodes[0].Op.(*FakeQuant)
			if !ok || g2.Nodes[0].Name != "x.q" || fq2.Spec != fq.Spec {
				t.Fatalf("import gave node %s %T spec %+v, want x.q with %+v", g2.Nodes[0].Name, g2.Nodes[0].Op, fq2, fq.Spec)
			}
			sameValues(t, "imported", want, forward(t, g2, x), x.Data)
			if fq2.Describe() != fq.Describe() {
				t.Errorf("imported quantizer %q, want %q", fq2.Describe(), fq.Describe())
			}
		})
	}
}

// weightGraph builds W → FakeQuant → Add(x, ·) so that the output is the
// quantized weight.
func weightGraph(t *testing.T, spec Spec, w *tensor.Tensor) *graph.Graph {
	t.Helper()
	g := graph.New("w")
	x := g.Input("x", w.Shape...)
	wv := g.AddParam("conv.weight", graph.Weight, w)
	fq, err := NewFakeQuant(spec)
	if err != nil {
		t.Fatal(err)
	}
	q := g.Apply("conv.weight.q", fq, wv)
	g.SetOutputs(g.Apply("sum", ops.Add{}, x, q))
	if err := g.Err(); err != nil {
		t.Fatal(err)
	}
	if err := FitWeights(g); err != nil {
		t.Fatal(err)
	}
	return g
}

func TestWeightExportExact(t *testing.T) {
	var specs []Spec
	for _, b := range []int{2, 3, 4, 8, 16} {
		for _, pc := range []bool{false, true} {
			specs = append(specs, Spec{Role: WeightRole, Method: MethodUniform, Bits: b, PerChannel: pc, Calib: CalibMSE})
			specs = append(specs, Spec{Role: WeightRole, Method: MethodWEQ, Bits: b, PerChannel: pc, WEQZero: b == 3})
		}
		specs = append(specs, Spec{Role: WeightRole, Method: MethodOLAQ, Bits: b, OutlierRatio: 0.02})
	}
	specs = append(specs, Spec{Role: WeightRole, Method: MethodWEQ, Bits: 1})
	for _, spec := range specs {
		t.Run(fmt.Sprintf("%s_b%d_pc%v", spec.Method, spec.Bits, spec.PerChannel), func(t *testing.T) {
			rng := rand.New(rand.NewSource(5))
			w := tensor.MustFromData(sample(rng, 6*3*3*3, true), 6, 3, 3, 3)
			for i := range w.Data {
				if rng.Intn(2) == 0 {
					w.Data[i] = -w.Data[i]
				}
			}
			g := weightGraph(t, spec, w)
			zero := tensor.New(w.Shape...)
			want := forward(t, g, zero)
			m, err := onnx.ToModel(g)
			if err != nil {
				t.Fatal(err)
			}
			for _, init := range m.Graph.Initializer {
				if init.Name == "conv.weight" {
					dt := onnxpb.TensorProto_DataType(init.DataType)
					if spec.Method == MethodUniform && spec.Bits <= 8 && dt != onnxpb.TensorProto_INT8 || (spec.Method != MethodUniform || spec.Bits > 8) && dt != onnxpb.TensorProto_FLOAT {
						t.Errorf("weight stored as %s", dt)
					}
				}
			}
			if n := len(m.Graph.Initializer); n > 3 {
				t.Errorf("%d initializers: the float weight is still stored beside its quantized form?", n)
			}
			sameValues(t, "ONNX reference", want, runRef(t, m, zero, "sum"), w.Data)
			g2, err := onnx.FromModel(m)
			if err != nil {
				t.Fatal(err)
			}
			sameValues(t, "imported", want, forward(t, g2, zero), w.Data)
			sites, err := Sites(g2)
			if err != nil || len(sites) != 1 || !sites[0].Op.Baked || sites[0].Tensor.Param.Kind != graph.Weight {
				t.Fatalf("imported sites %+v, %v: want one baked weight quantizer", sites, err)
			}
			// The imported quantizer can be refitted (as fine-tuning does):
			// that clears Baked and quantizes the stored values again.
			if err := FitWeights(g2); err != nil {
				t.Fatal(err)
			}
			if q := sites[0].Op.Stats.SQNR(); sites[0].Op.Baked || !(q > 10) {
				t.Errorf("refit on the imported weight: baked %v, SQNR %.1f dB", sites[0].Op.Baked, q)
			}
		})
	}
}

// TestForeignQDQImport imports QuantizeLinear/DequantizeLinear pairs and
// int8 weights written by other tools (no lowbit description): int8 codes
// map exactly onto the offset uint8 grid.
func TestForeignQDQImport(t *testing.T) {
	vi := func(name string) *onnxpb.ValueInfoProto {
		d := func(v int64) *onnxpb.TensorShapeProto_Dimension {
			return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
		}
		return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: 1, Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{d(2), d(3)}}}}}}
	}
	for _, dt := range []onnxpb.TensorProto_DataType{onnxpb.TensorProto_INT8, onnxpb.TensorProto_UINT8} {
		zp := []byte{3}
		codes := []byte{0x80, 0xff, 0, 1, 0x7f, 5} // int8: −128, −1, 0, 1, 127, 5
		m := &onnxpb.ModelProto{IrVersion: 8, OpsetImport: []*onnxpb.OperatorSetIdProto{{Version: 17}}, Graph: &onnxpb.GraphProto{
			Name:  "foreign",
			Input: []*onnxpb.ValueInfoProto{vi("x")}, Output: []*onnxpb.ValueInfoProto{vi("y")},
			Initializer: []*onnxpb.TensorProto{
				onnx.FloatTensor("s", []float32{0.05}), onnx.RawTensor("z", dt, zp),
				onnx.RawTensor("w", dt, codes, 2, 3),
			},
			Node: []*onnxpb.NodeProto{
				{OpType: "QuantizeLinear", Name: "q", Input: []string{"x", "s", "z"}, Output: []string{"xq"}},
				{OpType: "DequantizeLinear", Name: "dq", Input: []string{"xq", "s", "z"}, Output: []string{"xd"}},
				{OpType: "DequantizeLinear", Name: "wdq", Input: []string{"w", "s", "z"}, Output: []string{"wd"}},
				{OpType: "Add", Name: "y", Input: []string{"xd", "wd"}, Output: []string{"y"}},
			},
		}}
		g, err := onnx.FromModel(m)
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		x := tensor.MustFromData([]float32{-100, -0.07, 0.026, 0.3, 5.6, 100}, 2, 3)
		got := forward(t, g, x)
		sameValues(t, dt.String(), runRef(t, m, x, "y"), got, x.Data)
		if len(g.Params()) != 1 || g.Params()[0].Kind != graph.Weight {
			t.Errorf("%s: params %v, want the dequantized weight", dt, g.Params())
		}
	}
}

// TestImportRejectsBadDescriptions checks that a corrupt quantizer
// description or a mismatch between description and file is an error.
func TestImportRejectsBadDescriptions(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	g, _ := calibratedActGraph(t, Spec{Role: ActivationRole, Method: MethodUniform, Bits: 4}, rng)
	edits := map[string]func(m *onnxpb.ModelProto){
		"bad json": func(m *onnxpb.ModelProto) { m.Graph.Node[0].DocString = docPrefix + "{" },
		"wrong version": func(m *onnxpb.ModelProto) {
			m.Graph.Node[0].DocString = strings.Replace(m.Graph.Node[0].DocString, `"v":1`, `"v":9`, 1)
		},
		"other scale": func(m *onnxpb.ModelProto) {
			for _, init := range m.Graph.Initializer {
				if strings.HasSuffix(init.Name, ".scale") {
					*init = *onnx.FloatTensor(init.Name, []float32{1.5})
				}
			}
		},
		"other range": func(m *onnxpb.ModelProto) {
			for _, init := range m.Graph.Initializer {
				if strings.HasSuffix(init.Name, ".qmax") {
					init.RawData = []byte{200}
				}
			}
		},
	}
	for name, edit := range edits {
		m, err := onnx.ToModel(g)
		if err != nil {
			t.Fatal(err)
		}
		edit(m)
		if _, err := onnx.FromModel(m); err == nil {
			t.Errorf("%s: import succeeded", name)
		}
	}
	// A hostile WEQ description (thresholds longer than representatives)
	// must fail at import, not panic later.
	w := tensor.MustFromData(sample(rng, 64, true), 4, 16)
	wg := weightGraph(t, Spec{Role: WeightRole, Method: MethodWEQ, Bits: 2}, w)
	m, err := onnx.ToModel(wg)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.Node {
		if n.OpType == "Cast" {
			n.DocString = strings.Replace(n.DocString, `"thresh":[0,`, `"thresh":[0,0,`, 1)
		}
	}
	if _, err := onnx.FromModel(m); err == nil || !strings.Contains(err.Error(), "thresholds") {
		t.Errorf("hostile WEQ description: %v", err)
	}
}

// TestONNXCheckerAcceptsQuantizedFiles runs the reference onnx.checker on
// every form (skipped without python3 and the onnx module).
func TestONNXCheckerAcceptsQuantizedFiles(t *testing.T) {
	dir := t.TempDir()
	probe := exec.Command("/usr/bin/python3", "-c", "import onnx.checker")
	probe.Dir = dir
	if err := probe.Run(); err != nil {
		t.Skipf("python3 with the onnx module is not available: %v", err)
	}
	var paths []string
	save := func(name string, g *graph.Graph) {
		p := filepath.Join(dir, name+".onnx")
		if err := onnx.Save(g, p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	rng := rand.New(rand.NewSource(2))
	for _, c := range actCases() {
		g, _ := calibratedActGraph(t, c.spec, rng)
		save(c.name, g)
	}
	for _, m := range []Method{MethodUniform, MethodWEQ, MethodOLAQ} {
		for _, pc := range []bool{false, true} {
			w := tensor.MustFromData(sample(rng, 4*9, true), 4, 9)
			save(fmt.Sprintf("w_%s_%v", m, pc), weightGraph(t, Spec{Role: WeightRole, Method: m, Bits: 3, PerChannel: pc}, w))
		}
	}
	script := `
import sys, onnx
bad = 0
for p in sys.argv[1:]:
    try:
        onnx.checker.check_model(p, full_check=True)
    except Exception as e:
        bad += 1
        print(p + ": " + str(e).replace("\n", " ")[:400])
sys.exit(1 if bad else 0)
`
	cmd := exec.Command("/usr/bin/python3", append([]string{"-c", script}, paths...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("onnx.checker rejected quantized files (%v):\n%s", err, strings.ReplaceAll(string(out), dir+"/", ""))
	}
}
