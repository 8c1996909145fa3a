package sim

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// num and flag are documented test values.
func num(v float64) map[string]any { return map[string]any{"value": v, "assumption": "test"} }
func flag(v bool) map[string]any   { return map[string]any{"value": v, "assumption": "test"} }

// unitAccel is a tiny design: one group of two lanes, 1 kB buffer, 64-bit
// DRAM, every reuse factor 1, so counts are easy to do by hand.
func unitAccel(name, kind string, bits float64) map[string]any {
	a := map[string]any{
		"name": name, "kind": kind, "description": "test",
		"groups": num(1), "lanes": num(2),
		"weight_bits": num(bits), "act_bits": num(bits), "psum_bits": num(16), "first_layer_act_bits": num(bits),
		"skip_zero_acts": flag(kind != KindEyeriss), "skip_zero_weights": flag(kind == KindZeNA),
		"sparse_weights": flag(false), "compress_acts_dram": flag(false), "zero_index_bits": num(0),
		"buffer_kb": num(1), "psum_entries": num(1), "act_reuse": num(1), "dram_bits_per_cycle": num(64),
		"load_imbalance": num(1), "static_mw": num(0), "psum_rf_accesses": num(2),
	}
	if kind == KindOLAccel {
		a["outlier_bits"] = num(16)
		a["outlier_index_bits"] = num(8)
		a["outlier_weight_macs_per_group"] = num(1)
		a["outlier_act_macs"] = num(1)
	}
	return a
}

