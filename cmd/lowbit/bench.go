package main

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"lowbit/graph"
	"lowbit/models"
	"lowbit/report"
	"lowbit/tensor"
	"lowbit/train"
)

// benchResult is the JSON printed by `lowbit bench --json` (the report package reads it back).
type benchResult = report.Bench

func init() {
	var model, input string
	var batch, inferBatch, steps, warmup int
	var width float64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "bench --model NAME --input CxHxW --batch B --infer-batch B2",
		Short: "Measure training and inference throughput on synthetic data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			chw, err := parseCHW(input)
			if err != nil {
				return err
			}
			if batch <= 0 || inferBatch <= 0 || steps <= 0 || warmup < 0 {
				return fmt.Errorf("--batch (%d), --infer-batch (%d) and --steps (%d) must be positive", batch, inferBatch, steps)
			}
			g, err := models.Build(model, models.Config{InC: chw[0], H: chw[1], W: chw[2], Classes: 10, Width: width, Seed: 1})
			if err != nil {
				return err
			}
			res, err := runBench(g, chw, batch, inferBatch, steps, warmup)
			if err != nil {
				return err
			}
			res.Model = model
			if asJSON {
				return printJSON(cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %v: train %.1f img/s (batch %d, %.1f ms/step)  infer %.1f img/s (batch %d)  peak RSS %.0f MB\n",
				model, chw, res.TrainImgS, batch, res.TrainStepMS, res.InferImgS, inferBatch, res.PeakRSSMB)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "resnet20", "zoo model")
	f.StringVar(&input, "input", "1x28x28", "input size CxHxW")
	f.IntVar(&batch, "batch", 128, "training batch")
	f.IntVar(&inferBatch, "infer-batch", 256, "inference batch")
	f.IntVar(&steps, "steps", 8, "measured steps (training) and runs (inference)")
	f.IntVar(&warmup, "warmup", 3, "warm-up steps before measuring")
	f.Float64Var(&width, "width", 1, "width multiplier")
	f.BoolVar(&asJSON, "json", false, "print only JSON on stdout")
	rootCmd.AddCommand(cmd)
}

func parseCHW(s string) ([]int, error) {
	parts := strings.Split(strings.ToLower(s), "x")
	if len(parts) != 3 {
		return nil, fmt.Errorf("--input %q: want CxHxW, e.g. 3x32x32", s)
	}
	out := make([]int, 3)
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("--input %q: %q is not a positive size", s, p)
		}
		out[i] = v
	}
	return out, nil
}

// runBench times training steps (forward, backward, SGD update) and
// inference on random data after a warm-up, like the PyTorch peer script.
func runBench(g *graph.Graph, chw []int, batch, inferBatch, steps, warmup int) (*benchResult, error) {
	rng := rand.New(rand.NewSource(1))
	x := tensor.New(batch, chw[0], chw[1], chw[2])
	x.RandUniform(rng, 0, 1)
	y := make([]int, batch)
	for i := range y {
		y[i] = rng.Intn(10)
	}
	tr, err := train.NewTrainer(g, train.Options{Epochs: 1, StepsPerEpoch: warmup + steps, LR: 0.05, WeightDecay: 1e-4})
	if err != nil {
		return nil, err
	}
	for i := 0; i < warmup; i++ {
		if _, _, err := tr.TrainStep(x, y); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	for i := 0; i < steps; i++ {
		if _, _, err := tr.TrainStep(x, y); err != nil {
			return nil, err
		}
	}
	trainSec := time.Since(start).Seconds()
	e := tr.Executor()
	e.Training = false
	xi := tensor.New(inferBatch, chw[0], chw[1], chw[2])
	xi.RandUniform(rng, 0, 1)
	if _, err := e.Forward(xi); err != nil {
		return nil, err
	}
	runs := max(steps/2, 2)
	start = time.Now()
	for i := 0; i < runs; i++ {
		if _, err := e.Forward(xi); err != nil {
			return nil, err
		}
	}
	inferSec := time.Since(start).Seconds()
	return &benchResult{Input: chw, Batch: batch, InferBatch: inferBatch, Steps: steps,
		TrainImgS:   float64(batch*steps) / trainSec,
		InferImgS:   float64(inferBatch*runs) / inferSec,
		TrainStepMS: 1000 * trainSec / float64(steps),
		PeakRSSMB:   peakRSSMB()}, nil
}

// peakRSSMB is the process's peak resident set size in MiB.
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}
