package qat

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"lowbit/graph"
	"lowbit/quant"
)

// PhaseKind is what a phase trains.
type PhaseKind string

// The phase kinds.
const (
	// Finetune trains everything except PROFIT's frozen weights.
	Finetune PhaseKind = "finetune"
	// BNLast freezes the conv/linear weights; BatchNorm affine parameters,
	// biases and quantizer parameters train and BatchNorm statistics
	// update (the "BLast" stabilization of methods.md §7).
	BNLast PhaseKind = "bn-last"
	// BNOnly is the final BN-last phase: quantizer parameters are frozen
	// too, only BatchNorm affine parameters and biases train.
	BNOnly PhaseKind = "bn-only"
	// ProfitSample is ordinary fine-tuning during which the AIWQ metric of
	// every quantized convolution is measured.
	ProfitSample PhaseKind = "profit-sample"
)

// Phase is one step of a recipe. Each phase has its own cosine schedule
// with warm-up (restarted) and its own optimizer state.
type Phase struct {
	Name   string    `json:"name"`
	Kind   PhaseKind `json:"kind"`
	Epochs int       `json:"epochs"`
	// WBits and ABits are the target widths of weights and activations in
	// this phase (0: not quantized yet); the policy's first/last-layer and
	// per-layer overrides still apply.
	WBits int `json:"wbits"`
	ABits int `json:"abits"`
	// ProfitStage freezes the weights of the top third (1) or top two
	// thirds (2) of the quantized convolutions ordered by AIWQ.
	ProfitStage int `json:"profit_stage,omitempty"`
	// Sample measures AIWQ during the phase.
	Sample bool `json:"sample,omitempty"`
}

// Config is a quantization-aware training recipe.
type Config struct {
	// Policy places the quantizers; Policy.WeightBits and ActBits are the
	// final widths.
	Policy quant.QATPolicy
	// Progressive lists intermediate widths, descending (e.g. 8, 5, 4):
	// activations step through the listed widths above their target and
	// then the target, then weights do the same with activations at their
	// target (methods.md §7). Empty: straight to the target widths.
	Progressive []int
	// Epochs is the length of each fine-tuning phase (each PROFIT stage).
	Epochs int
	// BNLast > 0 adds a BN-last phase of that many epochs before and after
	// every bit-width step; the last one is BN-only.
	BNLast int
	// Profit replaces the fine-tuning of the final step by the PROFIT
	// stages: all layers, then the top third and then the top two thirds
	// of the convolutions by AIWQ frozen. ProfitSample > 0 measures AIWQ in
	// a separate sampling phase of that many epochs before the stages;
	// 0 measures it during the first stage.
	Profit       bool
	ProfitSample int
	// LR is the peak learning rate of conv/linear weights (BatchNorm and
	// biases use it too, quantizer parameters 1 % of it); WeightDecay
	// applies to conv/linear weights; Warmup is the linear warm-up of each
	// phase in epochs.
	LR, WeightDecay, Warmup float64
	// EMADecay > 0 keeps an exponential moving average of all parameters
	// and BatchNorm statistics across phases (0.9997 in methods.md §7,
	// with TensorFlow's ramp-up so that short runs are not dominated by
	// the initial weights); at the end the better of raw and averaged
	// weights on the test set is kept.
	EMADecay float64
	// Teacher, when set, adds distillation from its logits (any float model
	// with the same input and classes).
	Teacher *graph.Graph
	// Smoothing is label smoothing of the cross-entropy.
	Smoothing float32
	// BNReestimate > 0 re-estimates the BatchNorm running statistics over
	// that many training batches after every epoch, before the model is
	// evaluated and saved (train.ReestimateBN).
	BNReestimate int
}

// ParseBitList parses "8,5,4" (descending widths of 2–8 or 16).
func ParseBitList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		b, err := strconv.Atoi(f)
		if err != nil || !(b >= 2 && b <= 8 || b == 16) {
			return nil, fmt.Errorf("bit width %q: want 2–8 or 16", f)
		}
		if len(out) > 0 && b >= out[len(out)-1] {
			return nil, fmt.Errorf("bit widths %q must decrease", s)
		}
		out = append(out, b)
	}
	return out, nil
}

