package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/internal/atomicfile"
	"lowbit/onnx"
	"lowbit/quant"
	"lowbit/report"
	"lowbit/train"
)

// quantizeFlags are the flags of `lowbit quantize`.
type quantizeFlags struct {
	model, dataSpec, method, calib, wcalib, out, plotDir string
	outlierFormat, skip, layerBits, floatEval            string
	wbits, abits, firstLast, calibImages, batch, testN   int
	ratio, percentile                                    float64
	seed                                                 int64
	perChannel, weqZero, noFold, verify, asJSON          bool
}

// quantizeResult is the JSON printed by `lowbit quantize --json` (the report package reads it back).
type quantizeResult = report.Quantize

func init() { rootCmd.AddCommand(newQuantizeCmd()) }

func newQuantizeCmd() *cobra.Command {
	var f quantizeFlags
	cmd := &cobra.Command{
		Use:   "quantize --model m.onnx --data D --method uniform|weq|olaq --wbits B --abits B --out q.onnx",
		Short: "Post-training quantization: fold BatchNorm, insert and calibrate quantizers, report and save",
		Long: `quantize folds BatchNorm into the preceding Conv/Gemm, inserts quantizers on
the weights and inputs of every Conv and Gemm (first and last layer at
--first-last-bits), fits the weight quantizers, calibrates the activation
quantizers on --calib-images training images, evaluates float and quantized
top-1 on the test split and prints a per-layer table. Methods: uniform (with
the --calib / --wcalib range calibrators), weq (weighted-entropy weights,
log-domain activations) and olaq (outlier-aware, --outlier-ratio). Bits are
1–8 or 16; 0 or 32 leaves that kind of tensor in float. The quantized model
is written as ONNX (QuantizeLinear/DequantizeLinear for uniform, exact
quantized weights and small standard-op subgraphs for WEQ and OLAQ) and
evaluates to the same top-1 with lowbit eval.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := runQuantize(cmd.Context(), f)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			return printQuantize(cmd.OutOrStdout(), res)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "", "float ONNX model")
	fl.StringVar(&f.dataSpec, "data", "mnist", "dataset: mnist, fashion-mnist, cifar10 or a path")
	fl.StringVar(&f.method, "method", "uniform", "uniform, weq or olaq")
	fl.StringVar(&f.calib, "calib", "minmax", "activation range calibrator of uniform grids: minmax, percentile, mse or kl")
	fl.StringVar(&f.wcalib, "wcalib", "minmax", "weight range calibrator of uniform grids: minmax, percentile, mse or kl")
	fl.Float64Var(&f.percentile, "percentile", 99.99, "percentile of the percentile calibrator")
	fl.IntVar(&f.wbits, "wbits", 8, "weight bits (1–8 or 16; 0 or 32 = float)")
	fl.IntVar(&f.abits, "abits", 8, "activation bits (1–8 or 16; 0 or 32 = float)")
	fl.IntVar(&f.firstLast, "first-last-bits", 8, "bits of the first and last layer's weights and inputs (0 = no override)")
	fl.Float64Var(&f.ratio, "outlier-ratio", quant.DefaultOutlierRatio, "OLAQ outlier ratio (fraction of non-zero values kept in high precision)")
	fl.StringVar(&f.outlierFormat, "outlier-format", "fp16", "OLAQ outlier storage: fp16, int8 or fp32")
	fl.BoolVar(&f.perChannel, "per-channel", false, "per-output-channel weight scales (uniform) or normalization (WEQ); not with olaq")
	fl.BoolVar(&f.weqZero, "weq-zero", false, "WEQ weights with 2^b−1 levels including 0 (default 2^b, no zero level)")
	fl.StringVar(&f.skip, "skip", "", "comma-separated Conv/Gemm node names to leave in float")
	fl.StringVar(&f.layerBits, "layer-bits", "", "per-layer bits, e.g. conv2=4/8,fc1=2/f (weight/input; f = float, - = default)")
	fl.IntVar(&f.calibImages, "calib-images", 1000, "calibration images (random, from the train split)")
	fl.IntVar(&f.testN, "test-images", 0, "evaluate on the first N test images (0 = all)")
	fl.StringVar(&f.floatEval, "float-eval", "", "take the float model's top-1/top-5 from this `lowbit eval --json` file (same model, data and test images) instead of evaluating it again")
	fl.IntVar(&f.batch, "batch", 256, "batch size")
	fl.Int64Var(&f.seed, "seed", 1, "seed of the calibration sample")
	fl.BoolVar(&f.noFold, "no-fold", false, "keep BatchNorm layers (quantize the unfolded weights)")
	fl.BoolVar(&f.verify, "verify", false, "reload --out and check that it evaluates to the same top-1")
	fl.StringVar(&f.out, "out", "", "quantized ONNX file to write")
	fl.StringVar(&f.plotDir, "plot", "", "directory for per-layer weight histograms with the levels marked (SVG)")
	fl.BoolVar(&f.asJSON, "json", false, "print only JSON on stdout")
	return cmd
}

// policyFromFlags builds the quantization policy.
func policyFromFlags(f quantizeFlags) (quant.Policy, error) {
	var p quant.Policy
	m, err := quant.ParseMethod(f.method)
	if err != nil {
		return p, fmt.Errorf("--method: %w", err)
	}
	bits := func(flag string, b int) (int, error) {
		if b == 32 {
			return 0, nil
		}
		if b == 0 || b >= 1 && b <= 8 || b == 16 {
			return b, nil
		}
		return 0, fmt.Errorf("--%s %d: want 1–8 or 16, or 0/32 for float", flag, b)
	}
	wb, err := bits("wbits", f.wbits)
	if err != nil {
		return p, err
	}
	ab, err := bits("abits", f.abits)
	if err != nil {
		return p, err
	}
	fl, err := bits("first-last-bits", f.firstLast)
	if err != nil {
		return p, err
	}
	p = quant.DefaultPolicy(m, wb, ab)
	p.FirstLastBits = fl
	if p.ActCalib, err = quant.ParseCalibMethod(f.calib); err != nil {
		return p, fmt.Errorf("--calib: %w", err)
	}
	if p.WeightCalib, err = quant.ParseCalibMethod(f.wcalib); err != nil {
		return p, fmt.Errorf("--wcalib: %w", err)
	}
	if !(f.percentile > 50 && f.percentile <= 100) {
		return p, fmt.Errorf("--percentile %g: want (50, 100]", f.percentile)
	}
	p.Percentile = f.percentile
	if !(f.ratio >= 0 && f.ratio < 1) {
		return p, fmt.Errorf("--outlier-ratio %g: want a fraction in [0, 1)", f.ratio)
	}
	p.OutlierRatio = f.ratio
	if p.OutlierFormat, err = quant.ParseOutlierFormat(f.outlierFormat); err != nil {
		return p, fmt.Errorf("--outlier-format: %w", err)
	}
	if f.perChannel && m == quant.MethodOLAQ {
		// OLAQ's outlier threshold and dense grid are per layer (methods.md §4);
		// silently quantizing per tensor would mislabel the result.
		return p, fmt.Errorf("--per-channel: not supported with --method olaq (its outlier threshold and grid are per layer)")
	}
	p.PerChannel, p.WEQZero = f.perChannel, f.weqZero
	for _, s := range strings.Split(f.skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			p.Skip = append(p.Skip, s)
		}
	}
	if p.Layers, err = parseLayerBits(f.layerBits); err != nil {
		return p, err
	}
	return p, nil
}

// parseLayerBits parses "name=W/A,..." where W and A are bits, "f" (or
// 0, 32) for float, or "-" for the policy default.
func parseLayerBits(s string) (map[string]quant.LayerBits, error) {
	out := map[string]quant.LayerBits{}
	one := func(item, v string) (int, error) {
		switch v = strings.TrimSpace(v); v {
		case "-", "":
			return 0, nil
		case "f", "float", "0", "32":
			return -1, nil
		}
		b, err := strconv.Atoi(v)
		if err != nil || !(b >= 1 && b <= 8 || b == 16) {
			return 0, fmt.Errorf("--layer-bits %q: bits %q: want 1–8, 16, f (float) or - (default)", item, v)
		}
		return b, nil
	}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		name, spec, ok := strings.Cut(item, "=")
		w, a, ok2 := strings.Cut(spec, "/")
		if !ok || !ok2 || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("--layer-bits %q: want name=W/A", item)
		}
		var lb quant.LayerBits
		var err error
		if lb.Weight, err = one(item, w); err != nil {
			return nil, err
		}
		if lb.Input, err = one(item, a); err != nil {
			return nil, err
		}
		out[strings.TrimSpace(name)] = lb
	}
	return out, nil
}

func runQuantize(ctx context.Context, f quantizeFlags) (*quantizeResult, error) {
	if f.model == "" {
		return nil, fmt.Errorf("--model is required")
	}
	if f.calibImages <= 0 || f.batch <= 0 || f.testN < 0 {
		return nil, fmt.Errorf("--calib-images (%d) and --batch (%d) must be positive, --test-images (%d) non-negative", f.calibImages, f.batch, f.testN)
	}
	p, err := policyFromFlags(f)
	if err != nil {
		return nil, err
	}
	g, err := onnx.Load(f.model)
	if err != nil {
		return nil, err
	}
	trainSet, err := data.Open(f.dataSpec, "train")
	if err != nil {
		return nil, err
	}
	testSet, err := data.Open(f.dataSpec, "test")
	if err != nil {
		return nil, err
	}
	if f.testN > 0 && f.testN < testSet.N() {
		testSet = testSet.Head(f.testN)
	}
	if err := checkInput(g, testSet, f.model); err != nil {
		return nil, err
	}
	testSrc, err := evalSource(testSet, f.batch)
	if err != nil {
		return nil, err
	}
	res := &quantizeResult{Model: f.model, Data: f.dataSpec, Out: f.out, Method: p.Method.String(),
		WeightBits: p.WeightBits, ActBits: p.ActBits, Calib: p.ActCalib.String(), WeightCalib: p.WeightCalib.String(),
		PerChannel: p.PerChannel, FirstLast: p.FirstLastBits}
	if p.Method == quant.MethodOLAQ {
		res.Ratio = p.OutlierRatio
	}
	fp, err := floatMetrics(ctx, g, testSrc, f.floatEval, testSet.N())
	if err != nil {
		return nil, fmt.Errorf("evaluate float %s: %w", f.model, err)
	}
	res.FP32Top1, res.FP32Top5 = fp.Top1, fp.Top5
	if !f.noFold {
		if res.FoldedBN, err = quant.FoldBatchNorm(g); err != nil {
			return nil, fmt.Errorf("%s: %w", f.model, err)
		}
	}
	if _, err := quant.Insert(g, p); err != nil {
		return nil, fmt.Errorf("%s: %w", f.model, err)
	}
	if err := quant.FitWeights(g); err != nil {
		return nil, fmt.Errorf("%s: %w", f.model, err)
	}
	idx := rand.New(rand.NewSource(f.seed)).Perm(trainSet.N())[:min(f.calibImages, trainSet.N())]
	calibSet, err := trainSet.Subset(idx)
	if err != nil {
		return nil, err
	}
	cl, err := data.NewEvalLoader(calibSet, f.batch)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if res.CalibImages, err = quant.Calibrate(ctx, g, cl.Inputs(ctx), f.calibImages); err != nil {
		return nil, fmt.Errorf("%s: %w", f.model, err)
	}
	if err := quant.SetMeasure(g, true); err != nil {
		return nil, err
	}
	qm, err := train.Evaluate(ctx, g, testSrc)
	if err != nil {
		return nil, fmt.Errorf("evaluate quantized %s: %w", f.model, err)
	}
	if err := quant.SetMeasure(g, false); err != nil {
		return nil, err
	}
	res.Top1, res.Top5, res.Loss, res.TestImages = qm.Top1, qm.Top5, qm.Loss, qm.Images
	if res.Layers, err = quant.Report(g); err != nil {
		return nil, err
	}
	if f.plotDir != "" {
		if res.Plots, err = writePlots(g, f.plotDir); err != nil {
			return nil, err
		}
	}
	if f.out != "" {
		meta, _ := json.Marshal(map[string]any{"method": res.Method, "wbits": res.WeightBits, "abits": res.ActBits,
			"calib": res.Calib, "wcalib": res.WeightCalib, "per_channel": res.PerChannel, "outlier_ratio": res.Ratio,
			"first_last_bits": res.FirstLast, "calib_images": res.CalibImages, "top1": res.Top1, "fp32_top1": res.FP32Top1,
			"data": f.dataSpec, "test_images": res.TestImages})
		g.Meta["lowbit:quantize"] = string(meta)
		if err := onnx.Save(g, f.out); err != nil {
			return nil, err
		}
		if f.verify {
			g2, err := onnx.Load(f.out)
			if err != nil {
				return nil, fmt.Errorf("--verify: %w", err)
			}
			m2, err := train.Evaluate(ctx, g2, testSrc)
			if err != nil {
				return nil, fmt.Errorf("--verify: evaluate %s: %w", f.out, err)
			}
			ok := m2.Top1 == qm.Top1 && m2.Loss == qm.Loss
			res.Verified = &ok
			if !ok {
				return res, fmt.Errorf("--verify: %s evaluates to top-1 %.4f%% (loss %.6f), the quantized graph to %.4f%% (loss %.6f)",
					f.out, 100*m2.Top1, m2.Loss, 100*qm.Top1, qm.Loss)
			}
		}
	} else if f.verify {
		return nil, fmt.Errorf("--verify needs --out")
	}
	return res, nil
}

// writePlots writes one SVG weight histogram per weight quantizer.
func writePlots(g *graph.Graph, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("--plot %s: %w", dir, err)
	}
	sites, err := quant.Sites(g)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, s := range sites {
		if s.Op.Spec.Role != quant.WeightRole {
			continue
		}
		w, levels, t, note, err := quant.PlotData(s)
		if err != nil {
			return nil, fmt.Errorf("--plot: %w", err)
		}
		title := fmt.Sprintf("%s: %s", s.Tensor.Name, s.Op.Describe())
		if len(title) > 110 {
			title = title[:107] + "…"
		}
		svg := quant.WeightHistogramSVG(title, note, w, levels, t)
		name := strings.NewReplacer("/", "_", ":", "_", " ", "_").Replace(s.Tensor.Name) + ".svg"
		path := filepath.Join(dir, name)
		if err := atomicfile.WriteFile(path, svg); err != nil {
			return nil, fmt.Errorf("--plot: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// printQuantize prints the summary and the per-layer table.
func printQuantize(w io.Writer, r *quantizeResult) error {
	desc := fmt.Sprintf("%s w%s/a%s", r.Method, bitsName(r.WeightBits), bitsName(r.ActBits))
	if r.Method == "uniform" {
		desc += fmt.Sprintf(" (weights %s, activations %s)", r.WeightCalib, r.Calib)
	}
	if r.Method == "olaq" {
		desc += fmt.Sprintf(" (outlier ratio %.3g)", r.Ratio)
	}
	fmt.Fprintf(w, "%s on %s: %s, first/last layer %s bits, %d BatchNorm folded, calibrated on %d images\n",
		r.Model, r.Data, desc, bitsName(r.FirstLast), r.FoldedBN, r.CalibImages)
	fmt.Fprintf(w, "top-1 float %.2f%%  quantized %.2f%%  (%+.2f)   top-5 %.2f%% → %.2f%%   (%d test images)\n",
		100*r.FP32Top1, 100*r.Top1, 100*(r.Top1-r.FP32Top1), 100*r.FP32Top5, 100*r.Top5, r.TestImages)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\ttensor\tbits\tmethod\tlevels / range\toutlier %\tbits/elem\tSQNR dB")
	for _, l := range r.Layers {
		out := "-"
		if l.OutlierPct != nil {
			out = fmt.Sprintf("%.2f", *l.OutlierPct)
		}
		sq := "inf"
		if l.SQNR != nil {
			sq = fmt.Sprintf("%.1f", *l.SQNR)
		}
		tensorName := l.Tensor
		if l.Role == quant.ActivationRole {
			tensorName = "in:" + tensorName
		}
		method := l.Method
		if l.Calib != "" {
			method += "/" + l.Calib
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%.2f\t%s\n", l.Layer, tensorName, l.Bits, method, l.Levels, out, l.BitsPerElement, sq)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Plots {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	if r.Out != "" {
		v := ""
		if r.Verified != nil && *r.Verified {
			v = " (verified: reloads to the same top-1)"
		}
		fmt.Fprintf(w, "wrote %s%s\n", r.Out, v)
	}
	return nil
}

func bitsName(b int) string {
	if b <= 0 {
		return "f"
	}
	return strconv.Itoa(b)
}

// floatMetrics evaluates the float model on src, or, with file set, reads
// the metrics of an earlier `lowbit eval --json` of it (a grid of quantize
// runs then evaluates the float model once). The file must cover the same
// number of test images.
func floatMetrics(ctx context.Context, g *graph.Graph, src train.Source, file string, images int) (train.Metrics, error) {
	if file == "" {
		return train.Evaluate(ctx, g, src)
	}
	var m train.Metrics
	b, err := os.ReadFile(file)
	if err != nil {
		return m, fmt.Errorf("--float-eval: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("--float-eval %s: not a lowbit eval --json result: %w", file, err)
	}
	if m.Images != images {
		return m, fmt.Errorf("--float-eval %s: evaluated on %d test images, this run uses %d", file, m.Images, images)
	}
	if m.Top1 < 0 || m.Top1 > 1 || m.Top5 < 0 || m.Top5 > 1 {
		return m, fmt.Errorf("--float-eval %s: top-1 %v / top-5 %v outside [0, 1]", file, m.Top1, m.Top5)
	}
	return m, nil
}
