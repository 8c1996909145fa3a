package qat

import (
	"reflect"
	"testing"

	"lowbit/quant"
)

func cfgAt(w, a int) Config {
	return Config{Policy: quant.QATPolicy{Policy: quant.DefaultPolicy(quant.MethodUniform, w, a), DuQ: true},
		Epochs: 2, LR: 0.01}
}

func phaseSummary(plan []Phase) [][3]any {
	var s [][3]any
	for _, p := range plan {
		s = append(s, [3]any{p.Kind, p.WBits, p.ABits})
	}
	return s
}

func TestProgressivePlan(t *testing.T) {
	c := cfgAt(4, 4)
	c.Progressive = []int{8, 5, 4}
	if got, want := c.Steps(), [][2]int{{0, 8}, {0, 5}, {0, 4}, {8, 4}, {5, 4}, {4, 4}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %v, want %v (activations first, then weights)", got, want)
	}
	c = cfgAt(3, 2)
	c.Progressive = []int{8, 5, 4}
	if got, want := c.Steps(), [][2]int{{0, 8}, {0, 5}, {0, 4}, {0, 2}, {8, 2}, {5, 2}, {4, 2}, {3, 2}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	plan, err := c.Plan()
	if err != nil || len(plan) != 8 || TotalEpochs(plan) != 16 {
		t.Fatalf("plan %v (%v): want 8 fine-tuning phases of 2 epochs", plan, err)
	}
	if plan[0].Name != "wf-a8 finetune" || plan[7].Name != "w3-a2 finetune" {
		t.Fatalf("phase names %q … %q", plan[0].Name, plan[7].Name)
	}
	if c := cfgAt(4, 4); !reflect.DeepEqual(c.Steps(), [][2]int{{4, 4}}) {
		t.Fatal("without progressive there is one step")
	}
}

func TestBNLastAndProfitPlan(t *testing.T) {
	c := cfgAt(3, 3)
	c.Progressive = []int{4}
	c.BNLast = 1
	c.Profit = true
	plan, err := c.Plan()
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]any{
		{BNLast, 0, 4}, {Finetune, 0, 4}, {BNLast, 0, 4},
		{BNLast, 0, 3}, {Finetune, 0, 3}, {BNLast, 0, 3},
		{BNLast, 4, 3}, {Finetune, 4, 3}, {BNLast, 4, 3},
		{BNLast, 3, 3}, {Finetune, 3, 3}, {Finetune, 3, 3}, {Finetune, 3, 3}, {BNOnly, 3, 3},
	}
	if got := phaseSummary(plan); !reflect.DeepEqual(got, want) {
		t.Fatalf("plan\n%v\nwant\n%v", got, want)
	}
	last := plan[len(plan)-4 : len(plan)-1]
	if last[0].ProfitStage != 0 || !last[0].Sample || last[1].ProfitStage != 1 || last[2].ProfitStage != 2 || last[1].Sample {
		t.Fatalf("PROFIT stages %+v", last)
	}
	c.ProfitSample = 1
	plan, _ = c.Plan()
	if p := plan[len(plan)-5]; p.Kind != ProfitSample || !p.Sample || plan[len(plan)-4].Sample {
		t.Fatalf("separate sampling phase: %+v", plan[len(plan)-5:])
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Epochs = 0 },
		func(c *Config) { c.Progressive = []int{4, 5} },
		func(c *Config) { c.Policy.WeightBits, c.Policy.ActBits = 0, 0 },
		func(c *Config) { c.Profit = false },
		func(c *Config) { c.EMADecay = 1 },
		func(c *Config) { c.Policy.Highway.Bits = 4 },
	} {
		b := c
		bad(&b)
		if _, err := b.Plan(); err == nil {
			t.Errorf("invalid recipe %+v accepted", b)
		}
	}
	if _, err := ParseBitList("8,5,4"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"8,8", "4,5", "x", "1"} {
		if _, err := ParseBitList(s); err == nil {
			t.Errorf("bit list %q accepted", s)
		}
	}
}
