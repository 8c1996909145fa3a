package optim

import (
	"math"
	"reflect"
	"testing"

	"lowbit/graph"
	"lowbit/tensor"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

var (
	refGrads = [][]float32{{0.1, -0.2, 0.3}, {-0.4, 0.5, 0.05}, {0.2, 0.2, -0.6}}
	refLRs   = []float64{0.1, 0.05, 0.02}
)

// The expected trajectories were printed by PyTorch 1.13 with
//
//	import torch
//	grads = [[0.1, -0.2, 0.3], [-0.4, 0.5, 0.05], [0.2, 0.2, -0.6]]; lrs = [0.1, 0.05, 0.02]
//	def run(make):
//	    p = torch.nn.Parameter(torch.tensor([0.5, -1.0, 2.0])); o = make([p])
//	    for g, lr in zip(grads, lrs):
//	        for gr in o.param_groups: gr['lr'] = lr
//	        p.grad = torch.tensor(g); o.step(); print(p.detach().tolist())
//	run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01))
//	run(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01))
//	run(lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.1))
//	run(lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.1))
//
// The first SGD step by hand: d = 0.1 + 0.01·0.5 = 0.105, p = 0.5 − 0.1·0.105 = 0.4895.
func TestOptimizersMatchPyTorch(t *testing.T) {
	cases := []struct {
		name string
		make func([]Group) Optimizer
		want [][]float64
	}{
		{"sgd", func(g []Group) Optimizer { return NewSGD(g, 0.9, false) },
			[][]float64{{0.4895, -0.979, 1.968}, {0.50453025, -0.99406046, 1.950116}, {0.50584024, -1.0032834, 1.9552878}}},
		{"nesterov", func(g []Group) Optimizer { return NewSGD(g, 0.9, true) },
			[][]float64{{0.48005, -0.9601, 1.9392}, {0.51334143, -0.99818289, 1.9196478}, {0.5104177, -1.0102862, 1.9359286}}},
		{"adam", func(g []Group) Optimizer { return NewAdam(g, false) },
			[][]float64{{0.4, -0.9, 1.9}, {0.42146713, -0.91025496, 1.8536921}, {0.42036325, -0.91603649, 1.8498822}}},
		{"adamw", func(g []Group) Optimizer { return NewAdam(g, true) },
			[][]float64{{0.395, -0.89, 1.88}, {0.42100018, -0.90766072, 1.8314337}, {0.42236167, -0.91670424, 1.8336979}}},
	}
	for _, c := range cases {
		wd := 0.01
		if c.name == "adam" || c.name == "adamw" {
			wd = 0.1
		}
		p := &graph.Param{Name: "w", Kind: graph.Weight, Data: tensor.MustFromData([]float32{0.5, -1, 2}, 3)}
		o := c.make([]Group{{Params: []*graph.Param{p}, WeightDecay: wd}})
		for s, g := range refGrads {
			p.Grad = tensor.MustFromData(append([]float32(nil), g...), 3)
			o.Step(refLRs[s])
			for i, v := range p.Data.Data {
				if !near(float64(v), c.want[s][i], 2e-6) {
					t.Errorf("%s step %d: p[%d] = %.8g, PyTorch %.8g", c.name, s+1, i, v, c.want[s][i])
				}
			}
		}
		o.ZeroGrad()
		if p.Grad.MaxAbs() != 0 {
			t.Errorf("%s: ZeroGrad left %v", c.name, p.Grad.Data)
		}
	}
}

func TestSkipsFrozenStateAndGradless(t *testing.T) {
	mk := func(name string, kind graph.Kind, grad bool) *graph.Param {
		p := &graph.Param{Name: name, Kind: kind, Data: tensor.MustFromData([]float32{1, 2}, 2)}
		if grad {
			p.Grad = tensor.MustFromData([]float32{1, 1}, 2)
		}
		return p
	}
	frozen, nograd, state, live := mk("frozen", graph.Weight, true), mk("nograd", graph.Weight, false), mk("mean", graph.BNMean, true), mk("live", graph.Weight, true)
	frozen.Frozen = true
	groups := []Group{{Params: []*graph.Param{frozen, nograd, state, live}, WeightDecay: 0.1}}
	for _, o := range []Optimizer{NewSGD(groups, 0.9, true), NewAdam(groups, true), &SGD{Groups: groups}} {
		live.Data.Data[0] = 1
		o.Step(0.1)
		for _, p := range []*graph.Param{frozen, nograd, state} {
			if p.Data.Data[0] != 1 || p.Data.Data[1] != 2 {
				t.Errorf("%T: %s changed to %v", o, p.Name, p.Data.Data)
			}
		}
		if live.Data.Data[0] == 1 {
			t.Errorf("%T: trainable parameter not updated", o)
		}
		if st := o.(Checkpointer).StateDict(); len(st.Params) > 1 {
			t.Errorf("%T: state kept for skipped parameters: %+v", o, st.Params)
		}
	}
}

func TestDefaultGroups(t *testing.T) {
	g := graph.New("m")
	for _, k := range []graph.Kind{graph.Weight, graph.Bias, graph.BNScale, graph.BNBias, graph.BNMean, graph.BNVar, graph.QuantParam, graph.Const} {
		g.AddParam(k.String(), k, tensor.New(2))
	}
	g.Param("weight").Frozen = true
	groups := DefaultGroups(g, 5e-4)
	names := func(gr Group) (out []string) {
		for _, p := range gr.Params {
			out = append(out, p.Name)
		}
		return out
	}
	if len(groups) != 3 ||
		!reflect.DeepEqual(names(groups[0]), []string{"weight"}) || groups[0].WeightDecay != 5e-4 || groups[0].LRScale != 1 ||
		!reflect.DeepEqual(names(groups[1]), []string{"bias", "bn_scale", "bn_bias"}) || groups[1].WeightDecay != 0 || groups[1].LRScale != 1 ||
		!reflect.DeepEqual(names(groups[2]), []string{"quant"}) || groups[2].WeightDecay != 0 || groups[2].LRScale != 0.01 {
		t.Fatalf("groups: %+v", groups)
	}
	// LRScale scales the step: a quantizer parameter moves by 1 % of lr·grad.
	q := g.Param("quant")
	q.Grad = tensor.MustFromData([]float32{1, 1}, 2)
	NewSGD(groups, 0, false).Step(0.5)
	if !near(float64(q.Data.Data[0]), -0.005, 1e-7) {
		t.Errorf("quant param after step: %v, want -0.005", q.Data.Data)
	}
	if len(DefaultGroups(graph.New("empty"), 0)) != 0 {
		t.Error("empty graph: groups not empty")
	}
}

// TestResumeIdenticalTrajectory checkpoints the optimizer after 3 steps,
// restores it into a fresh optimizer on a copy of the parameters, and
// checks the next steps agree exactly.
func TestResumeIdenticalTrajectory(t *testing.T) {
	grad := func(step int, p *graph.Param) {
		p.Grad = tensor.New(p.Data.Shape...)
		for i := range p.Grad.Data {
			p.Grad.Data[i] = float32(math.Sin(float64(step*7+i))) + 0.1*p.Data.Data[i]
		}
	}
	for _, mk := range []func([]Group) Optimizer{
		func(g []Group) Optimizer { return NewSGD(g, 0.9, true) },
		func(g []Group) Optimizer { return NewAdam(g, false) },
	} {
		newParams := func() []*graph.Param {
			return []*graph.Param{
				{Name: "a", Kind: graph.Weight, Data: tensor.MustFromData([]float32{1, -2, 3, 0.5}, 4)},
				{Name: "b", Kind: graph.Bias, Data: tensor.MustFromData([]float32{0.25}, 1)},
			}
		}
		ref := newParams()
		o := mk([]Group{{Params: ref[:1], WeightDecay: 1e-3}, {Params: ref[1:]}})
		var saved State
		var savedData [][]float32
		sched := Cosine{Base: 0.1, Warmup: 2, Total: 8}
		for s := range 6 {
			if s == 3 {
				saved = o.(Checkpointer).StateDict()
				savedData = [][]float32{append([]float32(nil), ref[0].Data.Data...), append([]float32(nil), ref[1].Data.Data...)}
			}
			for _, p := range ref {
				grad(s, p)
			}
			o.Step(sched.LR(s))
		}
		res := newParams()
		copy(res[0].Data.Data, savedData[0])
		copy(res[1].Data.Data, savedData[1])
		o2 := mk([]Group{{Params: res[:1], WeightDecay: 1e-3}, {Params: res[1:]}})
		if err := o2.(Checkpointer).LoadState(saved); err != nil {
			t.Fatal(err)
		}
		for s := 3; s < 6; s++ {
			for _, p := range res {
				grad(s, p)
			}
			o2.Step(sched.LR(s))
		}
		for i := range ref {
			if !reflect.DeepEqual(ref[i].Data.Data, res[i].Data.Data) {
				t.Errorf("%T: resumed %s = %v, uninterrupted %v", o, ref[i].Name, res[i].Data.Data, ref[i].Data.Data)
			}
		}
		// The saved state is a deep copy: later steps did not change it.
		o3 := mk([]Group{{Params: res[:1]}, {Params: res[1:]}})
		if err := o3.(Checkpointer).LoadState(saved); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o3.(Checkpointer).StateDict(), saved) {
			t.Errorf("%T: state round trip differs", o)
		}
	}
}