// ladder returns the widths of progressive that exceed target, then target.
func ladder(progressive []int, target int) []int {
	if target <= 0 {
		return nil
	}
	var out []int
	for _, b := range progressive {
		if b > target {
			out = append(out, b)
		}
	}
	return append(out, target)
}

// Steps returns the (weight, activation) widths of the bit-width steps.
func (c Config) Steps() [][2]int {
	w, a := c.Policy.WeightBits, c.Policy.ActBits
	if len(c.Progressive) == 0 {
		return [][2]int{{w, a}}
	}
	var steps [][2]int
	for _, b := range ladder(c.Progressive, a) {
		steps = append(steps, [2]int{0, b})
	}
	for _, b := range ladder(c.Progressive, w) {
		steps = append(steps, [2]int{b, a})
	}
	return steps
}

func bitsLabel(b int) string {
	if b <= 0 {
		return "f"
	}
	return strconv.Itoa(b)
}

// Validate checks the recipe's own settings.
func (c Config) Validate() error {
	if c.Policy.WeightBits == 0 && c.Policy.ActBits == 0 {
		return fmt.Errorf("recipe: nothing to quantize (weight and activation bits are both float)")
	}
	if c.Epochs <= 0 {
		return fmt.Errorf("recipe: %d epochs per fine-tuning phase, want > 0", c.Epochs)
	}
	if c.BNLast < 0 || c.ProfitSample < 0 {
		return fmt.Errorf("recipe: BN-last (%d) and PROFIT sampling (%d) epochs must not be negative", c.BNLast, c.ProfitSample)
	}
	if c.ProfitSample > 0 && !c.Profit {
		return fmt.Errorf("recipe: a PROFIT sampling phase without PROFIT")
	}
	if !(c.LR > 0) || c.WeightDecay < 0 || c.Warmup < 0 {
		return fmt.Errorf("recipe: learning rate %v must be positive, weight decay %v and warm-up %v not negative", c.LR, c.WeightDecay, c.Warmup)
	}
	if c.EMADecay < 0 || c.EMADecay >= 1 {
		return fmt.Errorf("recipe: EMA decay %v outside [0, 1)", c.EMADecay)
	}
	if !slices.IsSortedFunc(c.Progressive, func(a, b int) int { return b - a }) {
		return fmt.Errorf("recipe: progressive widths %v must decrease", c.Progressive)
	}
	if c.Policy.DuQ {
		for _, b := range []int{c.Policy.WeightBits, c.Policy.ActBits, c.Policy.FirstLastBits} {
			if b == 1 {
				return fmt.Errorf("recipe: DuQ needs at least 2 bits")
			}
		}
	}
	return quant.HighwayBits(c.Policy.Highway.Bits)
}

// Plan expands the recipe into its phases.
func (c Config) Plan() ([]Phase, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	steps := c.Steps()
	var out []Phase
	add := func(p Phase, w, a int) {
		p.WBits, p.ABits = w, a
		p.Name = fmt.Sprintf("w%s-a%s %s", bitsLabel(w), bitsLabel(a), p.Kind)
		if p.ProfitStage > 0 {
			p.Name += fmt.Sprintf(" (top %d/3 frozen)", p.ProfitStage)
		}
		out = append(out, p)
	}
	for k, s := range steps {
		w, a := s[0], s[1]
		last := k == len(steps)-1
		if c.BNLast > 0 {
			add(Phase{Kind: BNLast, Epochs: c.BNLast}, w, a)
		}
		if c.Profit && last {
			if c.ProfitSample > 0 {
				add(Phase{Kind: ProfitSample, Epochs: c.ProfitSample, Sample: true}, w, a)
			}
			for st := range 3 {
				add(Phase{Kind: Finetune, Epochs: c.Epochs, ProfitStage: st, Sample: st == 0 && c.ProfitSample == 0}, w, a)
			}
		} else {
			add(Phase{Kind: Finetune, Epochs: c.Epochs}, w, a)
		}
		if c.BNLast > 0 {
			kind := BNLast
			if last {
				kind = BNOnly
			}
			add(Phase{Kind: kind, Epochs: c.BNLast}, w, a)
		}
	}
	return out, nil
}

// TotalEpochs is the epoch budget of a plan.
func TotalEpochs(plan []Phase) int {
	n := 0
	for _, p := range plan {
		n += p.Epochs
	}
	return n
}
