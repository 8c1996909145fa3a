package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"lowbit/train"
)

func init() {
	var model, dataSpec, split string
	var batch int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "eval [--model] model.onnx --data D",
		Short: "Evaluate a model: top-1, top-5 and loss on the test split",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				model = args[0]
			}
			if model == "" {
				return fmt.Errorf("--model is required")
			}
			g, ds, err := loadModelData(model, dataSpec, split, 0)
			if err != nil {
				return err
			}
			src, err := evalSource(ds, batch)
			if err != nil {
				return err
			}
			m, err := train.Evaluate(cmd.Context(), g, src)
			if err != nil {
				return fmt.Errorf("evaluate %s on %s: %w", model, dataSpec, err)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), m)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s on %s (%s, %d images): top-1 %.2f%%  top-5 %.2f%%  loss %.4f\n",
				model, dataSpec, split, m.Images, 100*m.Top1, 100*m.Top5, m.Loss)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "ONNX model file")
	f.StringVar(&dataSpec, "data", "mnist", "dataset: mnist, fashion-mnist, or a path")
	f.StringVar(&split, "split", "test", "dataset split: test or train")
	f.IntVar(&batch, "batch", 256, "batch size")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}
