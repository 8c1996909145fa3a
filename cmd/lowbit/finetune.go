package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/onnx"
	"lowbit/ops"
	"lowbit/qat"
	"lowbit/quant"
	"lowbit/report"
	"lowbit/tensor"
	"lowbit/train"
)

// finetuneFlags are the flags of `lowbit finetune`.
type finetuneFlags struct {
	model, dataSpec, method, out, progressive, teacher, augment, outlierFormat, calib string
	duqInit                                                                           string
	bnReestimate                                                                      int
	wbits, abits, firstLast, epochs, bnLast, profitSample, batch, limit, testN        int
	calibImages, highwayBits, analyzeImages                                           int
	lr, wd, warmup, ratio, emaDecay, smoothing                                        float64
	seed                                                                              int64
	profit, ema, highway, negPad, learnRange, fold, resume, analyze, verify, asJSON   bool
	perChannel                                                                        bool
}

// defaultFinetuneFlags are the defaults of the command's flags (the demo
// starts from them too).
func defaultFinetuneFlags() finetuneFlags {
	return finetuneFlags{dataSpec: "mnist", method: "duq", augment: "auto", outlierFormat: "fp16", calib: "minmax", duqInit: "p95",
		wbits: 4, abits: 4, firstLast: 8, epochs: 1, batch: 64, calibImages: 1000, analyzeImages: 1000,
		lr: 0.005, wd: 5e-5, warmup: 0.1, ratio: quant.DefaultOutlierRatio, emaDecay: 0.9997, seed: 1, negPad: true}
}

// residualReport is the --analyze-error part of the JSON: the per-block
// relative error of the residual stream right after the quantizers were
// placed and initialized (with and without the precision highway, same
// initialization) and after fine-tuning (with the run's own setting).
type residualReport = report.Residual

// finetuneResult is the JSON printed by `lowbit finetune --json`
// (report.Finetune, which the report package reads back) with what the
// command keeps for its final measurements.
type finetuneResult struct {
	report.Finetune
	floatGraph   *graph.Graph
	measureBatch func(context.Context) iter.Seq2[*tensor.Tensor, error]
}

func init() { rootCmd.AddCommand(newFinetuneCmd()) }

