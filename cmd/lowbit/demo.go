package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"lowbit/quant"
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
			}
			// Quantization-aware fine-tuning: a short DuQ run at 4 bits.
			row, err := demoQATRow(cmd.Context(), out, dir)
			if err != nil {
				return err
			}
			rows = append(rows, row)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"rows": rows})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "model\tdata\tprecision\ttest top-1\tvs float\ttime\tfile")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f%%\t%+.2f\t%.0fs\t%s\n", r.Model, r.Data, r.Precision, 100*r.Top1, 100*(r.Top1-rows[0].Top1), r.Seconds, r.File)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "lowbit-demo", "directory for the demo's model files")
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

// demoRow is one line of the demo's table.
type demoRow struct {
	Model     string  `json:"model"`
	Data      string  `json:"data"`
	Precision string  `json:"precision"`
	Epochs    int     `json:"epochs,omitempty"`
	Top1      float64 `json:"top1"`
	Seconds   float64 `json:"seconds"`
	File      string  `json:"file"`
}