// unitConfig has every per-bit energy 1 pJ and no static energy.
func unitConfig(t *testing.T, accels ...map[string]any) *Config {
	t.Helper()
	c := map[string]any{
		"name": "unit", "description": "test", "clock_mhz": num(250), "highway_bits": num(16), "dram_static_mw": num(0),
		"energy": map[string]any{"mult_pj_per_bit2": num(1), "add_pj_per_bit": num(1), "rf_pj_per_bit": num(1),
			"noc_pj_per_bit": num(1), "buffer_pj_per_bit": num(1), "dram_pj_per_bit": num(1)},
		"accelerators": accels,
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(b, "unit.json")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// tinyFC is a 4-input, 2-output fully-connected layer.
func tinyFC(st LayerStats) *Workload {
	return &Workload{Name: "tiny", Layers: []Layer{{Name: "fc", Kind: "fc", C: 4, H: 1, W: 1, M: 2, KH: 1, KW: 1,
		SH: 1, SW: 1, Groups: 1, OH: 1, OW: 1, Stats: st}}}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func checkBreakdown(t *testing.T, what string, got Breakdown, want Breakdown) {
	t.Helper()
	if !near(got.DRAM, want.DRAM) || !near(got.Buffer, want.Buffer) || !near(got.Local, want.Local) ||
		!near(got.MACDense, want.MACDense) || !near(got.MACOutlier, want.MACOutlier) || !near(got.Static, want.Static) {
		t.Errorf("%s: energy %+v, want %+v", what, got, want)
	}
}

// TestTinyLayerBaselines checks a hand-computed layer on Eyeriss and ZeNA.
//
// fc 4→2, 8-bit, half the inputs zero: 8 MACs, 4 with a non-zero pair.
// DRAM: weights 8·8 + inputs 4·8 + outputs 2·8 = 112 bits.
// Buffer: fills 64+32, array reads 64 (weights) + 32 (inputs), output
// write+read 2·16: 224 bits. MAC: 4 ops · (8·8 + 16) = 320 pJ. Local: 4 ops ·
// (8+8+2·16) = 192, register fills and network (64+32)·2 = 192, output
// drain 2·16 = 32: 416 pJ. Eyeriss takes all 4 steps; ZeNA skips the zero
// half: 2 cycles (DRAM needs 112/64 = 1.75).
func TestTinyLayerBaselines(t *testing.T) {
	cfg := unitConfig(t, unitAccel("e", KindEyeriss, 8), unitAccel("z", KindZeNA, 8))
	w := tinyFC(LayerStats{ActZero: 0.5})
	want := Breakdown{DRAM: 112, Buffer: 224, Local: 416, MACDense: 320}
	for _, c := range []struct {
		accel  string
		cycles float64
	}{{"e", 4}, {"z", 2}} {
		r, err := Simulate(cfg, c.accel, w, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkBreakdown(t, c.accel, r.Energy, want)
		if r.Cycles != c.cycles || r.Layers[0].Ops != 4 || r.Layers[0].MACs != 8 {
			t.Errorf("%s: cycles %g ops %g macs %g, want %g, 4, 8", c.accel, r.Cycles, r.Layers[0].Ops, r.Layers[0].MACs, c.cycles)
		}
	}
}

// TestTinyLayerOLAccel checks the outlier accounting by hand.
//
// Same fc layer, 4-bit, half the inputs zero, half of the non-zero inputs and
// half of the weights outliers (16-bit value + 8-bit index = 24 bits).
// Storage per element: weights 4 + 0.5·24 = 16, inputs 4 + 0.25·24 = 10,
// outputs 4 + 0.5·24 = 16. DRAM 8·16 + 4·10 + 2·16 = 200; buffer 128 + 40 +
// 128 + 40 + 2·32 = 400. Of the 8 MACs, 2 have a dense non-zero input (1 with
// a 4-bit weight: 4·4+16 = 32 pJ; 1 on the extra outlier-weight MAC:
// 16·4+16 = 80) and 2 an outlier input (4·16+16 = 80 and 16·16+16 = 272).
// Local: 40 + 52 + 52 + 64 = 208, fills (128+40)·2 = 336, drain 32: 576.
// Cycles: dense steps 4·0.5·(1−0.5)·(1 + P(both lanes outliers) = 0.25) =
// 1.25, outlier-activation unit 2 MACs on 1 unit = 2, DRAM 200/64 = 3.125.
func TestTinyLayerOLAccel(t *testing.T) {
	cfg := unitConfig(t, unitAccel("o", KindOLAccel, 4))
	w := tinyFC(LayerStats{ActZero: 0.5, ActOutlier: 0.5, WeightOutlier: 0.5})
	r, err := Simulate(cfg, "o", w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkBreakdown(t, "olaccel", r.Energy, Breakdown{DRAM: 200, Buffer: 400, Local: 576, MACDense: 32, MACOutlier: 432})
	l := r.Layers[0]
	if l.Cycles != 3.125 || l.ComputeCycles != 2 || l.Ops != 4 {
		t.Errorf("cycles %g compute %g ops %g, want 3.125, 2, 4", l.Cycles, l.ComputeCycles, l.Ops)
	}
	// As the first layer, the input is the 4-bit image without outliers
	// (first_layer_act_bits = act_bits here): all 4 non-zero inputs go
	// through the dense lanes.
	w.Layers[0].First = true
	r, err = Simulate(cfg, "o", w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l := r.Layers[0]; l.Ops != 4 || l.ComputeCycles != 2.5 {
		t.Errorf("first layer: ops %g compute %g, want 4 and 2.5", l.Ops, l.ComputeCycles)
	}
}

// TestTiling checks that a layer that does not fit the buffer re-reads the
// cheaper operand: fc 16→2 at 8 bits has 256 weight bits and 128 input bits;
// with a 163.84-bit buffer (half 81.92) weights need 4 chunks and inputs 2,
// so streaming the weights twice (128 + 2·256) beats the inputs four times
// (256 + 4·128): DRAM = 640 + outputs 16.
func TestTiling(t *testing.T) {
	a := unitAccel("e", KindEyeriss, 8)
	a["buffer_kb"] = num(0.02)
	cfg := unitConfig(t, a)
	w := tinyFC(LayerStats{})
	w.Layers[0].C = 16
	r, err := Simulate(cfg, "e", w, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Layers[0].DRAMBits; got != 656 {
		t.Errorf("DRAM bits %g, want 656", got)
	}
}

func TestOutlierSpill(t *testing.T) {
	for _, c := range []struct {
		L       int
		p, e, w float64
	}{
		{16, 0, 1, 0},
		{16, 1, 1, 15},
		{2, 0.5, 1, 0.25},
		{16, 0.03, 1, 16*0.03 - 1 + math.Pow(0.97, 16)}, // E[max(k−1,0)] = Lp − 1 + (1−p)^L
		{16, 0.03, 0, 16 * 0.03},                        // no extra MAC: every outlier costs a cycle
	} {
		if got := outlierSpill(c.L, c.p, c.e); math.Abs(got-c.w) > 1e-12 {
			t.Errorf("outlierSpill(%d, %g, %g) = %g, want %g", c.L, c.p, c.e, got, c.w)
		}
	}
}

// TestMoreOutliersCostMore: on OLAccel, energy and cycles grow with the
// outlier ratio.
func TestMoreOutliersCostMore(t *testing.T) {
	cfg := DefaultConfig()
	for _, net := range []string{"alexnet", "resnet18"} {
		base, _ := Builtin(net)
		prevE, prevC := -1.0, -1.0
		for _, r := range []float64{0, 0.01, 0.03, 0.1} {
			w, err := base.WithOutlierRatio(r)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Simulate(cfg, "olaccel", w, Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := res.Energy.Total()
			if e <= prevE || res.Cycles <= prevC {
				t.Errorf("%s ratio %g: energy %g cycles %g not above %g, %g", net, r, e, res.Cycles, prevE, prevC)
			}
			prevE, prevC = e, res.Cycles
		}
	}
}

// scaleZeros returns a copy of w with every conv layer's input zero fraction
// set to z (FC layers unchanged, so DRAM-bound layers do not mask compute).
func scaleZeros(w *Workload, z float64) *Workload {
	c := w.Clone()
	for i := range c.Layers {
		if c.Layers[i].Kind == "conv" && !c.Layers[i].First {
			c.Layers[i].Stats.ActZero = z
		}
	}
	return c
}

// TestMoreZeros: zero-aware designs (ZeNA, OLAccel) need fewer cycles with
// more zeros; Eyeriss takes the same compute cycles; energy falls on all.
func TestMoreZeros(t *testing.T) {
	cfg := DefaultConfig()
	base := ResNet18()
	for _, accel := range []string{"zena16", "zena8", "olaccel", "eyeriss16", "eyeriss8"} {
		var prev *Result
		for _, z := range []float64{0.2, 0.5, 0.8} {
			r, err := Simulate(cfg, accel, scaleZeros(base, z), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if prev != nil {
				if r.Energy.Total() >= prev.Energy.Total() {
					t.Errorf("%s zeros %g: energy %g not below %g", accel, z, r.Energy.Total(), prev.Energy.Total())
				}
				gated := strings.HasPrefix(accel, "eyeriss")
				for i := range r.Layers {
					a, b := r.Layers[i].ComputeCycles, prev.Layers[i].ComputeCycles
					conv := r.Layers[i].Kind == "conv" && r.Layers[i].Name != "conv1" // conv1 reads the image
					switch {
					case gated && a != b:
						t.Errorf("%s layer %s: compute cycles changed with zeros (%g → %g)", accel, r.Layers[i].Name, b, a)
					case !gated && conv && a >= b:
						t.Errorf("%s layer %s: compute cycles %g not below %g with more zeros", accel, r.Layers[i].Name, a, b)
					}
				}
				if gated && r.Cycles > prev.Cycles {
					t.Errorf("%s: cycles grew with zeros", accel)
				}
				if !gated && r.Cycles >= prev.Cycles {
					t.Errorf("%s zeros %g: cycles %g not below %g", accel, z, r.Cycles, prev.Cycles)
				}
			}
			prev = r
		}
	}
}

func TestBuiltinShapes(t *testing.T) {
	for _, c := range []struct {
		name   string
		gmacs  float64
		layers int
	}{
		{"alexnet", 0.7243, 8}, {"alexnet-dense", 0.7243, 8}, {"vgg16", 15.47, 16}, {"vgg16-dense", 15.47, 16}, {"resnet18", 1.814, 21},
	} {
		w, err := Builtin(c.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Validate(); err != nil {
			t.Fatal(err)
		}
		if got := w.TotalMACs() / 1e9; math.Abs(got/c.gmacs-1) > 0.01 || len(w.Layers) != c.layers {
			t.Errorf("%s: %.4g GMACs in %d layers, want %.4g in %d", c.name, got, len(w.Layers), c.gmacs, c.layers)
		}
	}
	if _, err := Builtin("lenet"); err == nil || !strings.Contains(err.Error(), "resnet18") {
		t.Errorf("unknown network error %v should list the built-ins", err)
	}
	if w, _ := Builtin("vgg16-dense"); w.Paper != "vgg16" {
		t.Errorf("vgg16-dense compares with paper %q", w.Paper)
	}
	if r := ResNet18(); len(r.Adds) != 8 {
		t.Errorf("resnet18 has %d residual additions, want 8", len(r.Adds))
	}
}

// TestPaperComparison pins the documented result: with the default
// configuration every OLAccel reduction is within 8 points of the paper.
func TestPaperComparison(t *testing.T) {
	cfg := DefaultConfig()
	for net, pairs := range PaperReductions {
		w, err := Builtin(net)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(cfg, w, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, c := range rep.Comparisons {
			if p, ok := pairs[[2]string{c.Accel, c.Baseline}]; ok {
				found++
				if math.Abs(c.Reduction-p) > 8 {
					t.Errorf("%s: %s vs %s reduction %.1f %%, paper %.1f %%", net, c.Accel, c.Baseline, c.Reduction, p)
				}
			}
		}
		if found != len(pairs) {
			t.Errorf("%s: %d of %d paper comparisons present", net, found, len(pairs))
		}
	}
}

func TestHighway(t *testing.T) {
	cfg := DefaultConfig()
	rep, err := Run(cfg, ResNet18(), []string{"olaccel", "zena16", "zena8"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	over := map[string]float64{}
	for _, h := range rep.HighwayRows {
		over[h.Accel] = h.OverheadPct
	}
	if !(over["olaccel"] > 0 && over["zena8"] > 0 && over["zena16"] == 0) {
		t.Errorf("highway overheads %v: want > 0 for 4- and 8-bit designs, 0 for the 16-bit one", over)
	}
	a, _ := Builtin("alexnet")
	rep, err = Run(cfg, a, []string{"olaccel"}, Options{})
	if err != nil || len(rep.HighwayRows) != 0 {
		t.Errorf("alexnet has no skip paths: rows %v, err %v", rep.HighwayRows, err)
	}
}
