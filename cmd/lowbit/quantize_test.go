package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/models"
	"lowbit/onnx"
	"lowbit/quant"
)

// saveLeNet writes an untrained LeNet-5 (weights from seed) to dir/name.
func saveLeNet(t *testing.T, dir, name string, seed int64) string {
	t.Helper()
	g, err := models.Build("lenet5", models.Config{InC: 1, H: 28, W: 28, Classes: 10, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := onnx.Save(g, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func runQuantizeCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return execCmd(t, newQuantizeCmd(), args...)
}

// TestQuantizeCommand runs the whole command on an (untrained) LeNet-5:
// JSON report, plots, a written file that reloads to the same top-1.
func TestQuantizeCommand(t *testing.T) {
	dir := t.TempDir()
	model := saveLeNet(t, dir, "lenet5.onnx", 1)
	out := filepath.Join(dir, "q.onnx")
	text, err := runQuantizeCmd(t, "--model", model, "--data", "mnist", "--method", "olaq", "--wbits", "4", "--abits", "3",
		"--calib-images", "300", "--test-images", "300", "--out", out, "--verify", "--plot", filepath.Join(dir, "plots"),
		"--layer-bits", "fc1=2/-", "--json")
	if err != nil {
		if strings.Contains(err.Error(), "mnist") && strings.Contains(err.Error(), "not") {
			t.Skipf("MNIST unavailable: %v", err)
		}
		t.Fatal(err)
	}
	var res struct {
		FP32Top1 *float64            `json:"fp32_top1"`
		Top1     *float64            `json:"top1"`
		Verified *bool               `json:"verified"`
		Plots    []string            `json:"plots"`
		Layers   []quant.LayerReport `json:"layers"`
	}
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, text)
	}
	if res.FP32Top1 == nil || res.Top1 == nil || res.Verified == nil || !*res.Verified {
		t.Fatalf("result %s", text)
	}
	if len(res.Layers) != 10 || len(res.Plots) != 5 {
		t.Fatalf("%d layer rows and %d plots, want 10 and 5", len(res.Layers), len(res.Plots))
	}
	for _, l := range res.Layers {
		want := 4
		switch {
		case l.Layer == "conv1" || l.Layer == "logits":
			want = 8
		case l.Layer == "fc1" && l.Role == quant.WeightRole:
			want = 2
		case l.Role == quant.ActivationRole:
			want = 3
		}
		if l.Bits != want || l.Method != "olaq" || l.OutlierPct == nil {
			t.Errorf("row %+v: want %d-bit olaq with an outlier count", l, want)
		}
	}
	if b, err := os.ReadFile(res.Plots[0]); err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Errorf("plot %s: %v", res.Plots[0], err)
	}
}

func TestQuantizeFlagErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "--model"},
		{[]string{"--model", "m.onnx", "--method", "fancy"}, "--method"},
		{[]string{"--model", "m.onnx", "--wbits", "9"}, "--wbits"},
		{[]string{"--model", "m.onnx", "--calib", "best"}, "--calib"},
		{[]string{"--model", "m.onnx", "--outlier-ratio", "1"}, "--outlier-ratio"},
		{[]string{"--model", "m.onnx", "--method", "olaq", "--per-channel"}, "--per-channel"},
		{[]string{"--model", "m.onnx", "--layer-bits", "conv1=4"}, "--layer-bits"},
		{[]string{"--model", "m.onnx", "--layer-bits", "conv1=4/x"}, "--layer-bits"},
		{[]string{"--model", "/nonexistent/m.onnx"}, "/nonexistent/m.onnx"},
	} {
		_, err := runQuantizeCmd(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.args, err, c.want)
		}
	}
}

// TestQuantizeFloatEval checks --float-eval: the float metrics come from the
// file (no second evaluation), and a file of another test-set size, or one
// that is not an eval result, is refused by name.
func TestQuantizeFloatEval(t *testing.T) {
	dir := t.TempDir()
	model := saveLeNet(t, dir, "lenet5.onnx", 1)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("fp.json", `{"top1": 0.4321, "top5": 0.8765, "loss": 1.5, "images": 200}`)
	args := []string{"--model", model, "--data", "mnist", "--wbits", "4", "--abits", "4",
		"--calib-images", "100", "--test-images", "200", "--json", "--float-eval"}
	text, err := runQuantizeCmd(t, append(args, good)...)
	if err != nil {
		if strings.Contains(err.Error(), "mnist") && strings.Contains(err.Error(), "not") {
			t.Skipf("MNIST unavailable: %v", err)
		}
		t.Fatal(err)
	}
	var res struct {
		FP32Top1 float64 `json:"fp32_top1"`
		FP32Top5 float64 `json:"fp32_top5"`
	}
	if err := json.Unmarshal([]byte(text), &res); err != nil {
		t.Fatalf("--json output is not JSON: %v\n%s", err, text)
	}
	if res.FP32Top1 != 0.4321 || res.FP32Top5 != 0.8765 {
		t.Errorf("fp32 top-1/top-5 %v/%v, want the file's 0.4321/0.8765", res.FP32Top1, res.FP32Top5)
	}
	for _, bad := range []string{
		write("other-size.json", `{"top1": 0.5, "top5": 0.9, "images": 10000}`),
		write("not-eval.json", `[1, 2]`),
		write("range.json", `{"top1": 43, "top5": 0.9, "images": 200}`),
		filepath.Join(dir, "missing.json"),
	} {
		if _, err := runQuantizeCmd(t, append(args, bad)...); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("--float-eval %s: error %v, want one naming the file", bad, err)
		}
	}
}
