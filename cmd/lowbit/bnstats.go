package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/onnx"
	"lowbit/ops"
	"lowbit/train"
)

// bnReestimateResult is the JSON of `lowbit bn-reestimate`.
type bnReestimateResult struct {
	Model      string  `json:"model"`
	Data       string  `json:"data"`
	Out        string  `json:"out"`
	BatchNorms int     `json:"batchnorms"`
	Batches    int     `json:"batches"`
	Images     int     `json:"images"`
	Top1Before float64 `json:"top1_before"`
	Top1After  float64 `json:"top1_after"`
	TestImages int     `json:"test_images"`
}

func init() { rootCmd.AddCommand(newBNReestimateCmd()) }

func newBNReestimateCmd() *cobra.Command {
	var model, dataSpec, out, augment string
	var batches, batch, limit, testN int
	var seed int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bn-reestimate --model q.onnx --data D --batches N --out q2.onnx",
		Short: "Re-estimate the BatchNorm statistics of a (quantized) model on training batches",
		Long: `bn-reestimate replaces the running mean and variance of every BatchNorm of a
model by the average batch statistics over N (augmented, shuffled) training
batches, with the network, its quantizers included, as it is — what
finetune --bn-reestimate does after every epoch. It evaluates the model on
the test split before and after and writes the result to --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if model == "" || out == "" {
				return fmt.Errorf("--model and --out are required")
			}
			if batches <= 0 || batch <= 0 || limit < 0 || testN < 0 {
				return fmt.Errorf("--batches (%d) and --batch (%d) must be positive, --limit (%d) and --test-images (%d) not negative",
					batches, batch, limit, testN)
			}
			g, trainSet, err := loadModelData(model, dataSpec, "train", limit)
			if err != nil {
				return err
			}
			res := bnReestimateResult{Model: model, Data: dataSpec, Out: out}
			for _, n := range g.Nodes {
				if _, ok := n.Op.(ops.BatchNorm); ok {
					res.BatchNorms++
				}
			}
			if res.BatchNorms == 0 {
				return fmt.Errorf("%s has no BatchNorm (folded?): nothing to re-estimate", model)
			}
			if trainSet.N() < batch {
				return fmt.Errorf("--batch %d is larger than the %d training images", batch, trainSet.N())
			}
			testSet, err := openSplit(dataSpec, "test", testN)
			if err != nil {
				return err
			}
			testSrc, err := evalSource(testSet, 256)
			if err != nil {
				return err
			}
			aug, err := augmentFor(augment, trainSet.Name)
			if err != nil {
				return err
			}
			loader, err := data.NewLoader(trainSet, data.LoaderConfig{Batch: batch, Shuffle: true, Seed: seed, DropLast: true, Augment: aug})
			if err != nil {
				return err
			}
			defer loader.Close()
			ctx := cmd.Context()
			before, err := train.Evaluate(ctx, g, testSrc)
			if err != nil {
				return fmt.Errorf("evaluate %s: %w", model, err)
			}
			it := loader.Epoch(ctx, 0)
			res.Batches, err = train.ReestimateBN(ctx, g, it, batches)
			if cerr := it.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", model, err)
			}
			after, err := train.Evaluate(ctx, g, testSrc)
			if err != nil {
				return fmt.Errorf("evaluate %s after re-estimation: %w", model, err)
			}
			if err := onnx.Save(g, out); err != nil {
				return err
			}
			res.Images, res.Top1Before, res.Top1After, res.TestImages = res.Batches*batch, before.Top1, after.Top1, after.Images
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d BatchNorm layers re-estimated over %d batches (%d images) of %s\n"+
				"test top-1 %.2f%% → %.2f%% (%d images); wrote %s\n",
				model, res.BatchNorms, res.Batches, res.Images, dataSpec, 100*before.Top1, 100*after.Top1, after.Images, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "ONNX model file")
	f.StringVar(&dataSpec, "data", "mnist", "dataset: mnist, fashion-mnist, cifar10 or a path")
	f.StringVar(&out, "out", "", "ONNX file to write")
	f.IntVar(&batches, "batches", 200, "training batches to average")
	f.IntVar(&batch, "batch", 64, "batch size (as in training)")
	f.IntVar(&limit, "limit", 0, "draw from the first N training images (0 = all)")
	f.IntVar(&testN, "test-images", 0, "evaluate on the first N test images (0 = all)")
	f.StringVar(&augment, "augment", "auto", "augmentation of the batches: none, crop, crop+flip, auto")
	f.Int64Var(&seed, "seed", 1, "seed of shuffling and augmentation")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	return cmd
}
