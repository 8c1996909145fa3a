package quant

import (
	"strings"
	"testing"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/ops"
	"lowbit/tensor"
)

func buildModel(t *testing.T, name string, c, hw int) *graph.Graph {
	t.Helper()
	g, err := models.Build(name, models.Config{InC: c, H: hw, W: hw, Classes: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// siteOf returns the quantizer feeding input i of the named layer (nil if
// that input is not quantized).
func siteOf(t *testing.T, g *graph.Graph, layer string, i int) *FakeQuant {
	t.Helper()
	n := g.NodeByName(layer)
	if n == nil {
		t.Fatalf("no layer %s", layer)
	}
	if p := n.Inputs[i].Producer; p != nil {
		if fq, ok := p.Op.(*FakeQuant); ok {
			return fq
		}
	}
	return nil
}

// TestInsertFollowsPolicy checks placement, bit widths, the first/last
// override, signedness, the skip list and per-layer overrides on LeNet-5.
func TestInsertFollowsPolicy(t *testing.T) {
	g := buildModel(t, "lenet5", 1, 28)
	if _, err := FoldBatchNorm(g); err != nil {
		t.Fatal(err)
	}
	p := DefaultPolicy(MethodOLAQ, 4, 3)
	p.PerChannel = true
	p.Skip = []string{"fc2"}
	p.Layers = map[string]LayerBits{"conv2": {Weight: 2, Input: -1}}
	sites, err := Insert(g, p)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		layer      string
		wbits      int // 0: not quantized
		abits      int
		signedAct  bool
		perChannel bool
	}
	for _, w := range []want{
		{"conv1", 8, 8, true, true},   // first layer: override, image input is signed
		{"conv2", 2, 0, false, true},  // per-layer override: 2-bit weights, float input
		{"fc1", 4, 3, false, true},    // defaults; flatten of max-pooled ReLU is unsigned
		{"fc2", 0, 0, false, false},   // skipped
		{"logits", 8, 8, false, true}, // last layer: override
	} {
		wq, aq := siteOf(t, g, w.layer, 1), siteOf(t, g, w.layer, 0)
		if got := bitsOf(wq); got != w.wbits {
			t.Errorf("%s weight: %d bits, want %d", w.layer, got, w.wbits)
		}
		if got := bitsOf(aq); got != w.abits {
			t.Errorf("%s input: %d bits, want %d", w.layer, got, w.abits)
		}
		if wq != nil && (wq.Spec.Role != WeightRole || wq.Spec.PerChannel != w.perChannel || wq.Spec.Method != MethodOLAQ) {
			t.Errorf("%s weight spec %+v", w.layer, wq.Spec)
		}
		if aq != nil && (aq.Spec.Role != ActivationRole || aq.Spec.Signed != w.signedAct) {
			t.Errorf("%s input spec %+v, want signed=%v", w.layer, aq.Spec, w.signedAct)
		}
	}
	if len(sites) != 7 {
		t.Errorf("%d quantizers, want 7", len(sites))
	}
	if _, err := Insert(g, p); err == nil {
		t.Errorf("inserting twice succeeded")
	}
	// Weights-only quantization: the first/last override does not
	// quantize the float activations.
	wg := buildModel(t, "lenet5", 1, 28)
	if _, err := Insert(wg, DefaultPolicy(MethodWEQ, 3, 0)); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"conv1", "fc1", "logits"} {
		if aq := siteOf(t, wg, l, 0); aq != nil {
			t.Errorf("weights-only policy quantized the input of %s", l)
		}
	}
	if b1, b2 := bitsOf(siteOf(t, wg, "conv1", 1)), bitsOf(siteOf(t, wg, "fc1", 1)); b1 != 8 || b2 != 3 {
		t.Errorf("weights-only policy: conv1 %d bits, fc1 %d bits, want 8 and 3", b1, b2)
	}
	for _, bad := range []func(*Policy){
		func(p *Policy) { p.Skip = []string{"nope"} },
		func(p *Policy) { p.WeightBits = 9 },
		func(p *Policy) { p.Layers = map[string]LayerBits{"relu3": {Weight: 4}} },
		func(p *Policy) { p.Method, p.WeightBits = MethodUniform, 1 },
	} {
		g := buildModel(t, "lenet5", 1, 28)
		n := len(g.Nodes)
		p := DefaultPolicy(MethodUniform, 4, 4)
		bad(&p)
		if _, err := Insert(g, p); err == nil {
			t.Errorf("policy %+v accepted", p)
		}
		if len(g.Nodes) != n {
			t.Errorf("rejected policy %+v changed the graph", p)
		}
	}
}

// TestInsertWithCustomOps checks that InsertWith hands every planned
// tensor to the inserter and rewires the layers to what it returns.
func TestInsertWithCustomOps(t *testing.T) {
	g := buildModel(t, "lenet5", 1, 28)
	var got []Spec
	ins := func(g *graph.Graph, after *graph.Node, name string, spec Spec, x *graph.Value) (*graph.Value, error) {
		got = append(got, spec)
		return g.InsertAfter(after, name, ops.Dropout{}, x)[0], g.Err()
	}
	if err := InsertWith(g, DefaultPolicy(MethodWEQ, 2, 3), ins); err != nil {
		t.Fatal(err)
	}
	if len(got) != 10 {
		t.Fatalf("inserter called %d times, want 10 (5 weights, 5 inputs)", len(got))
	}
	for _, l := range []string{"conv1", "fc2"} {
		for i := range 2 {
			if p := g.NodeByName(l).Inputs[i].Producer; p == nil || p.Op.Type() != "Dropout" {
				t.Errorf("input %d of %s is not the inserted node", i, l)
			}
		}
	}
	if _, err := graph.NewExecutor(g); err != nil {
		t.Errorf("rewired graph does not run: %v", err)
	}
}

func bitsOf(fq *FakeQuant) int {
	if fq == nil {
		return 0
	}
	return fq.Spec.Bits
}

// TestInsertSharesActivationQuantizers checks on ResNet-20 that a tensor
// read by two convolutions (a block input feeding conv1 and the shortcut)
// gets one quantizer, that residual additions keep reading the float
// value, and that every conv input after a ReLU is unsigned.
func TestInsertSharesActivationQuantizers(t *testing.T) {
	g := buildModel(t, "resnet20", 3, 32)
	if _, err := FoldBatchNorm(g); err != nil {
		t.Fatal(err)
	}
	if _, err := Insert(g, DefaultPolicy(MethodUniform, 4, 4)); err != nil {
		t.Fatal(err)
	}
	var shortcut *graph.Node
	for _, n := range g.Nodes {
		if strings.HasSuffix(n.Name, "shortcut.conv") {
			shortcut = n
			break
		}
	}
	if shortcut == nil {
		t.Fatal("no shortcut conv in resnet20")
	}
	conv1 := g.NodeByName(strings.TrimSuffix(shortcut.Name, "shortcut.conv") + "conv1")
	if conv1 == nil || conv1.Inputs[0] != shortcut.Inputs[0] {
		t.Fatalf("shortcut and conv1 of the block read different values")
	}
	q := conv1.Inputs[0].Producer
	if _, ok := q.Op.(*FakeQuant); !ok {
		t.Fatalf("block input is not quantized")
	}
	for _, c := range g.Consumers(q.Inputs[0]) {
		if isLayer(c) {
			t.Errorf("layer %s reads the unquantized input", c.Name)
		}
	}
	adds := 0
	for _, n := range g.Nodes {
		if n.Op.Type() != "Add" {
			continue
		}
		adds++
		for _, in := range n.Inputs {
			if _, ok := in.Producer.Op.(*FakeQuant); ok {
				t.Errorf("residual %s reads the quantized %s", n.Name, in.Name)
			}
		}
	}
	if adds != 9 {
		t.Errorf("%d residual additions, want 9", adds)
	}
	layers, _ := Layers(g)
	for i, l := range layers {
		fq := siteOf(t, g, l.Name, 0)
		if fq == nil {
			t.Fatalf("input of %s not quantized", l.Name)
		}
		if wantSigned := i == 0; fq.Spec.Signed != wantSigned {
			t.Errorf("input of %s: signed %v, want %v", l.Name, fq.Spec.Signed, wantSigned)
		}
	}
}

// TestNonNegative checks the sign analysis on producers.
func TestNonNegative(t *testing.T) {
	g := graph.New("sign")
	x := g.Input("x", -1, 4)
	r := g.Apply("r", ops.Relu{}, x)
	c := g.Apply("c", ops.Clip{Min: 0, Max: 6}, x)
	cn := g.Apply("cn", ops.Clip{Min: -1, Max: 1}, x)
	s := g.Apply("s", ops.Add{}, r, c)
	m := g.Apply("m", ops.Add{}, r, cn)
	hs := g.Apply("hs", ops.HardSwish{}, x)
	pos := tensor.MustFromData([]float32{1, 2, 3, 4}, 4)
	k := g.AddParam("k", graph.Const, pos)
	mk := g.Apply("mk", ops.Mul{}, r, k)
	for v, want := range map[*graph.Value]bool{x: false, r: true, c: true, cn: false, s: true, m: false, hs: false, k: true, mk: true} {
		if got := NonNegative(v); got != want {
			t.Errorf("NonNegative(%s) = %v, want %v", v.Name, got, want)
		}
	}
}