func TestLoadStateErrors(t *testing.T) {
	p := &graph.Param{Name: "a", Kind: graph.Weight, Data: tensor.New(2)}
	sgd := NewSGD([]Group{{Params: []*graph.Param{p}}}, 0.9, false)
	for _, st := range []State{
		{Kind: "adam"},
		{Kind: "sgd", Params: []ParamState{{Name: "zzz", Buffers: [][]float32{{0, 0}}}}},
		{Kind: "sgd", Params: []ParamState{{Name: "a", Buffers: [][]float32{{0, 0, 0}}}}},
		{Kind: "sgd", Params: []ParamState{{Name: "a", Buffers: [][]float32{{0, 0}, {0, 0}}}}},
	} {
		if err := sgd.LoadState(st); err == nil {
			t.Errorf("LoadState(%+v) accepted", st)
		}
	}
}

func TestSchedules(t *testing.T) {
	c := Cosine{Base: 0.2, Warmup: 10, Total: 110}
	for _, tc := range []struct {
		step int
		want float64
	}{
		{0, 0.02},            // warm-up start: 0.1·Base
		{5, 0.02 + 0.18*0.5}, // half-way through warm-up
		{10, 0.2},            // warm-up end: Base
		{60, 0.2 * (1e-3 + (1-1e-3)*0.5)},
		{110, 0.2e-3}, // final: 1e-3·Base
		{500, 0.2e-3},
	} {
		if got := c.LR(tc.step); !near(got, tc.want, 1e-12) {
			t.Errorf("Cosine.LR(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
	for s := 11; s <= 110; s++ {
		if c.LR(s) > c.LR(s-1) {
			t.Fatalf("cosine increases at step %d", s)
		}
	}
	z := Cosine{Base: 1, Warmup: 4, Total: 8, WarmupStart: -1, Final: -1}
	if z.LR(0) != 0 || z.LR(8) != 0 || z.LR(4) != 1 {
		t.Errorf("negative fractions: %v %v %v", z.LR(0), z.LR(4), z.LR(8))
	}
	if nw := (Cosine{Base: 1, Total: 2}); nw.LR(0) != 1 || !near(nw.LR(1), 0.5005, 1e-12) {
		t.Errorf("no warm-up: %v %v", nw.LR(0), nw.LR(1))
	}
	s := StepLR{Base: 0.1, Milestones: []int{3, 6}}
	for step, want := range []float64{0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.001} {
		if got := s.LR(step); !near(got, want, 1e-12) {
			t.Errorf("StepLR.LR(%d) = %v, want %v", step, got, want)
		}
	}
	if Constant(0.3).LR(99) != 0.3 {
		t.Error("Constant")
	}
}
