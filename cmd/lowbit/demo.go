package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func init() {
	var dir string
	var epochs int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Train LeNet-5 on MNIST and report its test accuracy",
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
			if asJSON {
				return printJSON(cmd.OutOrStdout(), map[string]any{"rows": rows})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "model\tdata\tprecision\tepochs\ttest top-1\ttime\tfile")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.2f%%\t%.0fs\t%s\n", r.Model, r.Data, r.Precision, r.Epochs, 100*r.Top1, r.Seconds, r.File)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "lowbit-demo", "directory for the demo's model files")
	cmd.Flags().IntVar(&epochs, "epochs", 2, "training epochs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}

// demoRow is one line of the demo's table.
type demoRow struct {
	Model     string  `json:"model"`
	Data      string  `json:"data"`
	Precision string  `json:"precision"`
	Epochs    int     `json:"epochs"`
	Top1      float64 `json:"top1"`
	Seconds   float64 `json:"seconds"`
	File      string  `json:"file"`
}
