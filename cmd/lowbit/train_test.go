package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"lowbit/onnx"
)

func smallTrainFlags(out string) trainFlags {
	return trainFlags{model: "lenet5", dataSpec: "mnist", out: out, augment: "none", epochs: 2, batch: 50,
		lr: 0.05, wd: 5e-4, width: 1, warmup: 0.2, seed: 3, nesterov: true, limit: 500}
}

// TestTrainInterruptKeepsAUsableFileAndResumes cancels a run (as Ctrl-C
// does) and checks that the model file loads, then resumes it to the end.
func TestTrainInterruptKeepsAUsableFileAndResumes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.onnx")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := runTrain(ctx, smallTrainFlags(out))
	if !errors.Is(err, context.Canceled) || res == nil || !res.Interrupted {
		t.Fatalf("interrupted run: %+v, %v", res, err)
	}
	if _, err := onnx.Load(out); err != nil {
		t.Fatalf("model file after interrupt: %v", err)
	}
	if _, err := os.Stat(out + ".state"); err != nil {
		t.Fatalf("no resumable state: %v", err)
	}
	f := smallTrainFlags(out)
	f.resume = true
	res, err = runTrain(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 2 || len(res.History) != 2 || res.Top1 < 0.5 {
		t.Fatalf("resumed run: epochs %d, history %d, top-1 %v", res.Epochs, len(res.History), res.Top1)
	}
	if _, err := os.Stat(out + ".state"); !os.IsNotExist(err) {
		t.Fatalf("state file left after a finished run: %v", err)
	}
	b, _ := json.Marshal(res)
	if len(b) == 0 {
		t.Fatal("result does not marshal")
	}
}

func TestTrainRejectsBadFlags(t *testing.T) {
	out := filepath.Join(t.TempDir(), "m.onnx")
	f := smallTrainFlags(out)
	f.augment = "rotate"
	if _, err := runTrain(context.Background(), f); err == nil {
		t.Fatal("bad --augment accepted")
	}
	f = smallTrainFlags(out)
	f.model = "nosuchnet"
	if _, err := runTrain(context.Background(), f); err == nil {
		t.Fatal("unknown model accepted")
	}
	f = smallTrainFlags(out)
	f.dataSpec = filepath.Join(t.TempDir(), "missing")
	if _, err := runTrain(context.Background(), f); err == nil {
		t.Fatal("missing dataset accepted")
	}
}
