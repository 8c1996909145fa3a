package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"lowbit/data"
	"lowbit/graph"
	"lowbit/models"
	"lowbit/onnx"
	"lowbit/quant"
	"lowbit/report"
	"lowbit/train"
)

// trainFlags are the flags of `lowbit train` (and the demo's settings).
type trainFlags struct {
	model, dataSpec, out, augment string
	epochs, batch                 int
	lr, wd, width, warmup         float64
	smoothing                     float64
	seed                          int64
	nesterov, resume, asJSON      bool
	negPad                        bool
	ema, clip                     float64
	limit                         int
}

// trainResult is the JSON printed by `lowbit train --json` (the report package reads it back).
type trainResult = report.Train

func init() {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train --model NAME --data D --epochs N --out model.onnx",
		Short: "Train a zoo model in float and save it as ONNX",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := runTrain(cmd.Context(), f)
			if res != nil && f.asJSON {
				if jerr := printJSON(cmd.OutOrStdout(), res); jerr != nil {
					return jerr
				}
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.model, "model", "lenet5", "zoo model: "+fmt.Sprint(models.Names()))
	fl.StringVar(&f.dataSpec, "data", "mnist", "dataset: mnist, fashion-mnist, or a path")
	fl.StringVar(&f.out, "out", "model.onnx", "output ONNX file (written after every epoch)")
	fl.IntVar(&f.epochs, "epochs", 5, "epochs")
	fl.IntVar(&f.batch, "batch", 128, "batch size")
	fl.Float64Var(&f.lr, "lr", 0.05, "peak learning rate (SGD, momentum 0.9, cosine schedule)")
	fl.Float64Var(&f.wd, "wd", 5e-4, "weight decay (conv/linear weights)")
	fl.Float64Var(&f.width, "width", 1, "width multiplier")
	fl.Float64Var(&f.warmup, "warmup", 0.5, "linear warm-up, in epochs")
	fl.Float64Var(&f.smoothing, "smoothing", 0, "label smoothing")
	fl.Float64Var(&f.ema, "ema", 0, "weight EMA decay (0 = off, e.g. 0.9997)")
	fl.Float64Var(&f.clip, "clip-grad", 0, "clip the global gradient L2 norm to this value (0 = off)")
	fl.Int64Var(&f.seed, "seed", 1, "random seed (initialization, shuffling, augmentation)")
	fl.BoolVar(&f.nesterov, "nesterov", true, "Nesterov momentum")
	fl.StringVar(&f.augment, "augment", "auto", "augmentation: none, crop, crop+flip, auto (crop for digits, crop+flip otherwise)")
	fl.BoolVar(&f.resume, "resume", false, "resume from --out and its .state file")
	fl.IntVar(&f.limit, "limit", 0, "use only the first N training images (0 = all)")
	fl.BoolVar(&f.negPad, "neg-pad", false, "pad convolutions fed by an h-swish with −3/8 instead of 0 (as quantized h-swish DuQs do; MobileNetV3)")
	fl.BoolVar(&f.asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}

func augmentFor(spec, name string) (data.Augment, error) {
	switch spec {
	case "none":
		return data.Augment{}, nil
	case "crop":
		return data.Augment{Pad: 2}, nil
	case "crop+flip":
		return data.Augment{Pad: 2, Flip: true}, nil
	case "auto":
		if name == "mnist" {
			return data.Augment{}, nil
		}
		return data.Augment{Pad: 2, Flip: true}, nil
	}
	return data.Augment{}, fmt.Errorf("--augment %q: want none, crop, crop+flip or auto", spec)
}

func runTrain(ctx context.Context, f trainFlags) (*trainResult, error) {
	if f.epochs <= 0 || f.batch <= 0 {
		return nil, fmt.Errorf("--epochs (%d) and --batch (%d) must be positive", f.epochs, f.batch)
	}
	trainSet, err := data.Open(f.dataSpec, "train")
	if err != nil {
		return nil, err
	}
	if f.limit > 0 && f.limit < trainSet.N() {
		trainSet = trainSet.Head(f.limit)
	}
	testSet, err := data.Open(f.dataSpec, "test")
	if err != nil {
		return nil, err
	}
	aug, err := augmentFor(f.augment, trainSet.Name)
	if err != nil {
		return nil, err
	}
	var g *graph.Graph
	if f.resume {
		if g, err = onnx.Load(f.out); err != nil {
			return nil, fmt.Errorf("--resume: %w", err)
		}
	} else {
		g, err = models.Build(f.model, models.Config{InC: trainSet.C, H: trainSet.H, W: trainSet.W,
			Classes: trainSet.Classes, Width: f.width, Seed: f.seed})
		if err != nil {
			return nil, err
		}
		if f.negPad {
			n, err := quant.NegativePadding(g)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(logw(), "--neg-pad: %d convolutions fed by an h-swish pad with −3/8\n", n)
		}
	}
	if err := checkInput(g, trainSet, f.out); err != nil {
		return nil, err
	}
	loader, err := data.NewLoader(trainSet, data.LoaderConfig{Batch: f.batch, Shuffle: true, Seed: f.seed, DropLast: true, Augment: aug})
	if err != nil {
		return nil, err
	}
	testSrc, err := evalSource(testSet, 256)
	if err != nil {
		return nil, err
	}
	statePath := f.out + ".state"
	tr, err := train.NewTrainer(g, train.Options{
		Epochs: f.epochs, StepsPerEpoch: trainSet.N() / f.batch, LR: f.lr, WeightDecay: f.wd,
		Nesterov: f.nesterov, WarmupEpochs: f.warmup, Smoothing: float32(f.smoothing), EMADecay: f.ema, ClipGradNorm: f.clip,
		Progress: logw(),
	})
	if err != nil {
		return nil, err
	}
	tr.Opts.OnEpoch = func(train.EpochStats) error { return saveCheckpoint(g, tr, f.out, statePath) }
	if f.resume {
		if err := tr.LoadState(statePath); err != nil {
			return nil, err
		}
		fmt.Fprintf(logw(), "resuming %s after epoch %d\n", f.out, tr.Epoch)
	}
	trainable, _ := g.NumParams()
	fmt.Fprintf(logw(), "training %s on %s: %d images, %d parameters, %d epochs\n", f.model, trainSet.Name, trainSet.N(), trainable, f.epochs)
	start := time.Now()
	hist, runErr := tr.Run(ctx, train.Loader{L: loader}, testSrc)
	res := &trainResult{Model: f.model, Data: f.dataSpec, Out: f.out, Epochs: tr.Epoch, Params: trainable, History: hist}
	if runErr != nil {
		if !errors.Is(runErr, context.Canceled) {
			return nil, runErr
		}
		// Ctrl-C: keep a usable model file and the state to resume.
		res.Interrupted = true
		if err := saveCheckpoint(g, tr, f.out, statePath); err != nil {
			return nil, err
		}
		fmt.Fprintf(logw(), "interrupted: %s holds the current weights; continue with --resume\n", f.out)
		return res, runErr
	}
	// The last epoch already evaluated these weights, unless the EMA
	// swapped in averaged ones (or a resumed run had no epoch left).
	var m train.Metrics
	if n := len(hist); n > 0 && f.ema == 0 {
		m = hist[n-1].Test
	} else if m, err = train.Evaluate(ctx, g, testSrc); err != nil {
		return nil, err
	}
	if err := onnx.Save(g, f.out); err != nil {
		return nil, err
	}
	res.Top1, res.Top5, res.Loss, res.Images = m.Top1, m.Top5, m.Loss, m.Images
	res.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(logw(), "%s: test top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%.0fs) → %s\n", f.model, 100*m.Top1, 100*m.Top5, m.Loss, res.Seconds, f.out)
	os.Remove(statePath)
	return res, nil
}

// saveCheckpoint writes the model and the trainer's resumable state.
func saveCheckpoint(g *graph.Graph, tr *train.Trainer, out, statePath string) error {
	if err := onnx.Save(g, out); err != nil {
		return err
	}
	return tr.SaveState(statePath)
}
