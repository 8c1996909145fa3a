package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"lowbit/quant"
	"lowbit/report"
)

func init() {
	var dir string
	var epochs int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Train LeNet-5 on MNIST, quantize it (uniform, WEQ, OLAQ; DuQ fine-tuning) and report test accuracy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("--dir %s: %w", dir, err)
			}
			out := filepath.Join(dir, "lenet5-mnist.onnx")
			res, err := runTrain(cmd.Context(), trainFlags{model: "lenet5", dataSpec: "mnist", out: out,
				augment: "none", epochs: epochs, batch: 64, lr: 0.05, wd: 5e-4, width: 1, warmup: 0.2,
				seed: 1, nesterov: true})
			if err != nil {
				return err
			}
			rows := []demoRow{{Model: "lenet5", Data: "mnist", Precision: "float32", Epochs: res.Epochs, Top1: res.Top1, Seconds: res.Seconds, File: out}}
			// The results and the commands that reproduce them, for the report.
			steps := []demoStep{{name: "lenet5-mnist", result: res, command: fmt.Sprintf(
				"lowbit train --model lenet5 --data mnist --augment none --epochs %d --batch 64 --lr 0.05 --wd 5e-4 --warmup 0.2 --seed 1 --out %s --json",
				epochs, shellQuote(out))}}
			// Post-training quantization of the same model: the uniform
			// baseline against weighted-entropy and outlier-aware quantization.
			for _, q := range demoQuant {
				qout := filepath.Join(dir, fmt.Sprintf("lenet5-%s-w%da%d.onnx", q.method, q.bits, q.bits))
				start := time.Now()
				qr, err := runQuantize(cmd.Context(), quantizeFlags{model: out, dataSpec: "mnist", method: q.method,
					calib: "minmax", wcalib: "minmax", percentile: 99.99, wbits: q.bits, abits: q.bits, firstLast: 8,
					ratio: quant.DefaultOutlierRatio, outlierFormat: "fp16", calibImages: 1000, batch: 256, seed: 1, out: qout})
				if err != nil {
					return err
				}
				rows = append(rows, demoRow{Model: "lenet5", Data: "mnist", Precision: fmt.Sprintf("%s w%d/a%d", q.label, q.bits, q.bits),
					Top1: qr.Top1, Seconds: time.Since(start).Seconds(), File: qout})
				steps = append(steps, demoStep{name: strings.TrimSuffix(filepath.Base(qout), ".onnx"), result: qr, command: fmt.Sprintf(
					"lowbit quantize --model %s --data mnist --method %s --wbits %d --abits %d --out %s --json",
					shellQuote(out), q.method, q.bits, q.bits, shellQuote(qout))})
			}
			// Quantization-aware fine-tuning: a short DuQ run at 4 bits.
			row, step, err := demoQAT(cmd.Context(), out, dir)
			if err != nil {
				return err
			}
			rows = append(rows, row)
			steps = append(steps, step)
			// The report (and each step's JSON and command line) in dir.
			demoCmd := fmt.Sprintf("lowbit demo --dir %s --epochs %d --json", shellQuote(dir), epochs)
			reportPath, reportErr := writeDemoReport(dir, steps, rows, demoCmd)
			if asJSON {
				res := map[string]any{"rows": rows}
				if reportErr == nil {
					res["report"] = reportPath
				}
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
				return reportErr
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "model\tdata\tprecision\ttest top-1\tvs float\ttime\tfile")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f%%\t%+.2f\t%.0fs\t%s\n", r.Model, r.Data, r.Precision, 100*r.Top1, 100*(r.Top1-rows[0].Top1), r.Seconds, r.File)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if reportErr == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", reportPath)
			}
			return reportErr
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "lowbit-demo", "directory for the demo's model files, their JSON results and commands, and report.html")
	cmd.Flags().IntVar(&epochs, "epochs", 2, "training epochs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}

// demoQuant are the post-training quantization rows of the demo.
var demoQuant = []struct {
	method, label string
	bits          int
}{
	{"uniform", "uniform", 4}, {"olaq", "OLAQ 3%", 4},
	{"uniform", "uniform", 2}, {"weq", "WEQ", 2}, {"olaq", "OLAQ 3%", 2},
}

// demoRow is one line of the demo's table (the report package reads it).
type demoRow = report.DemoRow
