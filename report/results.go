package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"lowbit/qat"
	"lowbit/quant"
	"lowbit/sim"
	"lowbit/train"
)

// Kind is the lowbit command whose --json output a file holds.
type Kind string

// The recognized kinds.
const (
	KindTrain    Kind = "train"
	KindEval     Kind = "eval"
	KindQuantize Kind = "quantize"
	KindFinetune Kind = "finetune"
	KindSimulate Kind = "simulate"
	KindBench    Kind = "bench"
	KindDemo     Kind = "demo"
)

// Train is the JSON of `lowbit train --json`.
type Train struct {
	Model       string             `json:"model"`
	Data        string             `json:"data"`
	Out         string             `json:"out"`
	Epochs      int                `json:"epochs"`
	Top1        float64            `json:"top1"`
	Top5        float64            `json:"top5"`
	Loss        float64            `json:"loss"`
	Images      int                `json:"images"`
	Seconds     float64            `json:"seconds"`
	Params      int                `json:"params"`
	Interrupted bool               `json:"interrupted,omitempty"`
	History     []train.EpochStats `json:"history"`
}

// Eval is the JSON of `lowbit eval --json`.
type Eval = train.Metrics

// Quantize is the JSON of `lowbit quantize --json`.
type Quantize struct {
	Model       string              `json:"model"`
	Data        string              `json:"data"`
	Out         string              `json:"out,omitempty"`
	Method      string              `json:"method"`
	WeightBits  int                 `json:"wbits"`
	ActBits     int                 `json:"abits"`
	Calib       string              `json:"calib"`
	WeightCalib string              `json:"wcalib"`
	Ratio       float64             `json:"outlier_ratio,omitempty"`
	PerChannel  bool                `json:"per_channel"`
	FirstLast   int                 `json:"first_last_bits"`
	CalibImages int                 `json:"calib_images"`
	FoldedBN    int                 `json:"folded_bn"`
	FP32Top1    float64             `json:"fp32_top1"`
	FP32Top5    float64             `json:"fp32_top5"`
	Top1        float64             `json:"top1"`
	Top5        float64             `json:"top5"`
	Loss        float64             `json:"loss"`
	TestImages  int                 `json:"test_images"`
	Verified    *bool               `json:"verified,omitempty"`
	Plots       []string            `json:"plots,omitempty"`
	Layers      []quant.LayerReport `json:"layers"`
}

// Residual is the residual-stream error of `lowbit finetune
// --analyze-error`: per block, right after the quantizers were placed (with
// and without the precision highway) and after fine-tuning.
type Residual struct {
	Images int `json:"images"`
	Init   struct {
		Highway []qat.BlockError `json:"highway"`
		None    []qat.BlockError `json:"none"`
	} `json:"init"`
	Final        []qat.BlockError `json:"final,omitempty"`
	FinalHighway bool             `json:"final_highway"`
}

// Finetune is the JSON of `lowbit finetune --json`.
type Finetune struct {
	Model       string        `json:"model"`
	Data        string        `json:"data"`
	Out         string        `json:"out"`
	Method      string        `json:"method"`
	LearnRange  bool          `json:"learn_range,omitempty"`
	WeightBits  int           `json:"wbits"`
	ActBits     int           `json:"abits"`
	FirstLast   int           `json:"first_last_bits"`
	Progressive []int         `json:"progressive,omitempty"`
	BNLast      int           `json:"bn_last,omitempty"`
	Profit      bool          `json:"profit"`
	PerChannel  bool          `json:"per_channel,omitempty"`
	DuQInit     string        `json:"duq_init,omitempty"`
	BNReest     int           `json:"bn_reestimate,omitempty"`
	Teacher     string        `json:"teacher,omitempty"`
	EMADecay    float64       `json:"ema_decay,omitempty"`
	Highway     quant.Highway `json:"highway"`
	NegPadConvs int           `json:"neg_pad_convs"`
	FoldedBN    int           `json:"folded_bn,omitempty"`
	Ratio       float64       `json:"outlier_ratio,omitempty"`
	TrainImages int           `json:"train_images"`
	EpochBudget int           `json:"epoch_budget"`
	FP32Top1    float64       `json:"fp32_top1"`
	FP32Top5    float64       `json:"fp32_top5"`
	InitTop1    float64       `json:"init_top1"`
	Top1        float64       `json:"top1"`
	Top5        float64       `json:"top5"`
	Loss        float64       `json:"loss"`
	TestImages  int           `json:"test_images"`
	RawTop1     float64       `json:"raw_top1"`
	EMATop1     *float64      `json:"ema_top1,omitempty"`
	// RawSelectTop1 and EMASelectTop1: top-1 on the training batches that
	// chose between the trained and the averaged weights.
	RawSelectTop1 *float64            `json:"raw_select_top1,omitempty"`
	EMASelectTop1 *float64            `json:"ema_select_top1,omitempty"`
	EMAUsed       bool                `json:"ema_used"`
	Seconds       float64             `json:"seconds"`
	Interrupted   bool                `json:"interrupted,omitempty"`
	Verified      *bool               `json:"verified,omitempty"`
	Phases        []qat.Phase         `json:"phases"`
	PhaseSetup    []qat.PhaseLog      `json:"phase_setup"`
	History       []qat.EpochLog      `json:"history"`
	AIWQ          map[string]float64  `json:"aiwq,omitempty"`
	ProfitOrder   []string            `json:"profit_order,omitempty"`
	Residual      *Residual           `json:"residual_error,omitempty"`
	Layers        []quant.LayerReport `json:"layers"`
}

