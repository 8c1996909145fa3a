package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/onnx"
	"lowbit/quant"
	"lowbit/train"
)

// TestBNReestimateCommand re-estimates the statistics of a narrow, freshly
// built ResNet-20 (whose running statistics are still the initial 0 and 1)
// and checks that the written file evaluates to the reported top-1.
func TestBNReestimateCommand(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "resnet20", 0.25)
	out := filepath.Join(dir, "bn.onnx")
	s, err := execCmd(t, newBNReestimateCmd(), "--model", model, "--data", "mnist", "--batches", "3", "--batch", "32",
		"--limit", "256", "--test-images", "128", "--out", out, "--json")
	if err != nil {
		t.Fatal(err, s)
	}
	var r bnReestimateResult
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	if r.Batches != 3 || r.Images != 96 || r.BatchNorms != 21 || r.TestImages != 128 {
		t.Errorf("result %+v: want 3 batches, 96 images, the 21 BatchNorms of ResNet-20 (19 + 2 shortcuts), 128 test images", r)
	}
	g, err := onnx.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	stats := g.Param("bn1.running_var")
	if stats == nil {
		for _, p := range g.Params() {
			if strings.HasSuffix(p.Name, "running_var") {
				stats = p
				break
			}
		}
	}
	if stats == nil {
		t.Fatal("no running variance in the written file")
	}
	ones := true
	for _, v := range stats.Data.Data {
		ones = ones && v == 1
	}
	if ones {
		t.Errorf("%s still holds the initial variances", stats.Name)
	}
	ds, err := openSplit("mnist", "test", 128)
	if err != nil {
		t.Fatal(err)
	}
	src, err := evalSource(ds, 256)
	if err != nil {
		t.Fatal(err)
	}
	m, err := train.Evaluate(t.Context(), g, src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Top1 != r.Top1After {
		t.Errorf("written file evaluates to %v, reported %v", m.Top1, r.Top1After)
	}
	// A model without BatchNorm (folded) is refused, naming the file.
	folded := filepath.Join(dir, "folded.onnx")
	if _, err := quant.FoldBatchNorm(g); err != nil {
		t.Fatal(err)
	}
	if err := onnx.Save(g, folded); err != nil {
		t.Fatal(err)
	}
	if _, err := execCmd(t, newBNReestimateCmd(), "--model", folded, "--data", "mnist", "--out", out); err == nil || !strings.Contains(err.Error(), folded) {
		t.Errorf("model without BatchNorm: error %v, want one naming %s", err, folded)
	}
}