func newFinetuneCmd() *cobra.Command {
	f := defaultFinetuneFlags()
	cmd := &cobra.Command{
		Use:   "finetune --model fp32.onnx --data D --method duq|uniform|weq|olaq --wbits B --abits B --epochs N --out q.onnx",
		Short: "Quantization-aware fine-tuning: DuQ, progressive bits, BN-last, PROFIT, distillation, EMA, precision highway",
		Long: `finetune places quantizers on the weights and inputs of every Conv and Gemm of
a float model (first and last layer at --first-last-bits) and fine-tunes the
model through them. Methods: duq (learned range a and scale c per tensor,
methods.md §6; --per-channel gives weights one a and c per output channel),
uniform (straight-through with weights refitted every step and
calibrated activation ranges; --learn-range learns the step, LSQ-style), weq
(WEQ weights rebuilt after every update, log-domain activations) and olaq
(outlier-aware, moving-average activation thresholds).

The recipe is a list of phases, each with its own cosine schedule with
warm-up: --progressive 8,5,4 steps activations and then weights through the
listed widths; --bn-last E adds E-epoch phases with frozen weights before and
after every step (the last one BN-only); --profit fine-tunes the final step in
three stages, freezing the top third and then two thirds of the convolutions
by their AIWQ metric; --teacher distils from a float model; --ema keeps a
weight average. Without --highway every reader of a quantized tensor (the
skip path of residual blocks) reads the quantized copy; with it the residual
stream stays in float (or --highway-bits 8/16). Convolutions fed by a
quantized h-swish pad with −3/8 (--neg-pad, on by default).

After every epoch --out holds the current model and --out.qat/--out.state
the progress; after Ctrl-C, --resume continues from the recorded phase and
epoch. The result is an ordinary quantized ONNX file (lowbit eval reproduces
its top-1).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := runFinetune(cmd.Context(), f)
			if res != nil {
				if f.asJSON {
					if jerr := printJSON(cmd.OutOrStdout(), res); jerr != nil {
						return jerr
					}
				} else if perr := printFinetune(cmd.OutOrStdout(), res); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "float ONNX model")
	fl.StringVar(&f.dataSpec, "data", f.dataSpec, "dataset: mnist, fashion-mnist, cifar10 or a path")
	fl.StringVar(&f.method, "method", f.method, "duq, uniform, weq or olaq")
	fl.BoolVar(&f.perChannel, "per-channel", false, "per-output-channel DuQ weight range/scale (a, c of shape [Cout]; also uniform scales and WEQ normalization; not with olaq)")
	fl.BoolVar(&f.learnRange, "learn-range", false, "uniform: learn the grid step (a DuQ with c tied to a, LSQ-style) instead of fixed ranges")
	fl.IntVar(&f.wbits, "wbits", f.wbits, "weight bits (2–8 or 16 for duq, 1–8 or 16 otherwise; 0 or 32 = float)")
	fl.IntVar(&f.abits, "abits", f.abits, "activation bits (0 or 32 = float)")
	fl.IntVar(&f.firstLast, "first-last-bits", f.firstLast, "bits of the first and last layer's weights and inputs (0 = no override)")
	fl.IntVar(&f.epochs, "epochs", f.epochs, "epochs of each fine-tuning phase (each PROFIT stage)")
	fl.StringVar(&f.progressive, "progressive", "", "intermediate bit widths, e.g. 8,5,4: activations step down first, then weights")
	fl.IntVar(&f.bnLast, "bn-last", 0, "epochs of the BN-last phases before and after every bit-width step (0 = none)")
	fl.StringVar(&f.duqInit, "duq-init", f.duqInit, "DuQ starting ranges: p95 (methods.md: 0.9·max|w|, 95th percentile of activations) or mse (MSE-optimal clip at each quantizer's bit width)")
	fl.IntVar(&f.bnReestimate, "bn-reestimate", 0, "re-estimate BatchNorm statistics over N training batches after every epoch, before evaluating (0 = off)")
	fl.BoolVar(&f.profit, "profit", false, "PROFIT: fine-tune the final step in three stages, freezing layers in AIWQ order")
	fl.IntVar(&f.profitSample, "profit-sample", 0, "epochs of a separate AIWQ sampling phase (0 = measure during the first PROFIT stage)")
	fl.StringVar(&f.teacher, "teacher", "", "float ONNX teacher for distillation")
	fl.BoolVar(&f.ema, "ema", false, "keep a weight EMA across phases and keep the better of raw and averaged weights")
	fl.Float64Var(&f.emaDecay, "ema-decay", f.emaDecay, "decay of --ema")
	fl.BoolVar(&f.highway, "highway", false, "precision highway: the residual stream (skip path, add, block output) stays in high precision")
	fl.IntVar(&f.highwayBits, "highway-bits", 0, "bits of the highway: 0 (float), 8 or 16")
	fl.BoolVar(&f.negPad, "neg-pad", f.negPad, "pad convolutions fed by a quantized h-swish with −3/8")
	fl.BoolVar(&f.analyze, "analyze-error", false, "report the per-block relative error of the residual stream against the float model")
	fl.IntVar(&f.analyzeImages, "analyze-images", f.analyzeImages, "test images of --analyze-error")
	fl.BoolVar(&f.fold, "fold", false, "fold BatchNorm before quantizing (uniform, weq, olaq; not with --bn-last)")
	fl.StringVar(&f.calib, "calib", f.calib, "activation range calibrator of uniform grids: minmax, percentile, mse or kl")
	fl.IntVar(&f.calibImages, "calib-images", f.calibImages, "calibration images of FakeQuant activation quantizers")
	fl.Float64Var(&f.ratio, "outlier-ratio", f.ratio, "OLAQ outlier ratio")
	fl.StringVar(&f.outlierFormat, "outlier-format", f.outlierFormat, "OLAQ outlier storage: fp16, int8 or fp32")
	fl.Float64Var(&f.lr, "lr", f.lr, "peak learning rate of weights (quantizer parameters train at 1 %)")
	fl.Float64Var(&f.wd, "wd", f.wd, "weight decay of conv/linear weights")
	fl.Float64Var(&f.warmup, "warmup", f.warmup, "linear warm-up of each phase, in epochs")
	fl.Float64Var(&f.smoothing, "smoothing", 0, "label smoothing")
	fl.IntVar(&f.batch, "batch", f.batch, "batch size")
	fl.IntVar(&f.limit, "limit", 0, "train on the first N training images (0 = all)")
	fl.IntVar(&f.testN, "test-images", 0, "evaluate on the first N test images (0 = all)")
	fl.StringVar(&f.augment, "augment", f.augment, "augmentation: none, crop, crop+flip, auto")
	fl.Int64Var(&f.seed, "seed", f.seed, "seed of shuffling, augmentation and the initialization batch")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted run from --out and its .qat/.state files")
	fl.BoolVar(&f.verify, "verify", false, "reload --out and check that it evaluates to the same top-1")
	fl.StringVar(&f.out, "out", "", "quantized ONNX file to write (also the checkpoint)")
	fl.BoolVar(&f.asJSON, "json", false, "print only JSON on stdout")
	return cmd
}

// finetunePolicy builds the insertion policy from the flags.
func finetunePolicy(f finetuneFlags) (quant.QATPolicy, error) {
	var p quant.QATPolicy
	method := f.method
	duq := strings.EqualFold(method, "duq")
	if duq {
		method = "uniform"
	}
	if f.learnRange {
		if !strings.EqualFold(method, "uniform") || duq {
			return p, fmt.Errorf("--learn-range applies to --method uniform only")
		}
		duq = true
	}
	qf := quantizeFlags{method: method, calib: f.calib, wcalib: "minmax", percentile: 99.99, wbits: f.wbits, abits: f.abits,
		firstLast: f.firstLast, ratio: f.ratio, outlierFormat: f.outlierFormat, perChannel: f.perChannel}
	base, err := policyFromFlags(qf)
	if err != nil {
		if strings.HasPrefix(err.Error(), "--method:") {
			return p, fmt.Errorf("--method %q: want duq, uniform, weq or olaq", f.method)
		}
		return p, err
	}
	p = quant.QATPolicy{Policy: base, DuQ: duq, TiedScale: f.learnRange, NegativePadding: f.negPad,
		Highway: quant.Highway{Enabled: f.highway, Bits: f.highwayBits}}
	if p.Init, err = quant.ParseDuQInit(f.duqInit); err != nil {
		return p, fmt.Errorf("--duq-init: %w", err)
	}
	if p.Init == quant.InitMSE && !duq {
		return p, fmt.Errorf("--duq-init mse applies to --method duq (or --learn-range) only")
	}
	if err := quant.HighwayBits(f.highwayBits); err != nil {
		return p, fmt.Errorf("--highway-bits: %w", err)
	}
	if f.highwayBits > 0 && !f.highway {
		return p, fmt.Errorf("--highway-bits needs --highway")
	}
	if duq {
		for _, b := range []struct {
			flag string
			v    int
		}{{"wbits", base.WeightBits}, {"abits", base.ActBits}, {"first-last-bits", base.FirstLastBits}} {
			if b.v == 1 {
				return p, fmt.Errorf("--%s 1: DuQ needs at least 2 bits", b.flag)
			}
		}
	}
	return p, nil
}

// recipeFromFlags builds the recipe configuration.
func recipeFromFlags(f finetuneFlags, p quant.QATPolicy) (qat.Config, error) {
	prog, err := qat.ParseBitList(f.progressive)
	if err != nil {
		return qat.Config{}, fmt.Errorf("--progressive: %w", err)
	}
	cfg := qat.Config{Policy: p, Progressive: prog, Epochs: f.epochs, BNLast: f.bnLast, Profit: f.profit,
		ProfitSample: f.profitSample, LR: f.lr, WeightDecay: f.wd, Warmup: f.warmup, Smoothing: float32(f.smoothing),
		BNReestimate: f.bnReestimate}
	if f.bnReestimate < 0 {
		return cfg, fmt.Errorf("--bn-reestimate %d: want a number of batches ≥ 0", f.bnReestimate)
	}
	if f.ema {
		cfg.EMADecay = f.emaDecay
	}
	if f.fold && f.bnLast > 0 {
		return cfg, fmt.Errorf("--fold removes the BatchNorm layers that --bn-last trains")
	}
	if f.fold && p.DuQ {
		return cfg, fmt.Errorf("--fold applies to FakeQuant methods (uniform, weq, olaq) only")
	}
	if f.profitSample > 0 && !f.profit {
		return cfg, fmt.Errorf("--profit-sample needs --profit")
	}
	if _, err := cfg.Plan(); err != nil {
		return cfg, fmt.Errorf("flags: %w", err)
	}
	return cfg, nil
}

// openSplit opens a split of a dataset, cut to its first n images when
// 0 < n < its size.
func openSplit(spec, split string, n int) (*data.Dataset, error) {
	ds, err := data.Open(spec, split)
	if err != nil {
		return nil, err
	}
	if n > 0 && n < ds.N() {
		ds = ds.Head(n)
	}
	return ds, nil
}

func runFinetune(ctx context.Context, f finetuneFlags) (*finetuneResult, error) {
	start := time.Now()
	if f.model == "" || f.out == "" {
		return nil, fmt.Errorf("--model and --out are required")
	}
	if f.batch <= 0 || f.limit < 0 || f.testN < 0 || f.calibImages <= 0 || f.analyzeImages <= 0 {
		return nil, fmt.Errorf("--batch (%d), --calib-images (%d) and --analyze-images (%d) must be positive, --limit (%d) and --test-images (%d) not negative",
			f.batch, f.calibImages, f.analyzeImages, f.limit, f.testN)
	}
	pol, err := finetunePolicy(f)
	if err != nil {
		return nil, err
	}
	cfg, err := recipeFromFlags(f, pol)
	if err != nil {
		return nil, err
	}
	fg, err := onnx.Load(f.model)
	if err != nil {
		return nil, err
	}
	trainSet, err := openSplit(f.dataSpec, "train", f.limit)
	if err != nil {
		return nil, err
	}
	testSet, err := openSplit(f.dataSpec, "test", f.testN)
	if err != nil {
		return nil, err
	}
	if err := checkInput(fg, trainSet, f.model); err != nil {
		return nil, err
	}
	if trainSet.N() < f.batch {
		return nil, fmt.Errorf("--batch %d is larger than the %d training images", f.batch, trainSet.N())
	}
	testSrc, err := evalSource(testSet, 256)
	if err != nil {
		return nil, err
	}
	res := &finetuneResult{Finetune: report.Finetune{Model: f.model, Data: f.dataSpec, Out: f.out, Method: f.method,
		LearnRange: f.learnRange, WeightBits: pol.WeightBits, ActBits: pol.ActBits, FirstLast: pol.FirstLastBits,
		Progressive: cfg.Progressive, BNLast: f.bnLast, Profit: f.profit, Teacher: f.teacher, EMADecay: cfg.EMADecay,
		Highway: pol.Highway, PerChannel: pol.PerChannel, TrainImages: trainSet.N(), BNReest: f.bnReestimate}, floatGraph: fg}
	if pol.DuQ {
		res.DuQInit = string(pol.Init)
	}
	if pol.Method == quant.MethodOLAQ && !pol.DuQ {
		res.Ratio = pol.OutlierRatio
	}
	fp, err := train.Evaluate(ctx, fg, testSrc)
	if err != nil {
		return nil, fmt.Errorf("evaluate float %s: %w", f.model, err)
	}
	res.FP32Top1, res.FP32Top5 = fp.Top1, fp.Top5
	fmt.Fprintf(logw(), "%s on %s: float top-1 %.2f%% (%d test images)\n", f.model, f.dataSpec, 100*fp.Top1, fp.Images)
	if f.fold {
		if res.FoldedBN, err = quant.FoldBatchNorm(fg); err != nil {
			return nil, fmt.Errorf("%s: %w", f.model, err)
		}
	}
	// The data of the recipe.
	aug, err := augmentFor(f.augment, trainSet.Name)
	if err != nil {
		return nil, err
	}
	loader, err := data.NewLoader(trainSet, data.LoaderConfig{Batch: f.batch, Shuffle: true, Seed: f.seed, DropLast: true, Augment: aug})
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	perm := rand.New(rand.NewSource(f.seed)).Perm(trainSet.N())
	calibSet, err := trainSet.Subset(perm[:min(f.calibImages, trainSet.N())])
	if err != nil {
		return nil, err
	}
	initBatch, _, err := trainSet.Batch(perm[:f.batch]...)
	if err != nil {
		return nil, err
	}
	dat := qat.Data{Train: train.Loader{L: loader}, StepsPerEpoch: trainSet.N() / f.batch, Test: testSrc,
		InitBatch: initBatch, Calib: data.EvalInputs(calibSet, 256), CalibImages: f.calibImages}
	if f.teacher != "" {
		if cfg.Teacher, err = onnx.Load(f.teacher); err != nil {
			return nil, fmt.Errorf("--teacher: %w", err)
		}
		if err := checkInput(cfg.Teacher, trainSet, f.teacher); err != nil {
			return nil, fmt.Errorf("--teacher: %w", err)
		}
	}
	analysisSet := testSet.Head(min(f.analyzeImages, testSet.N()))
	res.measureBatch = data.EvalInputs(analysisSet, 256)
	if f.analyze && !f.resume {
		if res.Residual, err = initialResidualor(ctx, fg, pol, dat, res.measureBatch); err != nil {
			return nil, fmt.Errorf("--analyze-error: %w", err)
		}
		res.Residual.Images = analysisSet.N()
	}
	// The model to fine-tune: a copy of the float model, or the checkpoint.
	var g *graph.Graph
	if f.resume {
		if g, err = onnx.Load(f.out); err != nil {
			return nil, fmt.Errorf("--resume: %w", err)
		}
	} else if g, err = onnx.Clone(fg); err != nil {
		return nil, err
	}
	if pol.NegativePadding && !f.resume {
		if n := countZeroPaddedHSwishConvs(g); n > 0 {
			fmt.Fprintf(logw(), "note: the float model pads %d h-swish-fed convolutions with 0; fine-tuning switches them to −3/8 (train the float model with lowbit train --neg-pad to match)\n", n)
		}
	}
	r := &qat.Runner{G: g, Cfg: cfg, Data: dat, Log: logw(), Checkpoint: f.out}
	if f.resume {
		if err := r.Resume(); err != nil {
			return nil, err
		}
		fmt.Fprintf(logw(), "resuming %s at phase %d/%d, epoch %d\n", f.out, r.State.Phase+1, len(r.State.Plan), r.State.Epoch)
	}
	plan, _ := cfg.Plan()
	res.EpochBudget = qat.TotalEpochs(plan)
	fmt.Fprintf(logw(), "fine-tuning %s: %s, %d phases, %d epochs of %d images\n", f.model, describeRecipe(f, pol), len(plan), res.EpochBudget, trainSet.N())
	rr, runErr := r.Run(ctx)
	if runErr != nil {
		if errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded) {
			res.Interrupted = true
			res.Phases, res.PhaseSetup, res.History = r.State.Plan, r.State.Phases, r.State.History
			res.Seconds = time.Since(start).Seconds()
			return res, runErr
		}
		return nil, runErr
	}
	res.Phases, res.PhaseSetup, res.History = rr.Phases, rr.Setup, rr.History
	res.InitTop1, res.RawTop1, res.EMATop1, res.EMAUsed = rr.InitTop1, rr.RawTop1, rr.EMATop1, rr.EMAUsed
	res.RawSelectTop1, res.EMASelectTop1 = rr.RawSelectTop1, rr.EMASelectTop1
	res.Top1, res.Top5, res.Loss, res.TestImages = rr.Final.Top1, rr.Final.Top5, rr.Final.Loss, rr.Final.Images
	res.AIWQ, res.ProfitOrder = rr.AIWQ, rr.ProfitOrder
	if err := finishFinetune(ctx, f, g, res); err != nil {
		return nil, err
	}
	r.RemoveState()
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// finishFinetune measures the per-layer report (and the final residual
// error), saves the model and verifies it.
func finishFinetune(ctx context.Context, f finetuneFlags, g *graph.Graph, res *finetuneResult) error {
	for _, n := range g.Nodes {
		if convPadValue(n) == -quant.HSwishOffset {
			res.NegPadConvs++
		}
	}
	if f.analyze {
		if res.Residual == nil {
			res.Residual = &residualReport{}
		}
		errs, err := qat.ResidualError(ctx, res.floatGraph, g, res.measureBatch(ctx))
		if err != nil {
			return fmt.Errorf("--analyze-error: %w", err)
		}
		res.Residual.Final, res.Residual.FinalHighway = errs, f.highway
	}
	// One measured pass for the activation SQNRs of the report.
	meter := quant.NewDuQMeter()
	if err := quant.SetMeasure(g, true); err != nil {
		return err
	}
	e, err := graph.NewExecutor(g)
	if err != nil {
		return err
	}
	e.OnForward = meter.Hook(nil)
	for x, err := range res.measureBatch(ctx) {
		if err != nil {
			return err
		}
		if _, err := e.Forward(x); err != nil {
			return fmt.Errorf("measure quantizers: %w", err)
		}
	}
	if err := quant.SetMeasure(g, false); err != nil {
		return err
	}
	if res.Layers, err = quant.QATReport(g, meter); err != nil {
		return err
	}
	meta, _ := json.Marshal(map[string]any{"method": res.Method, "wbits": res.WeightBits, "abits": res.ActBits,
		"first_last_bits": res.FirstLast, "progressive": res.Progressive, "bn_last": res.BNLast, "profit": res.Profit,
		"highway": res.Highway, "per_channel": res.PerChannel, "ema_used": res.EMAUsed, "epochs": res.EpochBudget, "train_images": res.TrainImages,
		"top1": res.Top1, "fp32_top1": res.FP32Top1, "data": f.dataSpec, "test_images": res.TestImages})
	g.Meta["lowbit:finetune"] = string(meta)
	if err := onnx.Save(g, f.out); err != nil {
		return err
	}
	if f.verify {
		g2, err := onnx.Load(f.out)
		if err != nil {
			return fmt.Errorf("--verify: %w", err)
		}
		testSet, err := openSplit(f.dataSpec, "test", f.testN)
		if err != nil {
			return err
		}
		src, err := evalSource(testSet, 256)
		if err != nil {
			return err
		}
		m, err := train.Evaluate(ctx, g2, src)
		if err != nil {
			return fmt.Errorf("--verify: evaluate %s: %w", f.out, err)
		}
		ok := m.Top1 == res.Top1
		res.Verified = &ok
		if !ok {
			return fmt.Errorf("--verify: %s evaluates to top-1 %.4f%%, the fine-tuned graph to %.4f%%", f.out, 100*m.Top1, 100*res.Top1)
		}
	}
	return nil
}

// initialResidualor quantizes two copies of the float model at the
// target widths, with and without the highway, and measures both.
func initialResidualor(ctx context.Context, fg *graph.Graph, pol quant.QATPolicy, dat qat.Data,
	batches func(context.Context) iter.Seq2[*tensor.Tensor, error]) (*residualReport, error) {
	rep := &residualReport{}
	for _, hw := range []bool{true, false} {
		q, err := onnx.Clone(fg)
		if err != nil {
			return nil, err
		}
		p := pol
		p.Highway.Enabled = hw
		if !hw {
			p.Highway.Bits = 0
		}
		if _, _, err := qat.Quantize(ctx, q, p, dat); err != nil {
			return nil, err
		}
		errs, err := qat.ResidualError(ctx, fg, q, batches(ctx))
		if err != nil {
			return nil, err
		}
		if hw {
			rep.Init.Highway = errs
		} else {
			rep.Init.None = errs
		}
		fmt.Fprintf(logw(), "residual-stream error after initialization (%s): mean %.4f over %d blocks, last %.4f\n",
			map[bool]string{true: "highway", false: "no highway"}[hw], qat.MeanError(errs), len(errs), errs[len(errs)-1].RelError)
	}
	return rep, nil
}

// convPadValue returns the pad value of a Conv node (0 for other nodes).
func convPadValue(n *graph.Node) float32 {
	switch c := n.Op.(type) {
	case ops.Conv:
		return c.PadValue
	case *ops.Conv:
		return c.PadValue
	}
	return 0
}

// countZeroPaddedHSwishConvs counts the padded convolutions fed by a
// HardSwish that pad with 0.
func countZeroPaddedHSwishConvs(g *graph.Graph) int {
	c, err := onnx.Clone(g)
	if err != nil {
		return 0
	}
	n, err := quant.NegativePadding(c)
	if err != nil {
		return 0
	}
	return n
}

func describeRecipe(f finetuneFlags, p quant.QATPolicy) string {
	var parts []string
	m := f.method
	if f.learnRange {
		m += " (learned range)"
	}
	parts = append(parts, fmt.Sprintf("%s w%s/a%s", m, bitsName(p.WeightBits), bitsName(p.ActBits)))
	if p.PerChannel {
		parts = append(parts, "per-channel weights")
	}
	if f.progressive != "" {
		parts = append(parts, "progressive "+f.progressive)
	}
	if f.bnLast > 0 {
		parts = append(parts, fmt.Sprintf("BN-last %d", f.bnLast))
	}
	if f.profit {
		parts = append(parts, "PROFIT")
	}
	if p.DuQ && p.Init == quant.InitMSE {
		parts = append(parts, "MSE-initialized ranges")
	}
	if f.bnReestimate > 0 {
		parts = append(parts, fmt.Sprintf("BN re-estimated over %d batches", f.bnReestimate))
	}
	if f.teacher != "" {
		parts = append(parts, "teacher "+f.teacher)
	}
	if f.ema {
		parts = append(parts, fmt.Sprintf("EMA %g", f.emaDecay))
	}
	if f.highway {
		parts = append(parts, fmt.Sprintf("highway %s", map[bool]string{true: bitsName(f.highwayBits) + "-bit", false: "float"}[f.highwayBits > 0]))
	}
	return strings.Join(parts, ", ")
}

// printFinetune prints the summary, the phase history and the per-layer
// table.
func printFinetune(w io.Writer, r *finetuneResult) error {
	pc := ""
	if r.PerChannel {
		pc = " (per-channel weights)"
	}
	fmt.Fprintf(w, "%s on %s: %s w%s/a%s%s, first/last layer %s bits, %d phases, %d epochs of %d images\n",
		r.Model, r.Data, r.Method, bitsName(r.WeightBits), bitsName(r.ActBits), pc, bitsName(r.FirstLast), len(r.Phases), r.EpochBudget, r.TrainImages)
	if r.Interrupted {
		fmt.Fprintf(w, "interrupted after %d epochs: %s holds the current model; continue with --resume\n", len(r.History), r.Out)
		return nil
	}
	before := "quantized before fine-tuning"
	if len(r.Phases) > 0 && (r.Phases[0].WBits != r.WeightBits || r.Phases[0].ABits != r.ActBits) {
		before = fmt.Sprintf("first step (w%s/a%s) before fine-tuning", bitsName(r.Phases[0].WBits), bitsName(r.Phases[0].ABits))
	}
	fmt.Fprintf(w, "top-1 float %.2f%%  %s %.2f%%  fine-tuned %.2f%%  (%+.2f vs float)   (%d test images)\n",
		100*r.FP32Top1, before, 100*r.InitTop1, 100*r.Top1, 100*(r.Top1-r.FP32Top1), r.TestImages)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "phase\tepoch\tlr\ttrain loss\ttrain top-1\ttest top-1")
	for _, h := range r.History {
		fmt.Fprintf(tw, "%d %s\t%d\t%.3g\t%.4f\t%.2f%%\t%.2f%%\n", h.Phase, h.Name, h.Epoch, h.LR, h.TrainLoss, 100*h.TrainTop1, 100*h.TestTop1)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "layer\ttensor\tbits\tmethod\tlevels / range\tSQNR dB")
	for _, l := range r.Layers {
		sq := "-"
		if l.SQNR != nil {
			sq = fmt.Sprintf("%.1f", *l.SQNR)
		}
		t := l.Tensor
		if l.Role == quant.ActivationRole {
			t = "in:" + t
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", l.Layer, t, l.Bits, l.Method, l.Levels, sq)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if re := r.Residual; re != nil {
		fmt.Fprintf(w, "residual-stream relative error per block (%d images):\n", re.Images)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "block\tinit highway\tinit none\tfinal")
		for i, b := range re.Final {
			hw, none := "-", "-"
			if i < len(re.Init.Highway) {
				hw = fmt.Sprintf("%.4f", re.Init.Highway[i].RelError)
			}
			if i < len(re.Init.None) {
				none = fmt.Sprintf("%.4f", re.Init.None[i].RelError)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\n", b.Block, hw, none, b.RelError)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	v := ""
	if r.Verified != nil && *r.Verified {
		v = " (verified: reloads to the same top-1)"
	}
	fmt.Fprintf(w, "wrote %s%s\n", r.Out, v)
	return nil
}