// SimResult is one design of `lowbit simulate --json` (energies in µJ;
// the per-layer part is not read).
type SimResult struct {
	Accel     string        `json:"accel"`
	EnergyUJ  float64       `json:"energy_uj"`
	Cycles    float64       `json:"cycles"`
	TimeMS    float64       `json:"time_ms"`
	Breakdown sim.Breakdown `json:"breakdown"`
}

// Simulate is the JSON of `lowbit simulate --json`.
type Simulate struct {
	Network         string           `json:"network"`
	Source          string           `json:"source"`
	Config          string           `json:"config"`
	OutlierRatio    float64          `json:"outlier_ratio"`
	Highway         bool             `json:"highway"`
	Results         []SimResult      `json:"results"`
	Comparisons     []sim.Comparison `json:"comparisons"`
	HighwayOverhead []sim.HighwayRow `json:"highway_overhead"`
}

// Bench is the JSON of `lowbit bench --json`.
type Bench struct {
	Model       string  `json:"model"`
	Input       []int   `json:"input"`
	Batch       int     `json:"batch"`
	InferBatch  int     `json:"infer_batch"`
	Steps       int     `json:"steps"`
	TrainImgS   float64 `json:"train_img_s"`
	InferImgS   float64 `json:"infer_img_s"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	TrainStepMS float64 `json:"train_step_ms"`
}

// DemoRow is one line of the table of `lowbit demo --json`.
type DemoRow struct {
	Model     string  `json:"model"`
	Data      string  `json:"data"`
	Precision string  `json:"precision"`
	Epochs    int     `json:"epochs,omitempty"`
	Top1      float64 `json:"top1"`
	Seconds   float64 `json:"seconds"`
	File      string  `json:"file"`
}

// Demo is the JSON of `lowbit demo --json`.
type Demo struct {
	Rows   []DemoRow `json:"rows"`
	Report string    `json:"report,omitempty"`
}

// Run is one recognized result file. Exactly one of the kind-specific
// fields is set, the one of Kind.
type Run struct {
	// Path is the file the run was read from (or the name it was added
	// under); Command the command line of NAME.cmd next to NAME.json.
	Path    string
	Command string
	Kind    Kind
	// ID is the HTML anchor of the run's section.
	ID string

	Train    *Train
	Eval     *Eval
	Quantize *Quantize
	Finetune *Finetune
	Simulate *Simulate
	Bench    *Bench
	Demo     *Demo
}

// Parse recognizes a lowbit --json output by its fields and decodes it.
// The error says why data is not valid JSON or not a lowbit result; it
// does not name a file (the callers add the path).
func Parse(data []byte) (*Run, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("empty file")
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if data[0] != '{' {
		return nil, fmt.Errorf("not a lowbit result: the top-level value is not a JSON object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("malformed JSON: %v", err)
	}
	kind, err := detect(fields)
	if err != nil {
		return nil, err
	}
	r := &Run{Kind: kind}
	dst := decoders[kind](r)
	if err := json.Unmarshal(data, dst); err != nil {
		return nil, fmt.Errorf("malformed %s result: %v", kind, err)
	}
	return r, nil
}

// decoders allocate the result of each kind in a run and return it.
var decoders = map[Kind]func(*Run) any{
	KindTrain:    func(r *Run) any { r.Train = new(Train); return r.Train },
	KindEval:     func(r *Run) any { r.Eval = new(Eval); return r.Eval },
	KindQuantize: func(r *Run) any { r.Quantize = new(Quantize); return r.Quantize },
	KindFinetune: func(r *Run) any { r.Finetune = new(Finetune); return r.Finetune },
	KindSimulate: func(r *Run) any { r.Simulate = new(Simulate); return r.Simulate },
	KindBench:    func(r *Run) any { r.Bench = new(Bench); return r.Bench },
	KindDemo:     func(r *Run) any { r.Demo = new(Demo); return r.Demo },
}

// detect tells the kind of a result from its top-level keys.
func detect(f map[string]json.RawMessage) (Kind, error) {
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := f[k]; !ok {
				return false
			}
		}
		return true
	}
	switch {
	case has("rows"):
		return KindDemo, nil
	case has("network", "results"):
		return KindSimulate, nil
	case has("train_img_s", "infer_img_s"):
		return KindBench, nil
	case has("phases", "history", "fp32_top1"):
		return KindFinetune, nil
	case has("layers", "method", "fp32_top1"):
		return KindQuantize, nil
	case has("model", "history", "params"):
		return KindTrain, nil
	case has("top1", "loss", "images") && !has("model"):
		return KindEval, nil
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	more := ""
	if len(keys) > 8 {
		keys, more = keys[:8], ", …"
	}
	return "", fmt.Errorf("not a lowbit result: its keys (%s%s) match no lowbit command's --json output", strings.Join(keys, ", "), more)
}
