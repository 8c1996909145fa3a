package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"lowbit/report"
	"lowbit/train"
)

func TestReportCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.html")
	log, err := execCmd(t, newReportCmd(), "--title", "fixtures", "--out", out, "../../report/testdata")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "skipped ../../report/testdata/bad.json: malformed JSON") || !strings.Contains(log, "(8 runs, 3 files skipped)") {
		t.Errorf("output %q", log)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"<title>fixtures</title>", `href="#run-6">../../report/testdata/r20-fp32.json</a>`,
		"lowbit train --model resnet20", "SQNR per layer", "resnet18: energy per inference by component"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestReportCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{dir}, "--out"},
		{[]string{"--out", filepath.Join(dir, "r.html")}, "arg"},
		{[]string{"--out", filepath.Join(dir, "r.html"), filepath.Join(dir, "missing")}, "missing"},
		{[]string{"--out", filepath.Join(dir, "r.html"), dir}, "no .json files"},
		{[]string{"--out", filepath.Join(dir, "no", "r.html"), "../../report/testdata/r20-fp32.json"}, filepath.Join(dir, "no", "r.html")},
	} {
		s, err := execCmd(t, newReportCmd(), c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v (output %q), want one naming %s", c.args, err, s, c.want)
		}
	}
}

// TestDemoReport checks what the demo writes next to its models, with
// stand-in results instead of the demo's training.
func TestDemoReport(t *testing.T) {
	dir := t.TempDir()
	tr := &trainResult{Model: "lenet5", Data: "mnist", Out: filepath.Join(dir, "lenet5-mnist.onnx"), Epochs: 2, Top1: 0.98, Params: 61728,
		History: []train.EpochStats{{Epoch: 1, TrainLoss: 0.3, TrainTop1: 0.9, Test: train.Metrics{Top1: 0.97, Loss: 0.1}},
			{Epoch: 2, TrainLoss: 0.1, TrainTop1: 0.97, Test: train.Metrics{Top1: 0.98, Loss: 0.06}}}}
	qr := &quantizeResult{Model: tr.Out, Data: "mnist", Method: "uniform", WeightBits: 4, ActBits: 4, FP32Top1: 0.98, Top1: 0.97}
	ft := &finetuneResult{Finetune: report.Finetune{Model: tr.Out, Data: "mnist", Method: "duq", WeightBits: 4, ActBits: 4, FP32Top1: 0.98, Top1: 0.975}}
	steps := []demoStep{
		{name: "lenet5-mnist", command: "lowbit train --model lenet5 --json", result: tr},
		{name: "lenet5-uniform-w4a4", command: "lowbit quantize --method uniform --json", result: qr},
		{name: "lenet5-duq-w4a4", command: "lowbit finetune --method duq --json", result: ft},
	}
	rows := []demoRow{{Model: "lenet5", Precision: "float32", Top1: 0.98}, {Model: "lenet5", Precision: "uniform w4/a4", Top1: 0.97}}
	path, err := writeDemoReport(dir, steps, rows, "lowbit demo --dir "+dir+" --json")
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "report.html") {
		t.Errorf("report path %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{"lowbit demo: LeNet-5 on MNIST", "lowbit quantize --method uniform --json", "PTQ uniform",
		"QAT duq", "top-1 per epoch", `<td class="n">97.50%</td><td class="n">-0.50</td>`, "lowbit demo --dir"} {
		if !strings.Contains(page, want) {
			t.Errorf("demo report lacks %q", want)
		}
	}
	// Each step's JSON and command line, so that lowbit report rebuilds it.
	for _, name := range []string{"lenet5-mnist", "lenet5-uniform-w4a4", "lenet5-duq-w4a4", "demo"} {
		js, err := os.ReadFile(filepath.Join(dir, name+".json"))
		if err != nil || !json.Valid(js) {
			t.Errorf("%s.json: %v", name, err)
		}
		if c, err := os.ReadFile(filepath.Join(dir, name+".cmd")); err != nil || !strings.HasPrefix(string(c), "lowbit ") {
			t.Errorf("%s.cmd: %q, %v", name, c, err)
		}
	}
	out := filepath.Join(dir, "again.html")
	if log, err := execCmd(t, newReportCmd(), "--out", out, dir); err != nil || !strings.Contains(log, "(4 runs, 0 files skipped)") {
		t.Errorf("lowbit report on the demo directory: %v, %q", err, log)
	}
}

func TestReportShellQuote(t *testing.T) {
	for in, want := range map[string]string{"lowbit-demo/a.onnx": "lowbit-demo/a.onnx", "my dir/x": "'my dir/x'", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// fill sets every exported field reachable from v (a pointer) to a
// non-zero value, so that a JSON round trip shows every field.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Float64, reflect.Float32:
		v.SetFloat(0.5)
	}
}

// TestReportReadsEveryField checks that the report package's types hold
// every field of the commands' --json results: a result with all fields
// set survives report.Parse and re-encoding unchanged.
func TestReportReadsEveryField(t *testing.T) {
	for _, v := range []any{&trainResult{}, &quantizeResult{}, &finetuneResult{}, &benchResult{}, &train.Metrics{},
		&struct {
			Rows   []demoRow `json:"rows"`
			Report string    `json:"report"`
		}{}} {
		fill(reflect.ValueOf(v))
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		run, err := report.Parse(b)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		var got any
		for _, p := range []any{run.Train, run.Quantize, run.Finetune, run.Bench, run.Eval, run.Demo} {
			if !reflect.ValueOf(p).IsNil() {
				got = p
			}
		}
		b2, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var want, have any
		json.Unmarshal(b, &want)
		json.Unmarshal(b2, &have)
		if !reflect.DeepEqual(want, have) {
			t.Errorf("%T read as %s (%T):\n got %s\nwant %s", v, run.Kind, got, b2, b)
		}
	}
}
