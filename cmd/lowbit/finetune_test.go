package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"lowbit/data"
	"lowbit/internal/ortrun"
	"lowbit/models"
	"lowbit/onnx"
	"lowbit/quant"
)

func saveZooModel(t *testing.T, dir, name string, width float64) string {
	t.Helper()
	if _, err := data.Open("mnist", "test"); err != nil {
		t.Skipf("MNIST is not available: %v", err)
	}
	g, err := models.Build(name, models.Config{InC: 1, H: 28, W: 28, Classes: 10, Width: width, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".onnx")
	if err := onnx.Save(g, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFinetuneCommand runs a small progressive DuQ recipe with BN-last and
// EMA and checks the JSON (the quantize fields plus the phase history),
// the verified output file and the removal of the checkpoint state.
func TestFinetuneCommand(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "lenet5", 1)
	out := filepath.Join(dir, "q.onnx")
	s, err := execCmd(t, newFinetuneCmd(), "--model", model, "--data", "mnist", "--method", "duq", "--wbits", "4", "--abits", "4",
		"--progressive", "8,4", "--bn-last", "1", "--ema", "--epochs", "1", "--limit", "256", "--batch", "32",
		"--test-images", "200", "--analyze-images", "100", "--verify", "--out", out, "--json")
	if err != nil {
		t.Fatal(err, s)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	for _, k := range []string{"fp32_top1", "top1", "top5", "init_top1", "layers", "phases", "history", "phase_setup"} {
		if _, ok := r[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if r["verified"] != true {
		t.Errorf("verified = %v", r["verified"])
	}
	// The trained and the averaged weights are compared on training
	// batches, and the kept ones are those that scored higher there; the
	// reported top-1 is the kept weights' test figure.
	rawSel, ok1 := r["raw_select_top1"].(float64)
	emaSel, ok2 := r["ema_select_top1"].(float64)
	emaTest, ok3 := r["ema_top1"].(float64)
	if !ok1 || !ok2 || !ok3 {
		t.Fatalf("selection fields: raw_select_top1 %v, ema_select_top1 %v, ema_top1 %v", r["raw_select_top1"], r["ema_select_top1"], r["ema_top1"])
	}
	if used := r["ema_used"] == true; used != (emaSel > rawSel) {
		t.Errorf("ema_used %v with selection top-1 trained %v, averaged %v", r["ema_used"], rawSel, emaSel)
	}
	if want := map[bool]float64{true: emaTest, false: r["raw_top1"].(float64)}[r["ema_used"] == true]; r["top1"] != want {
		t.Errorf("top1 %v, want the kept weights' test top-1 %v", r["top1"], want)
	}
	// Steps w f/a8, wf/a4, w8/a4, w4/a4, each with BN-last before and after.
	if n := len(r["phases"].([]any)); n != 12 || len(r["history"].([]any)) != 12 {
		t.Errorf("%d phases, %d history lines, want 12 each", n, len(r["history"].([]any)))
	}
	layers := r["layers"].([]any)
	if len(layers) != 10 {
		t.Fatalf("%d report rows, want 10", len(layers))
	}
	for _, l := range layers {
		row := l.(map[string]any)
		if row["method"] != "duq" || row["sqnr_db"] == nil {
			t.Errorf("report row %v", row)
		}
	}
	for _, f := range []string{out + ".qat", out + ".state"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", f, err)
		}
	}
}

// TestFinetunePerChannel fine-tunes LeNet-5 with per-output-channel DuQ
// weights and checks the per-channel report rows, the file's metadata, the
// [Cout] parameters of the written file and that the file reloads to the
// fine-tuned top-1 (--verify, which evaluates as lowbit eval does), and,
// when the ONNX Runtime harness is installed, that it agrees with lowbit.
func TestFinetunePerChannel(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "lenet5", 1)
	out := filepath.Join(dir, "q.onnx")
	s, err := execCmd(t, newFinetuneCmd(), "--model", model, "--data", "mnist", "--method", "duq", "--wbits", "3", "--abits", "4",
		"--per-channel", "--epochs", "1", "--limit", "256", "--batch", "32", "--test-images", "200", "--analyze-images", "100",
		"--verify", "--out", out, "--json")
	if err != nil {
		t.Fatal(err, s)
	}
	var r finetuneResult
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	if r.Verified == nil || !*r.Verified {
		t.Fatalf("verified %v", r.Verified)
	}
	if !r.PerChannel || !strings.Contains(r.Describe(), "per-channel") {
		t.Errorf("JSON per_channel %v, description %q", r.PerChannel, r.Describe())
	}
	perChannel := 0
	for _, l := range r.Layers {
		if pc := strings.Contains(l.Levels, "per-channel"); pc != (l.Role == quant.WeightRole) {
			t.Errorf("report row %s %s: %q", l.Layer, l.Role, l.Levels)
		} else if pc {
			perChannel++
		}
	}
	if perChannel != 5 {
		t.Errorf("%d per-channel weight rows, want 5", perChannel)
	}
	g, err := onnx.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string]any
	if err := json.Unmarshal([]byte(g.Meta["lowbit:finetune"]), &meta); err != nil || meta["per_channel"] != true {
		t.Errorf("file metadata %q (%v) lacks per_channel true", g.Meta["lowbit:finetune"], err)
	}
	sites, err := quant.DuQSites(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sites {
		if want := st.Role() == quant.WeightRole; st.PerChannel() != want ||
			want && st.Alpha.Data.Len() != st.Tensor.Param.Data.Shape[0] {
			t.Errorf("%s: parameters of shape %v after reload", st.Node.Name, st.Alpha.Data.Shape)
		}
	}
	if _, err := ortrun.Find(); err != nil {
		return
	}
	o, err := execCmd(t, newORTCheckCmd(), "--model", out, "--data", "mnist", "--limit", "200", "--batch", "100", "--json")
	if err != nil {
		t.Fatal(err, o)
	}
	var oc ortCheckResult
	if err := json.Unmarshal([]byte(o), &oc); err != nil {
		t.Fatalf("%v: %s", err, o)
	}
	t.Logf("ONNX Runtime: %+v", oc)
	if oc.Agreement != 1 || oc.LowbitTop1 != oc.ORTTop1 || oc.MaxLogitDiff > 1e-4 {
		t.Errorf("ONNX Runtime disagrees with lowbit on the per-channel model: %+v", oc)
	}
}

// TestFinetuneHighwayAnalysis runs --analyze-error on a narrow ResNet-20
// with the 8-bit highway.
func TestFinetuneHighwayAnalysis(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "resnet20", 0.25)
	s, err := execCmd(t, newFinetuneCmd(), "--model", model, "--data", "mnist", "--wbits", "3", "--abits", "3",
		"--highway", "--highway-bits", "8", "--analyze-error", "--epochs", "1", "--limit", "64", "--batch", "32",
		"--test-images", "64", "--analyze-images", "64", "--out", filepath.Join(dir, "q.onnx"), "--json")
	if err != nil {
		t.Fatal(err, s)
	}
	var r finetuneResult
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	re := r.Residual
	if re == nil || len(re.Init.Highway) != 9 || len(re.Init.None) != 9 || len(re.Final) != 9 || !re.FinalHighway {
		t.Fatalf("residual error report %+v", re)
	}
	hw := 0
	for _, l := range r.Layers {
		if l.Bits == 8 && (l.Layer == "highway" || strings.Contains(l.Layer, "shortcut")) {
			hw++
		}
	}
	if hw == 0 {
		t.Error("no 8-bit highway quantizer in the report")
	}
}

// TestFinetuneBNReestimateAndMSEInit fine-tunes a narrow ResNet-20 (which
// has BatchNorm) with MSE-initialized DuQ ranges and BatchNorm
// re-estimation, and checks the JSON and that the written file evaluates to
// the reported top-1 (the re-estimated statistics are the saved ones).
func TestFinetuneBNReestimateAndMSEInit(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "resnet20", 0.25)
	s, err := execCmd(t, newFinetuneCmd(), "--model", model, "--data", "mnist", "--wbits", "4", "--abits", "4",
		"--duq-init", "mse", "--bn-reestimate", "2", "--epochs", "1", "--limit", "64", "--batch", "32",
		"--test-images", "64", "--verify", "--out", filepath.Join(dir, "q.onnx"), "--json")
	if err != nil {
		t.Fatal(err, s)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	if r["duq_init"] != "mse" || r["bn_reestimate"] != 2.0 || r["verified"] != true {
		t.Errorf("duq_init %v, bn_reestimate %v, verified %v; want mse, 2, true", r["duq_init"], r["bn_reestimate"], r["verified"])
	}
}

func TestFinetuneFlagErrors(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "lenet5", 1)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "weq", "--learn-range"}, "--learn-range"},
		{[]string{"--method", "uniform", "--fold", "--bn-last", "1"}, "--fold"},
		{[]string{"--highway", "--highway-bits", "4"}, "--highway-bits"},
		{[]string{"--highway-bits", "8"}, "--highway"},
		{[]string{"--method", "duq", "--wbits", "1"}, "at least 2 bits"},
		{[]string{"--progressive", "4,8"}, "--progressive"},
		{[]string{"--profit-sample", "1"}, "--profit"},
		{[]string{"--method", "foo"}, "--method"},
		{[]string{"--method", "olaq", "--per-channel"}, "--per-channel"},
		{[]string{"--duq-init", "median"}, "--duq-init"},
		{[]string{"--method", "uniform", "--duq-init", "mse"}, "--duq-init"},
		{[]string{"--bn-reestimate", "-1"}, "--bn-reestimate"},
	} {
		args := append([]string{"--model", model, "--out", filepath.Join(dir, "x.onnx")}, c.args...)
		if s, err := execCmd(t, newFinetuneCmd(), args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v (output %q), want one naming %s", c.args, err, s, c.want)
		}
	}
}

// TestDemoQATRow runs the demo's DuQ row (its real budget) from an
// untrained LeNet-5, which one epoch of 4-bit training lifts well above
// chance.
func TestDemoQATRow(t *testing.T) {
	dir := t.TempDir()
	model := saveZooModel(t, dir, "lenet5", 1)
	row, err := demoQATRow(t.Context(), model, dir)
	if err != nil {
		t.Fatal(err)
	}
	if row.Precision != "DuQ w4/a4 (QAT)" || row.Epochs != 1 || row.Top1 <= 0.2 || filepath.Base(row.File) != "lenet5-duq-w4a4.onnx" {
		t.Fatalf("demo row %+v", row)
	}
	if _, err := os.Stat(row.File); err != nil {
		t.Fatal(err)
	}
}
