package quant

import (
	"bytes"
	"math"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/onnx"
	"lowbit/ops"
	"lowbit/optim"
	"lowbit/tensor"
)

func buildWidth(t *testing.T, name string, width float64) *graph.Graph {
	t.Helper()
	g, err := models.Build(name, models.Config{InC: 1, H: 28, W: 28, Classes: 10, Width: width, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func randBatch(n int, seed int64) *tensor.Tensor {
	x := tensor.New(n, 1, 28, 28)
	x.RandNormal(rand.New(rand.NewSource(seed)), 1)
	return x
}

// forwardValues runs g in evaluation mode on x and returns copies of
// the values named.
func forwardValues(t *testing.T, g *graph.Graph, x *tensor.Tensor, names ...string) map[string]*tensor.Tensor {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]*tensor.Tensor{}
	for _, v := range g.Inputs {
		if want[v.Name] {
			got[v.Name] = x
		}
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	e.OnForward = func(n *graph.Node, _, out []*tensor.Tensor) {
		for i, v := range n.Outputs {
			if want[v.Name] {
				got[v.Name] = out[i].Clone()
			}
		}
	}
	if _, err := e.Forward(x); err != nil {
		t.Fatal(err)
	}
	return got
}

func percentile95(x []float32, off float32, abs bool) float64 {
	var pos []float64
	for _, v := range x {
		v += off
		if abs {
			v = float32(math.Abs(float64(v)))
		}
		if v > 0 {
			pos = append(pos, float64(v))
		}
	}
	sort.Float64s(pos)
	return pos[min(len(pos)-1, int(0.95*float64(len(pos))))]
}

// TestInsertDuQLeNet checks where DuQ insertion puts its nodes on LeNet-5,
// their modes, widths, parameter names and kinds, and the initialization
// of §6 (weights 0.9·max|w|, activations the 95th percentile on the batch).
func TestInsertDuQLeNet(t *testing.T) {
	g := buildWidth(t, "lenet5", 1)
	batch := randBatch(8, 1)
	ref := forwardValues(t, g, batch, "input", "pool1", "flatten", "relu3", "relu4")
	p := QATPolicy{Policy: DefaultPolicy(MethodUniform, 4, 4), DuQ: true, Highway: Highway{Enabled: true}}
	n, err := InsertQAT(g, p, batch)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10 {
		t.Fatalf("%d quantizers added, want 10 (5 weights, 5 inputs)", n)
	}
	sites, err := DuQSites(g)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		mode DuQMode
		bits int
	}{
		"conv1.weight": {DuQWeight, 8}, "input": {DuQSigned, 8},
		"conv2.weight": {DuQWeight, 4}, "pool1": {DuQReLU, 4},
		"fc1.weight": {DuQWeight, 4}, "flatten": {DuQReLU, 4},
		"fc2.weight": {DuQWeight, 4}, "relu3": {DuQReLU, 4},
		"logits.weight": {DuQWeight, 8}, "relu4": {DuQReLU, 8},
	}
	if len(sites) != len(want) {
		t.Fatalf("%d DuQ sites, want %d", len(sites), len(want))
	}
	for _, s := range sites {
		w, ok := want[s.Tensor.Name]
		if !ok {
			t.Fatalf("unexpected DuQ on %s", s.Tensor.Name)
		}
		if s.Op.Mode != w.mode || s.Op.Bits != w.bits {
			t.Errorf("%s: %v %d bits, want %v %d", s.Tensor.Name, s.Op.Mode, s.Op.Bits, w.mode, w.bits)
		}
		if s.Node.Name != s.Tensor.Name+".duq" || s.Alpha.Name != s.Tensor.Name+".duq.alpha" || s.Gamma.Name != s.Tensor.Name+".duq.gamma" {
			t.Errorf("names %s %s %s", s.Node.Name, s.Alpha.Name, s.Gamma.Name)
		}
		if s.Alpha.Kind != graph.QuantParam || s.Gamma.Kind != graph.QuantParam || s.Alpha == s.Gamma {
			t.Errorf("%s: parameter kinds %v %v", s.Node.Name, s.Alpha.Kind, s.Gamma.Kind)
		}
		if len(s.Layers) != 1 {
			t.Errorf("%s feeds %d layers", s.Node.Name, len(s.Layers))
		}
		as, cs := s.ChannelScales()
		if len(as) != 1 {
			t.Fatalf("%s: %d channels, want a per-tensor site", s.Tensor.Name, len(as))
		}
		a, c := as[0], cs[0]
		var wantA float64
		if s.Op.Mode == DuQWeight {
			wantA = 0.9 * float64(s.Tensor.Param.Data.MaxAbs())
		} else {
			wantA = percentile95(ref[s.Tensor.Name].Data, 0, s.Op.Mode == DuQSigned)
		}
		if math.Abs(float64(a)-wantA) > 1e-4*wantA || a != c {
			t.Errorf("%s: a=%v c=%v, want both %v", s.Tensor.Name, a, c, wantA)
		}
	}
	// The layers read the quantized copies.
	for _, l := range []string{"conv1", "conv2", "fc1", "fc2", "logits"} {
		n := g.NodeByName(l)
		for i := range 2 {
			if q, ok := duqOf(n.Inputs[i].Producer); !ok || (i == 1) != (q.Mode == DuQWeight) {
				t.Errorf("%s input %d is not read through a DuQ", l, i)
			}
		}
	}
	// A second call adds nothing; SetBits re-targets without touching a, c.
	if n, err := InsertQAT(g, p, batch); err != nil || n != 0 {
		t.Fatalf("second insertion added %d (%v)", n, err)
	}
	before := sites[2].Alpha.Data.Data[0]
	changed, err := SetBits(g, DefaultPolicy(MethodUniform, 3, 2))
	if err != nil || len(changed) != 6 {
		t.Fatalf("SetBits changed %d quantizers (%v), want the 6 middle ones", len(changed), err)
	}
	sites, _ = DuQSites(g)
	for _, s := range sites {
		if s.Tensor.Name == "conv2.weight" && s.Op.Bits != 3 || s.Tensor.Name == "pool1" && s.Op.Bits != 2 || s.Tensor.Name == "input" && s.Op.Bits != 8 {
			t.Errorf("after SetBits %s has %d bits", s.Tensor.Name, s.Op.Bits)
		}
	}
	if sites[2].Alpha.Data.Data[0] != before {
		t.Error("SetBits changed a DuQ parameter")
	}
	if _, err := SetBits(g, DefaultPolicy(MethodUniform, 0, 4)); err == nil {
		t.Error("SetBits to float accepted")
	}
}

// TestInsertDuQInitMSE checks that InitMSE starts activation quantizers at
// the MSE-optimal clip of their bit width and leaves weights at 0.9·max|w|.
func TestInsertDuQInitMSE(t *testing.T) {
	g := buildWidth(t, "lenet5", 1)
	batch := randBatch(8, 1)
	ref := forwardValues(t, g, batch, "input", "pool1", "flatten", "relu3", "relu4")
	p := QATPolicy{Policy: DefaultPolicy(MethodUniform, 4, 4), DuQ: true, Highway: Highway{Enabled: true}, Init: InitMSE}
	if _, err := InsertQAT(g, p, batch); err != nil {
		t.Fatal(err)
	}
	sites, err := DuQSites(g)
	if err != nil {
		t.Fatal(err)
	}
	differs := 0
	for _, s := range sites {
		as, _ := s.ChannelScales()
		a := float64(as[0])
		var wantA float64
		if s.Op.Mode == DuQWeight {
			wantA = 0.9 * float64(s.Tensor.Param.Data.MaxAbs())
		} else {
			alpha, _, err := DuQInitMSE(s.Op.Mode, s.Op.Bits, ref[s.Tensor.Name].Data)
			if err != nil {
				t.Fatal(err)
			}
			wantA = Softplus(float64(alpha))
			if p95 := percentile95(ref[s.Tensor.Name].Data, 0, s.Op.Mode == DuQSigned); math.Abs(p95-wantA) > 1e-3*p95 {
				differs++
			}
		}
		if math.Abs(a-wantA) > 1e-4*wantA {
			t.Errorf("%s (%v, %d bits): a=%v, want %v", s.Tensor.Name, s.Op.Mode, s.Op.Bits, a, wantA)
		}
	}
	if differs == 0 {
		t.Error("no activation range differs from the 95th percentile")
	}
}

// TestInsertDuQMobileNets checks the h-swish and ReLU6 forms and negative
// padding on MobileNetV3-small and MobileNetV2.
func TestInsertDuQMobileNets(t *testing.T) {
	g := buildWidth(t, "mobilenetv3-small", 0.5)
	fl := buildWidth(t, "mobilenetv3-small", 0.5)
	nf, err := NegativePadding(fl)
	if err != nil || nf == 0 {
		t.Fatalf("float negative padding changed %d convolutions (%v)", nf, err)
	}
	if again, _ := NegativePadding(fl); again != 0 {
		t.Fatalf("negative padding is not idempotent: %d more", again)
	}
	p := QATPolicy{Policy: DefaultPolicy(MethodUniform, 4, 4), DuQ: true, NegativePadding: true}
	if _, err := InsertQAT(g, p, randBatch(2, 2)); err != nil {
		t.Fatal(err)
	}
	sites, err := DuQSites(g)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[DuQMode]int{}
	for _, s := range sites {
		modes[s.Op.Mode]++
	}
	if modes[DuQHSwish] == 0 || modes[DuQReLU] == 0 || modes[DuQSigned] == 0 {
		t.Fatalf("modes %v: want h-swish, relu and signed activations", modes)
	}
	// Squeeze-and-excite outputs (activation × gate in [0, 1]) take the
	// activation's form: h-swish (≥ −3/8) or relu, never the signed grid.
	gated := 0
	for _, s := range sites {
		if s.Tensor.Producer == nil || s.Tensor.Producer.Op.Type() != "Mul" {
			continue
		}
		gated++
		act := s.Tensor.Producer.Inputs[0]
		want := DuQReLU
		if hswishOutput(act) {
			want = DuQHSwish
		}
		if s.Op.Mode != want {
			t.Errorf("%s (input %s): mode %v, want %v", s.Tensor.Name, act.Name, s.Op.Mode, want)
		}
	}
	if gated == 0 {
		t.Error("no squeeze-and-excite output quantized")
	}
	neg := 0
	for _, n := range g.Nodes {
		c, ok := n.Op.(ops.Conv)
		if !ok {
			continue
		}
		hs := hswishOutput(n.Inputs[0])
		if hs && padded(c) != (c.PadValue == -HSwishOffset) {
			t.Errorf("%s: fed by an h-swish DuQ, pads %v", n.Name, c.PadValue)
		}
		if !hs && c.PadValue != 0 {
			t.Errorf("%s: not fed by an h-swish, pads %v", n.Name, c.PadValue)
		}
		if c.PadValue != 0 {
			neg++
		}
	}
	if neg != nf {
		t.Errorf("%d convolutions pad with −3/8 after insertion, the float pass changed %d", neg, nf)
	}
	// ReLU6 ranges start at most at 6.
	v2 := buildWidth(t, "mobilenetv2", 0.5)
	x := randBatch(2, 3)
	for i := range x.Data {
		x.Data[i] *= 50
	}
	if _, err := InsertQAT(v2, p, x); err != nil {
		t.Fatal(err)
	}
	s2, _ := DuQSites(v2)
	capped := 0
	for _, s := range s2 {
		if m, c := DuQActivationMode(s.Tensor); m == DuQReLU && c == 6 {
			as, _ := s.ChannelScales()
			if a := slices.Max(as); a > 6+1e-5 {
				t.Errorf("%s after ReLU6 starts at a=%v", s.Tensor.Name, a)
			}
			capped++
		}
	}
	if capped == 0 {
		t.Fatal("no ReLU6 quantizer found in MobileNetV2")
	}
}

// TestHighwayPolicy checks the three policies on ResNet-20: highway (the
// residual additions read float values, the projection shortcut's input
// stays float, its weight is quantized), highway at 8 bits (additions and
// shortcut read one 8-bit quantizer) and none (additions read the
// quantized block input).
func TestHighwayPolicy(t *testing.T) {
	skip, err := SkipPathLayers(buildWidth(t, "resnet20", 0.25))
	if err != nil {
		t.Fatal(err)
	}
	if len(skip) != 2 || !skip["layer2.0.shortcut.conv"] || !skip["layer3.0.shortcut.conv"] {
		t.Fatalf("skip-path layers %v", skip)
	}
	for _, hw := range []Highway{{Enabled: true}, {Enabled: true, Bits: 8}, {}} {
		g := buildWidth(t, "resnet20", 0.25)
		p := QATPolicy{Policy: DefaultPolicy(MethodUniform, 3, 3), DuQ: true, Highway: hw}
		if _, err := InsertQAT(g, p, randBatch(2, 4)); err != nil {
			t.Fatal(err)
		}
		adds, err := ResidualAdds(g)
		if err != nil || len(adds) != 9 {
			t.Fatalf("%d residual adds (%v)", len(adds), err)
		}
		for _, a := range adds {
			for _, c := range g.Consumers(a.Outputs[0]) {
				if IsQuantizer(c) {
					t.Errorf("%+v: output of %s is quantized by %s", hw, a.Name, c.Name)
				}
			}
			if q := quantizedBy(a.Inputs[0]); q != nil {
				t.Errorf("%+v: branch input of %s is quantized", hw, a.Name)
			}
			sc := quantizedBy(a.Inputs[1])
			identity := !strings.HasPrefix(a.Inputs[1].Name, a.Name[:len(a.Name)-4]+".shortcut")
			switch {
			case !hw.Enabled && identity && (sc == nil || quantizerBits(sc) != 3):
				t.Errorf("no highway: identity shortcut of %s is not the 3-bit quantized copy", a.Name)
			case hw.Enabled && hw.Bits == 0 && sc != nil:
				t.Errorf("highway: shortcut of %s is quantized", a.Name)
			case hw.Enabled && hw.Bits == 8 && identity && (sc == nil || quantizerBits(sc) != 8):
				t.Errorf("8-bit highway: shortcut of %s is not 8-bit", a.Name)
			}
		}
		for name := range skip {
			l := g.NodeByName(name)
			in, w := quantizedBy(l.Inputs[0]), quantizedBy(l.Inputs[1])
			if w == nil || quantizerBits(w) != 3 {
				t.Errorf("%+v: %s weight is not quantized at 3 bits", hw, name)
			}
			switch {
			case !hw.Enabled && (in == nil || quantizerBits(in) != 3):
				t.Errorf("no highway: %s input is not 3-bit", name)
			case hw.Enabled && hw.Bits == 0 && in != nil:
				t.Errorf("highway: %s input is quantized", name)
			case hw.Bits == 8 && (in == nil || quantizerBits(in) != 8):
				t.Errorf("8-bit highway: %s input is not 8-bit", name)
			}
		}
		// Progressive re-targeting keeps the highway's widths.
		eff, err := p.Effective(g)
		if err != nil {
			t.Fatal(err)
		}
		eff.ActBits, eff.WeightBits = 2, 2
		if _, err := SetBits(g, eff); err != nil {
			t.Fatal(err)
		}
		for name := range skip {
			if in := quantizedBy(g.NodeByName(name).Inputs[0]); hw.Bits == 8 && quantizerBits(in) != 8 {
				t.Errorf("SetBits changed the highway width of %s to %d", name, quantizerBits(in))
			}
		}
	}
}

// TestDuQONNXRoundTrip exports DuQ nodes of every mode at 3, 8 and 12
// bits and checks the standard-operator form, the bit-identical reload
// and the restored parameters.
func TestDuQONNXRoundTrip(t *testing.T) {
	for _, bits := range []int{3, 8, 12} {
		g := graph.New("duq")
		x := g.Input("x", -1, 16)
		var outs []*graph.Value
		for i, mode := range []DuQMode{DuQWeight, DuQReLU, DuQHSwish, DuQSigned} {
			in := x
			if mode == DuQWeight {
				w := tensor.New(16)
				w.RandNormal(rand.New(rand.NewSource(int64(i))), 1)
				in = g.AddParam("w", graph.Weight, w)
			}
			y, err := addDuQ(g, nil, in, g.UniqueName(in.Name+".duq"), DuQ{Mode: mode, Bits: bits},
				[]float32{float32(InvSoftplus(1.3 + 0.1*float64(i)))}, []float32{float32(InvSoftplus(0.9))}, mode == DuQSigned)
			if err != nil {
				t.Fatal(err)
			}
			if mode == DuQWeight {
				y = g.Apply("mulw", ops.Mul{}, x, y)
			}
			outs = append(outs, y)
		}
		g.SetOutputs(outs...)
		if err := g.Reinfer(); err != nil {
			t.Fatal(err)
		}
		b, err := onnx.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"QuantizeLinear", "DequantizeLinear"} {
			if has := bytes.Contains(b, []byte(op)); has != (bits <= 8) {
				t.Errorf("%d bits: %s present = %v", bits, op, has)
			}
		}
		g2, err := onnx.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		s1, _ := DuQSites(g)
		s2, err := DuQSites(g2)
		if err != nil || len(s2) != len(s1) {
			t.Fatalf("%d bits: %d DuQ sites after reload (%v), want %d", bits, len(s2), err, len(s1))
		}
		for i := range s1 {
			if s1[i].Op != s2[i].Op || s1[i].Alpha.Name != s2[i].Alpha.Name || s2[i].Alpha.Kind != graph.QuantParam ||
				(s1[i].Alpha == s1[i].Gamma) != (s2[i].Alpha == s2[i].Gamma) || s1[i].Alpha.Data.Data[0] != s2[i].Alpha.Data.Data[0] {
				t.Errorf("%d bits: site %d differs after reload: %+v vs %+v", bits, i, s1[i].Op, s2[i].Op)
			}
		}
		in := tensor.New(64, 16)
		in.RandUniform(rand.New(rand.NewSource(9)), -3, 3)
		e1, _ := graph.NewExecutor(g)
		e2, _ := graph.NewExecutor(g2)
		o1, err := e1.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		var c1 [][]float32
		for _, o := range o1 {
			c1 = append(c1, append([]float32(nil), o.Data...))
		}
		o2, err := e2.Forward(in)
		if err != nil {
			t.Fatal(err)
		}
		for k := range c1 {
			for j := range c1[k] {
				if math.Float32bits(c1[k][j]) != math.Float32bits(o2[k].Data[j]) {
					t.Fatalf("%d bits output %d differs at %d: %v vs %v", bits, k, j, c1[k][j], o2[k].Data[j])
				}
			}
		}
	}
}

// TestInsertDuQPerChannel checks per-channel DuQ weights on LeNet-5:
// [Cout] parameters of kind QuantParam (trained at 1 % of the learning
// rate without weight decay) initialized channel by channel, activations
// per tensor, training gradients for every channel, and an ONNX round
// trip (8-bit QDQ form and, after SetBits, the 16-bit float form) that
// reloads the parameters and reproduces the outputs bit for bit.
func TestInsertDuQPerChannel(t *testing.T) {
	g := buildWidth(t, "lenet5", 1)
	batch := randBatch(8, 1)
	pol := DefaultPolicy(MethodUniform, 4, 4)
	pol.PerChannel = true
	if _, err := InsertQAT(g, QATPolicy{Policy: pol, DuQ: true}, batch); err != nil {
		t.Fatal(err)
	}
	sites, err := DuQSites(g)
	if err != nil {
		t.Fatal(err)
	}
	weights := 0
	for _, s := range sites {
		if s.Role() != WeightRole {
			if s.PerChannel() || s.Alpha.Data.Len() != 1 {
				t.Errorf("activation %s has %v parameters", s.Node.Name, s.Alpha.Data.Shape)
			}
			continue
		}
		weights++
		w := s.Tensor.Param.Data
		cout := w.Shape[0]
		if !s.PerChannel() || !slices.Equal(s.Alpha.Data.Shape, []int{cout}) || !slices.Equal(s.Gamma.Data.Shape, []int{cout}) ||
			s.Alpha.Kind != graph.QuantParam || s.Gamma.Kind != graph.QuantParam {
			t.Errorf("%s: parameters %v %v (kinds %v %v), want QuantParam [%d]", s.Node.Name, s.Alpha.Data.Shape, s.Gamma.Data.Shape, s.Alpha.Kind, s.Gamma.Kind, cout)
			continue
		}
		wa, wg, err := DuQInitPerChannel(DuQWeight, w.Data, cout)
		if err != nil || !slices.Equal(wa, s.Alpha.Data.Data) || !slices.Equal(wg, s.Gamma.Data.Data) {
			t.Errorf("%s: not initialized channel by channel (%v)", s.Node.Name, err)
		}
		if !strings.Contains(DescribeDuQ(s), "per-channel") {
			t.Errorf("%s: description %q", s.Node.Name, DescribeDuQ(s))
		}
	}
	if weights != 5 {
		t.Fatalf("%d weight DuQs, want 5", weights)
	}
	quantParams := map[*graph.Param]bool{}
	for _, gr := range optim.DefaultGroups(g, 5e-4) {
		for _, p := range gr.Params {
			if p.Kind == graph.QuantParam {
				quantParams[p] = true
				if gr.LRScale != optim.QuantLRScale || gr.WeightDecay != 0 {
					t.Errorf("quantizer parameter %s in group lr×%v wd %v", p.Name, gr.LRScale, gr.WeightDecay)
				}
			}
		}
	}
	for _, s := range sites {
		if !quantParams[s.Alpha] || !quantParams[s.Gamma] {
			t.Errorf("%s: parameters missing from the quantizer group", s.Node.Name)
		}
	}
	// A training step reaches every channel's range and scale.
	e, err := graph.NewExecutor(g)
	if err != nil {
		t.Fatal(err)
	}
	e.Training = true
	g.ZeroGrad()
	out, err := e.Forward(batch)
	if err != nil {
		t.Fatal(err)
	}
	dy := tensor.New(out[0].Shape...)
	dy.RandNormal(rand.New(rand.NewSource(5)), 1)
	if err := e.Backward(dy); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		if s.PerChannel() && (s.Gamma.Grad == nil || s.Gamma.Grad.Len() != s.Gamma.Data.Len() || s.Gamma.Grad.MaxAbs() == 0) {
			t.Errorf("%s: no scale gradient", s.Node.Name)
		}
	}
	roundTrip := func(what string) {
		t.Helper()
		b, err := onnx.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		g2, err := onnx.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		s1, _ := DuQSites(g)
		s2, err := DuQSites(g2)
		if err != nil || len(s2) != len(s1) {
			t.Fatalf("%s: %d DuQ sites after reload (%v), want %d", what, len(s2), err, len(s1))
		}
		for i := range s1 {
			if s1[i].Op != s2[i].Op || s2[i].Alpha.Kind != graph.QuantParam || s2[i].Gamma.Kind != graph.QuantParam ||
				!slices.Equal(s1[i].Alpha.Data.Data, s2[i].Alpha.Data.Data) || !slices.Equal(s1[i].Gamma.Data.Data, s2[i].Gamma.Data.Data) ||
				!slices.Equal(s1[i].Alpha.Data.Shape, s2[i].Alpha.Data.Shape) {
				t.Errorf("%s: site %s differs after reload", what, s1[i].Node.Name)
			}
		}
		x := randBatch(16, 6)
		e1, _ := graph.NewExecutor(g)
		e2, _ := graph.NewExecutor(g2)
		o1, err := e1.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(o1[0].Data)
		o2, err := e2.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		for j := range want {
			if math.Float32bits(want[j]) != math.Float32bits(o2[0].Data[j]) {
				t.Fatalf("%s: output %d differs after reload: %v vs %v", what, j, want[j], o2[0].Data[j])
			}
		}
	}
	roundTrip("4 bits")
	if _, err := SetBits(g, DefaultPolicy(MethodUniform, 16, 4)); err != nil {
		t.Fatal(err)
	}
	roundTrip("16 bits")
}
