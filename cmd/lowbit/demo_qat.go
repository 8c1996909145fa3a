package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// demoQATImages bounds the demo's fine-tuning: one epoch over this many
// MNIST training images (about 190 steps at batch 64; some ten seconds on
// two cores, evaluations included).
const demoQATImages = 12000

// demoQATRow fine-tunes the demo's float LeNet-5 (the file model) with DuQ
// at 4 bits for weights and activations (first and last layer at 8 bits,
// learned ranges, straight-through rounding) for one short epoch, writes
// dir/lenet5-duq-w4a4.onnx and returns the demo-table row. The demo
// appends it after the post-training rows (through demoQAT, which also
// returns the result for the demo's report).
func demoQATRow(ctx context.Context, model, dir string) (demoRow, error) {
	row, _, err := demoQAT(ctx, model, dir)
	return row, err
}

// demoQAT is demoQATRow that also returns the fine-tuning result and the
// command line that reproduces it, for the demo's report.
func demoQAT(ctx context.Context, model, dir string) (demoRow, demoStep, error) {
	f := defaultFinetuneFlags()
	f.model, f.dataSpec, f.out = model, "mnist", filepath.Join(dir, "lenet5-duq-w4a4.onnx")
	f.method, f.wbits, f.abits, f.epochs, f.limit, f.augment = "duq", 4, 4, 1, demoQATImages, "none"
	start := time.Now()
	res, err := runFinetune(ctx, f)
	if err != nil {
		return demoRow{}, demoStep{}, fmt.Errorf("demo: DuQ fine-tuning: %w", err)
	}
	step := demoStep{name: "lenet5-duq-w4a4", result: res,
		command: fmt.Sprintf("lowbit finetune --model %s --data mnist --method duq --wbits 4 --abits 4 --epochs 1 --limit %d --augment none --out %s --json",
			shellQuote(f.model), f.limit, shellQuote(f.out))}
	return demoRow{Model: "lenet5", Data: "mnist", Precision: "DuQ w4/a4 (QAT)", Epochs: res.EpochBudget,
		Top1: res.Top1, Seconds: time.Since(start).Seconds(), File: f.out}, step, nil
}
